/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the service-stack engine: parsing (every control form,
 * arguments, comments and continuations, include/substack, ignored types),
 * the exact "file:line: message" of each load error, evaluation corner cases
 * of Linux-PAM's dispatch logic, outcome reporting, and four threads running
 * one stack at once.
 */

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "debug-ops.h"
#include "macro.h"
#include "stack.h"

/* ---- fixtures ---- */

struct fixture {
        char dir[64];
        struct debug_ops_state ops;
        char *diags[64];
        int n_diags;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/latch-test-stack-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        DIR *d = opendir(f->dir);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                char path[512];

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
                unlink(path);
        }
        if (d)
                closedir(d);
        rmdir(f->dir);
        for (int i = 0; i < f->n_diags; i++)
                free(f->diags[i]);
        /* Every module a test opened must have been closed. */
        assert_int_equal(f->ops.n_open, 0);
        free(f);
        return 0;
}

static void write_service(struct fixture *f, const char *name, const char *text) {
        char path[512];
        FILE *out;

        snprintf(path, sizeof(path), "%s/%s", f->dir, name);
        out = fopen(path, "we");
        assert_non_null(out);
        fputs(text, out);
        assert_int_equal(fclose(out), 0);
}

static void diag_collect(void *userdata, const char *file, unsigned line, const char *message) {
        struct fixture *f = userdata;
        const char *base = strrchr(file, '/');
        char *s;

        /* Keep the path exact but short: "DIR/NAME" becomes "NAME". */
        assert_true(base && strncmp(file, f->dir, strlen(f->dir)) == 0);
        assert_true(asprintf(&s, "%s:%u: %s", base + 1, line, message) >= 0);
        if (f->n_diags < 64)
                f->diags[f->n_diags++] = s;
        else
                free(s);
}

static int load(struct fixture *f, const char *service, struct services **ret) {
        return services_load_file(f->dir, service, &debug_ops, &f->ops, diag_collect, f, ret);
}

/* Loads `text` as service "svc" and returns its stack (kept in *ret_s). */
static const struct stack *load_text(struct fixture *f, const char *text, struct services **ret_s) {
        write_service(f, "svc", text);
        assert_int_equal(load(f, "svc", ret_s), 0);
        assert_int_equal(f->n_diags, 0);
        const struct stack *st = services_find(*ret_s, "svc");
        assert_non_null(st);
        return st;
}

static int run_text(struct fixture *f, const char *text, enum stack_type type) {
        struct services *s = NULL;
        const struct stack *st = load_text(f, text, &s);
        int r = stack_run(st, type, NULL);

        services_free(s);
        return r;
}

/* Loads `text` expecting failure, and checks the diagnostics. */
static void expect_errors(struct fixture *f, const char *text, ...) {
        struct services *s = (struct services *) (uintptr_t) 1;
        va_list ap;
        int n = 0;

        write_service(f, "svc", text);
        assert_int_equal(load(f, "svc", &s), -EINVAL);
        assert_ptr_equal(s, (struct services *) (uintptr_t) 1);

        va_start(ap, text);
        for (const char *want; (want = va_arg(ap, const char *)); n++) {
                assert_true(n < f->n_diags);
                assert_string_equal(f->diags[n], want);
        }
        va_end(ap);
        assert_int_equal(f->n_diags, n);

        for (int i = 0; i < f->n_diags; i++)
                free(f->diags[i]);
        f->n_diags = 0;
        assert_int_equal(f->ops.n_open, 0);
}

/* ---- parsing ---- */

static void test_simple_controls(void **state) {
        struct fixture *f = *state;

        /* required: a failure is remembered, later modules still run. */
        assert_int_equal(run_text(f, "auth required debug auth=auth_err\n"
                                     "auth required debug auth=user_unknown\n",
                                  STACK_AUTH),
                         LATCH_AUTH_ERR);
        /* requisite: ends at once. */
        assert_int_equal(run_text(f, "auth requisite debug auth=user_unknown\n"
                                     "auth required debug auth=auth_err\n",
                                  STACK_AUTH),
                         LATCH_USER_UNKNOWN);
        /* sufficient: success ends the stack, failure is ignored. */
        assert_int_equal(run_text(f, "auth sufficient debug auth=auth_err\n"
                                     "auth sufficient debug\n"
                                     "auth required debug auth=auth_err\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* optional alone decides; ignore alone decides nothing. */
        assert_int_equal(run_text(f, "auth optional debug auth=auth_err\n", STACK_AUTH),
                         LATCH_PERM_DENIED);
        assert_int_equal(run_text(f, "auth required debug auth=ignore\n", STACK_AUTH),
                         LATCH_PERM_DENIED);
        /* Keywords are case-insensitive and may be bracketed, as in libpam. */
        assert_int_equal(run_text(f, "AUTH Required debug\nauth [sufficient] debug\n", STACK_AUTH),
                         LATCH_SUCCESS);
}

static void test_bracket_controls(void **state) {
        struct fixture *f = *state;

        /* default applies to values not set, wherever it stands. */
        assert_int_equal(run_text(f, "auth [default=ignore success=ok] debug auth=auth_err\n"
                                     "auth [success = ok  default=bad] debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* A later setting of the same value wins; unset values are bad. */
        assert_int_equal(run_text(f, "auth [auth_err=ignore auth_err=die] debug auth=auth_err\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_AUTH_ERR);
        assert_int_equal(run_text(f, "auth [success=ok] debug auth=incomplete\n", STACK_AUTH),
                         LATCH_INCOMPLETE);
        assert_int_equal(run_text(f, "auth [success=ok] debug auth=try_again\n", STACK_AUTH),
                         LATCH_TRY_AGAIN);
        /* An empty map: everything is bad. */
        assert_int_equal(run_text(f, "auth [] debug\n", STACK_AUTH), LATCH_PERM_DENIED);
        /* A map without brackets (no spaces) is accepted, as by libpam. */
        assert_int_equal(run_text(f, "auth success=done debug\nauth required debug auth=auth_err\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* ok with a failure code makes that code the positive status. */
        assert_int_equal(run_text(f, "auth [auth_err=ok] debug auth=auth_err\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_AUTH_ERR);
        /* A "bad" ignore is a failure without a code of its own. */
        assert_int_equal(run_text(f, "auth [default=bad] debug auth=ignore\n", STACK_AUTH),
                         LATCH_PERM_DENIED);
        /* done after a failure does not end the stack (here a reset follows). */
        assert_int_equal(run_text(f, "auth required debug auth=auth_err\n"
                                     "auth sufficient debug\n"
                                     "auth [user_unknown=reset] debug auth=user_unknown\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* reset forgets what came before. */
        assert_int_equal(run_text(f, "auth required debug auth=auth_err\n"
                                     "auth [user_unknown=reset] debug auth=user_unknown\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
}

static void test_jumps(void **state) {
        struct fixture *f = *state;

        /* success=2 skips the next two lines. */
        assert_int_equal(run_text(f, "auth [success=2 default=ignore] debug\n"
                                     "auth requisite debug auth=auth_err\n"
                                     "auth requisite debug auth=user_unknown\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* A jump is not an "ok": nothing decided yet. */
        assert_int_equal(run_text(f, "auth [success=1 default=ignore] debug\n"
                                     "auth requisite debug auth=auth_err\n",
                                  STACK_AUTH),
                         LATCH_PERM_DENIED);
        /* Jumping past the end is a "bad jump": failure, even after success. */
        assert_int_equal(run_text(f, "auth required debug\n"
                                     "auth [success=5] debug\n",
                                  STACK_AUTH),
                         LATCH_PERM_DENIED);
        /* A jump over a substack line skips the whole substack. */
        write_service(f, "sub", "auth requisite debug auth=auth_err\nauth required debug\n");
        assert_int_equal(run_text(f, "auth [success=1] debug\n"
                                     "auth substack sub\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
}

static void test_arguments_comments(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        const struct stack *st;

        /* Bracketed arguments keep spaces and "\]"; '#' ends a line; '\'
         * continues it; blank and comment lines are skipped in between. */
        st = load_text(f,
                       "# a comment\n"
                       "\n"
                       "  auth   required \\\n"
                       "# a comment inside a continued line\n"
                       "     debug [auth=user_unknown] [x y\\]z] # not=an argument\n"
                       "account\trequired\tdebug\tacct=acct_expired\n",
                       &s);
        assert_int_equal(stack_size(st, STACK_AUTH), 1);
        assert_int_equal(stack_size(st, STACK_ACCOUNT), 1);
        assert_int_equal(stack_run(st, STACK_AUTH, NULL), LATCH_USER_UNKNOWN);
        assert_int_equal(stack_run(st, STACK_ACCOUNT, NULL), LATCH_ACCT_EXPIRED);
        services_free(s);

        /* A result name pam_debug does not know means success. */
        assert_int_equal(run_text(f, "auth required debug auth=nonsense\n", STACK_AUTH),
                         LATCH_SUCCESS);
}

static void test_ignored_types(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        const struct stack *st;

        /* session lines are checked, never opened, never run. */
        st = load_text(f, "session required debug\n-session optional missing\n"
                          "session include nosuchfile\n", &s);
        assert_int_equal(f->ops.n_open, 0);
        assert_int_equal(stack_size(st, STACK_AUTH), 0);
        assert_int_equal(stack_size(st, STACK_PASSWORD), 0);
        assert_int_equal(stack_run(st, STACK_AUTH, NULL), LATCH_PERM_DENIED);
        assert_int_equal(stack_run(st, STACK_ACCOUNT, NULL), LATCH_PERM_DENIED);
        services_free(s);

        /* password lines are a stack of their own: opened, and not run by
         * the other types. */
        st = load_text(f, "Password required debug\nauth required debug\n", &s);
        assert_int_equal(f->ops.n_open, 2);
        assert_int_equal(stack_size(st, STACK_PASSWORD), 1);
        assert_int_equal(stack_size(st, STACK_AUTH), 1);
        assert_int_equal(stack_size(st, STACK_ACCOUNT), 0);
        services_free(s);
}

static void test_missing_module(void **state) {
        struct fixture *f = *state;

        /* "-TYPE": a missing plugin is not an error, but the line still
         * returns module_unknown each time (libpam does not skip it). */
        assert_int_equal(run_text(f, "-auth optional missing\nauth required debug\n", STACK_AUTH),
                         LATCH_SUCCESS);
        assert_int_equal(run_text(f, "-auth required missing\nauth required debug\n", STACK_AUTH),
                         LATCH_MODULE_UNKNOWN);
        assert_int_equal(run_text(f, "-auth [module_unknown=ignore] missing\nauth required debug\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
}

static void test_include_substack(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        const struct stack *st;

        /* include: only lines of the same type, inline. die ends everything. */
        write_service(f, "common", "auth requisite debug auth=auth_err\n"
                                   "account required debug acct=acct_expired\n");
        st = load_text(f, "auth include common\nauth required debug auth=user_unknown\n"
                          "account required debug\n", &s);
        assert_int_equal(stack_size(st, STACK_AUTH), 2);
        assert_int_equal(stack_size(st, STACK_ACCOUNT), 1);
        assert_int_equal(stack_run(st, STACK_AUTH, NULL), LATCH_AUTH_ERR);
        assert_int_equal(stack_run(st, STACK_ACCOUNT, NULL), LATCH_SUCCESS);
        services_free(s);

        /* substack: die ends only the substack; the caller's lines still run,
         * but the failure stays. */
        assert_int_equal(run_text(f, "auth substack common\nauth required debug auth=user_unknown\n",
                                  STACK_AUTH),
                         LATCH_AUTH_ERR);
        /* done inside a substack ends only the substack. */
        write_service(f, "sub2", "auth sufficient debug\nauth required debug auth=auth_err\n");
        assert_int_equal(run_text(f, "auth substack sub2\nauth required debug auth=user_unknown\n",
                                  STACK_AUTH),
                         LATCH_USER_UNKNOWN);
        assert_int_equal(run_text(f, "auth include sub2\nauth required debug auth=user_unknown\n",
                                  STACK_AUTH),
                         LATCH_SUCCESS);
        /* reset inside a substack goes back to the state at its start. */
        write_service(f, "sub3", "auth required debug auth=auth_err\n"
                                 "auth [maxtries=reset] debug auth=maxtries\n");
        assert_int_equal(run_text(f, "auth required debug\nauth substack sub3\n", STACK_AUTH),
                         LATCH_SUCCESS);
        /* A jump inside a substack cannot leave it: a bad jump, which fails
         * however the lines after the substack go. */
        write_service(f, "sub4", "auth [success=2] debug\nauth required debug auth=auth_err\n");
        assert_int_equal(run_text(f, "auth substack sub4\nauth required debug auth=user_unknown\n"
                                     "auth required debug\n",
                                  STACK_AUTH),
                         LATCH_PERM_DENIED);
}

static void test_load_dir(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        static const char *const skipped[] = { ".hidden", "svc~", "svc.swp", "svc.bak",
                                               "svc.dpkg-old", "svc.rpmnew" };

        write_service(f, "wiki", "auth required debug\n");
        write_service(f, "mail", "auth include wiki\naccount required debug\n");
        char subdir[128];

        for (size_t i = 0; i < ELEMENTSOF(skipped); i++)
                write_service(f, skipped[i], "this is not a service file\n");
        snprintf(subdir, sizeof(subdir), "%s/subdir", f->dir);
        assert_int_equal(mkdir(subdir, 0700), 0);

        assert_int_equal(services_load(f->dir, &debug_ops, &f->ops, diag_collect, f, &s), 0);
        assert_int_equal(f->n_diags, 0);
        assert_int_equal(services_count(s), 2);
        assert_non_null(services_find(s, "wiki"));
        assert_non_null(services_find(s, "mail"));
        assert_null(services_find(s, "svc"));
        assert_null(services_find(s, "subdir"));
        assert_int_equal(stack_run(services_find(s, "mail"), STACK_AUTH, NULL), LATCH_SUCCESS);
        /* Each service line has its own module: wiki, mail's copy, mail's account. */
        assert_int_equal(f->ops.n_open, 3);
        services_free(s);
        rmdir(subdir);

        s = (struct services *) (uintptr_t) 1;
        assert_int_equal(services_load("/nonexistent/latch/services", &debug_ops, &f->ops, NULL,
                                       NULL, &s),
                         -ENOENT);
        assert_int_equal(load(f, "nosuchservice", &s), -ENOENT);
        assert_ptr_equal(s, (struct services *) (uintptr_t) 1);
        services_free(NULL);
        assert_null(services_find(NULL, "x"));
        assert_int_equal(services_count(NULL), 0);
}

/* ---- errors ---- */

static void test_errors(void **state) {
        struct fixture *f = *state;

        expect_errors(f, "auth required debug\nauth requird debug\n",
                      "svc:2: unknown control 'requird'", NULL);
        expect_errors(f, "auth [success=okk] debug\n",
                      "svc:1: bad action 'okk' for 'success' in control", NULL);
        expect_errors(f, "auth [sucess=ok] debug\n",
                      "svc:1: unknown return value 'sucess' in control", NULL);
        expect_errors(f, "auth [success] debug\n",
                      "svc:1: expected '=' after 'success' in control", NULL);
        expect_errors(f, "auth [success=0] debug\n",
                      "svc:1: jump of 0 for 'success' in control (use 'ignore')", NULL);
        expect_errors(f, "auth [success=ok debug\n", "svc:1: unterminated '[' in control", NULL);
        expect_errors(f, "# comment\n\nauth required\n", "svc:3: missing plugin", NULL);
        expect_errors(f, "auth\n", "svc:1: missing control", NULL);
        expect_errors(f, "auht required debug\n", "svc:1: unknown type 'auht'", NULL);
        expect_errors(f, "auth include\n", "svc:1: missing file name after 'include'", NULL);
        expect_errors(f, "auth include nope\n", "svc:1: cannot include 'nope': no such file", NULL);
        expect_errors(f, "auth substack ../x\n",
                      "svc:1: '../x' must name a file in the services directory", NULL);
        expect_errors(f, "auth required debug \\\n", "svc:1: file ends in a continued line", NULL);
        expect_errors(f, "auth required debug [a b\n", "svc:1: unterminated '[' in argument", NULL);
        expect_errors(f, "auth required debug\r\naccount required debug\r\n",
                      "svc:1: carriage return in line (CRLF file?)",
                      "svc:2: carriage return in line (CRLF file?)", NULL);
        /* Module open failures, with the plugin's message; a missing plugin
         * is an error without '-'. */
        expect_errors(f, "auth required debug\nauth required broken\naccount required missing\n",
                      "svc:2: plugin 'broken': bad argument", "svc:3: plugin 'missing' not found",
                      NULL);
        /* Every problem is reported, each with its line (continuations and
         * comments counted). */
        expect_errors(f,
                      "auth required \\\n  debug\n# x\nauth bogus debug\n"
                      "account [default=bad x=ok] debug\naccount required broken\n",
                      "svc:4: unknown control 'bogus'",
                      "svc:5: unknown return value 'x' in control",
                      /* The good lines of a file with bad ones still open
                       * their plugins: their problems show in the same run. */
                      "svc:6: plugin 'broken': bad argument", NULL);
        /* A line too long is reported, and the lines after it checked. */
        {
                size_t n = 70 * 1024;
                char *text = malloc(n + 200);
                assert_non_null(text);
                strcpy(text, "auth required broken\nauth required debug ");
                size_t len = strlen(text);
                memset(text + len, 'x', n);
                strcpy(text + len + n, " \\\n  still the long line\nauht required debug\naccount required missing\n");
                expect_errors(f, text, "svc:2: line too long", "svc:4: unknown type 'auht'",
                              "svc:1: plugin 'broken': bad argument", "svc:5: plugin 'missing' not found", NULL);
                free(text);
        }
}

static void test_include_errors(void **state) {
        struct fixture *f = *state;

        /* A cycle, reported where it closes. */
        write_service(f, "a", "auth include b\n");
        write_service(f, "b", "auth required debug\nauth substack a\n");
        expect_errors(f, "auth include a\n", "b:2: substack cycle: svc -> a -> b -> a", NULL);
        expect_errors(f, "account required debug\nauth include svc\n",
                      "svc:2: include cycle: svc -> svc", NULL);

        /* Problems in an included file name that file. */
        write_service(f, "c", "auth required debug\nauth requisite broken\n");
        expect_errors(f, "auth include c\n", "c:2: plugin 'broken': bad argument", NULL);
        /* An included file with a bad line: its good lines still checked. */
        write_service(f, "e", "auth requird debug\nauth required missing\n");
        expect_errors(f, "auth include e\naccount required broken\n", "e:1: unknown control 'requird'",
                      "e:2: plugin 'missing' not found", "svc:2: plugin 'broken': bad argument", NULL);
        write_service(f, "d", "auth [done] debug\n");
        expect_errors(f, "auth include d\n", "d:1: unknown return value 'done' in control", NULL);

        /* Depth: svc -> n1 -> ... -> n8 is fine, one more is not. */
        for (int i = 1; i <= 9; i++) {
                char name[8], text[64];

                snprintf(name, sizeof(name), "n%d", i);
                if (i < 9)
                        snprintf(text, sizeof(text), "auth include n%d\n", i + 1);
                else
                        snprintf(text, sizeof(text), "auth required debug\n");
                write_service(f, name, text);
        }
        struct services *s = NULL;
        write_service(f, "svc", "auth include n2\n");
        assert_int_equal(load(f, "svc", &s), 0);
        assert_int_equal(stack_run(services_find(s, "svc"), STACK_AUTH, NULL), LATCH_SUCCESS);
        services_free(s);
        expect_errors(f, "auth include n1\n", "n8:1: include nested deeper than 8 files", NULL);
}

static void test_load_dir_errors(void **state) {
        struct fixture *f = *state;
        struct services *s = (struct services *) (uintptr_t) 1;

        /* A broken shared file is reported once, though two services use it;
         * every module opened before the failure is closed (teardown checks). */
        write_service(f, "common", "auth required debug\nauth required broken\n");
        write_service(f, "one", "auth include common\naccount required debug\n");
        write_service(f, "two", "auth include common\n");
        write_service(f, "three", "auth required debug\nauth [bad=x] debug\n");
        assert_int_equal(services_load(f->dir, &debug_ops, &f->ops, diag_collect, f, &s), -EINVAL);
        assert_ptr_equal(s, (struct services *) (uintptr_t) 1);
        assert_int_equal(f->n_diags, 2);
        assert_string_equal(f->diags[0], "common:2: plugin 'broken': bad argument");
        assert_string_equal(f->diags[1], "three:2: unknown return value 'bad' in control");
}

/* ---- evaluation: outcomes and threads ---- */

/* Conversations: a stack stopped by a line that returned incomplete
 * resumes at that line, in auth and then in account; the lines before it
 * are not called again, and outcome() comes once, with the final result. */
static void test_authenticate_steps(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        const struct stack *st;
        struct debug_module *m[4];
        struct stack_auth_state as = {};
        int i = 0;

        st = load_text(f, "auth required debug\n"
                          "auth required asker auth=auth_err\n"
                          "auth optional debug\n"
                          "account required asker\n",
                       &s);
        for (struct debug_module *p = f->ops.modules; p; p = p->next)
                m[3 - i++] = p;
        assert_int_equal(i, 4);

        /* auth asks: nothing reported yet. */
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        assert_int_equal(atomic_load(&m[0]->calls), 1);
        assert_int_equal(atomic_load(&m[1]->calls), 1);
        assert_int_equal(atomic_load(&m[2]->calls), 0);
        for (i = 0; i < 4; i++)
                assert_int_equal(atomic_load(&m[i]->outcomes), 0);
        /* Resumed at the asker, which now fails the required line: auth
         * fails, account never runs, every line called hears it once. */
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_AUTH_ERR);
        assert_int_equal(atomic_load(&m[0]->calls), 1);
        assert_int_equal(atomic_load(&m[1]->calls), 2);
        assert_int_equal(atomic_load(&m[2]->calls), 1);
        assert_int_equal(atomic_load(&m[3]->calls), 0);
        for (i = 0; i < 3; i++) {
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_AUTH_ERR);
        }
        assert_int_equal(atomic_load(&m[3]->outcomes), 0);
        services_free(s);

        /* Asking in auth, then in account, then success. */
        st = load_text(f, "auth required asker\n"
                          "account required asker\n",
                       &s);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_SUCCESS);
        for (struct debug_module *p = f->ops.modules; p; p = p->next) {
                assert_int_equal(atomic_load(&p->calls), 2);
                assert_int_equal(atomic_load(&p->outcomes), 1);
                assert_int_equal(atomic_load(&p->last_outcome), LATCH_SUCCESS);
        }
        services_free(s);

        /* Abandoned while waiting: the lines called hear of the failure. */
        st = load_text(f, "auth required debug\nauth required asker\naccount required debug\n", &s);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        stack_authenticate_end(st, NULL, &as, LATCH_CONV_ERR);
        i = 0;
        for (struct debug_module *p = f->ops.modules; p; p = p->next, i++)
                assert_int_equal(atomic_load(&p->outcomes), i == 0 ? 0 : 1); /* newest first: account's */
        services_free(s);
}

static void test_outcome(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        const struct stack *st;
        struct debug_module *m[4];
        int i = 0;

        st = load_text(f, "auth sufficient debug auth=auth_err\n"
                          "auth required debug\n"
                          "auth required debug\n"
                          "account requisite debug acct=acct_expired\n",
                       &s);
        /* The list is newest first. */
        for (struct debug_module *p = f->ops.modules; p; p = p->next)
                m[3 - i++] = p;
        assert_int_equal(i, 4);

        /* The account line runs (auth succeeded) and decides; every module
         * called is told the final result once. */
        assert_int_equal(stack_authenticate(st, NULL), LATCH_ACCT_EXPIRED);
        for (i = 0; i < 4; i++) {
                assert_int_equal(atomic_load(&m[i]->calls), 1);
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_ACCT_EXPIRED);
        }
        services_free(s);

        /* A failed auth stack: the account stack does not run. */
        st = load_text(f, "auth requisite debug auth=user_unknown\n"
                          "auth required debug\n"
                          "account required debug\n",
                       &s);
        i = 0;
        for (struct debug_module *p = f->ops.modules; p; p = p->next)
                m[2 - i++] = p;
        assert_int_equal(stack_authenticate(st, NULL), LATCH_USER_UNKNOWN);
        assert_int_equal(atomic_load(&m[0]->outcomes), 1);
        assert_int_equal(atomic_load(&m[0]->last_outcome), LATCH_USER_UNKNOWN);
        for (i = 1; i < 3; i++) {
                assert_int_equal(atomic_load(&m[i]->calls), 0);
                assert_int_equal(atomic_load(&m[i]->outcomes), 0);
        }
        services_free(s);
}

/* The modules of the stack loaded last, in file order (the list is newest
 * first). Returns how many. */
static int modules_in_order(struct fixture *f, struct debug_module **m, int max) {
        int n = 0;

        for (struct debug_module *p = f->ops.modules; p; p = p->next)
                n++;
        assert_true(n <= max);
        int i = n;
        for (struct debug_module *p = f->ops.modules; p; p = p->next)
                m[--i] = p;
        return n;
}

static void test_chauthtok(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        struct stack_auth_state as;
        const struct stack *st;
        struct debug_module *m[4];

        /* Both passes over the whole stack, each with its flag. */
        st = load_text(f, "password required debug\npassword optional debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 2);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_SUCCESS);
        assert_true(as.password_changed);
        assert_false(as.update);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(atomic_load(&m[i]->calls), 2);
                assert_int_equal(m[i]->password_flags[0], LATCH_PRELIM_CHECK);
                assert_int_equal(m[i]->password_flags[1], LATCH_UPDATE_AUTHTOK);
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_SUCCESS);
        }
        services_free(s);

        /* The preliminary pass fails: no update pass, the whole preliminary
         * pass ran (required goes on), every line hears the failure. */
        st = load_text(f, "password required debug prechauthtok=authtok_err\n"
                          "password required debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 2);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, LATCH_CHANGE_EXPIRED_AUTHTOK), LATCH_AUTHTOK_ERR);
        assert_false(as.password_changed);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(atomic_load(&m[i]->calls), 1);
                assert_int_equal(m[i]->password_flags[0], LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_AUTHTOK_ERR);
        }
        services_free(s);

        /* The update pass decides. */
        st = load_text(f, "password requisite debug chauthtok=authtok_lock_busy\n"
                          "password required debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 2);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_AUTHTOK_LOCK_BUSY);
        assert_false(as.password_changed);
        assert_int_equal(atomic_load(&m[0]->calls), 2);
        assert_int_equal(atomic_load(&m[1]->calls), 1); /* requisite stopped the update pass */
        assert_int_equal(atomic_load(&m[1]->outcomes), 1);
        services_free(s);

        /* No password lines: denied, as libpam with no modules. The pass
         * flags are the engine's: a caller passing one is refused. */
        st = load_text(f, "auth required debug\n", &s);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_PERM_DENIED);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, LATCH_PRELIM_CHECK), LATCH_SYSTEM_ERR);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, LATCH_UPDATE_AUTHTOK), LATCH_SYSTEM_ERR);
        assert_int_equal(atomic_load(&f->ops.modules->calls), 0);
        services_free(s);
}

static void test_chauthtok_steps(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        struct stack_auth_state as;
        const struct stack *st;
        struct debug_module *m[4];

        /* An asking line in the middle: it stops each pass once; the lines
         * before it are not called again when a pass resumes, and the
         * preliminary pass is not run again once it succeeded. */
        st = load_text(f, "password required debug\npassword required asker\npassword required debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 3);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_INCOMPLETE);
        assert_false(as.update);
        assert_int_equal(atomic_load(&m[0]->calls), 1);
        assert_int_equal(atomic_load(&m[2]->calls), 0);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_INCOMPLETE);
        assert_true(as.update); /* waiting in the update pass */
        assert_int_equal(atomic_load(&m[0]->calls), 2);
        assert_int_equal(atomic_load(&m[2]->calls), 1);
        for (int i = 0; i < 3; i++)
                assert_int_equal(atomic_load(&m[i]->outcomes), 0);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_SUCCESS);
        assert_true(as.password_changed);
        assert_int_equal(atomic_load(&m[0]->calls), 2);
        assert_int_equal(atomic_load(&m[1]->calls), 4);
        assert_int_equal(atomic_load(&m[2]->calls), 2);
        assert_int_equal(m[1]->password_flags[0], LATCH_PRELIM_CHECK);
        assert_int_equal(m[1]->password_flags[1], LATCH_PRELIM_CHECK);
        assert_int_equal(m[1]->password_flags[2], LATCH_UPDATE_AUTHTOK);
        assert_int_equal(m[1]->password_flags[3], LATCH_UPDATE_AUTHTOK);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_SUCCESS);
        }
        services_free(s);

        /* Abandoned while the update pass waits: the lines called in either
         * pass hear of it once. */
        st = load_text(f, "password required debug\npassword required asker\npassword required debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 3);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_INCOMPLETE);
        assert_int_equal(stack_chauthtok_step(st, NULL, &as, 0), LATCH_INCOMPLETE);
        stack_authenticate_end(st, NULL, &as, LATCH_CONV_ERR);
        assert_false(as.update);
        assert_false(as.former.waiting);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_CONV_ERR);
        }
        services_free(s);
}

static void test_expired_change(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        struct stack_auth_state as;
        const struct stack *st;
        struct debug_module *m[4];
        static const char expired[] = "auth required debug\n"
                                      "account required debug acct=new_authtok_reqd\n"
                                      "password required asker\n";

        /* Without change_expired (authenticate), new_authtok_reqd is final. */
        st = load_text(f, expired, &s);
        assert_int_equal(modules_in_order(f, m, 4), 3);
        memset(&as, 0, sizeof as);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_NEW_AUTHTOK_REQD);
        assert_false(as.password_changed);
        assert_int_equal(atomic_load(&m[2]->calls), 0);
        assert_int_equal(atomic_load(&f->ops.expired_changes), 0);
        assert_int_equal(atomic_load(&m[0]->last_outcome), LATCH_NEW_AUTHTOK_REQD);
        services_free(s);

        /* With it (login), the password stack runs with
         * LATCH_CHANGE_EXPIRED_AUTHTOK, resumably, and decides. */
        st = load_text(f, expired, &s);
        assert_int_equal(modules_in_order(f, m, 4), 3);
        memset(&as, 0, sizeof as);
        as.change_expired = true;
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        assert_int_equal(as.type, STACK_PASSWORD);
        assert_int_equal(atomic_load(&f->ops.expired_changes), 1);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_INCOMPLETE);
        assert_int_equal(atomic_load(&m[0]->outcomes), 0);
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_SUCCESS);
        assert_true(as.password_changed);
        assert_int_equal(atomic_load(&f->ops.expired_changes), 1);
        assert_int_equal(atomic_load(&m[0]->calls), 1);
        assert_int_equal(atomic_load(&m[1]->calls), 1);
        assert_int_equal(atomic_load(&m[2]->calls), 4);
        assert_int_equal(m[2]->password_flags[0], LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        assert_int_equal(m[2]->password_flags[3], LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(atomic_load(&m[i]->outcomes), 1);
                assert_int_equal(atomic_load(&m[i]->last_outcome), LATCH_SUCCESS);
        }
        services_free(s);

        /* A refused change fails the login with the password stack's result. */
        st = load_text(f, "auth required debug\n"
                          "account required debug acct=new_authtok_reqd\n"
                          "password required debug chauthtok=authtok_err\n", &s);
        memset(&as, 0, sizeof as);
        as.change_expired = true;
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_AUTHTOK_ERR);
        assert_false(as.password_changed);
        services_free(s);

        /* Other account results end the login as before; a login whose
         * password has not expired never runs the password stack. */
        st = load_text(f, "auth required debug\naccount required debug\npassword required debug\n", &s);
        assert_int_equal(modules_in_order(f, m, 4), 3);
        memset(&as, 0, sizeof as);
        as.change_expired = true;
        assert_int_equal(stack_authenticate_step(st, NULL, &as), LATCH_SUCCESS);
        assert_false(as.password_changed);
        assert_int_equal(atomic_load(&m[2]->calls), 0);
        assert_int_equal(atomic_load(&f->ops.expired_changes), 2);
        services_free(s);
}

#define THREADS 4
#define ROUNDS 2000

struct thread_arg {
        const struct stack *st;
        int results[3];
};

static void *thread_main(void *p) {
        struct thread_arg *a = p;

        for (int i = 0; i < ROUNDS; i++) {
                int r = stack_authenticate(a->st, NULL);
                if (r == LATCH_SUCCESS)
                        a->results[0]++;
                else if (r == LATCH_ACCT_EXPIRED)
                        a->results[1]++;
                else
                        a->results[2]++;
        }
        return NULL;
}

static void test_threads(void **state) {
        struct fixture *f = *state;
        struct services *s = NULL;
        struct thread_arg args[THREADS];
        pthread_t threads[THREADS];
        const struct stack *st;
        int total_calls = 0;

        write_service(f, "sub", "auth [success=ok default=die] debug\n"
                                "auth [success=1 default=ignore] debug\n"
                                "auth requisite debug auth=auth_err\n");
        st = load_text(f, "auth substack sub\n"
                          "auth [success=done new_authtok_reqd=done default=ignore] debug auth=maxtries\n"
                          "auth optional debug auth=ignore\n"
                          "account sufficient debug acct=acct_expired\n"
                          "account required debug acct=acct_expired\n",
                       &s);
        for (int i = 0; i < THREADS; i++) {
                args[i] = (struct thread_arg) { .st = st };
                assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &args[i]), 0);
        }
        for (int i = 0; i < THREADS; i++) {
                assert_int_equal(pthread_join(threads[i], NULL), 0);
                /* Every run of every thread gave the one right answer. */
                assert_int_equal(args[i].results[1], ROUNDS);
        }
        for (struct debug_module *p = f->ops.modules; p; p = p->next) {
                /* No lost update: each called module was called and told the
                 * outcome once per request. */
                assert_int_equal(atomic_load(&p->outcomes), atomic_load(&p->calls));
                assert_true(atomic_load(&p->calls) == 0 || atomic_load(&p->calls) == THREADS * ROUNDS);
                total_calls += atomic_load(&p->calls);
        }
        /* sub's 1st and 2nd line, maxtries, ignore, two account lines. */
        assert_int_equal(total_calls, 6 * THREADS * ROUNDS);
        services_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_simple_controls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bracket_controls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jumps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_arguments_comments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ignored_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_module, setup, teardown),
                cmocka_unit_test_setup_teardown(test_include_substack, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_include_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_dir_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authenticate_steps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outcome, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chauthtok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chauthtok_steps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expired_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
