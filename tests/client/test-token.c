/* SPDX-License-Identifier: MIT */
/* Offline token verification through liblatch (latch_jwks_*,
 * latch_token_verify), with tokens signed by common/jwt.c as latchd signs
 * them. */

#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jwt.h"
#include "latch/latch.h"

#define NOW 1700000000

static uint8_t pk[32], sk[64], other_pk[32], other_sk[64];
static char kid[JWT_KID_LEN + 1], other_kid[JWT_KID_LEN + 1];

static char *jwks_for(const uint8_t key[32], const char *k) {
        char x[64];
        assert_int_equal(b64url_encode(key, 32, x, sizeof(x)), 0);
        char *s = NULL;
        assert_true(asprintf(&s,
                             "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"rsa\"},"
                             "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"%s\",\"use\":\"sig\","
                             "\"alg\":\"EdDSA\"}]}",
                             x, k) > 0);
        return s;
}

static char *sign(const uint8_t key[64], const char *k, int64_t exp, const char *aud) {
        json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s}", "iss", "latch", "sub", "alice", "aud", aud,
                                   "iat", (json_int_t) NOW - 10, "nbf", (json_int_t) NOW - 10, "exp",
                                   (json_int_t) exp, "jti", "j1", "sid", "h1");
        assert_non_null(claims);
        char *token = NULL;
        assert_int_equal(jwt_sign(key, k, "EdDSA", claims, &token), 0);
        json_decref(claims);
        return token;
}

static int setup(void **state) {
        if (sodium_init() < 0)
                return -1;
        crypto_sign_keypair(pk, sk);
        crypto_sign_keypair(other_pk, other_sk);
        jwt_thumbprint(pk, kid);
        jwt_thumbprint(other_pk, other_kid);
        return 0;
}

static latch_keyset *load(void) {
        char *jwks = jwks_for(pk, kid);
        latch_keyset *ks = NULL;
        assert_int_equal(latch_jwks_parse(jwks, strlen(jwks), &ks), LATCH_OK);
        free(jwks);
        return ks;
}

static void test_valid(void **state) {
        latch_keyset *ks = load();
        char *token = sign(sk, kid, NOW + 300, "wiki");
        char *claims = NULL, *sub = NULL;
        const char *reason = "unset";

        assert_int_equal(latch_keyset_size(ks), 1); /* the RSA key is skipped */
        assert_int_equal(latch_token_verify(ks, token, "wiki", "latch", 0, NOW, &claims, &sub, &reason), LATCH_OK);
        assert_null(reason);
        assert_string_equal(sub, "alice");
        json_t *o = json_loads(claims, 0, NULL);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "sid")), "h1");
        json_decref(o);
        free(claims);
        free(sub);

        /* Outputs are optional. */
        assert_int_equal(latch_token_verify(ks, token, NULL, NULL, 0, NOW, NULL, NULL, NULL), LATCH_OK);

        free(token);
        latch_keyset_free(ks);
}

static void check_refused(const latch_keyset *ks, const char *token, const char *aud, const char *iss, int64_t leeway,
                          int64_t now, int jwt_err) {
        char *claims = NULL, *sub = NULL;
        const char *reason = NULL;

        assert_int_equal(latch_token_verify(ks, token, aud, iss, leeway, now, &claims, &sub, &reason),
                         LATCH_ERR_INVALID_TOKEN);
        assert_null(claims);
        assert_null(sub);
        assert_string_equal(reason, jwt_strerror(jwt_err));
}

static void test_refused(void **state) {
        latch_keyset *ks = load();
        char *token = sign(sk, kid, NOW + 300, "wiki");
        char *expired = sign(sk, kid, NOW - 60, "wiki");
        char *foreign = sign(other_sk, other_kid, NOW + 300, "wiki");
        char *misnamed = sign(other_sk, kid, NOW + 300, "wiki"); /* our kid, another key */

        check_refused(ks, token, "other", NULL, 0, NOW, JWT_ERR_AUDIENCE);
        check_refused(ks, token, NULL, "someone", 0, NOW, JWT_ERR_ISSUER);
        check_refused(ks, expired, NULL, NULL, 30, NOW, JWT_ERR_EXPIRED);
        check_refused(ks, foreign, NULL, NULL, 0, NOW, JWT_ERR_KID);
        check_refused(ks, misnamed, NULL, NULL, 0, NOW, JWT_ERR_SIGNATURE);
        check_refused(ks, "not-a-token", NULL, NULL, 0, NOW, JWT_ERR_FORMAT);

        /* Within the leeway it passes. */
        assert_int_equal(latch_token_verify(ks, expired, NULL, NULL, 120, NOW, NULL, NULL, NULL), LATCH_OK);
        /* now = 0 is the real clock, long after NOW + 300. */
        check_refused(ks, token, NULL, NULL, 0, 0, JWT_ERR_EXPIRED);

        const char *reason = NULL;
        assert_int_equal(latch_token_verify(ks, token, NULL, NULL, -1, NOW, NULL, NULL, &reason),
                         LATCH_ERR_INVALID_ARGUMENT);
        assert_non_null(reason);
        assert_int_equal(latch_token_verify(NULL, token, NULL, NULL, 0, NOW, NULL, NULL, NULL),
                         LATCH_ERR_INVALID_ARGUMENT);

        free(token);
        free(expired);
        free(foreign);
        free(misnamed);
        latch_keyset_free(ks);
}

static void test_load_file(void **state) {
        char path[] = "/tmp/latch-jwks-test-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        char *jwks = jwks_for(pk, kid);
        assert_int_equal(write(fd, jwks, strlen(jwks)), (ssize_t) strlen(jwks));
        close(fd);
        free(jwks);

        latch_keyset *ks = NULL;
        assert_int_equal(latch_jwks_load_file(path, &ks), LATCH_OK);
        assert_int_equal(latch_keyset_size(ks), 1);
        char *token = sign(sk, kid, NOW + 300, "wiki");
        assert_int_equal(latch_token_verify(ks, token, "wiki", NULL, 0, NOW, NULL, NULL, NULL), LATCH_OK);
        free(token);
        latch_keyset_free(ks);
        unlink(path);

        ks = NULL;
        errno = 0;
        assert_int_equal(latch_jwks_load_file(path, &ks), LATCH_ERR_IO);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(latch_jwks_load_file("/tmp", &ks), LATCH_ERR_IO);
        assert_null(ks);
        latch_keyset_free(NULL);
        assert_int_equal(latch_keyset_size(NULL), 0);
}

static void test_bad_jwks(void **state) {
        static const char *const bad[] = {
                "",
                "[]",
                "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"tooshort\",\"kid\":\"k\"}]}",
                "{\"keys\":{}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                latch_keyset *ks = NULL;
                assert_int_equal(latch_jwks_parse(bad[i], strlen(bad[i]), &ks), LATCH_ERR_INVALID_ARGUMENT);
                assert_null(ks);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_bad_jwks),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
