/* SPDX-License-Identifier: MIT */

/* Loads the built file.so through its entry symbol, as latchd does, and
 * drives it with the test host. argv[1] is the plugin's path. */

#include <crypt.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-host.h"

static const char *plugin_path;
static void *dl;
static const struct latch_plugin *plugin;
static char *dir, *users;
static char *hash_alice, *hash_alice2, *hash_bob, *hash_evil;

static char *argon2id_min(const char *password) {
        char out[crypto_pwhash_STRBYTES];
        assert_int_equal(crypto_pwhash_str(out, password, strlen(password),
                                           crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN),
                         0);
        return strdup(out);
}

static char *sha512_crypt(const char *password) {
        struct crypt_data cd = {};
        const char *h = crypt_rn(password, "$6$rounds=1000$saltsaltsalt$", &cd, sizeof cd);
        assert_non_null(h);
        assert_true(strncmp(h, "$6$", 3) == 0);
        return strdup(h);
}

/* Replaces the users file through rename(), as latchctl does. */
static void put_users(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put_users(const char *fmt, ...) {
        char *tmp, *text;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&text, fmt, ap) >= 0);
        va_end(ap);
        assert_true(asprintf(&tmp, "%s.tmp", users) > 0);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        assert_int_equal(rename(tmp, users), 0);
        free(tmp);
        free(text);
}

static void put_default_users(void) {
        put_users("# test users\n"
                  "alice:%s:admins,wiki\n"
                  "bob:%s\n"
                  "carol:!\n",
                  hash_alice, hash_bob);
}

static int group_setup(void **state) {
        if (sodium_init() < 0)
                return -1;
        if (test_host_load(plugin_path, &dl, &plugin) < 0)
                return -1;
        dir = strdup("/tmp/test-file-plugin-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        if (asprintf(&users, "%s/users", dir) < 0)
                return -1;
        hash_alice = argon2id_min("alice-pw");
        hash_alice2 = argon2id_min("alice-new");
        hash_bob = sha512_crypt("bob-pw");
        hash_evil = argon2id_min("evil");
        return 0;
}

static int group_teardown(void **state) {
        DIR *d = opendir(dir);
        if (d) {
                for (struct dirent *de; (de = readdir(d));)
                        if (de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.'))
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(dir);
        free(dir);
        free(users);
        free(hash_alice);
        free(hash_alice2);
        free(hash_bob);
        free(hash_evil);
        if (dl)
                dlclose(dl);
        return 0;
}

static struct latch_ctx ctx = { .name = "file" };

static void *open_users(void) {
        char arg[4096];
        const char *argv[] = { arg };
        void *st = NULL;

        snprintf(arg, sizeof arg, "path=%s", users);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, argv, &st), 0);
        assert_non_null(st);
        return st;
}

static int do_auth(void *st, const char *user, const char *pw, char **ret_claims) {
        struct latch_req req = test_req(user, pw);
        int r = plugin->auth(st, &req);
        if (ret_claims)
                *ret_claims = json_dumps(req.claims, JSON_COMPACT | JSON_SORT_KEYS);
        test_req_done(&req);
        return r;
}

static int do_account(void *st, const char *user) {
        struct latch_req req = test_req(user, NULL);
        int r = plugin->account(st, &req);
        test_req_done(&req);
        return r;
}

static void test_abi(void **state) {
        bool has_entry = false;

        assert_string_equal(plugin->name, "file");
        assert_int_equal(plugin->size, sizeof(struct latch_plugin));
        assert_int_equal(plugin->abi_major, LATCH_PLUGIN_ABI_MAJOR);
        assert_non_null(plugin->open);
        assert_non_null(plugin->close);
        assert_non_null(plugin->auth);
        assert_non_null(plugin->account);

        assert_int_equal(test_host_foreign_exports(plugin_path, &has_entry), 0);
        assert_true(has_entry);

        /* a host of another major is refused */
        latch_plugin_entry_fn entry;
        *(void **) &entry = dlsym(dl, LATCH_PLUGIN_ENTRY_SYMBOL);
        assert_non_null(entry);
        struct latch_host other = test_host;
        other.abi_major = LATCH_PLUGIN_ABI_MAJOR + 1;
        assert_null(entry(&other));
        assert_ptr_equal(entry(&test_host), plugin);
}

static void test_open_errors(void **state) {
        void *st = (void *) 0x1;
        char arg[4096], needle[4200];
        const char *argv[2] = { arg, NULL };

        test_host_log_reset();
        assert_int_equal(plugin->open(&test_host, &ctx, 0, NULL, &st), -EINVAL);
        assert_int_equal(test_host_log_count("missing argument path="), 1);

        const char *rel[] = { "path=users" };
        assert_int_equal(plugin->open(&test_host, &ctx, 1, rel, &st), -EINVAL);
        assert_int_equal(test_host_log_count("must be an absolute path"), 1);

        snprintf(arg, sizeof arg, "path=%s", users);
        argv[1] = "bogus=1";
        put_default_users();
        assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), -EINVAL);
        assert_int_equal(test_host_log_count("unknown argument 'bogus=1'"), 1);

        snprintf(arg, sizeof arg, "path=%s/missing", dir);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, argv, &st), -ENOENT);
        snprintf(needle, sizeof needle, "%s/missing: cannot load the user database", dir);
        assert_int_equal(test_host_log_count(needle), 1);

        /* a malformed line fails the whole file, even next to good lines:
         * mallory's line would otherwise grant "evil" */
        put_users("alice:%s\n\nmallory:%s:bad group\n", hash_alice, hash_evil);
        snprintf(arg, sizeof arg, "path=%s", users);
        assert_int_equal(plugin->open(&test_host, &ctx, 1, argv, &st), -EBADMSG);
        snprintf(needle, sizeof needle, "%s:3: group name 1 contains", users);
        assert_int_equal(test_host_log_count(needle), 1);
        assert_ptr_equal(st, (void *) 0x1);
        put_default_users();
}

static void test_auth(void **state) {
        void *st = open_users();
        char *claims;

        assert_int_equal(do_auth(st, "alice", "alice-pw", &claims), LATCH_SUCCESS);
        assert_string_equal(claims, "{\"groups\":[\"admins\",\"wiki\"]}");
        free(claims);

        assert_int_equal(do_auth(st, "alice", "alice-pW", &claims), LATCH_AUTH_ERR);
        assert_string_equal(claims, "{}");
        free(claims);
        assert_int_equal(do_auth(st, "alice", "", NULL), LATCH_AUTH_ERR);
        {
                /* No password: the plugin asks for it, then checks the answer. */
                struct latch_req req = test_req("alice", NULL);
                assert_int_equal(plugin->auth(st, &req), LATCH_INCOMPLETE);
                assert_int_equal(req.n_prompts, 1);
                assert_int_equal(req.styles[0], LATCH_PROMPT_SECRET);
                assert_string_equal(req.prompts[0], "Password:");
                req.answers[0] = "alice-pW";
                req.n_answers = 1;
                assert_int_equal(plugin->auth(st, &req), LATCH_AUTH_ERR);
                req.answers[0] = "alice-pw";
                assert_int_equal(plugin->auth(st, &req), LATCH_SUCCESS);
                test_req_done(&req);
        }

        /* sha512-crypt, no groups: no claim at all */
        assert_int_equal(do_auth(st, "bob", "bob-pw", &claims), LATCH_SUCCESS);
        assert_string_equal(claims, "{}");
        free(claims);
        assert_int_equal(do_auth(st, "bob", "alice-pw", NULL), LATCH_AUTH_ERR);

        /* locked */
        assert_int_equal(do_auth(st, "carol", "", NULL), LATCH_AUTH_ERR);
        assert_int_equal(do_auth(st, "carol", "!", NULL), LATCH_AUTH_ERR);

        assert_int_equal(do_auth(st, "dave", "alice-pw", &claims), LATCH_USER_UNKNOWN);
        assert_string_equal(claims, "{}");
        free(claims);
        assert_int_equal(do_auth(st, NULL, "alice-pw", NULL), LATCH_USER_UNKNOWN);
        assert_int_equal(do_auth(st, "Alice", "alice-pw", NULL), LATCH_USER_UNKNOWN);

        assert_int_equal(do_account(st, "alice"), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "carol"), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "dave"), LATCH_USER_UNKNOWN);
        assert_int_equal(do_account(st, NULL), LATCH_USER_UNKNOWN);

        plugin->close(st);
        plugin->close(NULL);
}

static void test_reload(void **state) {
        void *st = open_users();
        char needle[4200];

        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "dave"), LATCH_USER_UNKNOWN);

        /* new inode: alice's password changes, dave appears */
        put_users("alice:%s:admins\ndave:%s\n", hash_alice2, hash_bob);
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_AUTH_ERR);
        char *claims;
        assert_int_equal(do_auth(st, "alice", "alice-new", &claims), LATCH_SUCCESS);
        assert_string_equal(claims, "{\"groups\":[\"admins\"]}");
        free(claims);
        assert_int_equal(do_account(st, "dave"), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "bob", "bob-pw", NULL), LATCH_USER_UNKNOWN);

        /* in place (same inode), different size */
        int fd = open(users, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        dprintf(fd, "# only bob\nbob:%s\n", hash_bob);
        close(fd);
        assert_int_equal(do_account(st, "alice"), LATCH_USER_UNKNOWN);
        assert_int_equal(do_auth(st, "bob", "bob-pw", NULL), LATCH_SUCCESS);

        /* a broken version: logged once, the previous table stays */
        test_host_log_reset();
        put_users("bob:%s\nmallory:%s:,\n", hash_evil, hash_evil);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(do_auth(st, "mallory", "evil", NULL), LATCH_USER_UNKNOWN);
                assert_int_equal(do_auth(st, "bob", "evil", NULL), LATCH_AUTH_ERR);
                assert_int_equal(do_auth(st, "bob", "bob-pw", NULL), LATCH_SUCCESS);
        }
        snprintf(needle, sizeof needle, "%s:2: group name 1 is empty", users);
        assert_int_equal(test_host_log_count(needle), 1);
        assert_int_equal(test_host_log_count("cannot reload"), 1);

        /* the file vanishes: logged once, previous table stays */
        assert_int_equal(unlink(users), 0);
        assert_int_equal(do_auth(st, "bob", "bob-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "bob"), LATCH_SUCCESS);
        assert_int_equal(test_host_log_count("cannot stat"), 1);

        /* a good version again */
        put_default_users();
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "carol", "x", NULL), LATCH_AUTH_ERR);

        plugin->close(st);
}

struct worker {
        void *st;
        int id;
        int failures;
};

static void *worker_run(void *userdata) {
        struct worker *w = userdata;

        for (int i = 0; i < 4; i++) {
                struct latch_req req = test_req("alice", "alice-pw");
                int r = plugin->auth(w->st, &req);
                json_t *g = json_object_get(req.claims, "groups");
                if (r != LATCH_SUCCESS || json_array_size(g) != 2 ||
                    strcmp(json_string_value(json_array_get(g, 1)), "wiki") != 0)
                        w->failures++;
                test_req_done(&req);

                if (do_auth(w->st, "alice", "nope", NULL) != LATCH_AUTH_ERR)
                        w->failures++;
                if (do_auth(w->st, "bob", "bob-pw", NULL) != LATCH_SUCCESS)
                        w->failures++;
                if (i % 2 == w->id % 2 && do_auth(w->st, "zed", "x", NULL) != LATCH_USER_UNKNOWN)
                        w->failures++;
                if (do_account(w->st, "carol") != LATCH_SUCCESS)
                        w->failures++;
                if (do_account(w->st, "zed") != LATCH_USER_UNKNOWN)
                        w->failures++;
        }
        return NULL;
}

struct rewriter {
        volatile int stop;
        int rounds;
};

/* Swaps between two versions that agree on everything the workers check. */
static void *rewriter_run(void *userdata) {
        struct rewriter *rw = userdata;
        while (!__atomic_load_n(&rw->stop, __ATOMIC_ACQUIRE)) {
                if (rw->rounds % 2)
                        put_default_users();
                else
                        put_users("carol:*\nbob:%s\n# v2\nalice:%s:admins,wiki\n", hash_bob,
                                  hash_alice);
                rw->rounds++;
                usleep(2000);
        }
        return NULL;
}

static void test_threads(void **state) {
        put_default_users();
        void *st = open_users();
        struct worker w[4];
        pthread_t t[4], rt;
        struct rewriter rw = {};

        assert_int_equal(pthread_create(&rt, NULL, rewriter_run, &rw), 0);
        for (int i = 0; i < 4; i++) {
                w[i] = (struct worker) { .st = st, .id = i };
                assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
        }
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        __atomic_store_n(&rw.stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(pthread_join(rt, NULL), 0);

        for (int i = 0; i < 4; i++)
                assert_int_equal(w[i].failures, 0);
        assert_true(rw.rounds > 0);
        plugin->close(st);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abi),
                cmocka_unit_test(test_open_errors),
                cmocka_unit_test(test_auth),
                cmocka_unit_test(test_reload),
                cmocka_unit_test(test_threads),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/file.so\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
