/* SPDX-License-Identifier: MIT */

/*
 * totp, loaded through the real plugin host with a real store and a pinned
 * clock, driven as the stack drives it (auth() asks, the answer continues
 * it) and through its admin actions as latchd's `plugin` op calls them.
 */

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "otp.h"
#include "plugin-host.h"
#include "store.h"

static const char *plugin_path;

/* A multiple of 30 and of 60: step boundaries are easy to reason about. */
#define T0 INT64_C(1800000000)

struct fixture {
        char *dir;
        store *st;
        struct plugin_host *h;
        struct plugin_line *l;
        int64_t now;
};

/* Every log line of every test, to show that no secret reaches one. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_all;
static size_t log_len;

static void capture_log(void *userdata, int priority, const char *plugin, const struct latch_req *req,
                        const char *message) {
        size_t n = strlen(message);
        fprintf(stderr, "[%s <%d>] %s\n", plugin, priority, message);
        pthread_mutex_lock(&log_lock);
        char *b = realloc(log_all, log_len + n + 2);
        if (b) {
                log_all = b;
                memcpy(log_all + log_len, message, n);
                log_len += n;
                log_all[log_len++] = '\n';
                log_all[log_len] = '\0';
        }
        pthread_mutex_unlock(&log_lock);
}

static bool logged(const char *needle) {
        pthread_mutex_lock(&log_lock);
        bool r = log_all && strstr(log_all, needle);
        pthread_mutex_unlock(&log_lock);
        return r;
}

static int64_t test_clock(void *userdata) {
        return ((struct fixture *) userdata)->now;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char root_dir[] = "/tmp/latch-test-totp-XXXXXX";

static int group_setup(void **unused) {
        return mkdtemp(root_dir) && sodium_init() >= 0 ? 0 : -1;
}

static int group_teardown(void **unused) {
        free(log_all);
        return nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_line(struct fixture *f, int argc, const char *const *argv) {
        char *err = NULL;

        plugin_line_close(f->l);
        f->l = NULL;
        if (plugin_line_open(f->h, plugin_path, argc, argv, &f->l, &err) < 0)
                fail_msg("open: %s", err);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_true(asprintf(&f->dir, "%s/state-XXXXXX", root_dir) > 0);
        assert_non_null(mkdtemp(f->dir));
        f->now = T0;
        assert_int_equal(store_open(f->dir, &f->st), 0);
        assert_int_equal(plugin_host_new("/nonexistent", f->st, &f->h), 0);
        plugin_host_set_clock(f->h, test_clock, f);
        plugin_host_set_log(f->h, capture_log, NULL);
        open_line(f, 0, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        plugin_line_close(f->l);
        plugin_host_free(f->h);
        store_close(f->st);
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f->dir);
        free(f);
        return 0;
}

/* Runs an admin action with string arguments (NULL-terminated name, value
 * pairs). Returns the plugin's result; *ret_answer (may be NULL) gets the
 * answer. */
/* How admin() calls: as an administrator (both false) or as the user's own
 * session (self), re-authenticated or not. */
static bool admin_self, admin_reauthenticated;

static int admin(struct fixture *f, const char *action, json_t **ret_answer, ...) {
        json_t *args = json_object(), *answer = NULL;
        char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, ret_answer);
        for (const char *k; (k = va_arg(ap, const char *));)
                json_object_set_new(args, k, json_string(va_arg(ap, const char *)));
        va_end(ap);
        r = plugin_line_admin(f->l, action, args, admin_self, admin_reauthenticated, &answer, &message);
        json_decref(args);
        if (r < 0) {
                assert_non_null(message);
                fprintf(stderr, "admin %s: %s\n", action, message);
        }
        free(message);
        if (ret_answer)
                *ret_answer = answer;
        else
                json_decref(answer);
        return r;
}

/* One login step as the stack runs the line: auth() asks, then (if it did)
 * the answer `code` continues it. Returns the line's result; *ret_asked
 * tells whether it asked. */
static int attempt(struct plugin_line *l, const char *user, const char *code, bool *ret_asked) {
        struct latch_req *req = NULL;
        const char *msg = NULL;
        int r;

        assert_int_equal(latch_req_new("login", "wiki", user, "pw", NULL, &req), 0);
        r = plugin_line_call(l, STACK_AUTH, req, 0);
        if (ret_asked)
                *ret_asked = r == LATCH_INCOMPLETE;
        if (r == LATCH_INCOMPLETE) {
                assert_true(latch_req_challenge(req));
                assert_int_equal(latch_req_n_prompts(req), 1);
                assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_SECRET);
                assert_string_equal(msg, "Verification code:");
                assert_int_equal(latch_req_set_answers(req, (const char *const[]){ code }, 1), 0);
                r = plugin_line_call(l, STACK_AUTH, req, 0);
        }
        latch_req_free(req);
        return r;
}

/* The code of `secret` (base32) at time t for the record's settings. */
static void code_at(const char *b32, enum otp_algorithm alg, unsigned digits, unsigned period, int64_t t,
                    char out[16]) {
        uint8_t key[OTP_SECRET_MAX];
        int n = otp_base32_decode(b32, key, sizeof key);
        uint32_t v;

        assert_true(n > 0);
        assert_int_equal(otp_hotp(alg, key, (size_t) n, otp_step(t, period), digits, &v), 0);
        otp_format(v, digits, out);
}

/* Enrolls `user` and confirms with the code of now; returns the secret
 * (base32, static). */
static const char *enroll(struct fixture *f, const char *user) {
        static char secret[64];
        json_t *ans = NULL;
        char code[16];

        assert_int_equal(admin(f, "enroll", &ans, "user", user, NULL), 0);
        snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(ans, "secret")));
        json_decref(ans);
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", user, "code", code, NULL), 0);
        return secret;
}

static void test_args(void **state) {
        struct fixture *f = *state;
        static const char *const bad[] = { "digits=7", "digits=9", "period=0", "window=11", "algorithm=md5",
                                           "issuer=a:b", "issuer=", "colour=red", "digits=six",
                                           /* not UTF-8; a C1 control; a right-to-left override */
                                           "issuer=Caf\xe9", "issuer=a\xc2\x9b", "issuer=a\xe2\x80\xae" "b" };
        char *err = NULL;
        struct plugin_line *l = NULL;

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_true(plugin_line_open(f->h, plugin_path, 1, &bad[i], &l, &err) < 0);
                assert_non_null(err);
                free(err);
                err = NULL;
        }
        open_line(f, 5, (const char *const[]){ "digits=8", "period=60", "window=2", "algorithm=sha512",
                                               "issuer=ACME Co" });
        open_line(f, 1, (const char *const[]){ "issuer=Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac" });
        json_t *ans = NULL;
        assert_int_equal(admin(f, "enroll", &ans, "user", "zoe", NULL), 0);
        assert_string_equal(json_string_value(json_object_get(ans, "issuer")), "Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac");
        json_decref(ans);
}

/* Without an enrollment the line says user_unknown, without asking; a
 * pending one changes nothing until confirmed. */
static void test_not_enrolled(void **state) {
        struct fixture *f = *state;
        bool asked = true;
        json_t *ans = NULL;

        assert_int_equal(attempt(f->l, "nobody", "123456", &asked), LATCH_USER_UNKNOWN);
        assert_false(asked);

        assert_int_equal(admin(f, "enroll", &ans, "user", "alice", NULL), 0);
        assert_true(json_is_true(json_object_get(ans, "pending")));
        json_decref(ans);
        assert_int_equal(attempt(f->l, "alice", "123456", &asked), LATCH_USER_UNKNOWN);
        assert_false(asked);
}

/* The enrollment answer, confirmation by a first code, and that code
 * refused as the first login; a later step's code accepted once. */
static void test_enroll_confirm_replay(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char secret[64], code[16], wrong[16], uri[512];

        assert_int_equal(admin(f, "enroll", &ans, "user", "alice", NULL), 0);
        snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(ans, "secret")));
        snprintf(uri, sizeof uri, "%s", json_string_value(json_object_get(ans, "uri")));
        assert_int_equal(strlen(secret), 32); /* 160 bits */
        assert_string_equal(json_string_value(json_object_get(ans, "algorithm")), "sha1");
        assert_int_equal(json_integer_value(json_object_get(ans, "digits")), 6);
        assert_int_equal(json_integer_value(json_object_get(ans, "period")), 30);
        json_decref(ans);
        char want[512];
        snprintf(want, sizeof want, "otpauth://totp/latch:alice?secret=%s&issuer=latch&algorithm=SHA1&digits=6&period=30",
                 secret);
        assert_string_equal(uri, want);

        /* A wrong code does not confirm. */
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        snprintf(wrong, sizeof wrong, "%06u", (unsigned) ((strtoul(code, NULL, 10) + 1) % 1000000));
        /* A wrong code is a refusal (`denied`); a malformed one bad input. */
        assert_int_equal(admin(f, "confirm", NULL, "user", "alice", "code", wrong, NULL), -EACCES);
        assert_int_equal(admin(f, "confirm", NULL, "user", "alice", "code", "12345", NULL), -EINVAL);
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_USER_UNKNOWN);

        assert_int_equal(admin(f, "confirm", NULL, "user", "alice", "code", code, NULL), 0);
        /* Confirmed once: not again. */
        assert_int_equal(admin(f, "confirm", NULL, "user", "alice", "code", code, NULL), -ENOENT);

        /* The confirmation code cannot be replayed as the first login... */
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_AUTH_ERR);
        assert_true(logged("replay"));
        /* ...nor can a wrong one pass... */
        assert_int_equal(attempt(f->l, "alice", wrong, NULL), LATCH_AUTH_ERR);
        /* ...but the next step's code is accepted, once. */
        f->now += 30;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_SUCCESS);
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_AUTH_ERR);
        /* Within the window, an earlier step than the last accepted one is
         * refused too: steps only go forward. */
        f->now += 30;
        char prev[16];
        code_at(secret, OTP_SHA1, 6, 30, f->now - 60, prev);
        assert_int_equal(attempt(f->l, "alice", prev, NULL), LATCH_AUTH_ERR);

        /* The record survives a restart of the host (and its store). */
        plugin_line_close(f->l);
        f->l = NULL;
        plugin_host_free(f->h);
        store_close(f->st);
        assert_int_equal(store_open(f->dir, &f->st), 0);
        assert_int_equal(plugin_host_new("/nonexistent", f->st, &f->h), 0);
        plugin_host_set_clock(f->h, test_clock, f);
        plugin_host_set_log(f->h, capture_log, NULL);
        open_line(f, 0, NULL);
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_AUTH_ERR);
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "alice", code, NULL), LATCH_SUCCESS);
        assert_false(logged(secret));
}

/* window=1: one step either side, not two. */
static void test_window(void **state) {
        struct fixture *f = *state;
        const char *secret = enroll(f, "bob");
        char code[16];

        f->now += 300;
        code_at(secret, OTP_SHA1, 6, 30, f->now + 60, code);
        assert_int_equal(attempt(f->l, "bob", code, NULL), LATCH_AUTH_ERR);
        code_at(secret, OTP_SHA1, 6, 30, f->now - 60, code);
        assert_int_equal(attempt(f->l, "bob", code, NULL), LATCH_AUTH_ERR);
        code_at(secret, OTP_SHA1, 6, 30, f->now - 30, code);
        assert_int_equal(attempt(f->l, "bob", code, NULL), LATCH_SUCCESS);
        code_at(secret, OTP_SHA1, 6, 30, f->now + 30, code);
        assert_int_equal(attempt(f->l, "bob", code, NULL), LATCH_SUCCESS);
        /* "123 456" as apps show it is the same code. */
        f->now += 120;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        char spaced[16];
        snprintf(spaced, sizeof spaced, "%.3s %.3s", code, code + 3);
        assert_int_equal(attempt(f->l, "bob", spaced, NULL), LATCH_SUCCESS);
}

struct racer {
        struct plugin_line *l;
        const char *code;
        pthread_barrier_t *go;
        int result;
};

static void *race(void *userdata) {
        struct racer *r = userdata;
        struct latch_req *req = NULL;

        if (latch_req_new("login", "wiki", "carol", "pw", NULL, &req) < 0)
                return NULL;
        if (plugin_line_call(r->l, STACK_AUTH, req, 0) == LATCH_INCOMPLETE &&
            latch_req_set_answers(req, (const char *const[]){ r->code }, 1) == 0) {
                pthread_barrier_wait(r->go);
                r->result = plugin_line_call(r->l, STACK_AUTH, req, 0);
        } else
                pthread_barrier_wait(r->go);
        latch_req_free(req);
        return NULL;
}

/* 50 concurrent submissions of one valid code: exactly one wins. */
static void test_parallel(void **state) {
        enum { N = 50 };
        struct fixture *f = *state;
        const char *secret = enroll(f, "carol");
        struct racer r[N];
        pthread_t t[N];
        pthread_barrier_t go;
        char code[16];
        int wins = 0, refused = 0;

        f->now += 30;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(pthread_barrier_init(&go, NULL, N), 0);
        for (int i = 0; i < N; i++) {
                r[i] = (struct racer){ .l = f->l, .code = code, .go = &go, .result = -1 };
                assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        for (int i = 0; i < N; i++) {
                pthread_join(t[i], NULL);
                wins += r[i].result == LATCH_SUCCESS;
                refused += r[i].result == LATCH_AUTH_ERR;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(wins, 1);
        assert_int_equal(refused, N - 1);
}

/* Ten one-time recovery codes at the code prompt, each usable once, any
 * case, with or without dashes; new ones void the old. */
static void test_recovery(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL, *codes;
        char c[3][32], upper[32];

        assert_int_equal(admin(f, "recovery", NULL, "user", "dave", NULL), -ENOENT);
        (void) enroll(f, "dave");
        assert_int_equal(admin(f, "recovery", &ans, "user", "dave", NULL), 0);
        codes = json_object_get(ans, "codes");
        assert_int_equal(json_array_size(codes), 10);
        for (size_t i = 0; i < 10; i++) {
                const char *s = json_string_value(json_array_get(codes, i));
                assert_non_null(s);
                assert_int_equal(strlen(s), 19); /* xxxx-xxxx-xxxx-xxxx */
                for (size_t k = 0; k < i; k++)
                        assert_string_not_equal(s, json_string_value(json_array_get(codes, k)));
        }
        for (int i = 0; i < 3; i++)
                snprintf(c[i], sizeof c[i], "%s", json_string_value(json_array_get(codes, (size_t) i)));
        json_decref(ans);

        assert_int_equal(attempt(f->l, "dave", c[0], NULL), LATCH_SUCCESS);
        assert_int_equal(attempt(f->l, "dave", c[0], NULL), LATCH_AUTH_ERR);
        /* Upper case, no dashes. */
        size_t o = 0;
        for (const char *p = c[1]; *p; p++)
                if (*p != '-')
                        upper[o++] = (char) (*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        upper[o] = '\0';
        assert_int_equal(attempt(f->l, "dave", upper, NULL), LATCH_SUCCESS);
        assert_int_equal(attempt(f->l, "dave", c[1], NULL), LATCH_AUTH_ERR);
        assert_int_equal(attempt(f->l, "dave", "aaaa-aaaa-aaaa-aaaa", NULL), LATCH_AUTH_ERR);

        assert_int_equal(admin(f, "status", &ans, "user", "dave", NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(ans, "recovery_codes")), 8);
        assert_null(json_object_get(ans, "secret"));
        json_decref(ans);

        /* New codes void the old ones. */
        assert_int_equal(admin(f, "recovery", NULL, "user", "dave", NULL), 0);
        assert_int_equal(attempt(f->l, "dave", c[2], NULL), LATCH_AUTH_ERR);
        for (int i = 0; i < 3; i++)
                assert_false(logged(c[i]));
}

static void test_remove(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char code[16];
        const char *secret = enroll(f, "erin");

        assert_int_equal(admin(f, "remove", &ans, "user", "erin", NULL), 0);
        assert_true(json_is_true(json_object_get(ans, "removed")));
        json_decref(ans);
        f->now += 30;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "erin", code, NULL), LATCH_USER_UNKNOWN);
        assert_int_equal(admin(f, "remove", &ans, "user", "erin", NULL), 0);
        assert_true(json_is_false(json_object_get(ans, "removed")));
        json_decref(ans);
}


/* Confirming a new enrollment voids the recovery codes of the secret it
 * replaces; a removal forgets them too. */
static void test_recovery_void_on_reenroll(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char c[2][32], code[16], secret2[64];

        (void) enroll(f, "gina");
        assert_int_equal(admin(f, "recovery", &ans, "user", "gina", NULL), 0);
        for (int i = 0; i < 2; i++)
                snprintf(c[i], sizeof c[i], "%s", json_string_value(json_array_get(json_object_get(ans, "codes"), (size_t) i)));
        json_decref(ans);

        /* A pending re-enrollment leaves the old factor, codes included, in
         * force until it is confirmed. */
        f->now += 60;
        assert_int_equal(admin(f, "enroll", &ans, "user", "gina", NULL), 0);
        snprintf(secret2, sizeof secret2, "%s", json_string_value(json_object_get(ans, "secret")));
        json_decref(ans);
        assert_int_equal(attempt(f->l, "gina", c[0], NULL), LATCH_SUCCESS);

        code_at(secret2, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", "gina", "code", code, NULL), 0);
        assert_int_equal(attempt(f->l, "gina", c[1], NULL), LATCH_AUTH_ERR);
        assert_int_equal(admin(f, "status", &ans, "user", "gina", NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(ans, "recovery_codes")), 0);
        json_decref(ans);

        /* Codes made for the new secret, then a removal and a new
         * enrollment: the codes do not come back. */
        assert_int_equal(admin(f, "recovery", &ans, "user", "gina", NULL), 0);
        snprintf(c[0], sizeof c[0], "%s", json_string_value(json_array_get(json_object_get(ans, "codes"), 0)));
        json_decref(ans);
        assert_int_equal(admin(f, "remove", NULL, "user", "gina", NULL), 0);
        f->now += 60;
        (void) enroll(f, "gina");
        assert_int_equal(attempt(f->l, "gina", c[0], NULL), LATCH_AUTH_ERR);
}

/* A re-enrollment is confirmed by the new secret's code whatever the old
 * secret accepted: in the very step the old code re-authenticated (a new
 * phone, set up right after a login), and under a line with a longer period
 * (whose steps count lower than the old secret's). The confirming code
 * still cannot log in. */
static void test_reenroll_confirm(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char code[16], secret2[64];

        const char *old = enroll(f, "ines");
        char secret1[64];
        snprintf(secret1, sizeof secret1, "%s", old);
        f->now += 60;
        code_at(secret1, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_SUCCESS);

        assert_int_equal(admin(f, "enroll", &ans, "user", "ines", NULL), 0);
        snprintf(secret2, sizeof secret2, "%s", json_string_value(json_object_get(ans, "secret")));
        json_decref(ans);
        code_at(secret2, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", "ines", "code", code, NULL), 0);
        assert_int_equal(admin(f, "confirm", NULL, "user", "ines", "code", code, NULL), -ENOENT);
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_AUTH_ERR);
        code_at(secret1, OTP_SHA1, 6, 30, f->now + 30, code);
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_AUTH_ERR);
        code_at(secret2, OTP_SHA1, 6, 30, f->now + 30, code);
        f->now += 30;
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_SUCCESS);

        /* The same user moved to a line with period=300: its steps are a
         * tenth of the 30-second ones already accepted. */
        open_line(f, 1, (const char *const[]){ "period=300" });
        f->now += 60;
        assert_int_equal(admin(f, "enroll", &ans, "user", "ines", NULL), 0);
        snprintf(secret2, sizeof secret2, "%s", json_string_value(json_object_get(ans, "secret")));
        json_decref(ans);
        code_at(secret2, OTP_SHA1, 6, 300, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", "ines", "code", code, NULL), 0);
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_AUTH_ERR);
        f->now += 300;
        code_at(secret2, OTP_SHA1, 6, 300, f->now, code);
        assert_int_equal(attempt(f->l, "ines", code, NULL), LATCH_SUCCESS);
}

/* A pending enrollment waits 10 minutes for its first code, then is void
 * (and its secret forgotten). */
static void test_pending_expires(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char secret[64], code[16];

        assert_int_equal(admin(f, "enroll", &ans, "user", "hugo", NULL), 0);
        snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(ans, "secret")));
        assert_int_equal(json_integer_value(json_object_get(ans, "pending_expires_at")), f->now + 600);
        json_decref(ans);

        /* At the end of its lifetime it is still pending... */
        f->now += 600;
        assert_int_equal(admin(f, "status", &ans, "user", "hugo", NULL), 0);
        assert_true(json_is_true(json_object_get(ans, "pending")));
        json_decref(ans);

        /* ...and after it, void. */
        f->now += 30;
        assert_int_equal(admin(f, "status", &ans, "user", "hugo", NULL), 0);
        assert_true(json_is_false(json_object_get(ans, "pending")));
        assert_null(json_object_get(ans, "pending_expires_at"));
        json_decref(ans);
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", "hugo", "code", code, NULL), -ENOENT);
        assert_int_equal(attempt(f->l, "hugo", code, NULL), LATCH_USER_UNKNOWN);
        /* Forgotten: hugo had nothing else, so no record is left. */
        uint8_t buf[4096];
        size_t len = sizeof buf;
        assert_int_equal(store_kv_get(f->st, "totp", "hugo", 4, buf, &len), -ENOENT);

        /* A fresh enrollment works again, confirmed in time. */
        const char *fresh = enroll(f, "hugo");
        f->now += 30;
        code_at(fresh, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "hugo", code, NULL), LATCH_SUCCESS);
}

/* A user's own session (self): status and confirm always; enroll,
 * recovery and remove only re-authenticated. */
static void test_self(void **state) {
        struct fixture *f = *state;
        json_t *ans = NULL;
        char code[16], secret[64];

        admin_self = true;
        admin_reauthenticated = false;
        assert_int_equal(admin(f, "status", NULL, "user", "ivy", NULL), 0);
        assert_int_equal(admin(f, "enroll", NULL, "user", "ivy", NULL), -EPERM);
        assert_int_equal(admin(f, "recovery", NULL, "user", "ivy", NULL), -EPERM);
        assert_int_equal(admin(f, "remove", NULL, "user", "ivy", NULL), -EPERM);

        admin_reauthenticated = true;
        assert_int_equal(admin(f, "enroll", &ans, "user", "ivy", NULL), 0);
        snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(ans, "secret")));
        json_decref(ans);

        admin_reauthenticated = false;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(admin(f, "confirm", NULL, "user", "ivy", "code", code, NULL), 0);
        assert_int_equal(admin(f, "remove", NULL, "user", "ivy", NULL), -EPERM);
        f->now += 30;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "ivy", code, NULL), LATCH_SUCCESS);

        admin_reauthenticated = true;
        assert_int_equal(admin(f, "recovery", NULL, "user", "ivy", NULL), 0);
        assert_int_equal(admin(f, "remove", NULL, "user", "ivy", NULL), 0);
        admin_self = admin_reauthenticated = false;
}

struct raw {
        const uint8_t *b;
        size_t n;
};

static int put_raw_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        const struct raw *p = userdata;
        memcpy(newbuf, p->b, p->n);
        *newlen = p->n;
        return 1;
}

/* A record of version 1 (before pending enrollments expired) still reads:
 * its confirmed secret works, its pending enrollment is void. */
static void test_record_v1(void **state) {
        struct fixture *f = *state;
        const char *secret = enroll(f, "jack");
        uint8_t buf[4096];
        size_t len = sizeof buf;
        char code[16];

        assert_int_equal(store_kv_get(f->st, "totp", "jack", 4, buf, &len), 0);
        /* v2 = v1 with pending_at (8 bytes) after the pending params. */
        size_t params = 1 + 1 + 4 + OTP_SECRET_SIZE, at = 2 + 2 * params;
        buf[0] = 1;
        memmove(buf + at, buf + at + 8, len - at - 8);
        len -= 8;
        struct raw p = { buf, len };
        assert_int_equal(store_kv_update(f->st, "totp", "jack", 4, put_raw_cb, &p), 0);

        f->now += 30;
        code_at(secret, OTP_SHA1, 6, 30, f->now, code);
        assert_int_equal(attempt(f->l, "jack", code, NULL), LATCH_SUCCESS);
}

static void test_admin_errors(void **state) {
        struct fixture *f = *state;

        assert_int_equal(admin(f, "frobnicate", NULL, "user", "x", NULL), -EOPNOTSUPP);
        assert_int_equal(admin(f, "enroll", NULL, NULL), -EINVAL);
        assert_int_equal(admin(f, "confirm", NULL, "user", "nobody", "code", "123456", NULL), -ENOENT);
}

/* Parses the query parameter `name` of an otpauth URI. */
static void uri_param(const char *uri, const char *name, char *out, size_t outsize) {
        char key[32];
        const char *p;

        snprintf(key, sizeof key, "%s=", name);
        p = strchr(uri, '?');
        assert_non_null(p);
        for (p++; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
                if (strncmp(p, key, strlen(key)) == 0) {
                        p += strlen(key);
                        size_t n = strcspn(p, "&");
                        assert_true(n < outsize);
                        memcpy(out, p, n);
                        out[n] = '\0';
                        return;
                }
        fail_msg("no %s in %s", name, uri);
}

static void oathtool(const char *args, char out[32]) {
        char cmd[512];
        FILE *p;

        snprintf(cmd, sizeof cmd, "oathtool %s", args);
        p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(out, 32, p));
        assert_int_equal(pclose(p), 0);
        out[strcspn(out, "\n")] = '\0';
}

/* latch's enrollment URI imported into oathtool: its codes confirm the
 * enrollment and log in, for every algorithm, 8 digits and 60 s. */
static void test_oathtool_imports_uri(void **state) {
        struct fixture *f = *state;
        static const char *const algs[] = { "sha1", "sha256", "sha512" };

        for (int i = 0; i < 3; i++) {
                char arg[32], user[16], secret[64], alg[16], digits[8], period[8], args[256], code[32];
                json_t *ans = NULL;

                snprintf(arg, sizeof arg, "algorithm=%s", algs[i]);
                open_line(f, 3, (const char *const[]){ arg, "digits=8", "period=60" });
                snprintf(user, sizeof user, "oath%d", i);
                assert_int_equal(admin(f, "enroll", &ans, "user", user, NULL), 0);
                const char *uri = json_string_value(json_object_get(ans, "uri"));
                uri_param(uri, "secret", secret, sizeof secret);
                uri_param(uri, "algorithm", alg, sizeof alg);
                uri_param(uri, "digits", digits, sizeof digits);
                uri_param(uri, "period", period, sizeof period);
                json_decref(ans);

                snprintf(args, sizeof args, "--totp=%s -b -d %s -s %ss -N @%lld %s", alg, digits, period,
                         (long long) f->now, secret);
                oathtool(args, code);
                assert_int_equal(strlen(code), 8);
                assert_int_equal(admin(f, "confirm", NULL, "user", user, "code", code, NULL), 0);
                f->now += 60;
                snprintf(args, sizeof args, "--totp=%s -b -d %s -s %ss -N @%lld %s", alg, digits, period,
                         (long long) f->now, secret);
                oathtool(args, code);
                assert_int_equal(attempt(f->l, user, code, NULL), LATCH_SUCCESS);
        }
}

/* Plain `oathtool --totp -b SECRET` (its defaults: SHA-1, 6 digits, 30 s)
 * makes codes the default line accepts. */
static void test_oathtool_codes_accepted(void **state) {
        struct fixture *f = *state;
        const char *secret = enroll(f, "frank");
        char args[256], code[32];

        for (int i = 1; i <= 3; i++) {
                f->now += 30;
                snprintf(args, sizeof args, "--totp -b -N @%lld %s", (long long) f->now, secret);
                oathtool(args, code);
                assert_int_equal(attempt(f->l, "frank", code, NULL), LATCH_SUCCESS);
        }
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_args, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_enrolled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_enroll_confirm_replay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_window, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recovery_void_on_reenroll, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reenroll_confirm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pending_expires, setup, teardown),
                cmocka_unit_test_setup_teardown(test_self, setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_admin_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oathtool_imports_uri, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oathtool_codes_accepted, setup, teardown),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s TOTP_SO\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
