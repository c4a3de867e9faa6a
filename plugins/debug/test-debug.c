/* SPDX-License-Identifier: MIT */

/* debug, loaded through the plugin host: every PAM result name maps to its
 * value for auth= and acct= (and account=), and for the password stack's
 * passes (password=, password_prelim=/prechauthtok=,
 * password_update=/chauthtok=); success without arguments; the first
 * argument for an event wins; unknown names and arguments are refused at
 * open with a message. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "plugin-host.h"

static const char *plugin_path;

/* libpam's _pam_token_returns, by value. */
static const char *const names[_LATCH_RESULT_MAX] = {
        "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err", "perm_denied",
        "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown", "maxtries",
        "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail", "cred_expired", "cred_err",
        "no_module_data", "conv_err", "authtok_err", "authtok_recover_err", "authtok_lock_busy",
        "authtok_disable_aging", "try_again", "ignore", "abort", "authtok_expired", "module_unknown",
        "bad_item", "conv_again", "incomplete",
};

struct fixture {
        struct plugin_host *h;
        struct latch_req *req;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(plugin_host_new("/nonexistent", NULL, &f->h), 0);
        assert_int_equal(latch_req_new("login", "wiki", "alice", "pw", NULL, &f->req), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        latch_req_free(f->req);
        plugin_host_free(f->h);
        free(f);
        return 0;
}

static void call_both(struct fixture *f, int argc, const char *const *argv, int *ret_auth, int *ret_account) {
        struct plugin_line *l = NULL;
        char *err = NULL;

        if (plugin_line_open(f->h, plugin_path, argc, argv, &l, &err) < 0)
                fail_msg("open: %s", err);
        *ret_auth = plugin_line_call(l, STACK_AUTH, f->req, 0);
        *ret_account = plugin_line_call(l, STACK_ACCOUNT, f->req, 0);
        plugin_line_close(l);
}

/* The results of the password stack's two passes. */
static void call_password(struct fixture *f, int argc, const char *const *argv, int *ret_prelim, int *ret_update) {
        struct plugin_line *l = NULL;
        char *err = NULL;

        if (plugin_line_open(f->h, plugin_path, argc, argv, &l, &err) < 0)
                fail_msg("open: %s", err);
        *ret_prelim = plugin_line_call(l, STACK_PASSWORD, f->req, LATCH_PRELIM_CHECK);
        *ret_update = plugin_line_call(l, STACK_PASSWORD, f->req, LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        plugin_line_close(l);
}

static void test_default(void **state) {
        int a, b;

        call_both(*state, 0, NULL, &a, &b);
        assert_int_equal(a, LATCH_SUCCESS);
        assert_int_equal(b, LATCH_SUCCESS);
        call_password(*state, 0, NULL, &a, &b);
        assert_int_equal(a, LATCH_SUCCESS);
        assert_int_equal(b, LATCH_SUCCESS);
}

static void test_password(void **state) {
        for (int i = 0; i < _LATCH_RESULT_MAX; i++) {
                char both[64], prelim[64], update[64], pre[64], chauth[64];
                int j = _LATCH_RESULT_MAX - 1 - i, a, b;

                snprintf(both, sizeof(both), "password=%s", names[i]);
                snprintf(prelim, sizeof(prelim), "password_prelim=%s", names[i]);
                snprintf(update, sizeof(update), "password_update=%s", names[j]);
                snprintf(pre, sizeof(pre), "prechauthtok=%s", names[i]);
                snprintf(chauth, sizeof(chauth), "chauthtok=%s", names[j]);

                call_password(*state, 1, (const char *const[]){both}, &a, &b);
                assert_int_equal(a, i);
                assert_int_equal(b, i);
                call_password(*state, 2, (const char *const[]){prelim, update}, &a, &b);
                assert_int_equal(a, i);
                assert_int_equal(b, j);
                call_password(*state, 2, (const char *const[]){chauth, pre}, &a, &b);
                assert_int_equal(a, i);
                assert_int_equal(b, j);
                /* password= does not touch auth and account. */
                call_both(*state, 1, (const char *const[]){both}, &a, &b);
                assert_int_equal(a, LATCH_SUCCESS);
                assert_int_equal(b, LATCH_SUCCESS);
        }
}

static void test_every_name(void **state) {
        for (int i = 0; i < _LATCH_RESULT_MAX; i++) {
                char auth[64], acct[64], account[64];
                int a, b;

                snprintf(auth, sizeof(auth), "auth=%s", names[i]);
                snprintf(acct, sizeof(acct), "acct=%s", names[i]);
                snprintf(account, sizeof(account), "account=%s", names[i]);

                call_both(*state, 1, (const char *const[]){auth}, &a, &b);
                assert_int_equal(a, i);
                assert_int_equal(b, LATCH_SUCCESS);

                call_both(*state, 1, (const char *const[]){acct}, &a, &b);
                assert_int_equal(a, LATCH_SUCCESS);
                assert_int_equal(b, i);

                call_both(*state, 1, (const char *const[]){account}, &a, &b);
                assert_int_equal(a, LATCH_SUCCESS);
                assert_int_equal(b, i);

                /* Both at once, different results. */
                snprintf(acct, sizeof(acct), "acct=%s", names[_LATCH_RESULT_MAX - 1 - i]);
                call_both(*state, 2, (const char *const[]){auth, acct}, &a, &b);
                assert_int_equal(a, i);
                assert_int_equal(b, _LATCH_RESULT_MAX - 1 - i);
        }
}

static void test_first_wins(void **state) {
        int a, b;

        call_both(*state, 3, (const char *const[]){"auth=user_unknown", "auth=success", "acct=ignore"}, &a, &b);
        assert_int_equal(a, LATCH_USER_UNKNOWN);
        assert_int_equal(b, LATCH_IGNORE);

        /* A pass named on its own before password= keeps its result. */
        call_password(*state, 2, (const char *const[]){"password_update=authtok_err", "password=try_again"}, &a, &b);
        assert_int_equal(a, LATCH_TRY_AGAIN);
        assert_int_equal(b, LATCH_AUTHTOK_ERR);
        call_password(*state, 2, (const char *const[]){"password=try_again", "chauthtok=authtok_err"}, &a, &b);
        assert_int_equal(a, LATCH_TRY_AGAIN);
        assert_int_equal(b, LATCH_TRY_AGAIN);
}

static void refused(struct fixture *f, const char *arg, const char *needle) {
        struct plugin_line *l = NULL;
        char *err = NULL;

        assert_int_equal(plugin_line_open(f->h, plugin_path, 1, (const char *const[]){arg}, &l, &err), -EINVAL);
        assert_null(l);
        assert_non_null(err);
        if (!strstr(err, needle) || !strstr(err, "debug"))
                fail_msg("message '%s' should name 'debug' and '%s'", err, needle);
        free(err);
}

static void test_refused(void **state) {
        refused(*state, "auth=bogus", "bogus");
        refused(*state, "auth=SUCCESS", "SUCCESS");
        refused(*state, "auth=", "auth=");
        refused(*state, "acct=default", "default"); /* a control key, not a result */
        refused(*state, "cred=success", "cred=success");
        refused(*state, "auth", "auth");
        refused(*state, "authx=success", "authx=success");
        refused(*state, "debug", "debug");
        refused(*state, "password=bogus", "bogus");
        refused(*state, "password_prelim=", "password_prelim=");
        refused(*state, "passwd=success", "passwd=success");
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_default, setup, teardown),
                cmocka_unit_test_setup_teardown(test_every_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_password, setup, teardown),
                cmocka_unit_test_setup_teardown(test_first_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/debug.so\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, NULL, NULL);
}
