/* SPDX-License-Identifier: MIT */

/*
 * Isolated plugin lines through the plugin host: requests reach a worker
 * process and come back with their claims and log lines; a worker that
 * crashes or hangs costs one call (answered authinfo_unavail, logged with
 * the plugin's name) and is replaced; workers retire after max_requests,
 * inherit no fd beyond 0-2, serve concurrent callers, and are all reaped.
 *
 * Arguments: the latch-worker program, then the folder holding the test
 * plugins (crash.so, hang.so, slow.so, echo.so from iso-plugin.c).
 */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "macro.h"
#include "plugin-host.h"

static const char *worker_path;
static const char *plugin_dir;

/* ---- captured log lines ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_text; /* every line, "NAME|req|message\n" */

static void capture_log(void *userdata, int priority, const char *plugin, const struct latch_req *req,
                        const char *message) {
        char *s;

        pthread_mutex_lock(&log_lock);
        if (asprintf(&s, "%s%s|%s|%s\n", log_text ?: "", plugin, req ? "req" : "-", message) > 0) {
                free(log_text);
                log_text = s;
        }
        pthread_mutex_unlock(&log_lock);
}

static bool log_has(const char *needle) {
        bool r;
        pthread_mutex_lock(&log_lock);
        r = log_text && strstr(log_text, needle);
        pthread_mutex_unlock(&log_lock);
        return r;
}

static void log_reset(void) {
        pthread_mutex_lock(&log_lock);
        free(log_text);
        log_text = NULL;
        pthread_mutex_unlock(&log_lock);
}

/* ---- helpers ---- */

static int64_t pinned_now(void *userdata) { return 1234567; }

static struct plugin_host *host_new(const char *name, int isolate, int64_t timeout_ms, uint32_t max_requests) {
        struct plugin_host *h = NULL;
        struct plugin_config pc = {
                .name = (char *) name,
                .timeout_ms = timeout_ms,
                .isolate = isolate,
                .max_requests = max_requests,
        };

        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        plugin_host_set_log(h, capture_log, NULL);
        plugin_host_set_clock(h, pinned_now, NULL);
        assert_int_equal(plugin_host_configure(h, &pc, name ? 1 : 0, worker_path), 0);
        log_reset();
        return h;
}

/* Frees the host and checks that no worker process is left behind. */
static void host_free_checked(struct plugin_host *h) {
        plugin_host_free(h);
        errno = 0;
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

static struct plugin_line *line_open(struct plugin_host *h, const char *plugin, int argc, const char *const *argv) {
        struct plugin_line *l = NULL;
        char *error = NULL;
        int r = plugin_line_open(h, plugin, argc, argv, &l, &error);
        if (r < 0)
                fail_msg("open %s: %s (%s)", plugin, strerror(-r), error ?: "no message");
        free(error);
        return l;
}

/* Calls auth as `user` and returns the result; *ret_pid gets the "pid"
 * claim (0 when absent). */
static int call_auth(struct plugin_line *l, const char *user, long *ret_pid) {
        struct latch_req *req = NULL;
        json_t *pid;
        int r;

        assert_int_equal(latch_req_new("authenticate", "svc", user, "secret", "10.0.0.1", &req), 0);
        r = plugin_line_call(l, STACK_AUTH, req, 0);
        pid = json_object_get(latch_req_claims(req), "pid");
        if (ret_pid)
                *ret_pid = pid ? strtol(json_string_value(pid), NULL, 10) : 0;
        latch_req_free(req);
        return r;
}

static double mono_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- tests ---- */

static void test_echo_round_trip(void **unused) {
        struct plugin_host *h = host_new("echo", 1, 5000, 0);
        const char *args[] = {"a", "b c\"\\"};
        struct latch_req *req = NULL;
        struct plugin_line *l;
        json_t *claims, *fds;
        int leak;

        /* An inheritable fd in this process must not reach the worker. */
        leak = open("/dev/null", O_RDONLY);
        assert_true(leak >= 3);

        l = line_open(h, "echo", 2, args);
        assert_true(plugin_line_is_isolated(l));
        assert_true(plugin_line_has_outcome(l));
        assert_string_equal(plugin_line_name(l), "echo");
        assert_true(log_has("echo|-|opened with 2 argument(s)"));

        assert_int_equal(latch_req_new("authenticate", "svc", "alice", "secret", "10.0.0.1", &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        claims = latch_req_claims(req);
        assert_true(strtol(json_string_value(json_object_get(claims, "pid")), NULL, 10) != (long) getpid());
        assert_string_equal(json_string_value(json_object_get(claims, "password_ok")), "yes");
        assert_string_equal(json_string_value(json_object_get(claims, "now")), "1234567");
        assert_int_equal(json_array_size(json_object_get(claims, "args")), 2);
        assert_string_equal(json_string_value(json_array_get(json_object_get(claims, "args"), 1)), "b c\"\\");
        assert_int_equal(json_array_size(json_object_get(claims, "groups")), 2);
        fds = json_object_get(claims, "fds");
        assert_int_equal(json_array_size(fds), 3);
        assert_string_equal(json_string_value(json_array_get(fds, 0)), "0");
        assert_string_equal(json_string_value(json_array_get(fds, 1)), "1");
        assert_string_equal(json_string_value(json_array_get(fds, 2)), "2");
        assert_true(log_has("echo|req|hello from pid"));

        assert_int_equal(plugin_line_call(l, STACK_ACCOUNT, req, 0), LATCH_SUCCESS);
        plugin_line_outcome(l, req, LATCH_PERM_DENIED);
        assert_true(log_has("echo|req|outcome 6"));
        latch_req_free(req);

        /* A wrong password travels as such. */
        assert_int_equal(latch_req_new("login", "svc", "bob", "not-it\n\x01", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        assert_string_equal(json_string_value(json_object_get(latch_req_claims(req), "password_ok")), "no");
        latch_req_free(req);

        close(leak);
        plugin_line_close(l);
        host_free_checked(h);
}

/* One password change through the echo plugin's password(), written down
 * step by step (results, prompts, the items the host holds, the claims but
 * "pid"), so that an isolated line can be compared with an in-process one. */
static void transcript_add(char **t, const char *fmt, ...) {
        va_list ap;
        char *add = NULL, *n = NULL;

        va_start(ap, fmt);
        assert_true(vasprintf(&add, fmt, ap) >= 0);
        va_end(ap);
        assert_true(asprintf(&n, "%s%s\n", *t ?: "", add) >= 0);
        free(*t);
        free(add);
        *t = n;
}

static void transcript_step(char **t, struct latch_req *req, int r) {
        json_t *claims = json_deep_copy(latch_req_claims(req));
        const char *old = latch_req_item(req, LATCH_ITEM_OLDPASSWORD), *pw = latch_req_item(req, LATCH_ITEM_PASSWORD);
        char *c;

        json_object_del(claims, "pid");
        c = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
        transcript_add(t, "result %d old=%s new=%s claims=%s", r, old ?: "(null)", pw ?: "(null)", c);
        free(c);
        json_decref(claims);
        for (size_t i = 0; i < latch_req_n_prompts(req); i++) {
                const char *m;
                int style = latch_req_prompt(req, i, &m);
                transcript_add(t, "  prompt %d %s", style, m);
        }
}

static char *password_transcript(int isolate) {
        struct plugin_host *h = host_new("echo", isolate, 5000, 0);
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        struct latch_req *req = NULL;
        char *t = NULL;
        int r;

        assert_int_equal(plugin_line_is_isolated(l), isolate == 1);

        /* passwd: the current password asked and set, then the new one. */
        assert_int_equal(latch_req_new("passwd", "svc", "alice", NULL, NULL, &req), 0);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK);
        transcript_step(&t, req, r);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "old-pw" }, 1), 0);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK);
        transcript_step(&t, req, r);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK);
        transcript_step(&t, req, r);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "new-pw", "new-pw" }, 2), 0);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK);
        transcript_step(&t, req, r);
        plugin_line_outcome(l, req, r);
        latch_req_free(req);

        /* An expired login: OLDPASSWORD goes to the worker with the call,
         * the flag too; a wrong current password. */
        assert_int_equal(latch_req_new("login", "svc", "alice", "old-pw", NULL, &req), 0);
        latch_req_begin_expired_change(req);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        transcript_step(&t, req, r);
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_PASSWORD, "given-pw"), 0);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        transcript_step(&t, req, r);
        latch_req_free(req);

        assert_int_equal(latch_req_new("passwd", "svc", "alice", NULL, NULL, &req), 0);
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, "guess"), 0);
        r = plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK);
        transcript_step(&t, req, r);
        latch_req_free(req);

        plugin_line_close(l);
        plugin_host_free(h);
        return t;
}

/* A password call in a worker behaves as in latchd: flags, OLDPASSWORD and
 * prompts go there, the items the plugin set come back. */
static void test_password_isolated(void **unused) {
        _cleanup_free_ char *in = password_transcript(0), *iso = password_transcript(1);
        static const char expect[] =
                "result 31 old=(null) new=(null) claims={\"flags\":[\"16384\"]}\n"
                "  prompt 1 Current password:\n"
                "result 0 old=old-pw new=(null) claims={\"flags\":[\"16384\",\"16384\"],\"same_worker\":\"yes\"}\n"
                "result 31 old=old-pw new=(null) claims={\"flags\":[\"16384\",\"16384\",\"8192\"],\"same_worker\":\"yes\"}\n"
                "  prompt 1 New password:\n"
                "  prompt 1 Retype new password:\n"
                "result 0 old=(null) new=new-pw claims={\"flags\":[\"16384\",\"16384\",\"8192\",\"8192\"],\"same_worker\":\"yes\"}\n"
                "result 0 old=old-pw new=(null) claims={\"flags\":[\"16416\"]}\n"
                "result 0 old=(null) new=given-pw claims={\"flags\":[\"16416\",\"8224\"]}\n"
                "result 7 old=guess new=(null) claims={\"flags\":[\"16384\"]}\n";

        assert_string_equal(in, expect);
        assert_string_equal(iso, expect);
}

/* A conversation through a worker: the worker that asked stays with the
 * request (its plugin state too) and gets the answers; an abandoned one is
 * killed, and the line goes on with fresh workers. */
static void test_conversation_isolated(void **unused) {
        struct plugin_host *h = host_new("echo", 1, 5000, 0);
        struct latch_req *req = NULL;
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        const char *msg;
        json_t *claims;

        for (int round = 0; round < 6; round++) {
                assert_int_equal(latch_req_new("login", "svc", "asker", round ? "pw" : NULL, NULL, &req), 0);
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
                assert_true(latch_req_challenge(req));
                assert_int_equal(latch_req_n_prompts(req), 1);
                assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_SECRET);
                assert_string_equal(msg, "Code:");
                if (round % 2 == 1) {
                        /* Abandoned while a worker holds it. */
                        latch_req_free(req);
                        continue;
                }
                assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "4242" }, 1), 0);
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
                claims = latch_req_claims(req);
                assert_string_equal(json_string_value(json_object_get(claims, "same_worker")), "yes");
                /* With no password sent, the first secret answer becomes it. */
                assert_string_equal(json_string_value(json_object_get(claims, "password")), round ? "pw" : "4242");
                latch_req_free(req);
        }
        /* Plain calls still work: the killed workers were replaced. */
        assert_int_equal(call_auth(l, "alice", NULL), LATCH_SUCCESS);

        /* A conversation that ends unanswered reports its failure to the
         * line that asked: the outcome reaches the plugin (in another
         * worker), not the one waiting for the answers, which goes. */
        assert_int_equal(latch_req_new("login", "svc", "asker-gone", "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
        log_reset();
        plugin_line_outcome(l, req, LATCH_CONV_ERR);
        assert_true(log_has("echo|req|outcome 19"));
        assert_false(log_has("replaced"));
        latch_req_free(req);
        assert_int_equal(call_auth(l, "alice", NULL), LATCH_SUCCESS);
        assert_false(log_has("replaced"));

        plugin_line_close(l);
        plugin_host_free(h);
}

/* What a prompt may say holds for an isolated plugin as for one in latchd:
 * the worker's host refuses a plugin's prompt that would reorder the line
 * or drive the terminal, and latchd refuses it again from the worker (which
 * runs foreign code: a PAM module's messages come through it). */
static const char *const spoofing[] = {
        "\x1b]0;owned\x07Password:",          /* ESC, BEL */
        "\xc2\x9b" "2JPassword:",             /* U+009B, the 8-bit CSI */
        "Enter \xe2\x80\xae:edoc",            /* U+202E RIGHT-TO-LEFT OVERRIDE */
        "\xe2\x81\xa7" "Code:" "\xe2\x81\xa9", /* U+2067 RLI ... U+2069 PDI */
        "Code:\xe2\x80\xa8Password:",         /* U+2028 LINE SEPARATOR */
};

static void test_prompt_messages_checked_in_the_worker(void **unused) {
        struct plugin_host *h = host_new("echo", 1, 5000, 0);
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        struct latch_req *req = NULL;
        const char *msg;

        assert_int_equal(latch_req_new("login", "svc", "say", "Código:", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
        assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_INFO);
        assert_string_equal(msg, "Código:");
        latch_req_free(req);
        for (size_t i = 0; i < ELEMENTSOF(spoofing); i++) {
                assert_int_equal(latch_req_new("login", "svc", "say", spoofing[i], NULL, &req), 0);
                if (plugin_line_call(l, STACK_AUTH, req, 0) != LATCH_CONV_ERR)
                        fail_msg("prompt %zu taken", i);
                assert_int_equal(latch_req_n_prompts(req), 0);
                latch_req_free(req);
        }
        plugin_line_close(l);
        host_free_checked(h);
}

/* A worker that speaks the protocol but relays whatever it likes: it
 * answers every call with the prompt `prompt`, or with the JSON text
 * `answer` when set (a frame it writes itself, past any check of
 * latch-worker's), and keeps the last call it got. */
struct fake_worker {
        int listen_fd;
        const char *prompt;
        const char *answer;
        pthread_mutex_t lock;
        json_t *last_call;
        pthread_t thread;
};

static int fake_send(int fd, json_t *o) {
        char *s = json_dumps(o, JSON_COMPACT);
        uint32_t n = htonl((uint32_t) strlen(s));
        int r = write(fd, &n, 4) == 4 && write(fd, s, strlen(s)) == (ssize_t) strlen(s) ? 0 : -1;
        free(s);
        json_decref(o);
        return r;
}

static json_t *fake_recv(int fd) {
        uint32_t n;
        char *b;
        json_t *o;

        if (recv(fd, &n, 4, MSG_WAITALL) != 4)
                return NULL;
        n = ntohl(n);
        b = malloc(n);
        if (!b || recv(fd, b, n, MSG_WAITALL) != (ssize_t) n) {
                free(b);
                return NULL;
        }
        o = json_loadb(b, n, 0, NULL);
        free(b);
        return o;
}

static void *fake_worker_run(void *p) {
        struct fake_worker *f = p;
        int fd;

        while ((fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                json_t *m;
                while ((m = fake_recv(fd))) {
                        bool open = json_object_get(m, "open");
                        if (open)
                                json_decref(m);
                        else {
                                pthread_mutex_lock(&f->lock);
                                json_decref(f->last_call);
                                f->last_call = m;
                                pthread_mutex_unlock(&f->lock);
                        }
                        if (open)
                                fake_send(fd, json_pack("{s:{s:s, s:i, s:b}}", "ready", "name", "echo", "pid", 1,
                                                        "outcome", 0));
                        else if (f->answer)
                                fake_send(fd, json_loads(f->answer, JSON_ALLOW_NUL, NULL));
                        else
                                fake_send(fd, json_pack("{s:i, s:[{s:i, s:s}]}", "result", LATCH_INCOMPLETE,
                                                        "prompts", "style", LATCH_PROMPT_INFO, "message", f->prompt));
                }
                close(fd);
        }
        return NULL;
}

static void test_prompt_messages_checked_from_the_worker(void **unused) {
        char dir[] = "/tmp/latch-test-isolation-XXXXXX";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct plugin_host *h = NULL;
        struct fake_worker f = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct plugin_line *l;
        struct latch_req *req;
        const char *msg;

        assert_non_null(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/w.sock", dir);
        f.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f.listen_fd >= 0);
        assert_int_equal(bind(f.listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f.listen_fd, 8), 0);
        f.prompt = "Código:";
        assert_int_equal(pthread_create(&f.thread, NULL, fake_worker_run, &f), 0);

        struct plugin_config pc = { .name = (char *) "echo", .timeout_ms = 5000, .isolate = 1,
                                    .max_requests = 10000, .worker_socket = sa.sun_path };
        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        plugin_host_set_log(h, capture_log, NULL);
        assert_int_equal(plugin_host_configure(h, &pc, 1, worker_path), 0);
        l = line_open(h, "echo", 0, NULL);

        assert_int_equal(latch_req_new("login", "svc", "alice", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
        assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_INFO);
        assert_string_equal(msg, "Código:");
        latch_req_free(req);
        for (size_t i = 0; i < ELEMENTSOF(spoofing); i++) {
                /* The thread reads it at its next call: a request is over
                 * (and the thread waits in recv()) before this changes. */
                f.prompt = spoofing[i];
                log_reset();
                assert_int_equal(latch_req_new("login", "svc", "alice", NULL, NULL, &req), 0);
                if (plugin_line_call(l, STACK_AUTH, req, 0) != LATCH_AUTHINFO_UNAVAIL)
                        fail_msg("prompt %zu taken", i);
                assert_int_equal(latch_req_n_prompts(req), 0);
                assert_true(log_has("plugin 'echo': worker sent a malformed answer; replaced"));
                latch_req_free(req);
        }

        plugin_line_close(l);
        plugin_host_free(h);
        shutdown(f.listen_fd, SHUT_RDWR);
        pthread_join(f.thread, NULL);
        json_decref(f.last_call);
        close(f.listen_fd);
        unlink(sa.sun_path);
        rmdir(dir);
}

/* What a password call sends a worker (its flags and the current password),
 * and what latchd does with the items a worker says its plugin set: sets
 * them when well-formed, and otherwise changes nothing and replaces the
 * worker. */
static void test_password_items_from_the_worker(void **unused) {
        char dir[] = "/tmp/latch-test-isolation-XXXXXX";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct plugin_host *h = NULL;
        struct fake_worker f = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct plugin_line *l;
        struct latch_req *req;
        static const char *const malformed[] = {
                "{\"result\":0,\"items\":\"password\"}",
                "{\"result\":0,\"items\":{\"password\":\"new\",\"user\":\"mallory\"}}",
                "{\"result\":0,\"items\":{\"password\":\"new\",\"oldpassword\":5}}",
                "{\"result\":0,\"items\":{\"password\":[\"new\"]}}",
                "{\"result\":0,\"items\":{\"password\":\"a\\u0000b\"}}",
        };

        assert_non_null(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/w.sock", dir);
        f.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f.listen_fd >= 0);
        assert_int_equal(bind(f.listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f.listen_fd, 8), 0);
        f.answer = "{\"result\":0,\"claims\":{},\"items\":{\"password\":null,\"oldpassword\":\"checked\"}}";
        assert_int_equal(pthread_create(&f.thread, NULL, fake_worker_run, &f), 0);

        struct plugin_config pc = { .name = (char *) "echo", .timeout_ms = 5000, .isolate = 1,
                                    .max_requests = 10000, .worker_socket = sa.sun_path };
        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        plugin_host_set_log(h, capture_log, NULL);
        assert_int_equal(plugin_host_configure(h, &pc, 1, worker_path), 0);
        l = line_open(h, "echo", 0, NULL);

        assert_int_equal(latch_req_new("login", "svc", "alice", "sent-pw", NULL, &req), 0);
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, "current"), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK),
                         LATCH_SUCCESS);
        pthread_mutex_lock(&f.lock);
        assert_string_equal(json_string_value(json_object_get(f.last_call, "call")), "password");
        assert_int_equal(json_integer_value(json_object_get(f.last_call, "flags")),
                         LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        assert_string_equal(json_string_value(json_object_get(f.last_call, "oldpassword")), "current");
        assert_string_equal(json_string_value(json_object_get(f.last_call, "password")), "sent-pw");
        pthread_mutex_unlock(&f.lock);
        /* A null item clears it; a string sets it. */
        assert_null(latch_req_item(req, LATCH_ITEM_PASSWORD));
        assert_string_equal(latch_req_item(req, LATCH_ITEM_OLDPASSWORD), "checked");

        /* An auth call carries no flags and no current password it lacks. */
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, NULL), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        pthread_mutex_lock(&f.lock);
        assert_string_equal(json_string_value(json_object_get(f.last_call, "call")), "auth");
        assert_null(json_object_get(f.last_call, "flags"));
        assert_null(json_object_get(f.last_call, "oldpassword"));
        pthread_mutex_unlock(&f.lock);
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_PASSWORD, "kept"), 0);
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, "kept-old"), 0);

        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                f.answer = malformed[i];
                log_reset();
                if (plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK) != LATCH_AUTHINFO_UNAVAIL)
                        fail_msg("answer %zu taken", i);
                assert_true(log_has("plugin 'echo': worker sent a malformed answer; replaced"));
                assert_string_equal(latch_req_item(req, LATCH_ITEM_PASSWORD), "kept");
                assert_string_equal(latch_req_item(req, LATCH_ITEM_OLDPASSWORD), "kept-old");
        }
        latch_req_free(req);

        plugin_line_close(l);
        plugin_host_free(h);
        shutdown(f.listen_fd, SHUT_RDWR);
        pthread_join(f.thread, NULL);
        json_decref(f.last_call);
        close(f.listen_fd);
        unlink(sa.sun_path);
        rmdir(dir);
}

/* Starts a conversation as `user` (an "asker...": the echo plugin asks a
 * code) and returns its request, waiting for the answer; *ret_pid gets the
 * pid of the worker that asked. */
static struct latch_req *ask(struct plugin_line *l, const char *user) {
        struct latch_req *req = NULL;

        assert_int_equal(latch_req_new("login", "svc", user, "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
        assert_true(latch_req_challenge(req));
        return req;
}

/* Answers the conversation of `req` and returns the result; frees req. */
static int answer(struct plugin_line *l, struct latch_req *req, long *ret_pid) {
        json_t *pid;
        int r;

        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "4242" }, 1), 0);
        r = plugin_line_call(l, STACK_AUTH, req, 0);
        if (r == LATCH_SUCCESS)
                assert_string_equal(json_string_value(json_object_get(latch_req_claims(req), "same_worker")), "yes");
        pid = json_object_get(latch_req_claims(req), "pid");
        if (ret_pid)
                *ret_pid = pid ? strtol(json_string_value(pid), NULL, 10) : 0;
        latch_req_free(req);
        return r;
}

/* How many children of this process (latch-worker processes, here) are
 * alive: zombies not counted. */
static unsigned live_children(void) {
        char path[64];
        unsigned n = 0;
        FILE *f;
        int pid;

        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int) getpid());
        f = fopen(path, "re");
        assert_non_null(f);
        while (fscanf(f, "%d", &pid) == 1) {
                char stat[64], state = 0;
                FILE *g;
                snprintf(stat, sizeof(stat), "/proc/%d/stat", pid);
                g = fopen(stat, "re");
                if (!g)
                        continue;
                if (fscanf(g, "%*d %*s %c", &state) == 1 && state != 'Z')
                        n++;
                fclose(g);
        }
        fclose(f);
        return n;
}

/* Whether at most `n` children are alive, allowing those let go a while
 * to run their plugin's close() and exit (or die of their SIGKILL). */
static bool live_children_at_most(unsigned n) {
        for (int i = 0; i < 1000; i++) {
                if (live_children() <= n)
                        return true;
                usleep(10000);
        }
        return false;
}

/* Clients that start a conversation and never answer keep a worker each
 * (it holds the plugin's state) until their conversations end, but those
 * workers are not the line's call workers: more of them than the line has
 * call workers neither blocks nor fails anyone else's call. */
static void test_waiting_conversations_leave_workers_for_calls(void **unused) {
        /* A call that found no worker would give up at the deadline
         * (authinfo_unavail). */
        struct plugin_host *h = host_new("echo", 1, 5000, 0);
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        struct latch_req *waiting[6];
        char user[32];

        for (size_t i = 0; i < ELEMENTSOF(waiting); i++) {
                snprintf(user, sizeof(user), "asker%zu", i);
                waiting[i] = ask(l, user);
        }
        /* Six wait (each on its worker), and calls that do not wait go on. */
        for (int i = 0; i < 8; i++)
                assert_int_equal(call_auth(l, "alice", NULL), LATCH_SUCCESS);
        assert_int_equal(answer(l, ask(l, "asker-late"), NULL), LATCH_SUCCESS);
        /* The six waiting workers, and at most four for calls. */
        assert_true(live_children() >= 6);
        assert_true(live_children_at_most(6 + 4));
        assert_false(log_has("stayed busy"));

        /* The waiting ones still go on, each with its own worker. */
        for (size_t i = 0; i < ELEMENTSOF(waiting); i++)
                assert_int_equal(answer(l, waiting[i], NULL), LATCH_SUCCESS);
        /* Back to at most four workers for the line. */
        assert_true(live_children_at_most(4));

        plugin_line_close(l);
        host_free_checked(h);
}

/* Past max_waiting waiting conversations on a line, the one that has
 * waited longest is ended: its worker killed at once, its answer refused
 * (authinfo_unavail), the others unharmed. */
static void test_max_waiting_ends_the_oldest(void **unused) {
        struct plugin_host *h = NULL;
        struct plugin_config pc = { .name = (char *) "echo", .timeout_ms = 5000, .isolate = 1, .max_waiting = 2 };
        struct plugin_line *l;
        struct latch_req *a, *b, *c;
        long pid_b = 0, pid_c = 0;

        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        plugin_host_set_log(h, capture_log, NULL);
        assert_int_equal(plugin_host_configure(h, &pc, 1, worker_path), 0);
        l = line_open(h, "echo", 0, NULL);
        log_reset();

        a = ask(l, "asker-a");
        b = ask(l, "asker-b");
        assert_false(log_has("the oldest was ended"));
        c = ask(l, "asker-c");
        assert_true(log_has("echo|-|plugin 'echo': more than 2 conversations waiting on workers of one line "
                            "(max_waiting); the oldest was ended"));
        /* At most max_waiting waiting workers stay alive. */
        assert_true(live_children_at_most(2 + 4));

        assert_int_equal(answer(l, a, NULL), LATCH_AUTHINFO_UNAVAIL);
        assert_true(log_has("the conversation had been ended to make room for newer ones (max_waiting 2)"));
        assert_int_equal(answer(l, c, &pid_c), LATCH_SUCCESS);
        assert_int_equal(answer(l, b, &pid_b), LATCH_SUCCESS);
        assert_true(pid_b > 0 && pid_c > 0 && pid_b != pid_c);
        assert_int_equal(call_auth(l, "alice", NULL), LATCH_SUCCESS);

        /* A conversation ended that way and then abandoned costs nothing
         * more either. */
        a = ask(l, "asker-a");
        b = ask(l, "asker-b");
        c = ask(l, "asker-c");
        latch_req_free(a);
        latch_req_free(b);
        assert_int_equal(answer(l, c, NULL), LATCH_SUCCESS);

        plugin_line_close(l);
        host_free_checked(h);
}

static void test_in_process_unless_isolated(void **unused) {
        struct plugin_host *h = host_new("echo", 0, 0, 0);
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        long pid;

        assert_false(plugin_line_is_isolated(l));
        assert_int_equal(call_auth(l, "alice", &pid), LATCH_SUCCESS);
        assert_int_equal(pid, (long) getpid());
        plugin_line_close(l);
        host_free_checked(h);

        /* Not configured: in-process, whatever the name. */
        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        l = line_open(h, "slow", 0, NULL);
        assert_false(plugin_line_is_isolated(l));
        plugin_line_close(l);
        host_free_checked(h);
}

static void test_pam_isolated_by_default(void **unused) {
        char dir[] = "/tmp/latch-test-isolation-XXXXXX";
        struct plugin_host *h = NULL;
        struct plugin_line *l;
        char *link, *target;
        long pid;

        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&link, "%s/pam.so", dir) > 0);
        assert_true(asprintf(&target, "%s/echo.so", plugin_dir) > 0);
        assert_int_equal(symlink(target, link), 0);

        assert_int_equal(plugin_host_new(dir, NULL, &h), 0);
        plugin_host_set_log(h, capture_log, NULL);
        assert_int_equal(plugin_host_configure(h, NULL, 0, worker_path), 0);
        l = line_open(h, "pam", 0, NULL);
        assert_true(plugin_line_is_isolated(l));
        assert_string_equal(plugin_line_name(l), "pam");
        assert_int_equal(call_auth(l, "alice", &pid), LATCH_SUCCESS);
        assert_true(pid > 0 && pid != (long) getpid());
        plugin_line_close(l);

        /* Any other plugin stays in-process by default. */
        l = line_open(h, target, 0, NULL);
        assert_false(plugin_line_is_isolated(l));
        plugin_line_close(l);
        host_free_checked(h);

        unlink(link);
        rmdir(dir);
        free(link);
        free(target);
}

static void test_open_errors(void **unused) {
        struct plugin_host *h = host_new("echo", 1, 5000, 0);
        const char *args[] = {"fail"};
        struct plugin_line *l = NULL;
        char *error = NULL;

        assert_int_equal(plugin_line_open(h, "echo", 1, args, &l, &error), -EINVAL);
        assert_null(l);
        assert_non_null(error);
        assert_non_null(strstr(error, "echo"));
        assert_non_null(strstr(error, "refusing to open, as asked"));
        free(error);
        error = NULL;
        host_free_checked(h);

        /* A missing plugin is -ENOENT, as in-process ("-auth" lines rely on it). */
        h = host_new("nosuch", 1, 5000, 0);
        assert_int_equal(plugin_line_open(h, "nosuch", 0, NULL, &l, &error), -ENOENT);
        free(error);
        error = NULL;
        host_free_checked(h);

        /* A missing worker program is an error, but not "no such plugin". */
        struct plugin_config pc = { .name = (char *) "echo", .isolate = 1 };
        assert_int_equal(plugin_host_new(plugin_dir, NULL, &h), 0);
        assert_int_equal(plugin_host_configure(h, &pc, 1, "/nonexistent/latch-worker"), 0);
        int r = plugin_line_open(h, "echo", 0, NULL, &l, &error);
        assert_true(r < 0 && r != -ENOENT);
        assert_non_null(error);
        assert_non_null(strstr(error, "plugin 'echo'"));
        free(error);
        host_free_checked(h);
}

static void test_crash_is_contained(void **unused) {
        struct plugin_host *h = host_new("crash", 1, 5000, 0);
        struct plugin_line *l = line_open(h, "crash", 0, NULL);
        long pid1 = 0, pid2 = 0;

        assert_int_equal(call_auth(l, "ok", &pid1), LATCH_SUCCESS);
        assert_true(pid1 > 0);
        assert_int_equal(call_auth(l, "boom", NULL), LATCH_AUTHINFO_UNAVAIL);
        assert_true(log_has("plugin 'crash': worker crashed (signal 11); replaced"));
        assert_int_equal(call_auth(l, "ok", &pid2), LATCH_SUCCESS);
        assert_true(pid2 > 0 && pid2 != pid1);

        /* A worker lost in a password change's update pass may have changed
         * the password first: the request says so (latchd then revokes as
         * after a change). Lost in the preliminary pass, or answering, it
         * did not. */
        struct latch_req *req = NULL;
        assert_int_equal(latch_req_new("passwd", "svc", "boom", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_false(latch_req_password_unsure(req));
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_AUTHINFO_UNAVAIL);
        assert_true(latch_req_password_unsure(req));
        latch_req_free(req);
        assert_int_equal(latch_req_new("passwd", "svc", "ok", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
        assert_false(latch_req_password_unsure(req));
        latch_req_free(req);

        plugin_line_close(l);
        host_free_checked(h);
}

static void test_hang_is_cut_at_the_deadline(void **unused) {
        struct plugin_host *h = host_new("hang", 1, 1000, 0);
        struct plugin_line *l = line_open(h, "hang", 0, NULL);
        long pid1 = 0, pid2 = 0;
        double t;

        assert_int_equal(call_auth(l, "ok", &pid1), LATCH_SUCCESS);
        t = mono_seconds();
        assert_int_equal(call_auth(l, "stuck", NULL), LATCH_AUTHINFO_UNAVAIL);
        t = mono_seconds() - t;
        /* The deadline holds: about 1 s, with a wide margin for a loaded
         * machine. */
        assert_true(t >= 0.9);
        assert_true(t < 5.0);
        assert_true(log_has("plugin 'hang': worker did not answer within 1s; replaced"));
        assert_int_equal(call_auth(l, "ok", &pid2), LATCH_SUCCESS);
        assert_true(pid2 > 0 && pid2 != pid1);

        plugin_line_close(l);
        host_free_checked(h);
}

static void test_max_requests(void **unused) {
        struct plugin_host *h = host_new("echo", 1, 5000, 3);
        struct plugin_line *l = line_open(h, "echo", 0, NULL);
        long pid[7];

        for (size_t i = 0; i < ELEMENTSOF(pid); i++)
                assert_int_equal(call_auth(l, "alice", &pid[i]), LATCH_SUCCESS);
        assert_true(pid[0] == pid[1] && pid[1] == pid[2]);
        assert_true(pid[3] == pid[4] && pid[4] == pid[5]);
        assert_true(pid[3] != pid[0]);
        assert_true(pid[6] != pid[3] && pid[6] != pid[0]);

        plugin_line_close(l);
        host_free_checked(h);
}

static void test_idle_worker_death_costs_no_request(void **unused) {
        struct plugin_host *h = host_new("slow", 1, 5000, 0);
        struct plugin_line *l = line_open(h, "slow", 0, NULL);
        long pid1 = 0, pid2 = 0;

        assert_int_equal(call_auth(l, "alice", &pid1), LATCH_SUCCESS);
        assert_true(pid1 > 0);
        /* Killed while idle (an admin, the OOM killer): latchd notices when
         * it next needs the worker, and the request goes to a new one. */
        assert_int_equal(kill((pid_t) pid1, SIGKILL), 0);
        for (int i = 0; i < 200 && kill((pid_t) pid1, 0) == 0; i++) {
                /* until it is a zombie: its stream has ended by then */
                char path[64], state = 0;
                FILE *f;
                snprintf(path, sizeof(path), "/proc/%ld/stat", pid1);
                f = fopen(path, "re");
                if (f) {
                        if (fscanf(f, "%*d %*s %c", &state) != 1)
                                state = 0;
                        fclose(f);
                }
                if (state == 'Z')
                        break;
                usleep(10000);
        }
        assert_int_equal(call_auth(l, "alice", &pid2), LATCH_SUCCESS);
        assert_true(pid2 > 0 && pid2 != pid1);
        assert_true(log_has("plugin 'slow': idle worker crashed (signal 9); replaced"));

        plugin_line_close(l);
        host_free_checked(h);
}

#define THREADS 8
#define CALLS 5

struct thread_arg {
        struct plugin_line *l;
        int failures;
        long pids[CALLS];
};

static void *caller(void *p) {
        struct thread_arg *a = p;
        for (int i = 0; i < CALLS; i++)
                if (call_auth(a->l, "alice", &a->pids[i]) != LATCH_SUCCESS)
                        a->failures++;
        return NULL;
}

static void test_concurrent_callers(void **unused) {
        struct plugin_host *h = host_new("slow", 1, 10000, 0);
        struct plugin_line *l = line_open(h, "slow", 0, NULL);
        struct thread_arg args[THREADS] = {};
        pthread_t t[THREADS];
        long seen[THREADS * CALLS];
        size_t n_seen = 0;

        for (int i = 0; i < THREADS; i++) {
                args[i].l = l;
                assert_int_equal(pthread_create(&t[i], NULL, caller, &args[i]), 0);
        }
        for (int i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);

        for (int i = 0; i < THREADS; i++) {
                assert_int_equal(args[i].failures, 0);
                for (int k = 0; k < CALLS; k++) {
                        bool known = false;
                        assert_true(args[i].pids[k] > 0 && args[i].pids[k] != (long) getpid());
                        for (size_t j = 0; j < n_seen; j++)
                                known = known || seen[j] == args[i].pids[k];
                        if (!known)
                                seen[n_seen++] = args[i].pids[k];
                }
        }
        /* A small pool per line, however many callers. */
        assert_true(n_seen >= 1 && n_seen <= 4);

        plugin_line_close(l);
        host_free_checked(h);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_echo_round_trip),
                cmocka_unit_test(test_conversation_isolated),
                cmocka_unit_test(test_waiting_conversations_leave_workers_for_calls),
                cmocka_unit_test(test_max_waiting_ends_the_oldest),
                cmocka_unit_test(test_prompt_messages_checked_in_the_worker),
                cmocka_unit_test(test_prompt_messages_checked_from_the_worker),
                cmocka_unit_test(test_password_isolated),
                cmocka_unit_test(test_password_items_from_the_worker),
                cmocka_unit_test(test_in_process_unless_isolated),
                cmocka_unit_test(test_pam_isolated_by_default),
                cmocka_unit_test(test_open_errors),
                cmocka_unit_test(test_crash_is_contained),
                cmocka_unit_test(test_hang_is_cut_at_the_deadline),
                cmocka_unit_test(test_max_requests),
                cmocka_unit_test(test_idle_worker_death_costs_no_request),
                cmocka_unit_test(test_concurrent_callers),
        };
        const char *asan = getenv("ASAN_OPTIONS");
        char *opts;
        int r;

        if (argc != 3) {
                fprintf(stderr, "usage: %s LATCH-WORKER PLUGIN-DIR\n", argv[0]);
                return 2;
        }
        worker_path = argv[1];
        plugin_dir = argv[2];

        /* Under ASan, a crashing worker should die of its signal, as it
         * would in production, not of ASan's report. */
        if (asprintf(&opts, "%s%shandle_segv=0", asan ?: "", asan && *asan ? ":" : "") < 0)
                return 1;
        setenv("ASAN_OPTIONS", opts, 1);
        free(opts);

        r = cmocka_run_group_tests(tests, NULL, NULL);
        log_reset();
        return r;
}
