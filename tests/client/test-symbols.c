/* SPDX-License-Identifier: MIT */
/*
 * liblatch exports exactly the functions declared in <latch/latch.h>, all
 * named latch_*, under version LATCH_1: no helper (jwt_*, b64url_*, Jansson)
 * leaks. Run with the library's path and the header's path.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *const expected[] = {
        "latch_authenticate",
        "latch_call_json",
        "latch_client_abort",
        "latch_client_connect",
        "latch_client_connection_id",
        "latch_client_events",
        "latch_client_fd",
        "latch_client_free",
        "latch_client_new",
        "latch_client_pending",
        "latch_client_process",
        "latch_client_set_max_response",
        "latch_client_set_timeout",
        "latch_client_socket_path",
        "latch_cookie_build",
        "latch_cookie_build_clear",
        "latch_cookie_parse",
        "latch_error_from_code",
        "latch_error_name",
        "latch_hello",
        "latch_jwks",
        "latch_jwks_load_file",
        "latch_jwks_parse",
        "latch_keys_rotate",
        "latch_keyset_free",
        "latch_keyset_size",
        "latch_last_challenge",
        "latch_last_error",
        "latch_last_error_code",
        "latch_last_message",
        "latch_login",
        "latch_logout",
        "latch_passwd",
        "latch_plugin",
        "latch_reload",
        "latch_reply_bool",
        "latch_reply_count",
        "latch_reply_free",
        "latch_reply_int",
        "latch_reply_item_int",
        "latch_reply_item_string",
        "latch_reply_json",
        "latch_reply_raw",
        "latch_reply_string",
        "latch_respond",
        "latch_secret_free",
        "latch_sessions_list",
        "latch_sessions_revoke",
        "latch_stats",
        "latch_strerror",
        "latch_submit_json",
        "latch_submit_validate",
        "latch_token",
        "latch_token_verify",
        "latch_validate",
        "latch_verify",
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static const char *lib_path, *header_path;

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        assert_true(n > 0);
        fclose(f);
        return buf;
}

/* Whether `text` declares function `name`: the name followed by '(' and
 * preceded by a character that cannot be part of an identifier. */
static int count_declarations(const char *text, const char *name) {
        size_t n = strlen(name);
        int found = 0;
        for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
                char before = p == text ? ' ' : p[-1];
                /* "name()" is a mention in a comment, not a declaration. */
                if (p[n] == '(' && p[n + 1] != ')' && (before == ' ' || before == '*' || before == '\n'))
                        found++;
        }
        return found;
}

static void test_exports(void **state) {
        char cmd[4096];
        char line[512];
        bool seen[N_EXPECTED] = {};
        int n_exported = 0;

        snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", lib_path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char *header = read_file(header_path);

        while (fgets(line, sizeof(line), p)) {
                char addr[64], type[8], sym[256];
                if (sscanf(line, "%63s %7s %255s", addr, type, sym) != 3)
                        continue;
                /* The version node itself. */
                if (strcmp(type, "A") == 0 && strcmp(sym, "LATCH_1") == 0)
                        continue;

                char *at = strchr(sym, '@');
                if (at) {
                        assert_string_equal(at, "@@LATCH_1");
                        *at = '\0';
                }
                n_exported++;

                if (strncmp(sym, "latch_", 6) != 0)
                        fail_msg("exported symbol without the latch_ prefix: %s", sym);
                if (count_declarations(header, sym) != 1)
                        fail_msg("exported symbol not declared (exactly once) in latch.h: %s", sym);
                bool known = false;
                for (size_t i = 0; i < N_EXPECTED; i++)
                        if (strcmp(sym, expected[i]) == 0) {
                                assert_false(seen[i]);
                                seen[i] = known = true;
                        }
                if (!known)
                        fail_msg("unexpected export: %s", sym);
        }
        assert_int_equal(pclose(p), 0);

        for (size_t i = 0; i < N_EXPECTED; i++)
                if (!seen[i])
                        fail_msg("not exported: %s", expected[i]);
        assert_int_equal(n_exported, (int) N_EXPECTED);
        free(header);
}

/* Every function the header declares is in the list (so, exported). */
static void test_header_declares_only_exports(void **state) {
        char *header = read_file(header_path);
        int n = 0;

        for (const char *p = strstr(header, "latch_"); p; p = strstr(p + 1, "latch_")) {
                char before = p == header ? ' ' : p[-1];
                size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
                if (p[len] != '(' || !(before == ' ' || before == '*'))
                        continue;
                /* "latch_x()" is a mention in a comment, not a declaration. */
                if (p[len + 1] == ')')
                        continue;
                bool known = false;
                for (size_t i = 0; i < N_EXPECTED; i++)
                        if (strlen(expected[i]) == len && strncmp(p, expected[i], len) == 0)
                                known = true;
                if (!known)
                        fail_msg("declared but not in the export list: %.*s", (int) len, p);
                n++;
        }
        assert_int_equal(n, (int) N_EXPECTED);
        free(header);
}

int main(int argc, char *argv[]) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s LIBLATCH.so latch.h\n", argv[0]);
                return 2;
        }
        lib_path = argv[1];
        header_path = argv[2];

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exports),
                cmocka_unit_test(test_header_declares_only_exports),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
