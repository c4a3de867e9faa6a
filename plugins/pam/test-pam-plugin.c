/* SPDX-License-Identifier: MIT */

/*
 * Loads the built pam.so through its entry symbol and runs it against real
 * PAM service files written to /etc/pam.d/latch-test-* (removed at the end,
 * also when a test fails): pam_userdb.so for a real password check (its
 * database made with Python's dbm.ndbm, which is Berkeley DB on Debian, the
 * library pam_userdb reads), pam_debug.so for result mapping and
 * pam_succeed_if.so for PAM_RHOST. Needs root; exits 77 (skip) otherwise.
 * argv[1] is the plugin's path.
 */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-host.h"

#ifndef ELEMENTSOF
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#endif

static const char *plugin_path;
static void *dl;
static const struct latch_plugin *plugin;
static char dir[] = "/tmp/test-pam-plugin-XXXXXX";
static char svc_userdb[64], svc_debug[64], svc_rhost[64], svc_deny[64], svc_unix[64], svc_chdebug[64], svc_echo[64];
/* Files pam_echo shows (in DIR), and what they hold. */
static const char *const echo_files[] = { "ctl", "empty", "bidi", "long" };
static char unix_user[32];
static struct latch_ctx ctx = { .name = "pam" };

/* ---- pthread_create(), failing on demand ----
 *
 * The plugin, dlopen()ed into this program, binds its pthread_create to this
 * one (meson.build exports it from the executable: a program's own
 * definitions come first in the global scope). Unless a test asks for a
 * failure it calls libc's (or, in a sanitized build, the sanitizer's). */
static int pthread_create_fail; /* the errno to fail with, 0 for none */
static unsigned pthread_create_calls;

/* Default visibility: the build hides everything else. */
__attribute__((visibility("default"))) int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                                          void *(*start)(void *), void *arg) {
        static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

        __atomic_add_fetch(&pthread_create_calls, 1, __ATOMIC_SEQ_CST);
        if (pthread_create_fail)
                return pthread_create_fail;
        if (!real)
                *(void **) &real = dlsym(RTLD_NEXT, "pthread_create");
        if (!real)
                return ENOSYS;
        return real(thread, attr, start, arg);
}

static void svc_path(char *buf, size_t size, const char *svc) {
        snprintf(buf, size, "/etc/pam.d/%s", svc);
}

/* Runs argv (an absolute path first) with `input` on its stdin, output to
 * stderr. Returns its exit code, or -1. */
static int run(const char *const argv[], const char *input) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                if (dup2(fds[0], 0) < 0 || dup2(2, 1) < 0)
                        _exit(127);
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(fds[0]);
        if (input && write(fds[1], input, strlen(input)) != (ssize_t) strlen(input)) {
                close(fds[1]);
                return -1;
        }
        close(fds[1]);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

static void cleanup(void) {
        const char *svcs[] = { svc_userdb, svc_debug, svc_rhost, svc_deny, svc_unix, svc_chdebug, svc_echo };
        char p[256];

        if (unix_user[0]) {
                const char *const userdel[] = { "/usr/sbin/userdel", unix_user, NULL };
                (void) run(userdel, NULL);
                unix_user[0] = '\0';
        }
        for (size_t i = 0; i < sizeof svcs / sizeof svcs[0]; i++)
                if (svcs[i][0]) {
                        svc_path(p, sizeof p, svcs[i]);
                        (void) unlink(p);
                }
        snprintf(p, sizeof p, "%s/users.db", dir);
        (void) unlink(p);
        for (size_t i = 0; i < ELEMENTSOF(echo_files); i++) {
                snprintf(p, sizeof p, "%s/%s", dir, echo_files[i]);
                (void) unlink(p);
        }
        (void) rmdir(dir);
}

static void on_signal(int sig) {
        cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int write_service(char *name, size_t size, const char *tag, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int write_service(char *name, size_t size, const char *tag, const char *fmt, ...) {
        char path[256];
        va_list ap;

        snprintf(name, size, "latch-test-%s-%d", tag, (int) getpid());
        svc_path(path, sizeof path, name);
        FILE *f = fopen(path, "wxe");
        if (!f)
                return -1;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        return fclose(f) == 0 ? 0 : -1;
}

/* Builds DIR/users.db: alice -> "alice-pw", bob -> "b\xc3\xb6b pw". */
static int make_userdb(void) {
        char script[1024];
        snprintf(script, sizeof script,
                 "import dbm.ndbm as n\n"
                 "d = n.open('%s/users', 'c', 0o600)\n"
                 "d[b'alice'] = b'alice-pw'\n"
                 "d[b'bob'] = b'b\\xc3\\xb6b pw'\n"
                 "d.close()\n",
                 dir);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                execl("/usr/bin/python3", "python3", "-c", script, (char *) NULL);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -1;
        char p[256];
        snprintf(p, sizeof p, "%s/users.db", dir);
        return access(p, R_OK);
}

static int write_echo_file(const char *name, const char *text) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        FILE *f = fopen(p, "wxe");
        if (!f)
                return -1;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -1;
}

/* pam_echo's files: controls, an empty line, bidi and C1 controls with
 * bytes that are not UTF-8, and a line past LATCH_PROMPT_MESSAGE_MAX whose
 * 512th byte is inside "é". (pam_echo drops one final '\n'.) */
static int write_echo_files(void) {
        char long_line[700];

        memset(long_line, 'a', 511);
        strcpy(long_line + 511, "\xc3\xa9 and more");
        return write_echo_file("ctl", "Welcome\x1b[2J to\x07 latch\r\n") < 0 ||
                       write_echo_file("empty", "\n") < 0 ||
                       write_echo_file("bidi", "Enter \xe2\x80\xae:edoc \xc2\x9b and \xff\tok\nline 2\xe2\x80\xa8\n") < 0 ||
                       write_echo_file("long", long_line) < 0
               ? -1
               : 0;
}

static int group_setup(void **state) {
        if (test_host_load(plugin_path, &dl, &plugin) < 0)
                return -1;
        if (!mkdtemp(dir))
                return -1;
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGABRT, on_signal);

        if (make_userdb() < 0) {
                fprintf(stderr, "cannot make the pam_userdb database with python3\n");
                return -1;
        }
        if (write_service(svc_userdb, sizeof svc_userdb, "userdb",
                          "auth    required pam_userdb.so db=%s/users\n"
                          "account required pam_userdb.so db=%s/users\n",
                          dir, dir) < 0 ||
            write_service(svc_debug, sizeof svc_debug, "debug",
                          "auth    required pam_debug.so auth=perm_denied\n"
                          "account required pam_debug.so acct=new_authtok_reqd\n") < 0 ||
            write_service(svc_rhost, sizeof svc_rhost, "rhost",
                          "auth    required pam_succeed_if.so quiet rhost = 192.0.2.7\n"
                          "account required pam_permit.so\n") < 0 ||
            write_service(svc_deny, sizeof svc_deny, "deny",
                          "auth    required pam_permit.so\n"
                          "account required pam_deny.so\n") < 0 ||
            write_service(svc_unix, sizeof svc_unix, "unix",
                          "auth     required pam_unix.so\n"
                          "account  required pam_unix.so\n"
                          "password required pam_unix.so\n") < 0 ||
            write_service(svc_chdebug, sizeof svc_chdebug, "chdebug",
                          "auth     required pam_permit.so\n"
                          "password required pam_debug.so chauthtok=authtok_lock_busy\n") < 0 ||
            write_echo_files() < 0 ||
            /* pam_echo says nothing under PAM_SILENT, which authentication
             * runs with; pam_chauthtok() does not. */
            write_service(svc_echo, sizeof svc_echo, "echo",
                          "auth     required pam_unix.so\n"
                          "password optional pam_echo.so file=%s/ctl\n"
                          "password optional pam_echo.so file=%s/empty\n"
                          "password optional pam_echo.so file=%s/bidi\n"
                          "password optional pam_echo.so file=%s/long\n"
                          "password required pam_unix.so\n",
                          dir, dir, dir, dir) < 0) {
                perror("writing /etc/pam.d");
                return -1;
        }

        snprintf(unix_user, sizeof unix_user, "latchpu%d", (int) getpid());
        const char *const userdel[] = { "/usr/sbin/userdel", unix_user, NULL };
        const char *const useradd[] = { "/usr/sbin/useradd", "-M", "-s", "/usr/sbin/nologin", unix_user, NULL };
        (void) run(userdel, NULL);
        if (run(useradd, NULL) != 0) {
                fprintf(stderr, "useradd %s failed\n", unix_user);
                unix_user[0] = '\0';
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        cleanup();
        if (dl)
                dlclose(dl);
        return 0;
}

static void *open_service(const char *svc) {
        char arg[128];
        const char *argv[] = { arg };
        void *st = NULL;

        snprintf(arg, sizeof arg, "service=%s", svc);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, argv, &st), 0);
        assert_non_null(st);
        return st;
}

static int call(void *st, bool auth, const char *user, const char *pw, const char *remote) {
        struct latch_req req = test_req(user, pw);
        req.remote = remote;
        int r = auth ? plugin->auth(st, &req) : plugin->account(st, &req);
        /* the pam plugin adds no claims */
        assert_int_equal(json_object_size(req.claims), 0);
        test_req_done(&req);
        return r;
}

static void test_abi(void **state) {
        bool has_entry = false;

        assert_string_equal(plugin->name, "pam");
        assert_int_equal(plugin->abi_major, LATCH_PLUGIN_ABI_MAJOR);
        assert_non_null(plugin->auth);
        assert_non_null(plugin->account);
        assert_non_null(plugin->password);
        assert_int_equal(test_host_foreign_exports(plugin_path, &has_entry), 0);
        assert_true(has_entry);

        latch_plugin_entry_fn entry;
        *(void **) &entry = dlsym(dl, LATCH_PLUGIN_ENTRY_SYMBOL);
        assert_non_null(entry);
        struct latch_host other = test_host;
        other.abi_major = 0;
        assert_null(entry(&other));
}

static void test_open_errors(void **state) {
        void *st = (void *) 0x1;
        const char *bad1[] = { "service=../shadow" };
        const char *bad2[] = { "service=" };
        const char *bad3[] = { "service=x", "flag" };

        test_host_log_reset();
        assert_int_equal(plugin->open(&test_host, &ctx, 0, NULL, &st), -EINVAL);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, bad1, &st), -EINVAL);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, bad2, &st), -EINVAL);
        assert_int_equal(plugin->open(&test_host, &ctx, 2, bad3, &st), -EINVAL);
        assert_ptr_equal(st, (void *) 0x1);
        assert_int_equal(test_host_log_count("missing argument service=NAME"), 2);
        assert_int_equal(test_host_log_count("unknown argument 'flag'"), 1);
}

static void test_userdb(void **state) {
        void *st = open_service(svc_userdb);

        assert_int_equal(call(st, true, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(call(st, true, "alice", "alice-pw", "198.51.100.1"), LATCH_SUCCESS);
        assert_int_equal(call(st, true, "bob", "b\xc3\xb6" "b pw", NULL), LATCH_SUCCESS);
        assert_int_equal(call(st, true, "alice", "alice-pW", NULL), LATCH_AUTH_ERR);
        assert_int_equal(call(st, true, "alice", "alice-pw ", NULL), LATCH_AUTH_ERR);
        assert_int_equal(call(st, true, "bob", "alice-pw", NULL), LATCH_AUTH_ERR);
        assert_int_equal(call(st, true, "zed", "alice-pw", NULL), LATCH_USER_UNKNOWN);
        /* no password: the conversation refuses, nothing succeeds */
        assert_int_not_equal(call(st, true, "alice", NULL, NULL), LATCH_SUCCESS);
        assert_int_not_equal(call(st, true, "alice", "", NULL), LATCH_SUCCESS);
        assert_int_equal(call(st, true, NULL, "alice-pw", NULL), LATCH_USER_UNKNOWN);

        assert_int_equal(call(st, false, "alice", NULL, NULL), LATCH_SUCCESS);
        assert_int_equal(call(st, false, "zed", NULL, NULL), LATCH_USER_UNKNOWN);
        plugin->close(st);
}

static void test_mapping(void **state) {
        void *st = open_service(svc_debug);
        assert_int_equal(call(st, true, "alice", "x", NULL), LATCH_PERM_DENIED);
        assert_int_equal(call(st, false, "alice", "x", NULL), LATCH_NEW_AUTHTOK_REQD);
        plugin->close(st);

        st = open_service(svc_deny);
        assert_int_equal(call(st, true, "alice", "x", NULL), LATCH_SUCCESS);
        assert_int_equal(call(st, false, "alice", "x", NULL), LATCH_AUTH_ERR);
        plugin->close(st);

        /* a service without a file: Linux-PAM falls back to "other" */
        st = open_service("latch-test-no-such-service");
        assert_int_not_equal(call(st, true, "root", "x", NULL), LATCH_SUCCESS);
        plugin->close(st);
}

static void test_rhost(void **state) {
        void *st = open_service(svc_rhost);
        assert_int_equal(call(st, true, "root", "x", "192.0.2.7"), LATCH_SUCCESS);
        assert_int_equal(call(st, true, "root", "x", "192.0.2.8"), LATCH_AUTH_ERR);
        assert_int_not_equal(call(st, true, "root", "x", NULL), LATCH_SUCCESS);
        plugin->close(st);
}

/* ---- pam_unix: expiry and password changes ---- */

static void set_password(const char *pw) {
        char line[256];
        const char *const chpasswd[] = { "/usr/sbin/chpasswd", NULL };
        snprintf(line, sizeof line, "%s:%s\n", unix_user, pw);
        assert_int_equal(run(chpasswd, line), 0);
}

static void expire_password(void) {
        const char *const chage[] = { "/usr/bin/chage", "-d", "0", unix_user, NULL };
        assert_int_equal(run(chage, NULL), 0);
}

/* The user's /etc/shadow line, to see whether a change happened. */
static char *shadow_line(void) {
        char line[1024], prefix[64];
        char *found = NULL;
        FILE *f = fopen("/etc/shadow", "re");

        assert_non_null(f);
        snprintf(prefix, sizeof prefix, "%s:", unix_user);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, prefix, strlen(prefix)) == 0)
                        found = strdup(line);
        fclose(f);
        assert_non_null(found);
        return found;
}

/* One password() call; on LATCH_INCOMPLETE, the prompts it posted are in
 * req->prompts. The previous call's answers are dropped afterwards. */
static int pw_call(void *st, struct latch_req *req, int flags) {
        for (int i = 0; i < req->n_prompts; i++)
                free(req->prompts[i]);
        req->n_prompts = 0;
        int r = plugin->password(st, req, flags);
        req->n_answers = 0;
        return r;
}

/* The prompts of the last call that ask something, joined by '|'. */
static const char *asked(const struct latch_req *req) {
        static char buf[1024];
        buf[0] = '\0';
        for (int i = 0; i < req->n_prompts; i++)
                if (req->styles[i] == LATCH_PROMPT_SECRET || req->styles[i] == LATCH_PROMPT_TEXT) {
                        if (buf[0])
                                strncat(buf, "|", sizeof buf - strlen(buf) - 1);
                        strncat(buf, req->prompts[i], sizeof buf - strlen(buf) - 1);
                }
        return buf;
}

/* Answers the one question of the last call (info and error lines before
 * it have no answer, as from a client). */
static void answer(struct latch_req *req, const char *a) {
        req->n_answers = 0;
        for (int i = 0; i < req->n_prompts; i++) {
                bool asks = req->styles[i] == LATCH_PROMPT_SECRET || req->styles[i] == LATCH_PROMPT_TEXT;
                req->answers[i] = asks ? a : NULL;
                req->n_answers = i + 1;
                if (asks)
                        break;
        }
}

static int auth_unix(void *st, const char *pw) {
        return call(st, true, unix_user, pw, NULL);
}

/* ---- logins that wait for their client ---- */

/* Threads of this process that are alive (the module's thread of a
 * waiting login among them). */
static unsigned live_threads(void) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        unsigned n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

/* Whether at most `n` threads are alive, allowing the ones just ended a
 * while to go. */
static bool live_threads_at_most(unsigned n) {
        for (int i = 0; i < 1000; i++) {
                if (live_threads() <= n)
                        return true;
                usleep(10000);
        }
        return false;
}

/* A login without a password: pam_userdb asks for it, and the module's
 * thread waits for the answer. */
static void begin(void *st, struct latch_req *req, const char *user) {
        *req = test_req(user, NULL);
        assert_int_equal(plugin->auth(st, req), LATCH_INCOMPLETE);
        assert_string_equal(asked(req), "Password: ");
}

static int finish(void *st, struct latch_req *req, const char *pw) {
        answer(req, pw);
        for (int i = 0; i < req->n_prompts; i++)
                free(req->prompts[i]);
        req->n_prompts = 0;
        int r = plugin->auth(st, req);
        req->n_answers = 0;
        test_req_done(req);
        return r;
}

/* Clients that never answer cannot make the line keep a thread each: at
 * most 16 (the default) wait at once, the oldest ended past that. */
static void test_waiting_logins_are_bounded(void **state) {
        void *st = open_service(svc_userdb);
        struct latch_req req[24];
        unsigned before = live_threads();

        test_host_log_reset();
        for (size_t i = 0; i < ELEMENTSOF(req); i++)
                begin(st, &req[i], "alice");
        assert_true(live_threads_at_most(before + 16));
        assert_int_equal(test_host_log_count("more than 16 logins waiting for an answer (max_waiting); "
                                             "the oldest was ended"), 8);
        /* The eight oldest were ended; the others go on. */
        for (size_t i = 0; i < ELEMENTSOF(req); i++)
                assert_int_equal(finish(st, &req[i], "alice-pw"), i < 8 ? LATCH_AUTHINFO_UNAVAIL : LATCH_SUCCESS);
        assert_int_equal(test_host_log_count("the conversation had been ended to make room for newer ones "
                                             "(max_waiting 16)"), 8);
        assert_true(live_threads_at_most(before));
        plugin->close(st);
}

static void test_max_waiting_argument(void **state) {
        char arg[128];
        const char *argv[] = { arg, "max_waiting=2" };
        const char *bad[] = { "max_waiting=0", "max_waiting=1025", "max_waiting=x", "max_waiting=", "max_waiting=-1" };
        struct latch_req a, b, c;
        void *st = NULL;

        snprintf(arg, sizeof arg, "service=%s", svc_userdb);
        test_host_log_reset();
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                argv[1] = bad[i];
                assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), -EINVAL);
        }
        assert_int_equal(test_host_log_count("expected a number from 1 to 1024"), ELEMENTSOF(bad));

        argv[1] = "max_waiting=2";
        assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), 0);
        unsigned before = live_threads();
        begin(st, &a, "alice");
        begin(st, &b, "bob");
        assert_int_equal(test_host_log_count("the oldest was ended"), 0);
        begin(st, &c, "alice");
        assert_int_equal(test_host_log_count("more than 2 logins waiting for an answer (max_waiting); "
                                             "the oldest was ended"), 1);
        assert_true(live_threads_at_most(before + 2));
        assert_int_equal(finish(st, &a, "alice-pw"), LATCH_AUTHINFO_UNAVAIL);
        assert_int_equal(finish(st, &b, "b\xc3\xb6" "b pw"), LATCH_SUCCESS);
        assert_int_equal(finish(st, &c, "wrong"), LATCH_AUTH_ERR);
        /* Abandoned ones leave the list too. */
        begin(st, &a, "alice");
        begin(st, &b, "bob");
        test_req_done(&a);
        test_req_done(&b);
        begin(st, &a, "alice");
        begin(st, &b, "bob");
        assert_int_equal(test_host_log_count("the oldest was ended"), 1);
        assert_int_equal(finish(st, &a, "alice-pw"), LATCH_SUCCESS);
        assert_int_equal(finish(st, &b, "b\xc3\xb6" "b pw"), LATCH_SUCCESS);
        plugin->close(st);
}

static int refuse_prompt(struct latch_req *req, int style, const char *message) {
        return -EINVAL;
}

/* A host that refuses the module's prompt: the call fails, and the module's
 * thread has ended by the time it returns (nothing of it is left to log
 * after the result, as an isolated line's worker would send it). */
static void test_refused_prompt_ends_the_thread(void **state) {
        static struct latch_host refusing;
        char arg[128];
        const char *argv[] = { arg };
        void *st = NULL;

        refusing = test_host;
        refusing.prompt = refuse_prompt;
        snprintf(arg, sizeof arg, "service=%s", svc_userdb);
        assert_int_equal(plugin->open(&refusing, &ctx, 1, argv, &st), 0);
        unsigned before = live_threads();

        test_host_log_reset();
        struct latch_req req = test_req("alice", NULL);
        assert_int_equal(plugin->auth(st, &req), LATCH_CONV_ERR);
        assert_null(req.data);
        assert_true(live_threads_at_most(before));
        test_req_done(&req);
        /* The conversation failed because the call ended it: not logged. */
        assert_int_equal(test_host_log_count("pam_authenticate("), 0);
        plugin->close(st);
}

static void test_account_new_authtok_reqd(void **state) {
        void *st = open_service(svc_unix);

        set_password("Old-Pass-1");
        assert_int_equal(call(st, false, unix_user, NULL, NULL), LATCH_SUCCESS);
        expire_password();
        /* pam_unix reads the expiry from /etc/shadow; it comes through as is */
        assert_int_equal(call(st, false, unix_user, NULL, NULL), LATCH_NEW_AUTHTOK_REQD);
        /* the password itself is still right: only the account step says so */
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_SUCCESS);
        plugin->close(st);
}

static void test_passwd_through_the_conversation(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, NULL);

        set_password("Old-Pass-1");
        req.op = "passwd";
        char *before = shadow_line();

        /* prelim: pam_authenticate asks the current password */
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "Password: ");
        assert_int_equal(req.styles[0], LATCH_PROMPT_SECRET);
        answer(&req, "Old-Pass-1");
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_non_null(req.oldpassword);
        assert_string_equal(req.oldpassword, "Old-Pass-1");
        assert_null(req.password);
        assert_null(req.data);
        char *mid = shadow_line();
        assert_string_equal(before, mid); /* the preliminary pass changed nothing */

        /* update: pam_chauthtok asks the new password twice */
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "New password: ");
        answer(&req, "New-Pass-22");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "Retype new password: ");
        answer(&req, "New-Pass-22");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
        /* the new password is the item for the lines after */
        assert_non_null(req.password);
        assert_string_equal(req.password, "New-Pass-22");
        test_req_done(&req);

        char *after = shadow_line();
        assert_string_not_equal(before, after);
        assert_int_equal(auth_unix(st, "New-Pass-22"), LATCH_SUCCESS);
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_AUTH_ERR);
        free(before);
        free(mid);
        free(after);
        plugin->close(st);
}

static void test_passwd_wrong_current_password(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, NULL);

        set_password("Old-Pass-1");
        req.op = "passwd";
        char *before = shadow_line();
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_INCOMPLETE);
        answer(&req, "Not-The-Pass");
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_AUTH_ERR);
        assert_null(req.oldpassword);
        test_req_done(&req);

        /* a wrong OLDPASSWORD set by a line before: refused, nothing asked */
        req = test_req(unix_user, NULL);
        req.oldpassword = "Not-The-Pass";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_AUTH_ERR);
        assert_int_equal(req.n_prompts, 0);
        test_req_done(&req);

        /* an unknown user */
        req = test_req("latch-no-such-user", NULL);
        req.oldpassword = "Old-Pass-1";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_USER_UNKNOWN);
        test_req_done(&req);

        char *after = shadow_line();
        assert_string_equal(before, after);
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_SUCCESS);
        free(before);
        free(after);
        plugin->close(st);
}

static void test_passwd_from_items(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, "New-Pass-33");

        /* Lines before set both items: nothing is asked. */
        set_password("Old-Pass-1");
        req.op = "passwd";
        req.oldpassword = "Old-Pass-1";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_int_equal(req.n_prompts, 0);
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
        assert_int_equal(req.n_prompts, 0);
        test_req_done(&req);
        assert_int_equal(auth_unix(st, "New-Pass-33"), LATCH_SUCCESS);
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_AUTH_ERR);
        plugin->close(st);
}

static void test_passwd_retype_differs(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, NULL);

        set_password("Old-Pass-1");
        req.op = "passwd";
        req.oldpassword = "Old-Pass-1";
        char *before = shadow_line();
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        answer(&req, "New-Pass-44");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        answer(&req, "New-Pass-45");
        test_host_log_reset();
        /* libpam says PAM_TRY_AGAIN: a refused new password, not an
         * unreachable backend */
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_AUTHTOK_ERR);
        /* pam_unix said why, with no question left to go with: logged */
        assert_int_equal(test_host_log_count("error: Sorry, passwords do not match."), 1);
        assert_null(req.password);
        test_req_done(&req);
        char *after = shadow_line();
        assert_string_equal(before, after);
        free(before);
        free(after);
        plugin->close(st);
}

static void test_expired_password_change(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, NULL);

        set_password("Old-Pass-1");
        expire_password();
        assert_int_equal(call(st, false, unix_user, NULL, NULL), LATCH_NEW_AUTHTOK_REQD);

        /* As a login continues: its password is OLDPASSWORD, PASSWORD NULL. */
        req.op = "login";
        req.oldpassword = "Old-Pass-1";
        int ex = LATCH_CHANGE_EXPIRED_AUTHTOK;
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK | ex), LATCH_SUCCESS);
        assert_int_equal(req.n_prompts, 0);
        /* pam_unix asks "Current password: " under PAM_CHANGE_EXPIRED_AUTHTOK:
         * answered from OLDPASSWORD, so the client is asked the new one only */
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK | ex), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "New password: ");
        /* with pam_unix's "Changing password for USER." before it */
        assert_int_equal(req.n_prompts, 2);
        assert_int_equal(req.styles[0], LATCH_PROMPT_INFO);
        assert_non_null(strstr(req.prompts[0], unix_user));
        answer(&req, "New-Pass-55");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK | ex), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "Retype new password: ");
        answer(&req, "New-Pass-55");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK | ex), LATCH_SUCCESS);
        assert_string_equal(req.password, "New-Pass-55");
        test_req_done(&req);

        assert_int_equal(call(st, false, unix_user, NULL, NULL), LATCH_SUCCESS);
        assert_int_equal(auth_unix(st, "New-Pass-55"), LATCH_SUCCESS);
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_AUTH_ERR);

        /* Expired again, and OLDPASSWORD unknown at the update pass (no
         * line set it): "Current password: " goes to the client. */
        expire_password();
        req = test_req(unix_user, NULL);
        req.op = "login";
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK | ex), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "Current password: ");
        answer(&req, "wrong");
        assert_int_not_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK | ex), LATCH_SUCCESS);
        test_req_done(&req);
        assert_int_equal(auth_unix(st, "New-Pass-55"), LATCH_SUCCESS);
        plugin->close(st);
}

static void test_passwd_abandoned_mid_conversation(void **state) {
        void *st = open_service(svc_unix);
        struct latch_req req = test_req(unix_user, NULL);

        set_password("Old-Pass-1");
        req.oldpassword = "Old-Pass-1";
        char *before = shadow_line();
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "New password: ");
        test_host_log_reset();
        /* The client never answers: the request ends, the module's thread
         * with it (its conversation fails), and nothing changed. (Abandoning
         * at the retype would do the same, but libpam 1.5.2's
         * pam_get_authtok() then leaks the first answer, which LeakSanitizer
         * reports; later Linux-PAM frees it.) */
        test_req_done(&req);
        /* Quietly: the abandonment is the cause, and no call waits for the
         * module's result (an isolated line's worker would send the line
         * after the request's answer, or to a closed socket). */
        assert_int_equal(test_host_log_count("pam_chauthtok("), 0);
        char *after = shadow_line();
        assert_string_equal(before, after);
        free(before);
        free(after);
        plugin->close(st);
}

/* The module's thread cannot start: the request fails as a system error,
 * once, and its slot is empty (freed once, not twice: ASan would see it). */
static void test_thread_start_fails(void **state) {
        void *st = open_service(svc_userdb);
        unsigned calls = pthread_create_calls;

        /* The wrapper is the one the plugin calls. */
        assert_int_equal(call(st, true, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_true(pthread_create_calls > calls);

        test_host_log_reset();
        pthread_create_fail = EAGAIN;
        struct latch_req req = test_req("alice", "alice-pw");
        assert_int_equal(plugin->auth(st, &req), LATCH_SYSTEM_ERR);
        assert_null(req.data);
        assert_null(req.cleanup);
        test_req_done(&req);
        req = test_req(unix_user, NULL);
        req.oldpassword = "x";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SYSTEM_ERR);
        assert_null(req.data);
        test_req_done(&req);
        pthread_create_fail = 0;
        assert_int_equal(test_host_log_count("pthread_create: Resource temporarily unavailable"), 2);

        /* Nothing was left behind: the line goes on. */
        assert_int_equal(call(st, true, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        plugin->close(st);
}

/* What a module says goes out as the host takes prompts (it refuses
 * controls, bidi overrides, text that is not UTF-8, empty and over-long
 * messages, and one refused line would fail the call): made fit, so the
 * question after it still reaches the client. */
static void test_relayed_messages_are_made_fit(void **state) {
        void *st = open_service(svc_echo);
        struct latch_req req = test_req(unix_user, NULL);
        char long_line[600];

        set_password("Old-Pass-1");
        req.op = "passwd";
        req.oldpassword = "Old-Pass-1";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_int_equal(req.n_prompts, 4); /* the empty line is dropped */
        for (int i = 0; i < 3; i++)
                assert_int_equal(req.styles[i], LATCH_PROMPT_INFO);
        assert_string_equal(req.prompts[0], "Welcome\xef\xbf\xbd[2J to\xef\xbf\xbd latch\xef\xbf\xbd");
        assert_string_equal(req.prompts[1], "Enter \xef\xbf\xbd:edoc \xef\xbf\xbd and \xef\xbf\xbd\tok\n"
                                            "line 2\xef\xbf\xbd");
        /* cut at 512 bytes, before the "é" that would cross it */
        memset(long_line, 'a', 511);
        long_line[511] = '\0';
        assert_string_equal(req.prompts[2], long_line);
        assert_int_equal(req.styles[3], LATCH_PROMPT_SECRET);
        assert_string_equal(req.prompts[3], "New password: ");
        answer(&req, "New-Pass-66");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_string_equal(asked(&req), "Retype new password: ");
        answer(&req, "New-Pass-66");
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
        test_req_done(&req);

        assert_int_equal(auth_unix(st, "New-Pass-66"), LATCH_SUCCESS);
        assert_int_equal(auth_unix(st, "Old-Pass-1"), LATCH_AUTH_ERR);
        plugin->close(st);
}

static void test_password_mapping(void **state) {
        void *st = open_service(svc_chdebug);
        struct latch_req req = test_req("alice", "x");

        req.oldpassword = "y";
        assert_int_equal(pw_call(st, &req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_int_equal(pw_call(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_AUTHTOK_LOCK_BUSY);
        /* neither pass: a host error */
        assert_int_equal(pw_call(st, &req, 0), LATCH_SYSTEM_ERR);
        test_req_done(&req);
        plugin->close(st);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abi),
                cmocka_unit_test(test_open_errors),
                cmocka_unit_test(test_userdb),
                cmocka_unit_test(test_mapping),
                cmocka_unit_test(test_rhost),
                cmocka_unit_test(test_waiting_logins_are_bounded),
                cmocka_unit_test(test_max_waiting_argument),
                cmocka_unit_test(test_refused_prompt_ends_the_thread),
                cmocka_unit_test(test_account_new_authtok_reqd),
                cmocka_unit_test(test_passwd_through_the_conversation),
                cmocka_unit_test(test_passwd_wrong_current_password),
                cmocka_unit_test(test_passwd_from_items),
                cmocka_unit_test(test_passwd_retype_differs),
                cmocka_unit_test(test_expired_password_change),
                cmocka_unit_test(test_passwd_abandoned_mid_conversation),
                cmocka_unit_test(test_relayed_messages_are_made_fit),
                cmocka_unit_test(test_password_mapping),
                cmocka_unit_test(test_thread_start_fails),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/pam.so\n", argv[0]);
                return 2;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "not root: cannot write /etc/pam.d, skipping\n");
                return 77;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
