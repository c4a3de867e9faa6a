/* SPDX-License-Identifier: MIT */

/*
 * Compact JWS with Ed25519 (RFC 7515, RFC 7519, RFC 8037), on libsodium and
 * Jansson. See jwt.h for the contract.
 *
 * Verification never trusts anything it has not checked yet: the header is
 * parsed only to pick the algorithm and a key of our own set, the signature
 * is checked over the exact bytes received, and only then is the payload
 * parsed and its claims examined. Every decode is strict (canonical
 * base64url, no duplicate JSON members, nothing after the JSON object), so
 * that a token has exactly one reading.
 *
 * Hot path: a key set precomputes the base64url header jwt_sign() writes for
 * each of its keys, so a token carrying exactly those bytes skips decoding
 * and parsing a header whose every check is known to pass; and jwt_sign()
 * keeps the last encoded header per thread. Neither changes what is accepted.
 *
 * Nothing here logs or keeps shared mutable state; a const jwt_keyset may be
 * used by any number of threads at once.
 */

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "jwt.h"
#include "macro.h"

#define ED25519_PK_LEN crypto_sign_PUBLICKEYBYTES /* 32 */
#define ED25519_SIG_LEN crypto_sign_BYTES         /* 64 */
#define B64_SIG_LEN 86                            /* base64url of 64 bytes */
#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The decoded parts of a token never exceed 3/4 of its length. */
#define JWT_MAX_DECODED (JWT_MAX_TOKEN / 4 * 3)

/* Claims above this size go through a heap buffer instead of the stack. */
#define SIGN_STACK_CLAIMS 4096

/* Kids longer than this take the general path when signing and verifying. */
#define PLAIN_KID_MAX 128
#define PLAIN_HEADER_MAX (PLAIN_KID_MAX + 64)

static const char *const allowed_algs[] = { "EdDSA", "Ed25519" };

struct jwt_key {
        uint8_t pk[ED25519_PK_LEN];
        size_t kid_len;
        char *kid;
        /* base64url of the header jwt_sign() writes for this kid, for each
         * of allowed_algs[] (NULL for kids that need JSON escaping): a token
         * carrying exactly these bytes needs no header decoding. */
        char *header_b64[ELEMENTSOF(allowed_algs)];
        size_t header_b64_len[ELEMENTSOF(allowed_algs)];
};

struct jwt_keyset {
        struct jwt_key *keys;
        size_t n_keys;
        size_t n_allocated;
};

static const char *const error_table[_JWT_ERROR_MAX] = {
        [JWT_OK] = "token is valid",
        [JWT_ERR_TOO_LARGE] = "token is larger than 8 KiB",
        [JWT_ERR_FORMAT] = "token is not three segments of canonical base64url",
        [JWT_ERR_HEADER] = "token header is not a well-formed JSON object",
        [JWT_ERR_ALG] = "token algorithm is missing or not EdDSA/Ed25519",
        [JWT_ERR_TYP] = "token type is not JWT",
        [JWT_ERR_CRIT] = "token has critical header parameters",
        [JWT_ERR_EMBEDDED_KEY] = "token names or embeds its own key",
        [JWT_ERR_KID] = "token key id is missing or not in the key set",
        [JWT_ERR_SIGNATURE] = "token signature is invalid",
        [JWT_ERR_PAYLOAD] = "token claims are not a well-formed JSON object",
        [JWT_ERR_EXPIRED] = "token has expired or has no expiry",
        [JWT_ERR_NOT_YET_VALID] = "token is not valid yet",
        [JWT_ERR_AUDIENCE] = "token is not meant for this audience",
        [JWT_ERR_ISSUER] = "token is not from the expected issuer",
        [JWT_ERR_KEYSET] = "key set is malformed",
        [JWT_ERR_NOMEM] = "out of memory",
        [JWT_ERR_INVALID] = "invalid argument",
        [JWT_ERR_DUPLICATE_KID] = "key id is already in the key set",
};

const char *jwt_strerror(int err) {
        if (err < 0 || err >= _JWT_ERROR_MAX || !error_table[err])
                return "unknown token error";
        return error_table[err];
}

int b64url_encode(const void *in, size_t len, char *out, size_t outlen) {
        assert_return(in || len == 0, JWT_ERR_INVALID);
        assert_return(out, JWT_ERR_INVALID);

        if (outlen < sodium_base64_ENCODED_LEN(len, B64_VARIANT))
                return JWT_ERR_INVALID;
        sodium_bin2base64(out, outlen, in, len, B64_VARIANT);
        return 0;
}

static inline int b64url_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Strict base64url without padding: '=', '+', '/', whitespace, bytes over
 * 0x7f (which libsodium 1.0.18's decoder takes for letters: a second
 * spelling of the same bytes), a length of 4n+1 and non-zero trailing bits
 * are refused — exactly the canonical form. Not constant-time (libsodium's
 * is, at several times the cost per byte): what it decodes is public —
 * tokens, which their holder sent, and public keys. */
int b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *ret_len) {
        const unsigned char *p = (const unsigned char *) in;
        size_t i = 0, o = 0, rem = inlen % 4;

        assert_return(in || inlen == 0, JWT_ERR_INVALID);
        assert_return(out || outcap == 0, JWT_ERR_INVALID);
        assert_return(ret_len, JWT_ERR_INVALID);

        if (rem == 1 || inlen / 4 * 3 + (rem ? rem - 1 : 0) > outcap)
                return JWT_ERR_INVALID;
        for (; i + 4 <= inlen; i += 4) {
                int a = b64url_value(p[i]), b = b64url_value(p[i + 1]), c = b64url_value(p[i + 2]),
                    d = b64url_value(p[i + 3]);
                if ((a | b | c | d) < 0)
                        return JWT_ERR_INVALID;
                uint32_t u = (uint32_t) a << 18 | (uint32_t) b << 12 | (uint32_t) c << 6 | (uint32_t) d;
                out[o++] = (uint8_t) (u >> 16);
                out[o++] = (uint8_t) (u >> 8);
                out[o++] = (uint8_t) u;
        }
        if (rem >= 2) {
                int a = b64url_value(p[i]), b = b64url_value(p[i + 1]);
                int c = rem == 3 ? b64url_value(p[i + 2]) : 0;
                if ((a | b | c) < 0 || (rem == 2 && (b & 0x0f)) || (rem == 3 && (c & 0x03)))
                        return JWT_ERR_INVALID;
                out[o++] = (uint8_t) (a << 2 | b >> 4);
                if (rem == 3)
                        out[o++] = (uint8_t) ((b & 0x0f) << 4 | c >> 2);
        }
        *ret_len = o;
        return 0;
}

void jwt_thumbprint(const uint8_t pk[32], char ret_kid[JWT_KID_LEN + 1]) {
        /* RFC 7638: the required members in lexical order, no whitespace. */
        static const char prefix[] = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"";
        char canonical[sizeof(prefix) - 1 + 43 + 2 + 1];
        uint8_t digest[crypto_hash_sha256_BYTES];
        size_t n = sizeof(prefix) - 1;

        memcpy(canonical, prefix, n);
        sodium_bin2base64(canonical + n, 43 + 1, pk, ED25519_PK_LEN, B64_VARIANT);
        n += 43;
        canonical[n++] = '"';
        canonical[n++] = '}';

        crypto_hash_sha256(digest, (const uint8_t *) canonical, n);
        sodium_bin2base64(ret_kid, JWT_KID_LEN + 1, digest, sizeof(digest), B64_VARIANT);
}

/* A kid that JSON encodes as itself, so the header can be written directly. */
static bool kid_is_plain(const char *kid, size_t kid_len) {
        if (kid_len > PLAIN_KID_MAX)
                return false;
        for (const char *c = kid; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e || *c == '"' || *c == '\\')
                        return false;
        return true;
}

/* {"alg":ALG,"typ":"JWT","kid":KID}, byte for byte what
 * json_dumps(JSON_COMPACT) gives for a plain kid. out holds
 * PLAIN_HEADER_MAX bytes. Returns the length. */
static size_t plain_header(char *out, const char *alg, const char *kid, size_t kid_len) {
        static const char p1[] = "{\"alg\":\"", p2[] = "\",\"typ\":\"JWT\",\"kid\":\"", p3[] = "\"}";
        char *h = out;

        h = mempcpy(h, p1, sizeof(p1) - 1);
        h = mempcpy(h, alg, strlen(alg));
        h = mempcpy(h, p2, sizeof(p2) - 1);
        h = mempcpy(h, kid, kid_len);
        h = mempcpy(h, p3, sizeof(p3) - 1);
        return (size_t) (h - out);
}

struct jwt_keyset *jwt_keyset_new(void) {
        /* Harmless when already done; makes the library usable on its own. */
        if (sodium_init() < 0)
                return NULL;
        return calloc(1, sizeof(struct jwt_keyset));
}

void jwt_keyset_free(struct jwt_keyset *ks) {
        if (!ks)
                return;
        for (size_t i = 0; i < ks->n_keys; i++) {
                free(ks->keys[i].kid);
                for (size_t a = 0; a < ELEMENTSOF(allowed_algs); a++)
                        free(ks->keys[i].header_b64[a]);
        }
        free(ks->keys);
        free(ks);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct jwt_keyset *, jwt_keyset_free);

size_t jwt_keyset_size(const struct jwt_keyset *ks) {
        return ks ? ks->n_keys : 0;
}

static const struct jwt_key *keyset_find(const struct jwt_keyset *ks, const char *kid, size_t kid_len) {
        for (size_t i = 0; i < ks->n_keys; i++)
                if (ks->keys[i].kid_len == kid_len && memcmp(ks->keys[i].kid, kid, kid_len) == 0)
                        return &ks->keys[i];
        return NULL;
}

int jwt_keyset_add(struct jwt_keyset *ks, const uint8_t pk[32], const char *kid) {
        char computed[JWT_KID_LEN + 1];
        _cleanup_free_ char *copy = NULL;
        size_t kid_len;

        assert_return(ks, JWT_ERR_INVALID);
        assert_return(pk, JWT_ERR_INVALID);

        /* Refuse points of small order and non-canonical encodings now, so
         * that a key set never holds a key any signature could verify under. */
        if (!crypto_core_ed25519_is_valid_point(pk))
                return JWT_ERR_INVALID;

        if (!kid) {
                jwt_thumbprint(pk, computed);
                kid = computed;
        }
        kid_len = strlen(kid);
        if (kid_len == 0)
                return JWT_ERR_INVALID;
        if (keyset_find(ks, kid, kid_len))
                return JWT_ERR_DUPLICATE_KID;

        if (ks->n_keys == ks->n_allocated) {
                size_t n = ks->n_allocated ? ks->n_allocated * 2 : 4;
                struct jwt_key *keys = reallocarray(ks->keys, n, sizeof(struct jwt_key));
                if (!keys)
                        return JWT_ERR_NOMEM;
                ks->keys = keys;
                ks->n_allocated = n;
        }

        copy = strndup(kid, kid_len);
        if (!copy)
                return JWT_ERR_NOMEM;

        struct jwt_key key = { .kid = copy, .kid_len = kid_len };
        memcpy(key.pk, pk, ED25519_PK_LEN);

        if (kid_is_plain(kid, kid_len))
                for (size_t a = 0; a < ELEMENTSOF(allowed_algs); a++) {
                        char header[PLAIN_HEADER_MAX];
                        size_t n = plain_header(header, allowed_algs[a], kid, kid_len);
                        size_t m = sodium_base64_ENCODED_LEN(n, B64_VARIANT);

                        key.header_b64[a] = malloc(m);
                        if (!key.header_b64[a]) {
                                for (size_t b = 0; b < a; b++)
                                        free(key.header_b64[b]);
                                return JWT_ERR_NOMEM;
                        }
                        sodium_bin2base64(key.header_b64[a], m, (const uint8_t *) header, n, B64_VARIANT);
                        key.header_b64_len[a] = m - 1;
                }

        TAKE_PTR(copy);
        ks->keys[ks->n_keys++] = key;
        return 0;
}

/* The key whose own header (as jwt_sign() writes it) is exactly this
 * segment. Such a header has an allowed alg, typ JWT, a kid of the set and
 * nothing else, so it needs no further checks. */
static const struct jwt_key *keyset_find_header(const struct jwt_keyset *ks, const char *seg, size_t len) {
        for (size_t i = 0; i < ks->n_keys; i++)
                for (size_t a = 0; a < ELEMENTSOF(allowed_algs); a++)
                        if (ks->keys[i].header_b64[a] && ks->keys[i].header_b64_len[a] == len &&
                            memcmp(ks->keys[i].header_b64[a], seg, len) == 0)
                                return &ks->keys[i];
        return NULL;
}

static bool streq_json(const json_t *s, const char *expected) {
        return json_is_string(s) && json_string_length(s) == strlen(expected) &&
                memcmp(json_string_value(s), expected, json_string_length(s)) == 0;
}

static bool alg_allowed(const json_t *alg) {
        for (size_t a = 0; a < ELEMENTSOF(allowed_algs); a++)
                if (streq_json(alg, allowed_algs[a]))
                        return true;
        return false;
}

/* One JWK: JWT_OK when it was added or skipped (it is not an Ed25519
 * signing key), JWT_ERR_KEYSET (a malformed Ed25519 key) or JWT_ERR_NOMEM. */
static int keyset_parse_one(struct jwt_keyset *ks, json_t *jwk) {
        uint8_t pk[ED25519_PK_LEN];
        json_t *kty, *crv, *x, *kid, *use, *alg;
        size_t n;

        if (!json_is_object(jwk))
                return JWT_ERR_KEYSET;

        kty = json_object_get(jwk, "kty");
        crv = json_object_get(jwk, "crv");
        if (!json_is_string(kty))
                return JWT_ERR_KEYSET;
        if (!streq_json(kty, "OKP") || !streq_json(crv, "Ed25519"))
                return JWT_OK;

        /* Keys meant for something else are not ours to verify with. */
        use = json_object_get(jwk, "use");
        if (use && !json_is_string(use))
                return JWT_ERR_KEYSET;
        if (use && !streq_json(use, "sig"))
                return JWT_OK;
        alg = json_object_get(jwk, "alg");
        if (alg && !json_is_string(alg))
                return JWT_ERR_KEYSET;
        if (alg && !alg_allowed(alg))
                return JWT_OK;

        /* A private key has no business in a published set: it is a sign of
         * a misconfiguration that should be seen, not worked around. */
        if (json_object_get(jwk, "d"))
                return JWT_ERR_KEYSET;

        x = json_object_get(jwk, "x");
        if (!json_is_string(x) ||
            b64url_decode(json_string_value(x), json_string_length(x), pk, sizeof(pk), &n) != JWT_OK ||
            n != sizeof(pk))
                return JWT_ERR_KEYSET;

        kid = json_object_get(jwk, "kid");
        if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                    strlen(json_string_value(kid)) != json_string_length(kid)))
                return JWT_ERR_KEYSET;

        switch (jwt_keyset_add(ks, pk, kid ? json_string_value(kid) : NULL)) {
        case JWT_OK:
                return JWT_OK;
        case JWT_ERR_NOMEM:
                return JWT_ERR_NOMEM;
        default: /* invalid point, duplicate kid */
                return JWT_ERR_KEYSET;
        }
}

int jwt_keyset_parse(const char *json, size_t len, struct jwt_keyset **ret) {
        _cleanup_(jwt_keyset_freep) struct jwt_keyset *ks = NULL;
        json_t *root, *keys, *jwk;
        json_error_t error;
        size_t i;
        int r = JWT_OK;

        assert_return(json || len == 0, JWT_ERR_KEYSET);
        assert_return(ret, JWT_ERR_KEYSET);

        ks = jwt_keyset_new();
        if (!ks)
                return JWT_ERR_NOMEM;

        root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
        if (!root)
                return JWT_ERR_KEYSET;

        keys = json_object_get(root, "keys");
        if (!json_is_object(root) || !json_is_array(keys)) {
                json_decref(root);
                return JWT_ERR_KEYSET;
        }

        json_array_foreach(keys, i, jwk) {
                r = keyset_parse_one(ks, jwk);
                if (r != JWT_OK)
                        break;
        }
        json_decref(root);
        if (r != JWT_OK)
                return r;

        *ret = TAKE_PTR(ks);
        return JWT_OK;
}

/* The header goes in either raw (header) or already encoded (header_b64,
 * when not NULL). */
static int sign_token(const uint8_t sk[64], const char *header_b64, size_t header_b64_len,
                      const void *header, size_t header_len,
                      const void *payload, size_t payload_len, char **ret_token) {
        size_t hlen, plen, total;
        uint8_t sig[ED25519_SIG_LEN];
        char *token, *p;

        /* One allocation of the exact size: the signature is computed over
         * the first two segments in place and appended behind them. */
        hlen = header_b64 ? header_b64_len : sodium_base64_ENCODED_LEN(header_len, B64_VARIANT) - 1;
        plen = sodium_base64_ENCODED_LEN(payload_len, B64_VARIANT) - 1;
        total = hlen + 1 + plen + 1 + B64_SIG_LEN + 1;

        token = malloc(total);
        if (!token)
                return JWT_ERR_NOMEM;

        p = token;
        if (header_b64)
                memcpy(p, header_b64, hlen);
        else
                sodium_bin2base64(p, hlen + 1, header, header_len, B64_VARIANT);
        p += hlen;
        *p++ = '.';
        sodium_bin2base64(p, plen + 1, payload, payload_len, B64_VARIANT);
        p += plen;

        crypto_sign_detached(sig, NULL, (const uint8_t *) token, (size_t) (p - token), sk);

        *p++ = '.';
        sodium_bin2base64(p, B64_SIG_LEN + 1, sig, sizeof(sig), B64_VARIANT);

        *ret_token = token;
        return 0;
}

int jwt_sign_compact(const uint8_t sk[64], const void *header, size_t header_len,
                     const void *payload, size_t payload_len, char **ret_token) {
        assert_return(sk, JWT_ERR_INVALID);
        assert_return(header || header_len == 0, JWT_ERR_INVALID);
        assert_return(payload || payload_len == 0, JWT_ERR_INVALID);
        assert_return(ret_token, JWT_ERR_INVALID);

        return sign_token(sk, NULL, 0, header, header_len, payload, payload_len, ret_token);
}

/* Every token of a key has the same header: each thread keeps the base64url
 * of the last one it wrote, which spares re-encoding it on the hot path. */
static _Thread_local struct {
        size_t alg;                     /* index into allowed_algs[] */
        size_t kid_len;                 /* 0: empty */
        char kid[PLAIN_KID_MAX + 1];
        size_t b64_len;
        char b64[sodium_base64_ENCODED_LEN(PLAIN_HEADER_MAX, B64_VARIANT)];
} header_cache;

static void plain_header_b64(size_t alg, const char *kid, size_t kid_len) {
        char header[PLAIN_HEADER_MAX];
        size_t n;

        if (header_cache.kid_len == kid_len && header_cache.alg == alg &&
            memcmp(header_cache.kid, kid, kid_len) == 0)
                return;

        n = plain_header(header, allowed_algs[alg], kid, kid_len);
        sodium_bin2base64(header_cache.b64, sizeof(header_cache.b64), (const uint8_t *) header, n, B64_VARIANT);
        header_cache.b64_len = sodium_base64_ENCODED_LEN(n, B64_VARIANT) - 1;
        memcpy(header_cache.kid, kid, kid_len);
        header_cache.kid_len = kid_len;
        header_cache.alg = alg;
}

/* Signs payload (the claims' compact text) under the header of kid and
 * algorithm index a: what jwt_sign() and jwt_sign_payload() share. */
static int sign_with_kid(const uint8_t sk[64], const char *kid, size_t a, const void *payload, size_t payload_len,
                         char **ret_token) {
        _cleanup_free_ char *heap_header = NULL;
        const char *header = NULL, *header_b64 = NULL;
        size_t header_len = 0, header_b64_len = 0, kid_len;

        /* The header is the same compact form json_dumps() would give, built
         * without a round trip through Jansson for the kids we issue. */
        kid_len = strlen(kid);
        if (kid_is_plain(kid, kid_len)) {
                plain_header_b64(a, kid, kid_len);
                header_b64 = header_cache.b64;
                header_b64_len = header_cache.b64_len;
        } else {
                json_t *h = json_pack("{s:s,s:s,s:s}", "alg", allowed_algs[a], "typ", "JWT", "kid", kid);
                if (!h)
                        return JWT_ERR_INVALID; /* kid is not valid UTF-8 */
                heap_header = json_dumps(h, JSON_COMPACT);
                json_decref(h);
                if (!heap_header)
                        return JWT_ERR_NOMEM;
                header = heap_header;
                header_len = strlen(heap_header);
        }

        if ((header_b64 ? header_b64_len + 1 : sodium_base64_ENCODED_LEN(header_len, B64_VARIANT)) +
            sodium_base64_ENCODED_LEN(payload_len, B64_VARIANT) + B64_SIG_LEN > JWT_MAX_TOKEN)
                return JWT_ERR_TOO_LARGE;

        return sign_token(sk, header_b64, header_b64_len, header, header_len, payload, payload_len, ret_token);
}

static bool alg_index(const char *alg, size_t *ret) {
        for (size_t a = 0; a < ELEMENTSOF(allowed_algs); a++)
                if (streq(alg, allowed_algs[a])) {
                        *ret = a;
                        return true;
                }
        return false;
}

int jwt_sign(const uint8_t sk[64], const char *kid, const char *alg, const json_t *claims, char **ret_token) {
        char stack_claims[SIGN_STACK_CLAIMS];
        _cleanup_free_ char *heap_claims = NULL;
        const char *payload;
        size_t payload_len, a = 0;

        assert_return(sk, JWT_ERR_INVALID);
        assert_return(kid && *kid, JWT_ERR_INVALID);
        assert_return(alg && alg_index(alg, &a), JWT_ERR_INVALID);
        assert_return(json_is_object(claims), JWT_ERR_INVALID);
        assert_return(ret_token, JWT_ERR_INVALID);

        payload_len = json_dumpb(claims, stack_claims, sizeof(stack_claims), JSON_COMPACT);
        if (payload_len == 0)
                return JWT_ERR_INVALID;
        if (payload_len <= sizeof(stack_claims))
                payload = stack_claims;
        else {
                heap_claims = json_dumps(claims, JSON_COMPACT);
                if (!heap_claims)
                        return JWT_ERR_NOMEM;
                payload = heap_claims;
                payload_len = strlen(heap_claims);
        }
        return sign_with_kid(sk, kid, a, payload, payload_len, ret_token);
}

int jwt_sign_payload(const uint8_t sk[64], const char *kid, const char *alg, const char *payload, size_t payload_len,
                     char **ret_token) {
        size_t a = 0;

        assert_return(sk, JWT_ERR_INVALID);
        assert_return(kid && *kid, JWT_ERR_INVALID);
        assert_return(alg && alg_index(alg, &a), JWT_ERR_INVALID);
        assert_return(payload && payload_len > 0, JWT_ERR_INVALID);
        assert_return(ret_token, JWT_ERR_INVALID);
        return sign_with_kid(sk, kid, a, payload, payload_len, ret_token);
}

/* Parses exactly one JSON object filling all of buf: duplicates, trailing
 * bytes (even whitespace) and anything but an object are refused. */
static json_t *parse_object(const uint8_t *buf, size_t len) {
        json_error_t error;
        json_t *j;

        j = json_loadb((const char *) buf, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &error);
        if (!j)
                return NULL;
        if (!json_is_object(j) || error.position < 0 || (size_t) error.position != len) {
                json_decref(j);
                return NULL;
        }
        return j;
}

static int64_t add_sat(int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_add_overflow(a, b, &r))
                return b > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

static int64_t sub_sat(int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_sub_overflow(a, b, &r))
                return b > 0 ? INT64_MIN : INT64_MAX;
        return r;
}

static bool is_string_or_absent(const json_t *j) {
        return !j || json_is_string(j);
}

static bool is_integer_or_absent(const json_t *j) {
        return !j || json_is_integer(j);
}

static int check_header(const struct jwt_keyset *ks, const json_t *header, const struct jwt_key **ret_key) {
        static const char *const embedded[] = { "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256" };
        const struct jwt_key *key;
        json_t *typ, *kid;

        if (!alg_allowed(json_object_get(header, "alg")))
                return JWT_ERR_ALG;

        typ = json_object_get(header, "typ");
        if (typ && !streq_json(typ, "JWT"))
                return JWT_ERR_TYP;

        /* We understand no extension, so any critical one must be refused
         * (RFC 7515 4.1.11); this also rules out "b64":false (RFC 7797). */
        if (json_object_get(header, "crit"))
                return JWT_ERR_CRIT;

        /* The key comes from our set, never from the token. */
        for (size_t i = 0; i < ELEMENTSOF(embedded); i++)
                if (json_object_get(header, embedded[i]))
                        return JWT_ERR_EMBEDDED_KEY;

        kid = json_object_get(header, "kid");
        if (!json_is_string(kid))
                return JWT_ERR_KID;
        key = keyset_find(ks, json_string_value(kid), json_string_length(kid));
        if (!key)
                return JWT_ERR_KID;

        *ret_key = key;
        return JWT_OK;
}

static bool audience_matches(const json_t *aud, const char *expected) {
        size_t i;
        json_t *a;

        if (json_is_string(aud))
                return streq_json(aud, expected);
        json_array_foreach(aud, i, a)
                if (streq_json(a, expected))
                        return true;
        return false;
}

static int check_claims(const json_t *claims, const struct jwt_verify_options *opts) {
        json_t *exp, *nbf, *iat, *aud, *iss;
        int64_t leeway = MAX(opts->leeway, 0);

        /* Types first: a malformed claim is a malformed token, whatever its
         * time. */
        exp = json_object_get(claims, "exp");
        nbf = json_object_get(claims, "nbf");
        iat = json_object_get(claims, "iat");
        aud = json_object_get(claims, "aud");
        iss = json_object_get(claims, "iss");
        if (!is_integer_or_absent(exp) || !is_integer_or_absent(nbf) || !is_integer_or_absent(iat) ||
            !is_string_or_absent(iss) ||
            !is_string_or_absent(json_object_get(claims, "sub")) ||
            !is_string_or_absent(json_object_get(claims, "jti")) ||
            !is_string_or_absent(json_object_get(claims, "sid")))
                return JWT_ERR_PAYLOAD;
        if (aud && !json_is_string(aud)) {
                size_t i;
                json_t *a;

                if (!json_is_array(aud))
                        return JWT_ERR_PAYLOAD;
                json_array_foreach(aud, i, a)
                        if (!json_is_string(a))
                                return JWT_ERR_PAYLOAD;
        }

        /* exp + leeway > now, written so that nothing can overflow. */
        if (!exp || json_integer_value(exp) <= sub_sat(opts->now, leeway))
                return JWT_ERR_EXPIRED;
        if (nbf && json_integer_value(nbf) > add_sat(opts->now, leeway))
                return JWT_ERR_NOT_YET_VALID;
        if (iat && json_integer_value(iat) > add_sat(opts->now, leeway))
                return JWT_ERR_NOT_YET_VALID;

        if (opts->audience && (!aud || !audience_matches(aud, opts->audience)))
                return JWT_ERR_AUDIENCE;
        if (opts->issuer && (!iss || !streq_json(iss, opts->issuer)))
                return JWT_ERR_ISSUER;

        return JWT_OK;
}

/* Returns a jwt_error. NULL ks gives JWT_ERR_KEYSET, NULL opts or token
 * JWT_ERR_FORMAT; a negative leeway counts as 0. */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
               const struct jwt_verify_options *opts, json_t **ret_claims) {
        _cleanup_(json_decrefp) json_t *header = NULL, *claims = NULL;
        /* All three decoded segments fit here: no allocation per token. */
        uint8_t buf[JWT_MAX_DECODED];
        const char *dot1, *dot2, *end;
        size_t hseg, pseg, sseg, hlen, plen, slen;
        const struct jwt_key *key = NULL;
        int r;

        assert_return(ks, JWT_ERR_KEYSET);
        assert_return(opts, JWT_ERR_FORMAT);
        assert_return(token || len == 0, JWT_ERR_FORMAT);

        if (len > JWT_MAX_TOKEN)
                return JWT_ERR_TOO_LARGE;

        /* Exactly three non-empty segments. */
        end = token + len;
        dot1 = len > 0 ? memchr(token, '.', len) : NULL;
        if (!dot1)
                return JWT_ERR_FORMAT;
        dot2 = memchr(dot1 + 1, '.', (size_t) (end - dot1 - 1));
        if (!dot2 || memchr(dot2 + 1, '.', (size_t) (end - dot2 - 1)))
                return JWT_ERR_FORMAT;
        hseg = (size_t) (dot1 - token);
        pseg = (size_t) (dot2 - dot1 - 1);
        sseg = (size_t) (end - dot2 - 1);
        if (hseg == 0 || pseg == 0 || sseg == 0)
                return JWT_ERR_FORMAT;

        /* Our own tokens carry a header we know byte for byte. */
        key = keyset_find_header(ks, token, hseg);
        hlen = 0;
        if (!key && b64url_decode(token, hseg, buf, sizeof(buf), &hlen) != JWT_OK)
                return JWT_ERR_FORMAT;
        if (b64url_decode(dot1 + 1, pseg, buf + hlen, sizeof(buf) - hlen, &plen) != JWT_OK ||
            b64url_decode(dot2 + 1, sseg, buf + hlen + plen, sizeof(buf) - hlen - plen, &slen) != JWT_OK)
                return JWT_ERR_FORMAT;

        if (!key) {
                header = parse_object(buf, hlen);
                if (!header)
                        return JWT_ERR_HEADER;
                r = check_header(ks, header, &key);
                if (r != JWT_OK)
                        return r;
        }

        /* crypto_sign_verify_detached() also refuses S >= L and small-order
         * R or A. */
        if (slen != ED25519_SIG_LEN ||
            crypto_sign_verify_detached(buf + hlen + plen, (const uint8_t *) token,
                                        (size_t) (dot2 - token), key->pk) != 0)
                return JWT_ERR_SIGNATURE;

        claims = parse_object(buf + hlen, plen);
        if (!claims)
                return JWT_ERR_PAYLOAD;
        r = check_claims(claims, opts);
        if (r != JWT_OK)
                return r;

        if (ret_claims)
                *ret_claims = TAKE_PTR(claims);
        return JWT_OK;
}
