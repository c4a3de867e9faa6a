/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/hmac.h>
#include <sodium.h>

#include "otp.h"

static const char *const alg_names[_OTP_ALGORITHM_MAX] = { "sha1", "sha256", "sha512" };
static const char *const alg_uri_names[_OTP_ALGORITHM_MAX] = { "SHA1", "SHA256", "SHA512" };

int otp_algorithm_from_string(const char *s) {
        for (int i = 0; i < _OTP_ALGORITHM_MAX; i++)
                if (s && strcasecmp(s, alg_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *otp_algorithm_to_string(enum otp_algorithm a) {
        return (unsigned) a < _OTP_ALGORITHM_MAX ? alg_names[a] : NULL;
}

const char *otp_algorithm_uri_name(enum otp_algorithm a) {
        return (unsigned) a < _OTP_ALGORITHM_MAX ? alg_uri_names[a] : NULL;
}

/* HMAC(key, msg) into mac (64 bytes); returns the MAC's length. */
static size_t hmac(enum otp_algorithm alg, const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen,
                   uint8_t mac[64]) {
        switch (alg) {
        case OTP_SHA1: {
                struct hmac_sha1_ctx c;
                hmac_sha1_set_key(&c, keylen, key);
                hmac_sha1_update(&c, msglen, msg);
                hmac_sha1_digest(&c, SHA1_DIGEST_SIZE, mac);
                sodium_memzero(&c, sizeof c);
                return SHA1_DIGEST_SIZE;
        }
        case OTP_SHA256: {
                crypto_auth_hmacsha256_state c;
                crypto_auth_hmacsha256_init(&c, key, keylen);
                crypto_auth_hmacsha256_update(&c, msg, msglen);
                crypto_auth_hmacsha256_final(&c, mac);
                sodium_memzero(&c, sizeof c);
                return crypto_auth_hmacsha256_BYTES;
        }
        case OTP_SHA512: {
                crypto_auth_hmacsha512_state c;
                crypto_auth_hmacsha512_init(&c, key, keylen);
                crypto_auth_hmacsha512_update(&c, msg, msglen);
                crypto_auth_hmacsha512_final(&c, mac);
                sodium_memzero(&c, sizeof c);
                return crypto_auth_hmacsha512_BYTES;
        }
        default:
                return 0;
        }
}

int otp_hotp(enum otp_algorithm alg, const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
             uint32_t *ret) {
        static const uint32_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000 };
        uint8_t msg[8], mac[64];
        size_t maclen;

        if ((unsigned) alg >= _OTP_ALGORITHM_MAX || !key || keylen == 0 || keylen > OTP_SECRET_MAX ||
            digits < 6 || digits > 8 || !ret)
                return -EINVAL;

        for (int i = 7; i >= 0; i--, counter >>= 8)
                msg[i] = (uint8_t) counter;
        maclen = hmac(alg, key, keylen, msg, sizeof msg, mac);

        /* RFC 4226 5.3: the low nibble of the last byte picks 4 bytes. */
        unsigned off = mac[maclen - 1] & 0x0f;
        uint32_t bin = ((uint32_t) (mac[off] & 0x7f) << 24) | ((uint32_t) mac[off + 1] << 16) |
                       ((uint32_t) mac[off + 2] << 8) | (uint32_t) mac[off + 3];
        sodium_memzero(mac, sizeof mac);
        *ret = bin % pow10[digits];
        return 0;
}

uint64_t otp_step(int64_t t, unsigned period) {
        if (t < 0 || period == 0)
                return 0;
        return (uint64_t) t / period;
}

void otp_format(uint32_t value, unsigned digits, char *buf) {
        buf[digits] = '\0';
        for (unsigned i = digits; i > 0; i--, value /= 10)
                buf[i - 1] = (char) ('0' + value % 10);
}

int otp_parse_code(const char *s, unsigned digits, uint32_t *ret) {
        uint32_t v = 0;
        unsigned n = 0;

        if (!s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s == ' ')
                        continue;
                if (*s < '0' || *s > '9' || ++n > digits)
                        return -EINVAL;
                v = v * 10 + (uint32_t) (*s - '0');
        }
        if (n != digits)
                return -EINVAL;
        *ret = v;
        return 0;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int otp_base32_encode(const uint8_t *data, size_t len, char *buf, size_t bufsize) {
        size_t need = (len * 8 + 4) / 5, o = 0;
        uint32_t acc = 0;
        int bits = 0;

        if (bufsize < need + 1)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i++) {
                acc = (acc << 8) | data[i];
                bits += 8;
                while (bits >= 5) {
                        buf[o++] = b32[(acc >> (bits - 5)) & 31];
                        bits -= 5;
                }
        }
        if (bits > 0)
                buf[o++] = b32[(acc << (5 - bits)) & 31];
        buf[o] = '\0';
        acc = 0;
        return (int) o;
}

int otp_base32_decode(const char *s, uint8_t *out, size_t outsize) {
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        bool padding = false;

        for (; *s; s++) {
                char c = *s;
                int v;

                if (c == ' ')
                        continue;
                if (c == '=') {
                        padding = true;
                        continue;
                }
                if (padding)
                        return -EINVAL;
                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                if (c >= 'A' && c <= 'Z')
                        v = c - 'A';
                else if (c >= '2' && c <= '7')
                        v = c - '2' + 26;
                else
                        return -EINVAL;
                acc = (acc << 5) | (uint32_t) v;
                bits += 5;
                if (bits >= 8) {
                        if (o >= outsize)
                                return -ENOBUFS;
                        out[o++] = (uint8_t) (acc >> (bits - 8));
                        bits -= 8;
                }
                acc &= (1u << bits) - 1;
        }
        /* Leftover bits must be padding zeros, and never a whole symbol. */
        if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
                return -EINVAL;
        return (int) o;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters stay). */
static void pct_append(char **p, const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~') {
                        *(*p)++ = (char) c;
                } else {
                        *(*p)++ = '%';
                        *(*p)++ = hex[c >> 4];
                        *(*p)++ = hex[c & 15];
                }
        }
}

char *otp_uri(const char *issuer, const char *user, const uint8_t *secret, size_t secretlen,
              enum otp_algorithm alg, unsigned digits, unsigned period) {
        char b[OTP_SECRET_MAX * 2];
        size_t size;
        char *uri, *p;
        int n;

        if (!issuer || !user || (unsigned) alg >= _OTP_ALGORITHM_MAX)
                return NULL;
        n = otp_base32_encode(secret, secretlen, b, sizeof b);
        if (n < 0)
                return NULL;

        size = 64 + 6 * strlen(issuer) + 3 * strlen(user) + (size_t) n + 64;
        uri = malloc(size);
        if (!uri) {
                sodium_memzero(b, sizeof b);
                return NULL;
        }
        p = uri;
        p += sprintf(p, "otpauth://totp/");
        pct_append(&p, issuer);
        *p++ = ':';
        pct_append(&p, user);
        p += sprintf(p, "?secret=%s&issuer=", b);
        pct_append(&p, issuer);
        sprintf(p, "&algorithm=%s&digits=%u&period=%u", alg_uri_names[alg], digits, period);
        sodium_memzero(b, sizeof b);
        return uri;
}
