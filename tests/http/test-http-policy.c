/* SPDX-License-Identifier: MIT */
/* latch-http's security decisions: redirects, origins, the client's
 * address, form decoding, escaping, and its settings file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "policy.h"
#include "secret.h"

static void test_redirect(void **state) {
        /* Paths on this site. */
        assert_true(http_redirect_is_safe("/"));
        assert_true(http_redirect_is_safe("/app/"));
        assert_true(http_redirect_is_safe("/app/page?x=1&y=%2F%2Fevil#top"));
        assert_true(http_redirect_is_safe("/a//b"));
        /* Open-redirect attempts. */
        assert_false(http_redirect_is_safe("//evil.example"));
        assert_false(http_redirect_is_safe("https://evil.example"));
        assert_false(http_redirect_is_safe("/\\evil.example"));
        /* Their relatives. */
        assert_false(http_redirect_is_safe(NULL));
        assert_false(http_redirect_is_safe(""));
        assert_false(http_redirect_is_safe("evil.example"));
        assert_false(http_redirect_is_safe("http:evil.example"));
        assert_false(http_redirect_is_safe("javascript:alert(1)"));
        assert_false(http_redirect_is_safe("///evil.example"));
        assert_false(http_redirect_is_safe("/\t/evil.example"));
        assert_false(http_redirect_is_safe("/\n/evil.example"));
        assert_false(http_redirect_is_safe("/\r\nSet-Cookie: x=1"));
        assert_false(http_redirect_is_safe("/ /evil.example"));
        assert_false(http_redirect_is_safe("/app\\..\\\\evil.example"));
        assert_false(http_redirect_is_safe("/caf\xc3\xa9"));

        char long_path[4096];
        memset(long_path, 'a', sizeof long_path - 1);
        long_path[0] = '/';
        long_path[sizeof long_path - 1] = '\0';
        assert_false(http_redirect_is_safe(long_path));
        long_path[2048] = '\0';
        assert_true(http_redirect_is_safe(long_path));
}

static void test_origin_host(void **state) {
        /* No allowed_origins: the origin's host must be the Host header. */
        assert_true(http_origin_is_allowed(NULL, 0, "http://localhost:8080", NULL, "localhost:8080", NULL));
        assert_true(http_origin_is_allowed(NULL, 0, "https://App.Example.com", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "http://localhost:8081", NULL, "localhost:8080", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "https://evil.example", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "https://app.example.com.evil.example", NULL,
                                            "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "null", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "https://app.example.com/path", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "ftp://app.example.com", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "https://x@app.example.com", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(NULL, 0, "https://app.example.com", NULL, NULL, NULL));
        /* An Origin decides even when a Referer looks fine. */
        assert_false(http_origin_is_allowed(NULL, 0, "https://evil.example", "https://app.example.com/login",
                                            "app.example.com", NULL));
        /* No Origin: the Referer's origin. */
        assert_true(http_origin_is_allowed(NULL, 0, NULL, "https://app.example.com/login?rd=/", "app.example.com",
                                           NULL));
        assert_false(http_origin_is_allowed(NULL, 0, NULL, "https://evil.example/app.example.com", "app.example.com",
                                            NULL));
        /* Neither: only a same-origin fetch. */
        assert_false(http_origin_is_allowed(NULL, 0, NULL, NULL, "app.example.com", NULL));
        assert_true(http_origin_is_allowed(NULL, 0, NULL, NULL, "app.example.com", "same-origin"));
        assert_false(http_origin_is_allowed(NULL, 0, NULL, NULL, "app.example.com", "none"));
        /* The browser's own verdict wins when it says cross-site. */
        assert_false(http_origin_is_allowed(NULL, 0, "https://app.example.com", NULL, "app.example.com",
                                            "cross-site"));
        assert_false(http_origin_is_allowed(NULL, 0, "https://app.example.com", NULL, "app.example.com",
                                            "same-site"));
}

static void test_origin_list(void **state) {
        char *allowed[] = { "https://app.example.com", "http://localhost:8080" };

        assert_true(http_origin_is_allowed(allowed, 2, "https://app.example.com", NULL, "whatever", NULL));
        assert_true(http_origin_is_allowed(allowed, 2, "http://localhost:8080", NULL, "localhost:8080", NULL));
        /* With a list the Host header does not matter, the scheme does. */
        assert_false(http_origin_is_allowed(allowed, 2, "http://app.example.com", NULL, "app.example.com", NULL));
        assert_false(http_origin_is_allowed(allowed, 2, "https://evil.example", NULL, "evil.example", NULL));
        assert_true(http_origin_is_allowed(allowed, 2, NULL, "https://app.example.com/login", "x", NULL));
        assert_false(http_origin_is_allowed(allowed, 2, NULL, "https://app.example.com.evil.example/", "x", NULL));
}

static void test_remote(void **state) {
        char buf[64];

        assert_int_equal(http_remote_from_header("203.0.113.7", buf, sizeof buf), 0);
        assert_string_equal(buf, "203.0.113.7");
        /* X-Forwarded-For: the last hop, which nginx appended. */
        assert_int_equal(http_remote_from_header("198.51.100.1, 10.0.0.2 ,  203.0.113.7 ", buf, sizeof buf), 0);
        assert_string_equal(buf, "203.0.113.7");
        assert_int_equal(http_remote_from_header("2001:db8::1", buf, sizeof buf), 0);
        assert_string_equal(buf, "2001:db8::1");
        assert_int_equal(http_remote_from_header(NULL, buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("", buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("1.2.3.4,", buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("evil\r\nx", buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("<script>", buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("1111111111222222222233333333334444444444555555555566666666667777",
                                                 buf, sizeof buf), -EINVAL);
        assert_int_equal(http_remote_from_header("203.0.113.7", buf, 5), -ENOBUFS);
}

static void test_form(void **state) {
        const char body[] = "csrf=abc&user=al%69ce+b&password=p%26ss%3Dw+rd&rd=%2Fapp%2F%3Fx%3D1&empty=&bare";
        char *v = NULL;

        assert_int_equal(http_form_get(body, strlen(body), "user", &v), 0);
        assert_string_equal(v, "alice b");
        free(v);
        assert_int_equal(http_form_get(body, strlen(body), "password", &v), 0);
        assert_string_equal(v, "p&ss=w rd");
        secret_free(v);
        assert_int_equal(http_form_get(body, strlen(body), "rd", &v), 0);
        assert_string_equal(v, "/app/?x=1");
        free(v);
        assert_int_equal(http_form_get(body, strlen(body), "empty", &v), 0);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(http_form_get(body, strlen(body), "bare", &v), 0);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(http_form_get(body, strlen(body), "missing", &v), -ENOENT);
        assert_int_equal(http_form_get(body, strlen(body), "use", &v), -ENOENT);
        /* The length bounds the body: no reading past it. */
        assert_int_equal(http_form_get(body, 8, "user", &v), -ENOENT);
        assert_int_equal(http_form_get("a=%4", 4, "a", &v), -EINVAL);
        assert_int_equal(http_form_get("a=%zz", 5, "a", &v), -EINVAL);
        assert_int_equal(http_form_get("a=x%00y", 7, "a", &v), -EINVAL);
        /* The first field of a name wins. */
        assert_int_equal(http_form_get("a=1&a=2", 7, "a", &v), 0);
        assert_string_equal(v, "1");
        free(v);
}

static void test_escape(void **state) {
        char *s = http_html_escape("<a href=\"x\">'&'</a>");
        assert_non_null(s);
        assert_string_equal(s, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        free(s);
        assert_true(http_header_value_is_safe("alice"));
        assert_true(http_header_value_is_safe("Bearer a.b.c"));
        assert_false(http_header_value_is_safe("a\r\nSet-Cookie: x"));
        assert_false(http_header_value_is_safe("a\nb"));
}

static void test_config(void **state) {
        char path[] = "/tmp/test-http-conf-XXXXXX";
        struct http_config c;
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fputs("# comment\n[http]\nservice = wiki\ncookie_name = __Host-wiki\ntoken_on_auth = yes\n"
              "proxy_header = X-Forwarded-For\nallowed_origins = https://a.example, http://localhost:8080\n", f);
        fclose(f);

        assert_int_equal(http_config_init(&c), 0);
        assert_string_equal(c.listen, "/run/latch/http.sock");
        assert_string_equal(c.cookie_name, "__Host-latch");
        assert_string_equal(c.proxy_header, "X-Real-IP");
        assert_false(c.token_on_auth);
        assert_int_equal(http_config_load(&c, path, false), 0);
        assert_string_equal(c.service, "wiki");
        assert_string_equal(c.cookie_name, "__Host-wiki");
        assert_string_equal(c.csrf_cookie_name, "__Host-wiki-csrf");
        assert_true(c.token_on_auth);
        assert_string_equal(c.proxy_header, "X-Forwarded-For");
        assert_int_equal(c.n_origins, 2);
        assert_string_equal(c.origins[1], "http://localhost:8080");

        assert_int_equal(http_config_set(&c, "proxy_header", "none"), 0);
        assert_null(c.proxy_header);
        assert_int_equal(http_config_set(&c, "cookie_name", "bad;name"), -EINVAL);
        assert_int_equal(http_config_set(&c, "allowed_origins", "https://a.example/path"), -EINVAL);
        assert_int_equal(http_config_set(&c, "token_on_auth", "maybe"), -EINVAL);
        assert_int_equal(http_config_set(&c, "proxy_header", "X-Real-IP\r\n"), -EINVAL);
        assert_int_equal(http_config_set(&c, "no_such_key", "1"), -ENOENT);
        assert_string_equal(c.cookie_name, "__Host-wiki");

        /* metrics_listen: what --check-config passes, latch-http can bind
         * (a loopback address as inet_pton() reads it). */
        static const char *const good_listen[] = { "127.0.0.1:9100", "127.1.2.3:1", "[::1]:65535",
                                                   "/run/latch/metrics.sock" };
        static const char *const bad_listen[] = { "127.0.0.01:9100", "127.0.0.+1:9100", "127.0.0. 1:9100",
                                                  "0127.0.0.1:9100", "128.0.0.1:9100", "127.0.0:9100",
                                                  "127.0.0.1:0", "127.0.0.1:65536", "[::]:9100", "[::1]:",
                                                  "localhost:9100", "relative.sock" };
        for (size_t i = 0; i < sizeof good_listen / sizeof good_listen[0]; i++)
                assert_true(http_metrics_listen_is_valid(good_listen[i]));
        for (size_t i = 0; i < sizeof bad_listen / sizeof bad_listen[0]; i++) {
                if (http_metrics_listen_is_valid(bad_listen[i]))
                        fail_msg("metrics_listen = %s accepted", bad_listen[i]);
        }

        /* Errors name the file and line. */
        f = fopen(path, "w");
        fputs("[http]\nservice = ok\nbogus = 1\n[other]\n", f);
        fclose(f);
        assert_int_equal(http_config_load(&c, path, false), -EINVAL);
        unlink(path);
        assert_int_equal(http_config_load(&c, path, true), 0);
        assert_int_equal(http_config_load(&c, path, false), -ENOENT);
        http_config_done(&c);
}

static void test_query_encode(void **state) {
        char *s = http_query_encode("/p?x=1&y=2#top");
        assert_non_null(s);
        assert_string_equal(s, "/p%3Fx%3D1%26y%3D2%23top");
        free(s);
        s = http_query_encode("/a b+c%26~-._\xc3\xa9");
        assert_non_null(s);
        assert_string_equal(s, "/a%20b%2Bc%2526~-._%C3%A9");
        free(s);
}

static void test_prompt_autocomplete(void **state) {
        /* What password managers and phones fill in for each step field. */
        assert_string_equal(http_prompt_autocomplete("secret", "Password:"), "current-password");
        assert_string_equal(http_prompt_autocomplete("secret", "Password for alice: "), "current-password");
        assert_string_equal(http_prompt_autocomplete("secret", "New password:"), "new-password");
        assert_string_equal(http_prompt_autocomplete("secret", "Retype new UNIX password: "), "new-password");
        assert_string_equal(http_prompt_autocomplete("secret", "Confirm password:"), "new-password");
        assert_string_equal(http_prompt_autocomplete("secret", "Code:"), "one-time-code");
        assert_string_equal(http_prompt_autocomplete("secret", "One-time password (OATH) for `alice': "),
                            "one-time-code");
        assert_string_equal(http_prompt_autocomplete("secret", "Verification code: "), "one-time-code");
        assert_string_equal(http_prompt_autocomplete("text", "Verification code: "), "one-time-code");
        assert_string_equal(http_prompt_autocomplete("text", "PIN:"), "one-time-code");
        assert_string_equal(http_prompt_autocomplete("secret", "Answer:"), "one-time-code");
        assert_string_equal(http_prompt_autocomplete("text", "Your favourite colour?"), "off");
        assert_string_equal(http_prompt_autocomplete(NULL, NULL), "off");
}

static void test_prompt_asks_new_password(void **state) {
        /* The prompts of pam_unix, pam_pwquality and the file plugin's
         * password stack: a step with a new password is a password change. */
        assert_true(http_prompt_asks_new_password("secret", "New password: "));
        assert_true(http_prompt_asks_new_password("secret", "Retype new password: "));
        assert_true(http_prompt_asks_new_password("secret", "Enter new UNIX password: "));
        assert_true(http_prompt_asks_new_password("text", "Repeat the new password:"));
        /* The current password, codes, and text that is only shown, are not. */
        assert_false(http_prompt_asks_new_password("secret", "Current password: "));
        assert_false(http_prompt_asks_new_password("secret", "(current) UNIX password: "));
        assert_false(http_prompt_asks_new_password("secret", "Password:"));
        assert_false(http_prompt_asks_new_password("secret", "New code:"));
        assert_false(http_prompt_asks_new_password("error", "BAD PASSWORD: the new password is too short"));
        assert_false(http_prompt_asks_new_password("info", "Choose a new password"));
        assert_false(http_prompt_asks_new_password(NULL, "New password:"));
        assert_false(http_prompt_asks_new_password("secret", NULL));
}

static void test_log_quote(void **state) {
        char buf[256];

        assert_string_equal(http_log_quote("alice", buf, sizeof buf), "'alice'");
        assert_string_equal(http_log_quote(NULL, buf, sizeof buf), "(none)");
        /* A quote cannot end the field and forge the next one. */
        assert_string_equal(http_log_quote("eve' on service 'admin", buf, sizeof buf),
                            "'eve\\' on service \\'admin'");
        assert_string_equal(http_log_quote("a\\b", buf, sizeof buf), "'a\\\\b'");
        /* Nothing that reads as a new line or repaints the terminal. */
        assert_string_equal(http_log_quote("x\nlogin ok for user 'root'", buf, sizeof buf),
                            "'x\\nlogin ok for user \\'root\\''");
        assert_string_equal(http_log_quote("x\r\t\x1b[31m\x7f", buf, sizeof buf), "'x\\x0d\\t\\x1b[31m\\x7f'");
        assert_string_equal(http_log_quote("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", buf, sizeof buf), "'a\\u2028b\\u2029c'");
        assert_string_equal(http_log_quote("\xc2\x85\xe2\x80\xae", buf, sizeof buf), "'\\u0085\\u202e'");
        /* Invalid UTF-8: stray continuation, overlong, surrogate, cut. */
        assert_string_equal(http_log_quote("\x80\xc0\xaf\xed\xa0\x80\xe2\x80", buf, sizeof buf),
                            "'\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x80'");
        /* Valid UTF-8 passes. */
        assert_string_equal(http_log_quote("jos\xc3\xa9 \xf0\x9f\x94\x91", buf, sizeof buf),
                            "'jos\xc3\xa9 \xf0\x9f\x94\x91'");
        /* Cut to the buffer, never inside an escape, always closed. */
        char small[12];
        assert_string_equal(http_log_quote("abcdefghijkl", small, sizeof small), "'abcdef...'");
        assert_string_equal(http_log_quote("\n\n\n\n", small, sizeof small), "'\\n\\n\\n...'");

        char t[32];
        assert_string_equal(http_log_time(1796213426, t, sizeof t), "2026-12-02T12:10:26Z");
        assert_string_equal(http_log_time(0, t, sizeof t), "1970-01-01T00:00:00Z");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_redirect),   cmocka_unit_test(test_origin_host), cmocka_unit_test(test_origin_list),
                cmocka_unit_test(test_remote),     cmocka_unit_test(test_form),        cmocka_unit_test(test_escape),
                cmocka_unit_test(test_config),     cmocka_unit_test(test_query_encode), cmocka_unit_test(test_log_quote), cmocka_unit_test(test_prompt_autocomplete),
                cmocka_unit_test(test_prompt_asks_new_password),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
