/* SPDX-License-Identifier: MIT */
/* The session cookie: Set-Cookie values and Cookie header parsing. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "latch/latch.h"

#define SID "AbC-123_xyz"
#define NOW 1700000000

static void check_build(const char *name, const char *same_site, const char *domain, int64_t expires_at,
                        const char *expected) {
        char *v = NULL;
        assert_int_equal(latch_cookie_build(SID, expires_at, NOW, name, same_site, domain, &v), LATCH_OK);
        assert_string_equal(v, expected);
        latch_secret_free(v);
}

static void check_build_fails(const char *session, const char *name, const char *same_site, const char *domain) {
        char *v = NULL;
        assert_int_equal(latch_cookie_build(session, NOW + 60, NOW, name, same_site, domain, &v),
                         LATCH_ERR_INVALID_ARGUMENT);
        assert_null(v);
}

static void check_parse(const char *header, const char *name, const char *expected) {
        char *s = NULL;
        int r = latch_cookie_parse(header, name, &s);
        if (!expected) {
                assert_int_equal(r, LATCH_ERR_INVALID_SESSION);
                assert_null(s);
                return;
        }
        assert_int_equal(r, LATCH_OK);
        assert_string_equal(s, expected);
        latch_secret_free(s);
}

static void test_build_default(void **state) {
        check_build(NULL, NULL, NULL, NOW + 3600,
                    "__Host-latch=" SID "; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax");
}

static void test_build_same_site(void **state) {
        check_build(NULL, "strict", NULL, NOW + 1, "__Host-latch=" SID "; Max-Age=1; Path=/; Secure; HttpOnly; SameSite=Strict");
        check_build(NULL, "NONE", NULL, NOW + 1, "__Host-latch=" SID "; Max-Age=1; Path=/; Secure; HttpOnly; SameSite=None");
        check_build_fails(SID, NULL, "sometimes", NULL);
        check_build_fails(SID, NULL, "", NULL);
}

static void test_build_name_and_domain(void **state) {
        check_build("sid", NULL, "example.org", NOW + 10,
                    "sid=" SID "; Max-Age=10; Path=/; Secure; HttpOnly; SameSite=Lax; Domain=example.org");
        check_build("sid", "Strict", NULL, NOW + 10, "sid=" SID "; Max-Age=10; Path=/; Secure; HttpOnly; SameSite=Strict");
        /* A __Host- cookie may not carry Domain. */
        check_build_fails(SID, NULL, NULL, "example.org");
        check_build_fails(SID, "__Host-x", NULL, "example.org");
        check_build_fails(SID, "sid", NULL, "exa mple.org");
        check_build_fails(SID, "sid", NULL, "example.org; Secure");
        check_build_fails(SID, "sid", NULL, "");
}

static void test_build_bad_name(void **state) {
        check_build_fails(SID, "", NULL, NULL);
        check_build_fails(SID, "a b", NULL, NULL);
        check_build_fails(SID, "a=b", NULL, NULL);
        check_build_fails(SID, "a;b", NULL, NULL);
        check_build_fails(SID, "na\xc3\xafve", NULL, NULL);
}

static void test_build_bad_session(void **state) {
        check_build_fails("", NULL, NULL, NULL);
        check_build_fails("abc;def", NULL, NULL, NULL);
        check_build_fails("abc def", NULL, NULL, NULL);
        check_build_fails("abc=", NULL, NULL, NULL);     /* padding is not base64url here */
        check_build_fails("ab+/cd", NULL, NULL, NULL);   /* standard base64 */
        check_build_fails("abc\r\nSet-Cookie: x=y", NULL, NULL, NULL);
        check_build_fails(NULL, NULL, NULL, NULL);

        char *long_sid = malloc(514);
        assert_non_null(long_sid);
        memset(long_sid, 'a', 513);
        long_sid[513] = '\0';
        check_build_fails(long_sid, NULL, NULL, NULL);
        free(long_sid);

        assert_int_equal(latch_cookie_build(SID, NOW, NOW, NULL, NULL, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
}

static void test_build_expired(void **state) {
        check_build(NULL, NULL, NULL, NOW - 100, "__Host-latch=" SID "; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax");
        check_build(NULL, NULL, NULL, NOW, "__Host-latch=" SID "; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax");
}

static void test_build_now_zero(void **state) {
        char *v = NULL;
        /* now = 0: the current time, so a far expiry gives a large Max-Age. */
        assert_int_equal(latch_cookie_build(SID, INT64_C(4000000000), 0, NULL, NULL, NULL, &v), LATCH_OK);
        const char *m = strstr(v, "Max-Age=");
        assert_non_null(m);
        long long age = atoll(m + 8);
        assert_true(age > 0 && age < INT64_C(4000000000) - NOW);
        latch_secret_free(v);
}

static void test_build_clear(void **state) {
        char *v = NULL;
        assert_int_equal(latch_cookie_build_clear(NULL, NULL, NULL, &v), LATCH_OK);
        assert_string_equal(v, "__Host-latch=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax");
        free(v);
        assert_int_equal(latch_cookie_build_clear("sid", "strict", "example.org", &v), LATCH_OK);
        assert_string_equal(v, "sid=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict; Domain=example.org");
        free(v);
        v = NULL;
        assert_int_equal(latch_cookie_build_clear(NULL, NULL, "example.org", &v), LATCH_ERR_INVALID_ARGUMENT);
        assert_null(v);
}

static void test_parse_simple(void **state) {
        check_parse("__Host-latch=" SID, NULL, SID);
        check_parse("a=1; __Host-latch=" SID "; b=2", NULL, SID);
        check_parse("a=1;__Host-latch=" SID, NULL, SID);
}

static void test_parse_spaces(void **state) {
        check_parse("  __Host-latch = " SID "  ;other=x", NULL, SID);
        check_parse("a=1;\t__Host-latch=\t" SID "\t", NULL, SID);
}

static void test_parse_quoted(void **state) {
        check_parse("__Host-latch=\"" SID "\"", NULL, SID);
        check_parse("__Host-latch=\"" SID, NULL, NULL);     /* unbalanced quote */
        check_parse("__Host-latch=\"\"", NULL, NULL);       /* empty */
}

static void test_parse_duplicates(void **state) {
        /* The first well-formed one wins... */
        check_parse("__Host-latch=first; __Host-latch=second", NULL, "first");
        /* ... and malformed ones are skipped. */
        check_parse("__Host-latch=bad!value; __Host-latch=second", NULL, "second");
        check_parse("__Host-latch=; __Host-latch=second", NULL, "second");
}

static void test_parse_names(void **state) {
        /* Names compare exactly: no prefix, suffix or case match. */
        check_parse("x__Host-latch=nope; __Host-latchy=nope2", NULL, NULL);
        check_parse("__host-latch=nope", NULL, NULL);
        check_parse("sid=abc; __Host-latch=def", "sid", "abc");
        check_parse("a=b", "sid", NULL);
        /* A name-less pair or a pair without '=' does not confuse it. */
        check_parse("=x; novalue; sid=ok", "sid", "ok");
        /* The value may not be a path to another cookie. */
        check_parse("sid=a=b", "sid", NULL);
}

static void test_parse_bad_values(void **state) {
        check_parse("__Host-latch=abc def", NULL, NULL);
        check_parse("__Host-latch=abc+def", NULL, NULL);
        check_parse("__Host-latch=abc%2Fdef", NULL, NULL);
        check_parse("__Host-latch=\xc3\xa9t\xc3\xa9", NULL, NULL);
}

static void test_parse_missing(void **state) {
        char *s = NULL;
        check_parse("", NULL, NULL);
        check_parse(";;;", NULL, NULL);
        assert_int_equal(latch_cookie_parse(NULL, NULL, &s), LATCH_ERR_INVALID_SESSION);
        assert_int_equal(latch_cookie_parse("a=b", NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_cookie_parse("a=b", "bad name", &s), LATCH_ERR_INVALID_ARGUMENT);
        assert_null(s);
}

static void test_round_trip(void **state) {
        char *v = NULL, *s = NULL;
        assert_int_equal(latch_cookie_build(SID, NOW + 60, NOW, "app_sid", NULL, NULL, &v), LATCH_OK);
        /* The browser sends back the name=value part. */
        *strchr(v, ';') = '\0';
        assert_int_equal(latch_cookie_parse(v, "app_sid", &s), LATCH_OK);
        assert_string_equal(s, SID);
        latch_secret_free(v);
        latch_secret_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build_default),
                cmocka_unit_test(test_build_same_site),
                cmocka_unit_test(test_build_name_and_domain),
                cmocka_unit_test(test_build_bad_name),
                cmocka_unit_test(test_build_bad_session),
                cmocka_unit_test(test_build_expired),
                cmocka_unit_test(test_build_now_zero),
                cmocka_unit_test(test_build_clear),
                cmocka_unit_test(test_parse_simple),
                cmocka_unit_test(test_parse_spaces),
                cmocka_unit_test(test_parse_quoted),
                cmocka_unit_test(test_parse_duplicates),
                cmocka_unit_test(test_parse_names),
                cmocka_unit_test(test_parse_bad_values),
                cmocka_unit_test(test_parse_missing),
                cmocka_unit_test(test_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
