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

static const char *plugin_path;
static void *dl;
static const struct latch_plugin *plugin;
static char dir[] = "/tmp/test-pam-plugin-XXXXXX";
static char svc_userdb[64], svc_debug[64], svc_rhost[64], svc_deny[64];
static struct latch_ctx ctx = { .name = "pam" };

static void svc_path(char *buf, size_t size, const char *svc) {
        snprintf(buf, size, "/etc/pam.d/%s", svc);
}

static void cleanup(void) {
        const char *svcs[] = { svc_userdb, svc_debug, svc_rhost, svc_deny };
        char p[256];

        for (size_t i = 0; i < sizeof svcs / sizeof svcs[0]; i++)
                if (svcs[i][0]) {
                        svc_path(p, sizeof p, svcs[i]);
                        (void) unlink(p);
                }
        snprintf(p, sizeof p, "%s/users.db", dir);
        (void) unlink(p);
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
                          "account required pam_deny.so\n") < 0) {
                perror("writing /etc/pam.d");
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

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abi),
                cmocka_unit_test(test_open_errors),
                cmocka_unit_test(test_userdb),
                cmocka_unit_test(test_mapping),
                cmocka_unit_test(test_rhost),
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
