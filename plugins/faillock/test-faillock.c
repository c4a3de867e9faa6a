/* SPDX-License-Identifier: MIT */

/*
 * faillock, loaded through the plugin host with a real store and the test
 * clock, driven the way the stack engine drives it: auth() first, then
 * outcome() with the stack's final result.
 */

#include <ftw.h>
#include <pthread.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugin-host.h"
#include "store.h"

static const char *plugin_path;

#define T0 INT64_C(1800000000)

struct fixture {
        char *dir;
        store *st;
        struct plugin_host *h;
        struct plugin_line *l;
        int64_t now;
};

static int64_t test_clock(void *userdata) {
        return ((struct fixture *) userdata)->now;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void fixture_open_host(struct fixture *f) {
        assert_int_equal(store_open(f->dir, &f->st), 0);
        assert_int_equal(plugin_host_new("/nonexistent", f->st, &f->h), 0);
        plugin_host_set_clock(f->h, test_clock, f);
}

static void fixture_close_host(struct fixture *f) {
        plugin_line_close(f->l);
        f->l = NULL;
        plugin_host_free(f->h);
        f->h = NULL;
        store_close(f->st);
        f->st = NULL;
}

static void fixture_open_line(struct fixture *f, int argc, const char *const *argv) {
        char *err = NULL;

        plugin_line_close(f->l);
        f->l = NULL;
        if (plugin_line_open(f->h, plugin_path, argc, argv, &f->l, &err) < 0)
                fail_msg("open: %s", err);
}

/* Every state dir lives under this one, removed by the group teardown even
 * when a test fails half-way. */
static char root_dir[] = "/tmp/latch-test-faillock-XXXXXX";

static int group_setup(void **unused) {
        return mkdtemp(root_dir) ? 0 : -1;
}

static int group_teardown(void **unused) {
        return nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_true(asprintf(&f->dir, "%s/state-XXXXXX", root_dir) > 0);
        assert_non_null(mkdtemp(f->dir));
        f->now = T0;
        fixture_open_host(f);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        fixture_close_host(f);
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f->dir);
        free(f);
        return 0;
}

/* One attempt as the stack runs it: `auth requisite faillock` first, then
 * (when faillock let it through) the rest of the stack, which yields
 * `rest`. Returns the final result. */
static int attempt(struct fixture *f, const char *user, int rest) {
        struct latch_req *req = NULL;
        int r, final;

        assert_int_equal(latch_req_new("login", "wiki", user, "pw", NULL, &req), 0);
        r = plugin_line_call(f->l, STACK_AUTH, req, 0);
        /* faillock either stays out of the decision or refuses. */
        assert_true(r == LATCH_IGNORE || r == LATCH_AUTH_ERR);
        final = r == LATCH_AUTH_ERR ? r : rest;
        plugin_line_outcome(f->l, req, final);
        latch_req_free(req);
        return final;
}

static bool locked(struct fixture *f, const char *user) {
        struct latch_req *req = NULL;
        int r;

        assert_int_equal(latch_req_new("login", "wiki", user, "pw", NULL, &req), 0);
        r = plugin_line_call(f->l, STACK_AUTH, req, 0);
        latch_req_free(req);
        assert_true(r == LATCH_IGNORE || r == LATCH_AUTH_ERR);
        return r == LATCH_AUTH_ERR;
}

static size_t tally_size(struct fixture *f, const char *user) {
        char buf[LATCH_KV_VALUE_MAX];
        size_t len = sizeof(buf);
        int r;

        r = store_kv_get(f->st, "faillock", user, strlen(user), buf, &len);
        if (r == -ENOENT)
                return 0;
        assert_int_equal(r, 0);
        return len / 8;
}

static void test_locks_after_deny(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 0, NULL); /* deny=3, fail_interval=15min, unlock_time=10min */

        assert_false(locked(f, "alice"));
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        f->now += 10;
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        assert_false(locked(f, "alice"));
        f->now += 10;
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));

        /* A correct password gets the same refusal. */
        assert_int_equal(attempt(f, "alice", LATCH_SUCCESS), LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));

        /* Others are not affected; account() never changes a stack. */
        assert_false(locked(f, "bob"));
        struct latch_req *req = NULL;
        assert_int_equal(latch_req_new("login", "wiki", "alice", "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(f->l, STACK_ACCOUNT, req, 0), LATCH_IGNORE);
        latch_req_free(req);
}

static void test_unlock_time(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 2, (const char *const[]){"deny=2", "unlock_time=10min"});

        attempt(f, "alice", LATCH_AUTH_ERR);
        attempt(f, "alice", LATCH_AUTH_ERR);
        int64_t last = f->now;
        assert_true(locked(f, "alice"));

        /* Refused attempts while locked do not extend the lock. */
        f->now = last + 300;
        assert_int_equal(attempt(f, "alice", LATCH_SUCCESS), LATCH_AUTH_ERR);
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        f->now = last + 599;
        assert_true(locked(f, "alice"));
        f->now = last + 600;
        assert_false(locked(f, "alice"));

        /* After a lock ran out, counting starts afresh: one failure does
         * not lock again, although the old ones are within fail_interval. */
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        assert_false(locked(f, "alice"));
        assert_int_equal(attempt(f, "alice", LATCH_AUTH_ERR), LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
}

static void test_unlock_time_zero(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 2, (const char *const[]){"deny=1", "unlock_time=0"});
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
        f->now += 365 * 86400;
        assert_true(locked(f, "alice"));
}

static void test_fail_interval(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 2, (const char *const[]){"deny=3", "fail_interval=60s"});

        /* Three failures, but never three within 60 s of each other. */
        attempt(f, "alice", LATCH_AUTH_ERR);
        f->now += 40;
        attempt(f, "alice", LATCH_AUTH_ERR);
        f->now += 40;
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_false(locked(f, "alice"));
        /* The old one was dropped from the tally. */
        assert_int_equal(tally_size(f, "alice"), 2);
        f->now += 10;
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
}

static void test_success_clears(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 0, NULL);

        attempt(f, "alice", LATCH_AUTH_ERR);
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_int_equal(tally_size(f, "alice"), 2);
        assert_int_equal(attempt(f, "alice", LATCH_SUCCESS), LATCH_SUCCESS);
        assert_int_equal(tally_size(f, "alice"), 0);

        attempt(f, "alice", LATCH_AUTH_ERR);
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_false(locked(f, "alice"));
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
}

static void test_not_counted(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 1, (const char *const[]){"deny=1"});

        /* No credential was judged wrong: no tally. */
        attempt(f, "alice", LATCH_USER_UNKNOWN);
        attempt(f, "alice", LATCH_AUTHINFO_UNAVAIL);
        attempt(f, "alice", LATCH_SYSTEM_ERR);
        attempt(f, "alice", LATCH_ACCT_EXPIRED);
        assert_false(locked(f, "alice"));
        assert_int_equal(tally_size(f, "alice"), 0);

        attempt(f, "alice", LATCH_PERM_DENIED);
        assert_true(locked(f, "alice"));
}

/* A password change, as the password stack runs it with `password
 * requisite faillock` first: the preliminary pass, then (when it got
 * through) the update pass; `rest` is what the other lines decide. */
static int change(struct fixture *f, const char *user, int rest) {
        struct latch_req *req = NULL;
        int r, final;

        assert_int_equal(latch_req_new("passwd", "wiki", user, NULL, NULL, &req), 0);
        r = plugin_line_call(f->l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK);
        assert_true(r == LATCH_IGNORE || r == LATCH_AUTH_ERR);
        if (r == LATCH_IGNORE)
                assert_int_equal(plugin_line_call(f->l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_IGNORE);
        final = r == LATCH_AUTH_ERR ? r : rest;
        plugin_line_outcome(f->l, req, final);
        latch_req_free(req);
        return final;
}

static void test_password_changes(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 1, (const char *const[]){"deny=2"});

        /* A refused new password is no wrong credential. */
        change(f, "alice", LATCH_AUTHTOK_ERR);
        change(f, "alice", LATCH_AUTHTOK_LOCK_BUSY);
        assert_int_equal(tally_size(f, "alice"), 0);

        /* Wrong current passwords count, as failed logins do, and lock
         * (logins too: the tally is the user's)... */
        change(f, "alice", LATCH_AUTH_ERR);
        change(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
        /* ...and a locked user cannot change the password either. */
        assert_int_equal(change(f, "alice", LATCH_SUCCESS), LATCH_AUTH_ERR);
        assert_int_equal(tally_size(f, "alice"), 2);

        /* A change that went through clears the tally, as a login does. */
        change(f, "bob", LATCH_AUTH_ERR);
        assert_int_equal(tally_size(f, "bob"), 1);
        assert_int_equal(change(f, "bob", LATCH_SUCCESS), LATCH_SUCCESS);
        assert_int_equal(tally_size(f, "bob"), 0);
}

/* A login that changes an expired password: the auth line and the password
 * line both take part and both hear the outcome; only the auth line counts
 * it, or one abandoned change would count twice. */
static void test_expired_change_in_a_login_counts_once(void **state) {
        struct fixture *f = *state;
        struct plugin_line *auth_line = NULL;
        struct latch_req *req = NULL;
        char *err = NULL;

        fixture_open_line(f, 1, (const char *const[]){"deny=3"});
        if (plugin_line_open(f->h, plugin_path, 1, (const char *const[]){"deny=3"}, &auth_line, &err) < 0)
                fail_msg("open: %s", err);

        assert_int_equal(latch_req_new("login", "wiki", "carol", "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(auth_line, STACK_AUTH, req, 0), LATCH_IGNORE);
        assert_int_equal(plugin_line_call(f->l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK),
                         LATCH_IGNORE);
        plugin_line_outcome(auth_line, req, LATCH_CONV_ERR);
        plugin_line_outcome(f->l, req, LATCH_CONV_ERR);
        latch_req_free(req);
        assert_int_equal(tally_size(f, "carol"), 1);

        /* The passwd op has only the password line: it counts there. */
        change(f, "carol", LATCH_AUTH_ERR);
        assert_int_equal(tally_size(f, "carol"), 2);
        plugin_line_close(auth_line);
}

struct worker {
        struct fixture *f;
        int failed;
};

static void *worker(void *p) {
        struct worker *w = p;

        for (int i = 0; i < 50; i++) {
                struct latch_req *req = NULL;

                if (latch_req_new("login", "wiki", "alice", "pw", NULL, &req) < 0) {
                        w->failed = 1;
                        return NULL;
                }
                if (plugin_line_call(w->f->l, STACK_AUTH, req, 0) != LATCH_IGNORE)
                        w->failed = 1;
                plugin_line_outcome(w->f->l, req, LATCH_AUTH_ERR);
                latch_req_free(req);
        }
        return NULL;
}

static void test_parallel_failures(void **state) {
        struct fixture *f = *state;
        struct worker w[8];
        pthread_t th[8];

        /* 8 × 50 = 400 failures at once: one more than that locks only if
         * not a single one was lost. */
        fixture_open_line(f, 1, (const char *const[]){"deny=401"});

        for (int i = 0; i < 8; i++) {
                w[i] = (struct worker){.f = f};
                assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                assert_int_equal(pthread_join(th[i], NULL), 0);
                assert_int_equal(w[i].failed, 0);
        }

        assert_int_equal(tally_size(f, "alice"), 400);
        assert_false(locked(f, "alice"));
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
}

static void test_survives_restart(void **state) {
        struct fixture *f = *state;
        const char *const args[] = {"deny=3"};

        fixture_open_line(f, 1, args);
        attempt(f, "alice", LATCH_AUTH_ERR);
        attempt(f, "alice", LATCH_AUTH_ERR);
        attempt(f, "bob", LATCH_AUTH_ERR);

        fixture_close_host(f);
        fixture_open_host(f);
        fixture_open_line(f, 1, args);

        assert_false(locked(f, "alice"));
        attempt(f, "alice", LATCH_AUTH_ERR);
        assert_true(locked(f, "alice"));
        assert_false(locked(f, "bob"));
        assert_int_equal(tally_size(f, "bob"), 1);

        fixture_close_host(f);
        fixture_open_host(f);
        fixture_open_line(f, 1, args);
        assert_true(locked(f, "alice"));
}

static void refused(struct fixture *f, int argc, const char *const *argv, const char *needle) {
        struct plugin_line *l = NULL;
        char *err = NULL;

        assert_true(plugin_line_open(f->h, plugin_path, argc, argv, &l, &err) < 0);
        assert_null(l);
        assert_non_null(err);
        if (!strstr(err, "faillock") || !strstr(err, needle))
                fail_msg("message '%s' should name 'faillock' and '%s'", err, needle);
        free(err);
}

static void test_arguments(void **state) {
        struct fixture *f = *state;

        refused(f, 1, (const char *const[]){"deny=x"}, "deny=x");
        refused(f, 1, (const char *const[]){"deny=-1"}, "deny=-1");
        refused(f, 1, (const char *const[]){"deny=513"}, "deny=513");
        refused(f, 1, (const char *const[]){"deny="}, "deny=");
        refused(f, 1, (const char *const[]){"fail_interval=0"}, "fail_interval=0");
        refused(f, 1, (const char *const[]){"fail_interval=5y"}, "fail_interval=5y");
        refused(f, 1, (const char *const[]){"unlock_time=10 min"}, "unlock_time=10 min");
        refused(f, 1, (const char *const[]){"unlock_time=min"}, "unlock_time=min");
        refused(f, 1, (const char *const[]){"unlock_time=99999999999999999999"}, "unlock_time=");
        refused(f, 1, (const char *const[]){"preauth"}, "preauth");

        /* Each suffix parses. */
        static const char *const ok[] = {"unlock_time=90", "unlock_time=90s", "unlock_time=30min",
                                         "unlock_time=8h", "unlock_time=2d", "fail_interval=1", "deny=0",
                                         "deny=512"};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                fixture_open_line(f, 1, (const char *const[]){ok[i]});
}

static void test_suffixes_mean_seconds(void **state) {
        struct fixture *f = *state;

        fixture_open_line(f, 2, (const char *const[]){"deny=1", "unlock_time=2h"});
        attempt(f, "alice", LATCH_AUTH_ERR);
        f->now += 2 * 3600 - 1;
        assert_true(locked(f, "alice"));
        f->now += 1;
        assert_false(locked(f, "alice"));
}

static void test_without_store(void **state) {
        struct plugin_host *h = NULL;
        struct plugin_line *l = NULL;
        char *err = NULL;

        assert_int_equal(plugin_host_new("/nonexistent", NULL, &h), 0);
        assert_int_equal(plugin_line_open(h, plugin_path, 0, NULL, &l, &err), -ENOTSUP);
        assert_null(l);
        assert_non_null(err);
        assert_non_null(strstr(err, "faillock"));
        assert_non_null(strstr(err, "store"));
        free(err);
        plugin_host_free(h);
}

/* The admin actions, as pam_faillock's faillock(8): show the tally, reset
 * it (which unlocks). */
/* How admin() calls: as an administrator (both false) or as the user's own
 * session (self), re-authenticated or not. */
static bool admin_self, admin_reauthenticated;

static int admin(struct fixture *f, const char *action, const char *user, json_t **ret) {
        json_t *args = json_object(), *answer = NULL;
        char *message = NULL;
        int r;

        if (user)
                json_object_set_new(args, "user", json_string(user));
        r = plugin_line_admin(f->l, action, args, admin_self, admin_reauthenticated, &answer, &message);
        json_decref(args);
        if (r < 0)
                assert_non_null(message);
        free(message);
        if (ret)
                *ret = answer;
        else
                json_decref(answer);
        return r;
}

static void test_admin_show_reset(void **state) {
        struct fixture *f = *state;
        json_t *a = NULL, *failures;

        fixture_open_line(f, 2, (const char *const[]){ "deny=3", "unlock_time=10min" });
        assert_true(plugin_line_has_admin(f->l));

        assert_int_equal(admin(f, "show", "alice", &a), 0);
        assert_true(json_is_false(json_object_get(a, "locked")));
        failures = json_object_get(a, "failures");
        assert_true(json_is_array(failures));
        assert_int_equal(json_array_size(failures), 0);
        assert_int_equal(json_integer_value(json_object_get(a, "deny")), 3);
        json_decref(a);

        for (int i = 0; i < 3; i++) {
                attempt(f, "alice", LATCH_AUTH_ERR);
                f->now += 5;
        }
        assert_true(locked(f, "alice"));
        /* A locked user's own session cannot unlock (nor look), even
         * re-authenticated: the actions are an administrator's. */
        admin_self = true;
        for (int k = 0; k < 2; k++) {
                admin_reauthenticated = k == 1;
                assert_int_equal(admin(f, "reset", "alice", NULL), -EPERM);
                assert_int_equal(admin(f, "show", "alice", NULL), -EPERM);
        }
        admin_self = admin_reauthenticated = false;
        assert_true(locked(f, "alice"));
        assert_int_equal(admin(f, "show", "alice", &a), 0);
        assert_true(json_is_true(json_object_get(a, "locked")));
        assert_int_equal(json_integer_value(json_object_get(a, "locked_until")), T0 + 10 + 600);
        failures = json_object_get(a, "failures");
        assert_int_equal(json_array_size(failures), 3);
        assert_int_equal(json_integer_value(json_array_get(failures, 0)), T0);
        assert_int_equal(json_integer_value(json_array_get(failures, 2)), T0 + 10);
        json_decref(a);

        /* reset unlocks at once: a correct password passes again. */
        assert_int_equal(admin(f, "reset", "alice", &a), 0);
        assert_true(json_is_true(json_object_get(a, "reset")));
        json_decref(a);
        assert_false(locked(f, "alice"));
        assert_int_equal(tally_size(f, "alice"), 0);
        assert_int_equal(attempt(f, "alice", LATCH_SUCCESS), LATCH_SUCCESS);
        assert_int_equal(admin(f, "reset", "alice", &a), 0);
        assert_true(json_is_false(json_object_get(a, "reset")));
        json_decref(a);

        assert_int_equal(admin(f, "frobnicate", "alice", NULL), -EOPNOTSUPP);
        assert_int_equal(admin(f, "show", NULL, NULL), -EINVAL);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_locks_after_deny, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unlock_time, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unlock_time_zero, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fail_interval, setup, teardown),
                cmocka_unit_test_setup_teardown(test_success_clears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_password_changes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expired_change_in_a_login_counts_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_counted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parallel_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_suffixes_mean_seconds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_admin_show_reset, setup, teardown),
                cmocka_unit_test(test_without_store),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/faillock.so\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
