/* SPDX-License-Identifier: MIT */
/* daemon_new / daemon_start / daemon_free: a daemon set up and torn down
 * in a scratch folder (under ASan this also holds that nothing leaks), and
 * a bad configuration refused without a half-built daemon. */
#include <errno.h>
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
#include <sodium.h>

#include "daemon.h"

static char dir[] = "/tmp/test-lifecycle-XXXXXX";

static void write_file(const char *name, const char *text) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void count_diag(void *userdata, const char *file, unsigned line, const char *message) {
        (*(unsigned *) userdata)++;
}

static void test_new_start_free(void **state) {
        char conf[1024], path[256];
        struct stat st;

        snprintf(conf, sizeof conf,
                 "[daemon]\nsocket = %s/latchd.sock\nstate_dir = %s/state\nservices_dir = %s/services\n"
                 "plugin_dir = %s\njwks_file = %s/jwks.json\nworkers = 1\n",
                 dir, dir, dir, dir, dir);
        write_file("latchd.conf", conf);
        /* An empty services folder: every service unknown. */
        snprintf(path, sizeof path, "%s/services", dir);
        assert_int_equal(mkdir(path, 0700), 0);

        snprintf(path, sizeof path, "%s/latchd.conf", dir);
        struct daemon_options o = { .config_file = path };
        struct daemon *d = NULL;
        assert_int_equal(daemon_new(&o, &d), 0);
        assert_non_null(d);
        assert_non_null(d->store);
        assert_non_null(d->keys);
        assert_non_null(d->pool);
        assert_non_null(d->writer);
        assert_int_equal(daemon_start(d), 0);

        snprintf(path, sizeof path, "%s/latchd.sock", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        snprintf(path, sizeof path, "%s/jwks.json", dir);
        assert_int_equal(stat(path, &st), 0);

        daemon_free(d);
        /* The socket it bound is its to remove. */
        snprintf(path, sizeof path, "%s/latchd.sock", dir);
        assert_int_equal(stat(path, &st), -1);
        daemon_free(NULL);
}

static void test_bad_config(void **state) {
        char path[256];
        unsigned problems = 0;

        write_file("bad.conf", "[daemon]\nworkers = many\n");
        snprintf(path, sizeof path, "%s/bad.conf", dir);
        struct daemon_options o = { .config_file = path, .diag = count_diag, .diag_userdata = &problems };
        struct daemon *d = (struct daemon *) 0x1;
        assert_true(daemon_new(&o, &d) < 0);
        assert_ptr_equal(d, (struct daemon *) 0x1); /* untouched on failure */
        assert_int_equal(problems, 1);
}

int main(void) {
        assert_true(sodium_init() >= 0);
        assert_non_null(mkdtemp(dir));
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_start_free),
                cmocka_unit_test(test_bad_config),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                r = 1;
        return r;
}
