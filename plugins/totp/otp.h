/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238), base32 (RFC 4648,
 * the alphabet authenticator apps and oathtool use) and otpauth:// URIs (the
 * Key Uri Format that Google Authenticator defined and every authenticator
 * app reads). Pure functions: no I/O, no globals, safe from any thread.
 *
 * HMAC: SHA-1 (RFC 6238's default, and the only one many authenticator apps
 * implement) comes from Nettle, SHA-256 and SHA-512 from libsodium, which
 * latch already uses for every other primitive. libsodium has no SHA-1;
 * Nettle is a small, well-kept library already in Debian (GnuTLS is built on
 * it), needs no global initialisation (libgcrypt needs gcry_check_version()
 * before any call, which a plugin loaded into a host that may use libgcrypt
 * itself should not do) and reads no configuration file at load (OpenSSL's
 * libcrypto does, and is far larger). A hand-written SHA-1 is not an option.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum otp_algorithm {
        OTP_SHA1 = 0,
        OTP_SHA256 = 1,
        OTP_SHA512 = 2,
        _OTP_ALGORITHM_MAX
};

/* The size of a secret latch generates: 160 bits, RFC 4226's recommendation
 * and what authenticator apps expect for SHA-1. */
#define OTP_SECRET_SIZE 20
/* Secrets accepted from elsewhere (tests, imports): 1..64 bytes. */
#define OTP_SECRET_MAX 64

/* "sha1", "sha256", "sha512" (as otpauth URIs spell them upper-case:
 * "SHA1", ...); -EINVAL for anything else. */
int otp_algorithm_from_string(const char *s);
const char *otp_algorithm_to_string(enum otp_algorithm a);     /* "sha1" */
const char *otp_algorithm_uri_name(enum otp_algorithm a);      /* "SHA1" */

/* The HOTP value of `counter` under `key`: RFC 4226's dynamic truncation,
 * modulo 10^digits (digits 6..8). Returns 0 and *ret, or -EINVAL. */
int otp_hotp(enum otp_algorithm alg, const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
             uint32_t *ret);

/* The TOTP time step of Unix time `t`: floor(t / period) (T0 = 0). */
uint64_t otp_step(int64_t t, unsigned period);

/* Formats `value` as exactly `digits` decimal digits, zero-padded, into buf
 * (at least digits + 1 bytes). */
void otp_format(uint32_t value, unsigned digits, char *buf);

/* Parses a code the user typed: exactly `digits` decimal digits, with
 * spaces allowed between them (apps show "123 456"). Returns 0 and *ret, or
 * -EINVAL. */
int otp_parse_code(const char *s, unsigned digits, uint32_t *ret);

/* Base32 without padding, upper case, into buf (capacity bufsize, at least
 * (len * 8 + 4) / 5 + 1). Returns the length written, or -ENOBUFS. */
int otp_base32_encode(const uint8_t *data, size_t len, char *buf, size_t bufsize);

/* Base32, case-insensitive, with or without '=' padding, spaces ignored.
 * Returns the number of bytes written to out (capacity outsize), or -EINVAL
 * (a character outside the alphabet, or trailing bits that are not zero)
 * or -ENOBUFS. */
int otp_base32_decode(const char *s, uint8_t *out, size_t outsize);

/* The otpauth://totp/ISSUER:USER?secret=...&issuer=...&algorithm=...&digits=
 * ...&period=... URI, percent-encoding the label and the issuer. Returns a
 * malloc()ed string (the caller wipes and frees it: it holds the secret),
 * or NULL on allocation failure. */
char *otp_uri(const char *issuer, const char *user, const uint8_t *secret, size_t secretlen,
              enum otp_algorithm alg, unsigned digits, unsigned period);
