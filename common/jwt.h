/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Compact JWS (JWT) with Ed25519: one implementation shared by latchd
 * (issuance, the `verify` op) and liblatch (offline verification).
 *
 * Verification accepts only Ed25519 keys from the key set it is given, `alg`
 * EdDSA or Ed25519, never a key named or embedded by the token; it requires
 * `exp`, checks nbf/iat/exp with a leeway, aud/iss when asked, refuses
 * `crit`, a `typ` other than JWT, duplicate JSON members, non-canonical
 * base64url and tokens over JWT_MAX_TOKEN bytes.
 *
 * Errors: every function that can fail returns an enum jwt_error, JWT_OK (0)
 * on success: the reasons a token is refused are the domain's results, and
 * the few other failures (a malformed argument, no memory) have values of
 * their own. Callers outside (keys.c, liblatch) map them at that boundary.
 *
 * Library code: never logs; thread-safe for concurrent use of a const keyset.
 */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192
#define JWT_KID_LEN 43 /* base64url of a SHA-256 thumbprint */

/* Why a call failed: for jwt_verify(), why the token was refused. JWT_OK is
 * 0; every other value has a one-line reason from jwt_strerror(). */
enum jwt_error {
        JWT_OK = 0,
        JWT_ERR_TOO_LARGE,     /* over JWT_MAX_TOKEN */
        JWT_ERR_FORMAT,        /* not three segments of canonical base64url */
        JWT_ERR_HEADER,        /* header not a JSON object, duplicates, wrong types */
        JWT_ERR_ALG,           /* alg missing or not EdDSA/Ed25519 */
        JWT_ERR_TYP,           /* typ present and not JWT */
        JWT_ERR_CRIT,          /* crit present */
        JWT_ERR_EMBEDDED_KEY,  /* jwk, jku, x5u, x5c, x5t present */
        JWT_ERR_KID,           /* kid missing, or not in the key set */
        JWT_ERR_SIGNATURE,     /* bad length, S >= L, or does not verify */
        JWT_ERR_PAYLOAD,       /* payload not a JSON object, duplicates, wrong claim types */
        JWT_ERR_EXPIRED,       /* exp + leeway <= now, or exp missing */
        JWT_ERR_NOT_YET_VALID, /* nbf or iat - leeway > now */
        JWT_ERR_AUDIENCE,      /* aud does not hold the expected audience */
        JWT_ERR_ISSUER,        /* iss is not the expected issuer */
        JWT_ERR_KEYSET,        /* the key set itself is malformed (parsing) */
        JWT_ERR_NOMEM,
        JWT_ERR_INVALID,       /* an argument is malformed (a caller's error, or bad base64url) */
        JWT_ERR_DUPLICATE_KID, /* jwt_keyset_add(): the kid is already in the set */
        _JWT_ERROR_MAX
};

const char *jwt_strerror(int err);

/* A set of Ed25519 public keys, indexed by kid. */
struct jwt_keyset;

/* Parses a JWKS document ({"keys":[...]}). Keys that are not OKP/Ed25519 are
 * skipped; a malformed Ed25519 entry makes the whole set JWT_ERR_KEYSET.
 * Returns JWT_OK and a new set (free with jwt_keyset_free), JWT_ERR_KEYSET
 * or JWT_ERR_NOMEM. */
int jwt_keyset_parse(const char *json, size_t len, struct jwt_keyset **ret);
struct jwt_keyset *jwt_keyset_new(void);
/* Adds a raw public key with its kid (computed when kid is NULL). Returns
 * JWT_OK, JWT_ERR_INVALID (not a usable Ed25519 key, or an empty kid),
 * JWT_ERR_DUPLICATE_KID (lookups must be unambiguous) or JWT_ERR_NOMEM. */
int jwt_keyset_add(struct jwt_keyset *ks, const uint8_t pk[32], const char *kid);
size_t jwt_keyset_size(const struct jwt_keyset *ks);
void jwt_keyset_free(struct jwt_keyset *ks); /* NULL is fine */

struct jwt_verify_options {
        int64_t now;            /* Unix seconds */
        int64_t leeway;         /* seconds of clock skew tolerated */
        const char *audience;   /* NULL: not checked */
        const char *issuer;     /* NULL: not checked */
};

/* Verifies `token` (len bytes, need not be NUL-terminated). On JWT_OK,
 * *ret_claims (may be NULL) gets a new reference to the payload object;
 * otherwise the reason it was refused, JWT_ERR_KEYSET or JWT_ERR_NOMEM. */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
               const struct jwt_verify_options *opts, json_t **ret_claims);

/* RFC 7638 thumbprint of an Ed25519 public key, base64url, NUL-terminated. */
void jwt_thumbprint(const uint8_t pk[32], char ret_kid[JWT_KID_LEN + 1]);

/* Signs `claims` (a JSON object, serialised compactly) with the 64-byte
 * libsodium secret key sk, header {"alg":alg,"typ":"JWT","kid":kid}. alg is
 * "EdDSA" or "Ed25519". Returns JWT_OK and a malloc()ed token,
 * JWT_ERR_INVALID (bad alg, kid or claims), JWT_ERR_TOO_LARGE (the token
 * would be over JWT_MAX_TOKEN, so no verifier would accept it) or
 * JWT_ERR_NOMEM. */
int jwt_sign(const uint8_t sk[64], const char *kid, const char *alg, const json_t *claims, char **ret_token);

/* jwt_sign() of claims already written: payload must be the compact JSON
 * text of one object, exactly as json_dumpb(JSON_COMPACT) would write it
 * (the caller vouches for that; nothing here parses it). For a signer that
 * builds its claims without Jansson. Same returns as jwt_sign(). */
int jwt_sign_payload(const uint8_t sk[64], const char *kid, const char *alg, const char *payload, size_t payload_len,
                     char **ret_token);

/* base64url without padding, strict on decode (canonical only). Return
 * JWT_OK or JWT_ERR_INVALID; encode needs out capacity sodium_base64_ENCODED_LEN(len,
 * sodium_base64_VARIANT_URLSAFE_NO_PADDING). */
int b64url_encode(const void *in, size_t len, char *out, size_t outlen);
int b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *ret_len);

/* Internal, for tests: signs an arbitrary header and payload (raw bytes,
 * base64url-encoded here) with sk, giving "b64(header).b64(payload).b64(sig)".
 * It shares its signing code with jwt_sign(); tests use it to reproduce RFC 8037 A.4 and to
 * forge malformed tokens. Returns JWT_OK and a malloc()ed token,
 * JWT_ERR_INVALID or JWT_ERR_NOMEM. */
int jwt_sign_compact(const uint8_t sk[64], const void *header, size_t header_len,
                     const void *payload, size_t payload_len, char **ret_token);
