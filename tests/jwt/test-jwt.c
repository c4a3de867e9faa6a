/* SPDX-License-Identifier: MIT */

/*
 * Unit tests of common/jwt.c: RFC 8037 Appendix A reproduced byte for byte,
 * strict base64url, key set parsing, signing, and a table of malicious or
 * malformed tokens, each with the exact refusal expected.
 */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "jwt.h"
#include "macro.h"

/* RFC 8037 Appendix A.1 (private key d) and A.2 (public key x). */
#define RFC_D "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define RFC_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
/* A.3: the RFC 7638 thumbprint of that key. */
#define RFC_KID "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
/* A.4: the JWS of "Example of Ed25519 signing" with header {"alg":"EdDSA"}. */
#define RFC_JWS                                                 \
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." \
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

#define NOW 1700000000
#define LEEWAY 30

static uint8_t rfc_pk[32], rfc_sk[64];
static uint8_t other_pk[32], other_sk[64];     /* in the set, under its own kid */
static uint8_t rogue_pk[32], rogue_sk[64];     /* not in the set */
static struct jwt_keyset *keyset;

static void rfc_keypair(uint8_t pk[32], uint8_t sk[64]) {
        uint8_t seed[32];
        size_t n;

        assert_int_equal(b64url_decode(RFC_D, strlen(RFC_D), seed, sizeof(seed), &n), 0);
        assert_int_equal(n, 32);
        assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static int setup(void **state) {
        char kid[JWT_KID_LEN + 1];

        if (sodium_init() < 0)
                return -1;
        rfc_keypair(rfc_pk, rfc_sk);
        crypto_sign_keypair(other_pk, other_sk);
        crypto_sign_keypair(rogue_pk, rogue_sk);

        keyset = jwt_keyset_new();
        if (!keyset)
                return -1;
        jwt_thumbprint(other_pk, kid);
        if (jwt_keyset_add(keyset, other_pk, kid) != JWT_OK || jwt_keyset_add(keyset, rfc_pk, NULL) != JWT_OK)
                return -1;
        return 0;
}

static int teardown(void **state) {
        jwt_keyset_free(keyset);
        return 0;
}

static char *b64(const void *data, size_t len) {
        size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *s = malloc(n);

        assert_non_null(s);
        assert_int_equal(b64url_encode(data, len, s, n), 0);
        return s;
}

static void test_rfc8037(void **state) {
        char x[64], kid[JWT_KID_LEN + 1];
        _cleanup_free_ char *token = NULL;
        static const char header[] = "{\"alg\":\"EdDSA\"}";
        static const char payload[] = "Example of Ed25519 signing";

        /* A.2: the public key derived from A.1's d. */
        assert_int_equal(b64url_encode(rfc_pk, 32, x, sizeof(x)), 0);
        assert_string_equal(x, RFC_X);

        /* A.3: the thumbprint. */
        jwt_thumbprint(rfc_pk, kid);
        assert_string_equal(kid, RFC_KID);

        /* A.4: the signature, through the same code path jwt_sign() uses. */
        assert_int_equal(jwt_sign_compact(rfc_sk, header, strlen(header), payload, strlen(payload), &token), 0);
        assert_string_equal(token, RFC_JWS);

        /* A.5: it verifies as a JWS; as a JWT it has no kid, so it is refused
         * before anything else is looked at. */
        const char *sig = strrchr(RFC_JWS, '.') + 1;
        uint8_t raw[64];
        size_t n;
        assert_int_equal(b64url_decode(sig, strlen(sig), raw, sizeof(raw), &n), 0);
        assert_int_equal(n, 64);
        assert_int_equal(crypto_sign_verify_detached(raw, (const uint8_t *) RFC_JWS,
                                                     (size_t) (sig - 1 - RFC_JWS), rfc_pk), 0);

        struct jwt_verify_options opts = { .now = NOW, .leeway = LEEWAY };
        assert_int_equal(jwt_verify(keyset, RFC_JWS, strlen(RFC_JWS), &opts, NULL), JWT_ERR_KID);
}

static void test_b64url(void **state) {
        uint8_t out[16];
        size_t n = 99;
        char enc[8];

        assert_int_equal(b64url_decode("QQ", 2, out, sizeof(out), &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(out[0], 'A');
        assert_int_equal(b64url_decode("QUI", 3, out, sizeof(out), &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(out, "AB", 2);
        assert_int_equal(b64url_decode("-_-_", 4, out, sizeof(out), &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(out[0], 0xfb);
        assert_int_equal(out[1], 0xff);
        assert_int_equal(out[2], 0xbf);
        assert_int_equal(b64url_decode("", 0, out, sizeof(out), &n), 0);
        assert_int_equal(n, 0);

        /* Non-zero trailing bits: "QR" and "QUJ" would decode to the same
         * bytes as "QQ" and "QUI" in a lenient decoder. */
        n = 99;
        assert_int_equal(b64url_decode("QR", 2, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(n, 99); /* untouched on failure */
        assert_int_equal(b64url_decode("QUJ", 3, out, sizeof(out), &n), JWT_ERR_INVALID);
        /* Padding, the standard alphabet, whitespace, impossible lengths. */
        assert_int_equal(b64url_decode("QQ==", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("QUI=", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("+/+/", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("-_+_", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("QU I", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("QUI\n", 4, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("QUFBQ", 5, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("Q", 1, out, sizeof(out), &n), JWT_ERR_INVALID);
        assert_int_equal(b64url_decode("QQ\0", 3, out, sizeof(out), &n), JWT_ERR_INVALID);
        /* Output too small. */
        assert_int_equal(b64url_decode("QUFB", 4, out, 2, &n), JWT_ERR_INVALID);

        assert_int_equal(b64url_encode("\xfb\xff\xbf", 3, enc, sizeof(enc)), 0);
        assert_string_equal(enc, "-_-_");
        assert_int_equal(b64url_encode("A", 1, enc, 3), 0);
        assert_string_equal(enc, "QQ");
        assert_int_equal(b64url_encode("A", 1, enc, 2), JWT_ERR_INVALID);
}

static char *decode_segment(const char *token, int index) {
        const char *start = token, *end;
        uint8_t buf[JWT_MAX_TOKEN];
        size_t n;

        for (int i = 0; i < index; i++)
                start = strchr(start, '.') + 1;
        end = strchr(start, '.');
        if (!end)
                end = start + strlen(start);
        assert_int_equal(b64url_decode(start, (size_t) (end - start), buf, sizeof(buf) - 1, &n), 0);
        buf[n] = 0;
        return strdup((char *) buf);
}

static void test_sign_verify(void **state) {
        _cleanup_free_ char *token = NULL, *header = NULL, *payload = NULL, *token2 = NULL;
        struct jwt_verify_options opts = { .now = NOW, .leeway = LEEWAY, .audience = "svc", .issuer = "latch" };
        json_t *claims, *got = NULL;

        claims = json_pack("{s:s,s:s,s:[s,s],s:I,s:I,s:I,s:s,s:s,s:[s,s]}",
                           "iss", "latch", "sub", "alice", "aud", "other", "svc",
                           "iat", (json_int_t) NOW, "nbf", (json_int_t) NOW, "exp", (json_int_t) NOW + 300,
                           "jti", "j", "sid", "h", "groups", "wheel", "users");
        assert_non_null(claims);

        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "EdDSA", claims, &token), 0);
        header = decode_segment(token, 0);
        assert_string_equal(header, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}");
        payload = decode_segment(token, 1);
        _cleanup_free_ char *expected = json_dumps(claims, JSON_COMPACT);
        assert_string_equal(payload, expected);

        assert_int_equal(jwt_verify(keyset, token, strlen(token), &opts, &got), JWT_OK);
        assert_non_null(got);
        assert_true(json_equal(got, claims));
        json_decref(got);

        /* Need not be NUL-terminated: a prefix of a longer buffer. */
        size_t len = strlen(token);
        char *longer = malloc(len + 5);
        assert_non_null(longer);
        memcpy(longer, token, len);
        memcpy(longer + len, "XXXXX", 5);
        assert_int_equal(jwt_verify(keyset, longer, len, &opts, NULL), JWT_OK);
        assert_int_equal(jwt_verify(keyset, longer, len + 5, &opts, NULL), JWT_ERR_FORMAT);
        free(longer);

        /* alg Ed25519 (RFC 9864) is signed and accepted just the same. */
        assert_int_equal(jwt_sign(other_sk, "k\"\\\xc3\xa9", "Ed25519", claims, &token2), 0);
        free(header);
        header = decode_segment(token2, 0);
        assert_string_equal(header, "{\"alg\":\"Ed25519\",\"typ\":\"JWT\",\"kid\":\"k\\\"\\\\\xc3\xa9\"}");
        struct jwt_keyset *ks = jwt_keyset_new();
        assert_non_null(ks);
        assert_int_equal(jwt_keyset_add(ks, other_pk, "k\"\\\xc3\xa9"), 0);
        assert_int_equal(jwt_keyset_add(ks, other_pk, "k\"\\\xc3\xa9"), JWT_ERR_DUPLICATE_KID);
        assert_int_equal(jwt_verify(ks, token2, strlen(token2), &opts, NULL), JWT_OK);
        /* ...but not under the RFC key's kid. */
        assert_int_equal(jwt_verify(keyset, token2, strlen(token2), &opts, NULL), JWT_ERR_KID);
        jwt_keyset_free(ks);

        /* Refusals of jwt_sign(). */
        char *t = (char *) 0x1;
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "none", claims, &t), JWT_ERR_INVALID);
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "HS256", claims, &t), JWT_ERR_INVALID);
        assert_int_equal(jwt_sign(rfc_sk, "", "EdDSA", claims, &t), JWT_ERR_INVALID);
        assert_int_equal(jwt_sign(rfc_sk, "k\xff", "EdDSA", claims, &t), JWT_ERR_INVALID);
        json_t *array = json_array();
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "EdDSA", array, &t), JWT_ERR_INVALID);
        json_decref(array);
        char big[7000];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        json_object_set_new(claims, "big", json_string(big));
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "EdDSA", claims, &t), JWT_ERR_TOO_LARGE);
        assert_ptr_equal(t, (char *) 0x1); /* untouched on failure */

        /* Claims larger than the stack buffer still sign (heap path). */
        big[5000] = 0;
        json_object_set_new(claims, "big", json_string(big));
        free(token);
        token = NULL;
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "EdDSA", claims, &token), 0);
        assert_int_equal(jwt_verify(keyset, token, strlen(token), &opts, &got), JWT_OK);
        assert_true(json_equal(got, claims));
        json_decref(got);

        json_decref(claims);
}

/* Headers for alternating kids and algs, from several threads at once: each
 * token must carry its own header (jwt_sign() keeps a per-thread cache). */
struct signer_args {
        unsigned seed;
        unsigned failures;
};

static void *signer_thread(void *userdata) {
        struct signer_args *args = userdata;
        static const char *const algs[] = { "EdDSA", "Ed25519" };
        char other_kid[JWT_KID_LEN + 1];
        json_t *claims = json_pack("{s:I}", "exp", (json_int_t) NOW + 60);
        struct jwt_verify_options opts = { .now = NOW };

        jwt_thumbprint(other_pk, other_kid);
        for (unsigned i = 0; i < 200; i++) {
                unsigned pick = (i * 7 + args->seed) % 4;
                const char *kid = pick & 1 ? other_kid : RFC_KID, *alg = algs[pick >> 1];
                char expected[256], *token = NULL, *header;

                snprintf(expected, sizeof(expected), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
                if (jwt_sign(pick & 1 ? other_sk : rfc_sk, kid, alg, claims, &token) != JWT_OK) {
                        args->failures++;
                        continue;
                }
                header = decode_segment(token, 0);
                if (!streq(header, expected) || jwt_verify(keyset, token, strlen(token), &opts, NULL) != JWT_OK)
                        args->failures++;
                free(header);
                free(token);
        }
        json_decref(claims);
        return NULL;
}

static void test_threads(void **state) {
        pthread_t threads[4];
        struct signer_args args[4];

        for (unsigned i = 0; i < ELEMENTSOF(threads); i++) {
                args[i] = (struct signer_args) { .seed = i };
                assert_int_equal(pthread_create(&threads[i], NULL, signer_thread, &args[i]), 0);
        }
        for (unsigned i = 0; i < ELEMENTSOF(threads); i++) {
                assert_int_equal(pthread_join(threads[i], NULL), 0);
                assert_int_equal(args[i].failures, 0);
        }
}

/* The largest accepted token is exactly JWT_MAX_TOKEN bytes. */
static void test_size_limit(void **state) {
        struct jwt_verify_options opts = { .now = NOW, .leeway = LEEWAY };
        bool seen_max = false, seen_over = false;
        char pad[JWT_MAX_TOKEN];

        for (size_t n = 5950; n < 6200 && !(seen_max && seen_over); n++) {
                _cleanup_free_ char *token = NULL;
                json_t *claims;

                memset(pad, 'p', n);
                pad[n] = 0;
                claims = json_pack("{s:I,s:s}", "exp", (json_int_t) NOW + 60, "pad", pad);
                assert_non_null(claims);
                _cleanup_free_ char *header = strdup("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}");
                _cleanup_free_ char *payload = json_dumps(claims, JSON_COMPACT);
                json_decref(claims);
                assert_int_equal(jwt_sign_compact(rfc_sk, header, strlen(header), payload, strlen(payload), &token), 0);

                size_t len = strlen(token);
                int r = jwt_verify(keyset, token, len, &opts, NULL);
                if (len <= JWT_MAX_TOKEN)
                        assert_int_equal(r, JWT_OK);
                else
                        assert_int_equal(r, JWT_ERR_TOO_LARGE);
                seen_max |= len == JWT_MAX_TOKEN;
                seen_over |= len == JWT_MAX_TOKEN + 1 || len == JWT_MAX_TOKEN + 2;
        }
        assert_true(seen_max);
        assert_true(seen_over);
}

static void test_keyset_parse(void **state) {
        struct jwt_keyset *ks = (struct jwt_keyset *) 0x1;
        char doc[1024];

        /* An RSA key and an encryption key are skipped; a kid-less key gets
         * its thumbprint. */
        snprintf(doc, sizeof(doc),
                 "{\"keys\":["
                 "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"r\"},"
                 "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" RFC_X "\"},"
                 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"use\":\"enc\",\"kid\":\"e\"},"
                 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"alg\":\"ES256\",\"kid\":\"f\"},"
                 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\"},"
                 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"kid\":\"named\",\"use\":\"sig\",\"alg\":\"Ed25519\"}"
                 "]}");
        assert_int_equal(jwt_keyset_parse(doc, strlen(doc), &ks), JWT_OK);
        assert_int_equal(jwt_keyset_size(ks), 2);

        /* The thumbprint kid makes tokens from jwt_sign() verify. */
        _cleanup_free_ char *token = NULL;
        json_t *claims = json_pack("{s:I}", "exp", (json_int_t) NOW + 60);
        assert_int_equal(jwt_sign(rfc_sk, RFC_KID, "EdDSA", claims, &token), 0);
        json_decref(claims);
        struct jwt_verify_options opts = { .now = NOW, .leeway = LEEWAY };
        assert_int_equal(jwt_verify(ks, token, strlen(token), &opts, NULL), JWT_OK);
        jwt_keyset_free(ks);
        ks = (struct jwt_keyset *) 0x1;

        static const char *const bad[] = {
                "",
                "[]",
                "{}",
                "{\"keys\":{}}",
                "{\"keys\":[]}x",
                "{\"keys\":[],\"keys\":[]}",
                "{\"keys\":[1]}",
                "{\"keys\":[{\"crv\":\"Ed25519\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":5}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"kid\":7}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"kid\":\"\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"use\":1}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\",\"d\":\"" RFC_D "\"}]}",
                /* the same kid twice */
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\"},"
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\"}]}",
                /* small-order points: the identity and (0, -1)-ish y = 0 */
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = jwt_keyset_parse(bad[i], strlen(bad[i]), &ks);
                if (r != JWT_ERR_KEYSET)
                        print_error("keyset %zu: got %d\n", i, r);
                assert_int_equal(r, JWT_ERR_KEYSET);
                assert_ptr_equal(ks, (struct jwt_keyset *) 0x1);
        }

        /* An empty set is valid; it verifies nothing. */
        assert_int_equal(jwt_keyset_parse("{\"keys\":[]}", 11, &ks), JWT_OK);
        assert_int_equal(jwt_keyset_size(ks), 0);
        assert_int_equal(jwt_verify(ks, token, strlen(token), &opts, NULL), JWT_ERR_KID);
        jwt_keyset_free(ks);
        jwt_keyset_free(NULL);
}

static void test_strerror(void **state) {
        for (int i = 0; i < _JWT_ERROR_MAX; i++) {
                const char *s = jwt_strerror(i);
                assert_non_null(s);
                assert_true(strlen(s) > 5);
                assert_null(strchr(s, '\n'));
                for (int j = 0; j < i; j++)
                        assert_string_not_equal(s, jwt_strerror(j));
        }
        assert_non_null(jwt_strerror(-1));
        assert_non_null(jwt_strerror(_JWT_ERROR_MAX));
}

/* ---- the table of hostile tokens ---- */

enum signer {
        SIG_KEY,        /* the RFC key, in the set */
        SIG_ROGUE,      /* a key not in the set */
        SIG_HS256,      /* HMAC-SHA256 with the public key bytes as secret */
        SIG_RS256,      /* 256 bytes of noise, the size of an RSA-2048 signature */
        SIG_EMPTY,      /* "h.p." */
        SIG_63,         /* a valid signature, one byte short */
        SIG_65,         /* a valid signature and one byte more */
};

enum mutation {
        MUT_NONE,
        MUT_PAD,            /* "==" after the signature */
        MUT_PLUS,           /* a '+' in the signature */
        MUT_SLASH,          /* a '/' in the payload segment */
        MUT_TRAILING_BITS,  /* last signature char with non-zero unused bits */
        MUT_SPACE,          /* a space inside the payload segment */
        MUT_NEWLINE,        /* "\n" at the end */
        MUT_TWO_SEGMENTS,   /* signature dropped with its dot */
        MUT_FOUR_SEGMENTS,  /* ".AAAA" appended */
        MUT_TRAILING_DOT,
        MUT_EMPTY_HEADER,
        MUT_EMPTY_PAYLOAD,
        MUT_ONLY_DOTS,      /* ".." */
        MUT_EMPTY,          /* "" */
        MUT_S_PLUS_L,       /* S replaced by S + L */
        MUT_FLIP_BIT,       /* one bit of the signature flipped */
        MUT_SWAP_PAYLOAD,   /* payload replaced after signing */
        MUT_HUGE,           /* a 9 KiB payload */
};

#define HDR_START "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\""
#define HDR HDR_START "}"
#define CLAIMS_REST "\"iss\":\"latch\",\"sub\":\"alice\",\"aud\":\"svc\",\"iat\":1699999900,\"nbf\":1699999900,\"jti\":\"j\",\"sid\":\"h\""
#define PAYLOAD_EXP(exp) "{" CLAIMS_REST ",\"exp\":" #exp "}"
#define PAYLOAD "{" CLAIMS_REST ",\"exp\":1700000300}"
#define PAYLOAD_WITH(extra) "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\"," extra "}"

struct hostile {
        const char *name;
        const char *header;
        const char *payload;
        enum signer signer;
        enum mutation mutation;
        int expected;
        bool unchecked_aud_iss; /* verify without audience and issuer */
};

static const struct hostile hostile_tokens[] = {
        /* Valid tokens must pass. */
        { "valid EdDSA", HDR, PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },
        { "valid Ed25519", "{\"alg\":\"Ed25519\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },
        { "valid without typ", "{\"kid\":\"" RFC_KID "\",\"alg\":\"EdDSA\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },
        { "valid, unknown header parameter", HDR_START ",\"cty\":\"x\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },
        { "valid, JSON whitespace inside", "{ \"alg\" : \"EdDSA\", \"kid\":\"" RFC_KID "\" }", PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },
        { "valid, aud array holding it", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":[\"x\",\"svc\"]}", SIG_KEY, MUT_NONE, JWT_OK },
        { "expired but within leeway", HDR, PAYLOAD_EXP(1699999990), SIG_KEY, MUT_NONE, JWT_OK },
        { "expired one second inside leeway", HDR, PAYLOAD_EXP(1699999971), SIG_KEY, MUT_NONE, JWT_OK },
        { "nbf ahead but within leeway", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\",\"nbf\":1700000030}", SIG_KEY, MUT_NONE, JWT_OK },
        { "iat ahead but within leeway", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\",\"iat\":1700000030}", SIG_KEY, MUT_NONE, JWT_OK },
        { "valid, only exp, aud/iss unchecked", HDR, "{\"exp\":1700000300}", SIG_KEY, MUT_NONE, JWT_OK, true },
        { "valid, exp INT64_MAX", HDR, "{\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}", SIG_KEY, MUT_NONE, JWT_OK, true },
        { "valid, the other key of the set", NULL, PAYLOAD, SIG_KEY, MUT_NONE, JWT_OK },

        /* alg */
        { "alg none, empty signature", "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_EMPTY, MUT_NONE, JWT_ERR_FORMAT },
        { "alg none, with signature", "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg None", "{\"alg\":\"None\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg NONE", "{\"alg\":\"NONE\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg HS256 keyed with the public key", "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_HS256, MUT_NONE, JWT_ERR_ALG },
        { "alg RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_RS256, MUT_NONE, JWT_ERR_ALG },
        { "alg missing", "{\"typ\":\"JWT\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg a number", "{\"alg\":1,\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg lower case", "{\"alg\":\"eddsa\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg ED25519", "{\"alg\":\"ED25519\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_ALG },
        { "alg with a NUL", "{\"alg\":\"EdDSA\\u0000\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },

        /* kid and keys named or embedded by the token */
        { "kid unknown", "{\"alg\":\"EdDSA\",\"kid\":\"nope\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_KID },
        { "kid missing", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_KID },
        { "kid a number", "{\"alg\":\"EdDSA\",\"kid\":43}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_KID },
        { "kid a prefix of a known one", "{\"alg\":\"EdDSA\",\"kid\":\"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_KID },
        { "embedded jwk", HDR_START ",\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC_X "\"}}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "jku", HDR_START ",\"jku\":\"https://evil.example/jwks.json\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "x5u", HDR_START ",\"x5u\":\"https://evil.example/cert.pem\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "x5c", HDR_START ",\"x5c\":[\"MIIB\"]}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "x5t", HDR_START ",\"x5t\":\"abc\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "x5t#S256", HDR_START ",\"x5t#S256\":\"abc\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_EMBEDDED_KEY },
        { "crit", HDR_START ",\"crit\":[\"exp\"],\"exp\":1}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_CRIT },
        { "crit b64", HDR_START ",\"b64\":false,\"crit\":[\"b64\"]}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_CRIT },
        { "crit empty", HDR_START ",\"crit\":[]}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_CRIT },
        { "typ at+jwt", "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_TYP },
        { "typ a number", "{\"alg\":\"EdDSA\",\"typ\":1,\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_TYP },
        { "typ lower case", "{\"alg\":\"EdDSA\",\"typ\":\"jwt\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_TYP },

        /* header shape */
        { "header an array", "[\"alg\",\"EdDSA\"]", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header a number", "1", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header not JSON", "alg=EdDSA", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header with trailing garbage", HDR "x", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header duplicate alg", "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"" RFC_KID "\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header duplicate kid", HDR_START ",\"kid\":\"nope\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },
        { "header invalid UTF-8", "{\"alg\":\"EdDSA\",\"kid\":\"" RFC_KID "\",\"x\":\"\xff\"}", PAYLOAD, SIG_KEY, MUT_NONE, JWT_ERR_HEADER },

        /* signature */
        { "signed by a key not in the set, known kid", HDR, PAYLOAD, SIG_ROGUE, MUT_NONE, JWT_ERR_SIGNATURE },
        { "signature S + L", HDR, PAYLOAD, SIG_KEY, MUT_S_PLUS_L, JWT_ERR_SIGNATURE },
        { "signature of 63 bytes", HDR, PAYLOAD, SIG_63, MUT_NONE, JWT_ERR_SIGNATURE },
        { "signature of 65 bytes", HDR, PAYLOAD, SIG_65, MUT_NONE, JWT_ERR_SIGNATURE },
        { "signature bit flipped", HDR, PAYLOAD, SIG_KEY, MUT_FLIP_BIT, JWT_ERR_SIGNATURE },
        { "payload swapped after signing", HDR, PAYLOAD, SIG_KEY, MUT_SWAP_PAYLOAD, JWT_ERR_SIGNATURE },

        /* base64url and segments */
        { "padded base64url", HDR, PAYLOAD, SIG_KEY, MUT_PAD, JWT_ERR_FORMAT },
        { "'+' in a segment", HDR, PAYLOAD, SIG_KEY, MUT_PLUS, JWT_ERR_FORMAT },
        { "'/' in a segment", HDR, PAYLOAD, SIG_KEY, MUT_SLASH, JWT_ERR_FORMAT },
        { "non-zero trailing bits", HDR, PAYLOAD, SIG_KEY, MUT_TRAILING_BITS, JWT_ERR_FORMAT },
        { "whitespace in a segment", HDR, PAYLOAD, SIG_KEY, MUT_SPACE, JWT_ERR_FORMAT },
        { "trailing newline", HDR, PAYLOAD, SIG_KEY, MUT_NEWLINE, JWT_ERR_FORMAT },
        { "two segments", HDR, PAYLOAD, SIG_KEY, MUT_TWO_SEGMENTS, JWT_ERR_FORMAT },
        { "four segments", HDR, PAYLOAD, SIG_KEY, MUT_FOUR_SEGMENTS, JWT_ERR_FORMAT },
        { "trailing dot", HDR, PAYLOAD, SIG_KEY, MUT_TRAILING_DOT, JWT_ERR_FORMAT },
        { "empty header segment", HDR, PAYLOAD, SIG_KEY, MUT_EMPTY_HEADER, JWT_ERR_FORMAT },
        { "empty payload segment", HDR, PAYLOAD, SIG_KEY, MUT_EMPTY_PAYLOAD, JWT_ERR_FORMAT },
        { "only dots", HDR, PAYLOAD, SIG_KEY, MUT_ONLY_DOTS, JWT_ERR_FORMAT },
        { "empty token", HDR, PAYLOAD, SIG_KEY, MUT_EMPTY, JWT_ERR_FORMAT },
        { "9 KiB token", HDR, PAYLOAD, SIG_KEY, MUT_HUGE, JWT_ERR_TOO_LARGE },

        /* payload shape */
        { "payload a string", HDR, "\"hello\"", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload an array", HDR, "[1700000300]", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload with trailing garbage", HDR, PAYLOAD "x", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload with a second object", HDR, PAYLOAD "{}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload with trailing whitespace", HDR, PAYLOAD " ", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload duplicate member", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\",\"sub\":\"alice\",\"sub\":\"root\"}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload duplicate exp", HDR, "{\"exp\":1,\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\"}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload invalid UTF-8", HDR, PAYLOAD_WITH("\"sub\":\"al\xffice\""), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload overlong UTF-8", HDR, PAYLOAD_WITH("\"sub\":\"\xc0\xaf\""), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "payload escaped NUL", HDR, PAYLOAD_WITH("\"sub\":\"alice\\u0000root\""), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },

        /* claims */
        { "expired", HDR, PAYLOAD_EXP(1699999900), SIG_KEY, MUT_NONE, JWT_ERR_EXPIRED },
        { "expired exactly at the leeway", HDR, PAYLOAD_EXP(1699999970), SIG_KEY, MUT_NONE, JWT_ERR_EXPIRED },
        { "exp missing", HDR, "{" CLAIMS_REST "}", SIG_KEY, MUT_NONE, JWT_ERR_EXPIRED },
        { "exp a string", HDR, PAYLOAD_EXP("1700000300"), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "exp a float", HDR, PAYLOAD_EXP(1700000300.0), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "exp with an exponent", HDR, PAYLOAD_EXP(17e8), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "exp null", HDR, PAYLOAD_EXP(null), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "exp beyond int64", HDR, PAYLOAD_EXP(99999999999999999999), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "nbf in the future", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\",\"nbf\":1700000031}", SIG_KEY, MUT_NONE, JWT_ERR_NOT_YET_VALID },
        { "iat in the future", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"svc\",\"iat\":1700000100}", SIG_KEY, MUT_NONE, JWT_ERR_NOT_YET_VALID },
        { "nbf a string", HDR, PAYLOAD_WITH("\"nbf\":\"0\""), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "iat a float", HDR, PAYLOAD_WITH("\"iat\":1.5"), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "wrong aud", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":\"other\"}", SIG_KEY, MUT_NONE, JWT_ERR_AUDIENCE },
        { "aud array without it", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":[\"a\",\"svcx\"]}", SIG_KEY, MUT_NONE, JWT_ERR_AUDIENCE },
        { "aud empty array", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":[]}", SIG_KEY, MUT_NONE, JWT_ERR_AUDIENCE },
        { "aud missing", HDR, "{\"exp\":1700000300,\"iss\":\"latch\"}", SIG_KEY, MUT_NONE, JWT_ERR_AUDIENCE },
        { "aud a number", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":1}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "aud array with a number", HDR, "{\"exp\":1700000300,\"iss\":\"latch\",\"aud\":[\"svc\",1]}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "wrong iss", HDR, "{\"exp\":1700000300,\"iss\":\"latchx\",\"aud\":\"svc\"}", SIG_KEY, MUT_NONE, JWT_ERR_ISSUER },
        { "iss missing", HDR, "{\"exp\":1700000300,\"aud\":\"svc\"}", SIG_KEY, MUT_NONE, JWT_ERR_ISSUER },
        { "iss a number", HDR, "{\"exp\":1700000300,\"iss\":1,\"aud\":\"svc\"}", SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "sub a number", HDR, PAYLOAD_WITH("\"sub\":1000"), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "jti an object", HDR, PAYLOAD_WITH("\"jti\":{}"), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
        { "sid an array", HDR, PAYLOAD_WITH("\"sid\":[\"h\"]"), SIG_KEY, MUT_NONE, JWT_ERR_PAYLOAD },
};

static char *join3(const char *a, const char *b, const char *c) {
        size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
        char *s = malloc(la + lb + lc + 3);

        assert_non_null(s);
        memcpy(s, a, la);
        s[la] = '.';
        memcpy(s + la + 1, b, lb);
        s[la + 1 + lb] = '.';
        memcpy(s + la + lb + 2, c, lc + 1);
        return s;
}

static char *forge(const char *header, const char *payload, enum signer signer, const uint8_t *sk) {
        _cleanup_free_ char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
        _cleanup_free_ char *input = NULL, *s = NULL;
        uint8_t sig[256];
        size_t n = 0;

        assert_true(asprintf(&input, "%s.%s", h, p) >= 0);
        switch (signer) {
        case SIG_KEY:
        case SIG_63:
        case SIG_65:
                crypto_sign_detached(sig, NULL, (uint8_t *) input, strlen(input), sk);
                n = signer == SIG_KEY ? 64 : signer == SIG_63 ? 63 : 65;
                sig[64] = 0;
                break;
        case SIG_ROGUE:
                crypto_sign_detached(sig, NULL, (uint8_t *) input, strlen(input), rogue_sk);
                n = 64;
                break;
        case SIG_HS256: {
                crypto_auth_hmacsha256_state st;
                crypto_auth_hmacsha256_init(&st, rfc_pk, sizeof(rfc_pk));
                crypto_auth_hmacsha256_update(&st, (uint8_t *) input, strlen(input));
                crypto_auth_hmacsha256_final(&st, sig);
                n = crypto_auth_hmacsha256_BYTES;
                break;
        }
        case SIG_RS256:
                randombytes_buf(sig, 256);
                n = 256;
                break;
        case SIG_EMPTY:
                n = 0;
                break;
        }
        s = b64(sig, n);
        return join3(h, p, s);
}

/* Adds L, the order of the base point, to S (little-endian). */
static void add_l(uint8_t s[32]) {
        static const uint8_t L[32] = {
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        };
        unsigned carry = 0;
        for (int i = 0; i < 32; i++) {
                unsigned v = s[i] + L[i] + carry;
                s[i] = (uint8_t) v;
                carry = v >> 8;
        }
        assert_int_equal(carry, 0);
}

static char *build(const struct hostile *t) {
        const uint8_t *sk = t->header ? rfc_sk : other_sk;
        const char *header = t->header;
        _cleanup_free_ char *other_header = NULL, *huge = NULL;
        char *token, *dot1, *dot2, *s;

        if (!header) {
                char kid[JWT_KID_LEN + 1];
                jwt_thumbprint(other_pk, kid);
                assert_true(asprintf(&other_header, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid) >= 0);
                header = other_header;
        }
        if (t->mutation == MUT_HUGE) {
                huge = malloc(9 * 1024);
                assert_non_null(huge);
                memset(huge, 'x', 9 * 1024);
                static const char start[] = "{\"exp\":1700000300,\"pad\":\"";
                memcpy(huge, start, strlen(start));
                strcpy(huge + 9 * 1024 - 3, "\"}");
        }

        token = forge(header, huge ? huge : t->payload, t->signer, sk);
        dot1 = strchr(token, '.');
        dot2 = strchr(dot1 + 1, '.');
        s = dot2 + 1;

        switch (t->mutation) {
        case MUT_NONE:
        case MUT_HUGE:
                return token;
        case MUT_PAD: {
                char *r;
                assert_true(asprintf(&r, "%s==", token) >= 0);
                free(token);
                return r;
        }
        case MUT_PLUS:
                s[10] = '+';
                return token;
        case MUT_SLASH:
                dot1[5] = '/';
                return token;
        case MUT_TRAILING_BITS: {
                /* 64 bytes leave 4 unused bits in the 86th character. */
                static const char alphabet[] =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                char *last = s + strlen(s) - 1;
                size_t v = (size_t) (strchr(alphabet, *last) - alphabet);
                assert_int_equal(strlen(s), 86);
                assert_int_equal(v & 15, 0);
                *last = alphabet[v | 1];
                return token;
        }
        case MUT_SPACE: {
                char *r;
                assert_true(asprintf(&r, "%.*s %s", (int) (dot1 + 4 - token), token, dot1 + 4) >= 0);
                free(token);
                return r;
        }
        case MUT_NEWLINE:
        case MUT_FOUR_SEGMENTS:
        case MUT_TRAILING_DOT: {
                char *r;
                assert_true(asprintf(&r, "%s%s", token,
                                     t->mutation == MUT_NEWLINE ? "\n" :
                                     t->mutation == MUT_FOUR_SEGMENTS ? ".AAAA" : ".") >= 0);
                free(token);
                return r;
        }
        case MUT_TWO_SEGMENTS:
                *dot2 = 0;
                return token;
        case MUT_EMPTY_HEADER:
                memmove(token, dot1, strlen(dot1) + 1);
                return token;
        case MUT_EMPTY_PAYLOAD:
                memmove(dot1 + 1, dot2, strlen(dot2) + 1);
                return token;
        case MUT_ONLY_DOTS:
                strcpy(token, "..");
                return token;
        case MUT_EMPTY:
                token[0] = 0;
                return token;
        case MUT_S_PLUS_L:
        case MUT_FLIP_BIT: {
                uint8_t sig[64];
                size_t n;
                assert_int_equal(b64url_decode(s, strlen(s), sig, sizeof(sig), &n), 0);
                assert_int_equal(n, 64);
                if (t->mutation == MUT_S_PLUS_L)
                        add_l(sig + 32);
                else
                        sig[7] ^= 0x10;
                assert_int_equal(b64url_encode(sig, 64, s, 87), 0);
                return token;
        }
        case MUT_SWAP_PAYLOAD: {
                _cleanup_free_ char *p = b64(PAYLOAD_WITH("\"sub\":\"root\""), strlen(PAYLOAD_WITH("\"sub\":\"root\"")));
                char *r;
                *dot1 = 0;
                assert_true(asprintf(&r, "%s.%s.%s", token, p, s) >= 0);
                free(token);
                return r;
        }
        }
        fail();
        return NULL;
}

static void test_hostile_tokens(void **state) {
        unsigned failures = 0, valid = 0;

        assert_true(ELEMENTSOF(hostile_tokens) >= 40);

        for (size_t i = 0; i < ELEMENTSOF(hostile_tokens); i++) {
                const struct hostile *t = &hostile_tokens[i];
                struct jwt_verify_options opts = {
                        .now = NOW,
                        .leeway = LEEWAY,
                        .audience = t->unchecked_aud_iss ? NULL : "svc",
                        .issuer = t->unchecked_aud_iss ? NULL : "latch",
                };
                json_t *sentinel = json_object(), *claims = sentinel;
                _cleanup_free_ char *token = build(t);
                int r;

                r = jwt_verify(keyset, token, strlen(token), &opts, &claims);
                if (r != t->expected) {
                        print_error("%s: got %d (%s), expected %d (%s)\n", t->name,
                                    r, jwt_strerror(r), t->expected, jwt_strerror(t->expected));
                        failures++;
                }
                if (r == JWT_OK) {
                        assert_ptr_not_equal(claims, sentinel);
                        assert_true(json_is_object(claims));
                        json_decref(claims);
                        valid++;
                } else
                        assert_ptr_equal(claims, sentinel); /* untouched on failure */
                json_decref(sentinel);
        }
        assert_int_equal(failures, 0);
        assert_true(valid >= 10);
}

/* b64url_decode() is a table decoder: it must accept and give exactly what
 * libsodium's strict decoder does for every ASCII string tried, and refuse
 * every string with a byte over 0x7f. */
static void test_b64url_against_libsodium(void **state) {
        static const char chars[] = "AQgw_-Zaz09+/= .\n\x80";
        uint32_t seed = 1;

        for (unsigned round = 0; round < 200000; round++) {
                char in[16];
                uint8_t a[16], b[16];
                size_t len = round % 14, na = 0, nb = 0, cap = sizeof a;
                for (size_t i = 0; i < len; i++) {
                        seed = seed * 1103515245 + 12345;
                        /* Mostly the alphabet, sometimes a character it refuses. */
                        in[i] = (seed >> 16) % 8 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(seed >> 8) % 64]
                                                  : chars[(seed >> 8) % (sizeof chars - 1)];
                }
                int ra = b64url_decode(in, len, a, cap, &na);
                if (memchr(in, '\x80', len)) {
                        /* libsodium 1.0.18 takes bytes over 0x7f for letters
                         * ("HCNG_tL\x80" gives 6 bytes): a second spelling of
                         * the same bytes, which the canonical form excludes. */
                        assert_int_not_equal(ra, 0);
                        continue;
                }
                int rb = sodium_base642bin(b, cap, in, len, NULL, &nb, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
                if ((ra == 0) != (rb == 0))
                        fail_msg("'%.*s' (cap %zu): table %d, libsodium %d", (int) len, in, cap, ra, rb);
                if (ra == 0 && (na != nb || memcmp(a, b, na) != 0))
                        fail_msg("'%.*s': different bytes", (int) len, in);
                /* Without room for every byte: refused. */
                if (ra == 0 && na > 0)
                        assert_int_not_equal(b64url_decode(in, len, a, na - 1, &na), 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc8037),
                cmocka_unit_test(test_b64url),
                cmocka_unit_test(test_b64url_against_libsodium),
                cmocka_unit_test(test_sign_verify),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_keyset_parse),
                cmocka_unit_test(test_strerror),
                cmocka_unit_test(test_hostile_tokens),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
