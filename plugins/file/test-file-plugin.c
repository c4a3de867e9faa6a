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
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-host.h"
#include "userdb.h"

/* No file system fails an fsync() when asked, so this executable brings its
 * own, exported (visibility and export_dynamic in meson.build) so that the
 * dlopen()ed plugin's call to fsync() binds to it before libc's. It fails a
 * folder's sync when told to, and is the plain system call otherwise. */
static atomic_bool fail_dir_fsync;

__attribute__((visibility("default"))) int fsync(int fd) {
        struct stat st;

        if (fail_dir_fsync && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fsync, fd);
}

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
        assert_non_null(plugin->password);

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

/* ---- expiry and password changes -------------------------------------- */

static void *open_args(const char *extra) {
        char arg[4096];
        const char *argv[] = { arg, extra };
        void *st = NULL;

        snprintf(arg, sizeof arg, "path=%s", users);
        assert_int_equal(plugin->open(&test_host, &ctx, extra ? 2 : 1, argv, &st), 0);
        assert_non_null(st);
        return st;
}

static void test_open_password_args(void **state) {
        char arg[4096];
        const char *argv[2] = { arg, NULL };
        void *st = (void *) 0x1;

        put_default_users();
        snprintf(arg, sizeof arg, "path=%s", users);
        static const char *const bad[] = { "min_length=0", "min_length=", "min_length=x",
                                           "min_length=-1", "min_length=4097", "min_length=8x",
                                           "retry=0", "retry=11", "retry= 3" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                argv[1] = bad[i];
                test_host_log_reset();
                assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), -EINVAL);
                assert_int_equal(test_host_log_count("expected a number from 1 to"), 1);
                assert_ptr_equal(st, (void *) 0x1);
        }
        argv[1] = "min_length=1";
        assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), 0);
        plugin->close(st);
        argv[1] = "retry=10";
        assert_int_equal(plugin->open(&test_host, &ctx, 2, argv, &st), 0);
        plugin->close(st);
}

static void test_account_expiry(void **state) {
        put_users("alice:%s:admins:0\n"
                  "bob:%s::%lld\n"
                  "carol:%s::%lld\n"
                  "dave:%s::%lld\n"
                  "erin:%s:g:\n",
                  hash_alice, hash_bob, (long long) TEST_HOST_NOW + 1, hash_alice,
                  (long long) TEST_HOST_NOW, hash_alice, (long long) TEST_HOST_NOW - 1,
                  hash_alice);
        void *st = open_users();

        test_host_log_reset();
        assert_int_equal(do_account(st, "alice"), LATCH_NEW_AUTHTOK_REQD);
        assert_int_equal(test_host_log_count("password expired"), 1);
        assert_int_equal(do_account(st, "bob"), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "carol"), LATCH_NEW_AUTHTOK_REQD);
        assert_int_equal(do_account(st, "dave"), LATCH_NEW_AUTHTOK_REQD);
        assert_int_equal(do_account(st, "erin"), LATCH_SUCCESS);
        assert_int_equal(do_account(st, "zed"), LATCH_USER_UNKNOWN);

        /* an expired password still authenticates: account decides */
        char *claims;
        assert_int_equal(do_auth(st, "alice", "alice-pw", &claims), LATCH_SUCCESS);
        assert_string_equal(claims, "{\"groups\":[\"admins\"]}");
        free(claims);
        assert_int_equal(do_auth(st, "alice", "nope", NULL), LATCH_AUTH_ERR);

        /* an expiry set from outside is picked up on the next call */
        assert_int_equal(userdb_expire(users, "bob", 0), 0);
        assert_int_equal(do_account(st, "bob"), LATCH_NEW_AUTHTOK_REQD);
        assert_int_equal(userdb_expire(users, "alice", USERDB_EXPIRES_NEVER), 0);
        assert_int_equal(do_account(st, "alice"), LATCH_SUCCESS);
        plugin->close(st);
}

/* A password-change request as the `passwd` op makes it. */
static struct latch_req passwd_req(const char *user) {
        struct latch_req req = test_req(user, NULL);
        req.op = "passwd";
        return req;
}

static void clear_prompts(struct latch_req *req) {
        for (int i = 0; i < req->n_prompts; i++)
                free(req->prompts[i]);
        req->n_prompts = 0;
        req->n_answers = 0;
}

/*
 * Runs one pass (flags) to its end as a client would: each `secret` prompt
 * gets the next of `answers` (NULL-terminated; running out ends the pass
 * with -1), `error` prompts are collected into `errors` ("a|b|"), and the
 * `secret` prompts' messages into `asked`. Returns the final result.
 */
static int run_pass(void *st, struct latch_req *req, int flags, const char *const *answers,
                    char *asked, char *errors) {
        size_t next = 0;
        if (asked)
                asked[0] = '\0';
        if (errors)
                errors[0] = '\0';
        for (;;) {
                int r = plugin->password(st, req, flags);
                if (r != LATCH_INCOMPLETE) {
                        clear_prompts(req);
                        return r;
                }
                assert_true(req->n_prompts > 0);
                for (int i = 0; i < req->n_prompts && asked; i++) {
                        if (req->styles[i] == LATCH_PROMPT_SECRET) {
                                strcat(asked, req->prompts[i]);
                                strcat(asked, "|");
                        }
                }
                for (int i = 0; i < req->n_prompts; i++) {
                        if (req->styles[i] == LATCH_PROMPT_SECRET) {
                                if (!answers[next]) {
                                        clear_prompts(req);
                                        return -1;
                                }
                                req->answers[i] = answers[next++];
                        } else {
                                assert_int_equal(req->styles[i], LATCH_PROMPT_ERROR);
                                if (errors) {
                                        strcat(errors, req->prompts[i]);
                                        strcat(errors, "|");
                                }
                                req->answers[i] = NULL;
                        }
                }
                int n = req->n_prompts;
                for (int i = 0; i < n; i++)
                        free(req->prompts[i]);
                req->n_prompts = 0;
                req->n_answers = n;
        }
}

/* A whole change: prelim with `old`, then update with new/again. */
static int change(void *st, const char *user, const char *old, const char *pw, const char *again) {
        struct latch_req req = passwd_req(user);
        const char *a1[] = { old, NULL };
        const char *a2[] = { pw, again, NULL };
        int r = run_pass(st, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL);
        if (r == LATCH_SUCCESS)
                r = run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, NULL, NULL);
        test_req_done(&req);
        return r;
}

static void test_password_prelim(void **state) {
        put_default_users();
        void *st = open_users();
        char asked[256];

        /* unknown user: asked all the same, then user_unknown */
        {
                struct latch_req req = passwd_req("dave");
                const char *a[] = { "whatever", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a, asked, NULL),
                                 LATCH_USER_UNKNOWN);
                assert_string_equal(asked, "Current password:|");
                assert_string_equal(req.oldpassword, "whatever");
                test_req_done(&req);
        }
        /* wrong current password; a locked account; the right one */
        {
                struct latch_req req = passwd_req("alice");
                const char *a[] = { "alice-pW", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a, asked, NULL),
                                 LATCH_AUTH_ERR);
                assert_string_equal(asked, "Current password:|");
                test_req_done(&req);
        }
        {
                struct latch_req req = passwd_req("carol");
                const char *a[] = { "!", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a, NULL, NULL),
                                 LATCH_AUTH_ERR);
                test_req_done(&req);
        }
        {
                struct latch_req req = passwd_req("bob");
                const char *a[] = { "bob-pw", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a, asked, NULL),
                                 LATCH_SUCCESS);
                assert_string_equal(req.oldpassword, "bob-pw");
                assert_null(req.password);
                test_req_done(&req);
        }
        /* the current password already known (an expired one at login):
         * checked, not asked */
        {
                struct latch_req req = passwd_req("alice");
                const char *a[] = { NULL };
                req.op = "login";
                req.oldpassword = "alice-pw";
                assert_int_equal(run_pass(st, &req,
                                          LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK, a,
                                          asked, NULL),
                                 LATCH_SUCCESS);
                assert_string_equal(asked, "");
                req.oldpassword = "alice-pW";
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a, asked, NULL),
                                 LATCH_AUTH_ERR);
                assert_string_equal(asked, "");
                test_req_done(&req);
        }
        /* neither pass, or both */
        {
                struct latch_req req = passwd_req("alice");
                req.oldpassword = "alice-pw";
                assert_int_equal(plugin->password(st, &req, 0), LATCH_SERVICE_ERR);
                assert_int_equal(plugin->password(st, &req,
                                                  LATCH_PRELIM_CHECK | LATCH_UPDATE_AUTHTOK),
                                 LATCH_SERVICE_ERR);
                test_req_done(&req);
        }
        plugin->close(st);
}

/* Every refusal of a new password: an error prompt saying why, then the
 * two prompts again; after `retry` refusals LATCH_AUTHTOK_ERR; the file is
 * never touched. */
static void test_password_refusals(void **state) {
        put_users("alice:%s:admins,wiki\nbob:%s\n", hash_alice, hash_bob);
        char *before = NULL;
        {
                FILE *f = fopen(users, "re");
                assert_non_null(f);
                before = calloc(1, 8192);
                assert_true(fread(before, 1, 8191, f) > 0);
                fclose(f);
        }
        struct stat sb0, sb1;
        assert_int_equal(stat(users, &sb0), 0);
        void *st = open_users();
        char asked[512], errors[1024];

        static const struct {
                const char *pw, *again, *why;
        } cases[] = {
                { "correct horse", "correct h0rse", "Sorry, passwords do not match." },
                { "", "", "No password has been supplied." },
                { "short1", "short1", "BAD PASSWORD: The password is shorter than 8 characters" },
                /* 7 characters in 14 bytes: characters count, not bytes */
                { "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                  "BAD PASSWORD: The password is shorter than 8 characters" },
                { "alice-pw", "alice-pw", "BAD PASSWORD: The password is the same as the old one" },
                { "xxalicexx", "xxalicexx",
                  "BAD PASSWORD: The password contains the user name in some form" },
                { "ALICE-2026!", "ALICE-2026!",
                  "BAD PASSWORD: The password contains the user name in some form" },
                { "2026-ecila-x", "2026-ecila-x",
                  "BAD PASSWORD: The password contains the user name in some form" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct latch_req req = passwd_req("alice");
                const char *a1[] = { "alice-pw", NULL };
                const char *a2[] = { cases[i].pw, cases[i].again, "fine-password", "other-one",
                                     NULL };
                char expect[512];

                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL),
                                 LATCH_SUCCESS);
                /* one refusal, then a mismatch, then out of answers: the
                 * prompts came back each time */
                assert_int_equal(run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, asked, errors), -1);
                snprintf(expect, sizeof expect, "%s|Sorry, passwords do not match.|", cases[i].why);
                assert_string_equal(errors, expect);
                assert_string_equal(asked, "New password:|Retype new password:|"
                                           "New password:|Retype new password:|"
                                           "New password:|Retype new password:|");
                assert_null(req.password);
                test_req_done(&req);
        }

        /* three refusals end the change */
        {
                struct latch_req req = passwd_req("alice");
                const char *a1[] = { "alice-pw", NULL };
                const char *a2[] = { "a", "a", "b", "c", "alice", "alice", "unused-but-fine",
                                     "unused-but-fine", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL),
                                 LATCH_SUCCESS);
                test_host_log_reset();
                assert_int_equal(run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, asked, errors),
                                 LATCH_AUTHTOK_ERR);
                assert_string_equal(errors,
                                    "BAD PASSWORD: The password is shorter than 8 characters|"
                                    "Sorry, passwords do not match.|");
                assert_int_equal(test_host_log_count("new password refused 3 times"), 1);
                /* no secret in the log */
                assert_int_equal(test_host_log_count("alice-pw"), 0);
                test_req_done(&req);
        }

        /* a new password set by an earlier line cannot be asked again */
        {
                struct latch_req req = passwd_req("alice");
                req.oldpassword = "alice-pw";
                req.password = "alice-is-me";
                test_host_log_reset();
                assert_int_equal(plugin->password(st, &req, LATCH_UPDATE_AUTHTOK),
                                 LATCH_AUTHTOK_ERR);
                assert_int_equal(req.n_prompts, 0);
                assert_int_equal(test_host_log_count("new password refused: BAD PASSWORD: The "
                                                     "password contains the user name"),
                                 1);
                test_req_done(&req);
        }

        /* min_length= */
        void *st12 = open_args("min_length=12");
        {
                struct latch_req req = passwd_req("bob");
                const char *a1[] = { "bob-pw", NULL };
                const char *a2[] = { "elevenchars", "elevenchars", NULL };
                assert_int_equal(run_pass(st12, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL),
                                 LATCH_SUCCESS);
                assert_int_equal(run_pass(st12, &req, LATCH_UPDATE_AUTHTOK, a2, NULL, errors), -1);
                assert_string_equal(errors,
                                    "BAD PASSWORD: The password is shorter than 12 characters|");
                test_req_done(&req);
        }
        plugin->close(st12);

        /* retry=1: the first refusal ends it */
        void *st1 = open_args("retry=1");
        {
                struct latch_req req = passwd_req("bob");
                const char *a1[] = { "bob-pw", NULL };
                const char *a2[] = { "bob-pw", "bob-pw", "fine-password", "fine-password", NULL };
                assert_int_equal(run_pass(st1, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL),
                                 LATCH_SUCCESS);
                assert_int_equal(run_pass(st1, &req, LATCH_UPDATE_AUTHTOK, a2, NULL, errors),
                                 LATCH_AUTHTOK_ERR);
                test_req_done(&req);
        }
        plugin->close(st1);

        /* nothing was written */
        FILE *f = fopen(users, "re");
        char *after = calloc(1, 8192);
        assert_true(fread(after, 1, 8191, f) > 0);
        fclose(f);
        assert_string_equal(after, before);
        assert_int_equal(stat(users, &sb1), 0);
        assert_int_equal(sb0.st_ino, sb1.st_ino);
        free(before);
        free(after);
        plugin->close(st);
}

static void test_password_change(void **state) {
        put_users("# users\nalice:%s:admins,wiki:0\nbob:%s\n", hash_alice, hash_bob);
        assert_int_equal(chmod(users, 0640), 0);
        assert_int_equal(chown(users, 65534, 65534), 0);
        void *st = open_users();
        char asked[256], errors[256];
        struct stat sb;

        assert_int_equal(do_account(st, "alice"), LATCH_NEW_AUTHTOK_REQD);
        {
                struct latch_req req = passwd_req("alice");
                const char *a1[] = { "alice-pw", NULL };
                const char *a2[] = { "a new pass phrase", "a new pass phrase", NULL };
                assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a1, asked, errors),
                                 LATCH_SUCCESS);
                test_host_log_reset();
                assert_int_equal(run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, asked, errors),
                                 LATCH_SUCCESS);
                assert_string_equal(asked, "New password:|Retype new password:|");
                assert_string_equal(errors, "");
                /* for the lines after this one (use_authtok) */
                assert_string_equal(req.password, "a new pass phrase");
                assert_int_equal(test_host_log_count("password changed"), 1);
                assert_int_equal(test_host_log_count("a new pass phrase"), 0);
                test_req_done(&req);
        }

        /* the plugin reads the new file: new password, groups kept, expiry
         * cleared */
        char *claims;
        assert_int_equal(do_auth(st, "alice", "a new pass phrase", &claims), LATCH_SUCCESS);
        assert_string_equal(claims, "{\"groups\":[\"admins\",\"wiki\"]}");
        free(claims);
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_AUTH_ERR);
        assert_int_equal(do_account(st, "alice"), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "bob", "bob-pw", NULL), LATCH_SUCCESS);

        /* the file: argon2id, same mode and owner, comment and bob kept */
        struct userdb *db = NULL;
        assert_int_equal(userdb_parse_file(users, NULL, NULL, &db), 0);
        const struct userdb_entry *e = userdb_lookup(db, "alice");
        assert_int_equal(strncmp(e->hash, "$argon2id$", 10), 0);
        assert_int_equal(e->expires, USERDB_EXPIRES_NEVER);
        assert_string_equal(userdb_lookup(db, "bob")->hash, hash_bob);
        userdb_free(db);
        assert_int_equal(stat(users, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0640);
        assert_int_equal(sb.st_uid, 65534);
        assert_int_equal(sb.st_gid, 65534);

        /* an expired password changed during a login: the login's password
         * is the current one, nothing asked but the new one */
        assert_int_equal(userdb_expire(users, "bob", 0), 0);
        assert_int_equal(do_account(st, "bob"), LATCH_NEW_AUTHTOK_REQD);
        {
                struct latch_req req = test_req("bob", NULL);
                const char *a1[] = { NULL };
                const char *a2[] = { "fresh-secret-9", "fresh-secret-9", NULL };
                req.op = "login";
                req.oldpassword = "bob-pw";
                int f = LATCH_CHANGE_EXPIRED_AUTHTOK;
                assert_int_equal(run_pass(st, &req, f | LATCH_PRELIM_CHECK, a1, asked, NULL),
                                 LATCH_SUCCESS);
                assert_string_equal(asked, "");
                assert_int_equal(run_pass(st, &req, f | LATCH_UPDATE_AUTHTOK, a2, asked, NULL),
                                 LATCH_SUCCESS);
                test_req_done(&req);
        }
        assert_int_equal(do_account(st, "bob"), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "bob", "fresh-secret-9", NULL), LATCH_SUCCESS);

        /* a new password given by an earlier line: stored without asking */
        {
                struct latch_req req = passwd_req("bob");
                req.oldpassword = "fresh-secret-9";
                req.password = "given by a line before";
                assert_int_equal(plugin->password(st, &req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
                assert_int_equal(req.n_prompts, 0);
                test_req_done(&req);
        }
        assert_int_equal(do_auth(st, "bob", "given by a line before", NULL), LATCH_SUCCESS);

        /* no current password in the update pass: refused */
        {
                struct latch_req req = passwd_req("bob");
                req.password = "whatever-long";
                assert_int_equal(plugin->password(st, &req, LATCH_UPDATE_AUTHTOK),
                                 LATCH_AUTHTOK_ERR);
                test_req_done(&req);
        }
        plugin->close(st);
}

/* Between the two passes another change landed: the update checks the
 * current password again under the lock, and fails (nothing written). */
static void test_password_change_lost_race(void **state) {
        put_users("alice:%s\n", hash_alice);
        void *st = open_users();
        struct latch_req req = passwd_req("alice");
        const char *a1[] = { "alice-pw", NULL };
        const char *a2[] = { "mine-not-theirs", "mine-not-theirs", NULL };

        assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a1, NULL, NULL), LATCH_SUCCESS);
        assert_int_equal(userdb_change_password(users, "alice", "alice-pw", "theirs-first", -1), 0);
        assert_int_equal(run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, NULL, NULL), LATCH_AUTH_ERR);
        test_req_done(&req);
        assert_int_equal(do_auth(st, "alice", "theirs-first", NULL), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "alice", "mine-not-theirs", NULL), LATCH_AUTH_ERR);

        /* the user vanished between the passes */
        req = passwd_req("alice");
        const char *a3[] = { "theirs-first", NULL };
        assert_int_equal(run_pass(st, &req, LATCH_PRELIM_CHECK, a3, NULL, NULL), LATCH_SUCCESS);
        assert_int_equal(userdb_del(users, "alice"), 0);
        assert_int_equal(run_pass(st, &req, LATCH_UPDATE_AUTHTOK, a2, NULL, NULL),
                         LATCH_USER_UNKNOWN);
        test_req_done(&req);
        plugin->close(st);
}

/* The folder's sync fails after the rename: the new password is in force,
 * so the change is a success (latchd then revokes as for any change), with
 * a warning that names the file and no secret. */
static void test_password_change_unsynced(void **state) {
        put_users("alice:%s\n", hash_alice);
        void *st = open_users();

        test_host_log_reset();
        fail_dir_fsync = true;
        int r = change(st, "alice", "alice-pw", "synced-or-not", "synced-or-not");
        fail_dir_fsync = false;
        assert_int_equal(r, LATCH_SUCCESS);
        assert_int_equal(test_host_log_count("password changed, but the folder could not be "
                                             "synced"),
                         1);
        assert_int_equal(test_host_log_count(users), 1);
        assert_int_equal(test_host_log_count("synced-or-not"), 0);
        assert_int_equal(test_host_log_count("alice-pw"), 0);
        assert_int_equal(test_host_log_count("$argon2id$"), 0);
        assert_int_equal(do_auth(st, "alice", "synced-or-not", NULL), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_AUTH_ERR);
        plugin->close(st);
}

/* The editors' lock held elsewhere (a stuck `latchctl user`): the change
 * gives up after its timeout with LATCH_AUTHTOK_LOCK_BUSY. */
static void test_password_lock_busy(void **state) {
        put_users("alice:%s\n", hash_alice);
        void *st = open_users();
        int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(lock >= 0);
        assert_int_equal(flock(lock, LOCK_EX), 0);

        test_host_log_reset();
        assert_int_equal(change(st, "alice", "alice-pw", "while-locked", "while-locked"),
                         LATCH_AUTHTOK_LOCK_BUSY);
        assert_int_equal(test_host_log_count("the file stayed locked"), 1);
        close(lock);
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(change(st, "alice", "alice-pw", "after-unlock", "after-unlock"),
                         LATCH_SUCCESS);
        plugin->close(st);
}

/* latchd runs as an unprivileged user: where it cannot replace the file
 * (folder not writable, or a file it does not own and so could not give
 * back its owner), the preliminary pass says so before asking for a new
 * password, and the log says why. Run in a child as nobody. */
static void test_password_not_writable(void **state) {
        put_users("alice:%s\n", hash_alice);
        if (geteuid() != 0) {
                skip();
                return;
        }
        void *st = open_users();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                test_host_log_reset();
                /* the folder (root's, 0700 from mkdtemp) is not writable */
                int r1 = change(st, "alice", "alice-pw", "never-stored", "never-stored");
                unsigned l1 = test_host_log_count("not writable");
                _exit(r1 == LATCH_AUTHINFO_UNAVAIL && l1 == 1 ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* a writable folder, but root's file */
        assert_int_equal(chmod(dir, 0777), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                test_host_log_reset();
                int r1 = change(st, "alice", "alice-pw", "never-stored", "never-stored");
                unsigned l1 = test_host_log_count("the file belongs to 0:0, not to this "
                                                  "process's 65534:65534");
                _exit(r1 == LATCH_AUTHINFO_UNAVAIL && l1 == 1 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* nobody's file, but root's group: the new file could not get it */
        assert_int_equal(chown(users, 65534, 0), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                test_host_log_reset();
                int r1 = change(st, "alice", "alice-pw", "never-stored", "never-stored");
                unsigned l1 = test_host_log_count("the file belongs to 65534:0");
                _exit(r1 == LATCH_AUTHINFO_UNAVAIL && l1 == 1 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* nobody's file in a folder nobody may write: the change works */
        assert_int_equal(chown(users, 65534, 65534), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                int r1 = change(st, "alice", "alice-pw", "nobody-did-it", "nobody-did-it");
                _exit(r1 == LATCH_SUCCESS ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(chmod(dir, 0700), 0);
        assert_int_equal(do_auth(st, "alice", "nobody-did-it", NULL), LATCH_SUCCESS);
        struct stat sb;
        assert_int_equal(stat(users, &sb), 0);
        assert_int_equal(sb.st_uid, 65534);
        plugin->close(st);
}

/* A temporary file a crashed change left beside the database: the plugin
 * never reads it, and the next change removes it. */
static void test_password_stale_temp(void **state) {
        char *stale;
        put_users("alice:%s\n", hash_alice);
        assert_true(asprintf(&stale, "%s/.users.00000000deadbeef", dir) > 0);
        int fd = open(stale, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_true(dprintf(fd, "alice:$argon2id$v=19$m=8,t=1") > 0); /* torn */
        close(fd);

        void *st = open_users();
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_SUCCESS);
        assert_int_equal(change(st, "alice", "alice-pw", "after-a-crash", "after-a-crash"),
                         LATCH_SUCCESS);
        assert_int_equal(access(stale, F_OK), -1);
        assert_int_equal(do_auth(st, "alice", "after-a-crash", NULL), LATCH_SUCCESS);
        free(stale);
        plugin->close(st);
}

#define REWRITE_ROUNDS 1000

struct reader {
        void *st;
        volatile int *stop;
        unsigned calls, bad, expired, fresh;
};

static void *reader_run(void *userdata) {
        struct reader *r = userdata;
        do {
                int a = do_account(r->st, "alice");
                if (a == LATCH_NEW_AUTHTOK_REQD)
                        r->expired++;
                else if (a == LATCH_SUCCESS)
                        r->fresh++;
                else
                        r->bad++;
                if (do_auth(r->st, "alice", "alice-pw", NULL) != LATCH_SUCCESS)
                        r->bad++;
                if (do_account(r->st, "zed") != LATCH_SUCCESS)
                        r->bad++;
                r->calls++;
        } while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE));
        return NULL;
}

/* 1000 atomic rewrites of the database (each a new file renamed over the
 * old, as a password change writes it) while two threads log in and check
 * accounts through the plugin: every call sees a whole version (alice's
 * password always works, zed always exists), no version is ever malformed,
 * and the last one is what the plugin ends up with. */
static void test_rewrite_vs_read(void **state) {
        put_users("alice:%s:admins,wiki\nbob:%s\n# padding %0400d\nzed:*\n", hash_alice,
                  hash_bob, 0);
        void *st = open_users();
        volatile int stop = 0;
        struct reader r[2] = { { .st = st, .stop = &stop }, { .st = st, .stop = &stop } };
        pthread_t t[2];

        test_host_log_reset();
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&t[i], NULL, reader_run, &r[i]), 0);
        for (int i = 0; i < REWRITE_ROUNDS; i++)
                assert_int_equal(userdb_expire(users, "alice", i % 2 ? USERDB_EXPIRES_NEVER : 0), 0);
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);

        for (int i = 0; i < 2; i++) {
                fprintf(stderr, "reader %d: %u rounds (%u expired, %u not) during %d rewrites\n",
                        i, r[i].calls, r[i].expired, r[i].fresh, REWRITE_ROUNDS);
                assert_int_equal(r[i].bad, 0);
                assert_true(r[i].calls > 0);
        }
        assert_int_equal(test_host_log_count("cannot reload"), 0);
        assert_int_equal(test_host_log_count("cannot stat"), 0);
        assert_int_equal(do_account(st, "alice"), LATCH_SUCCESS); /* the last version */
        plugin->close(st);
}

static void *worker_reader_bob(void *userdata) {
        struct reader *r = userdata;
        do {
                if (do_auth(r->st, "bob", "bob-pw", NULL) != LATCH_SUCCESS)
                        r->bad++;
                if (do_account(r->st, "zed") != LATCH_SUCCESS)
                        r->bad++;
                if (do_account(r->st, "alice") != LATCH_SUCCESS)
                        r->bad++;
                r->calls++;
        } while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE));
        return NULL;
}

struct changer {
        void *st;
        const char *new;
        int result;
};

static void *changer_run(void *userdata) {
        struct changer *c = userdata;
        c->result = change(c->st, "alice", "alice-pw", c->new, c->new);
        return NULL;
}

/* Two users' sessions change alice's password at once with the same
 * current password, while logins go on: exactly one change lands, the
 * other finds the current password changed; the file stays valid; every
 * login meanwhile saw a whole file (bob always gets in). */
static void test_password_concurrent(void **state) {
        put_users("alice:%s:g\nbob:%s\nzed:*\n", hash_alice, hash_bob);
        void *st = open_users();
        struct changer c[2] = { { st, "first-new-pw", -1 }, { st, "second-new-pw", -1 } };
        volatile int stop = 0;
        pthread_t t[2], rt;
        struct reader r = { .st = st, .stop = &stop };

        test_host_log_reset();
        /* a reader of bob and zed only: alice's password is what changes */
        assert_int_equal(pthread_create(&rt, NULL, worker_reader_bob, &r), 0);
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&t[i], NULL, changer_run, &c[i]), 0);
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(pthread_join(rt, NULL), 0);

        assert_true((c[0].result == LATCH_SUCCESS && c[1].result == LATCH_AUTH_ERR) ||
                    (c[1].result == LATCH_SUCCESS && c[0].result == LATCH_AUTH_ERR));
        int won = c[0].result == LATCH_SUCCESS ? 0 : 1;
        assert_int_equal(do_auth(st, "alice", c[won].new, NULL), LATCH_SUCCESS);
        assert_int_equal(do_auth(st, "alice", c[1 - won].new, NULL), LATCH_AUTH_ERR);
        assert_int_equal(do_auth(st, "alice", "alice-pw", NULL), LATCH_AUTH_ERR);
        assert_int_equal(r.bad, 0);
        assert_true(r.calls > 0);
        assert_int_equal(test_host_log_count("cannot reload"), 0);

        struct userdb *db = NULL;
        assert_int_equal(userdb_parse_file(users, NULL, NULL, &db), 0);
        assert_int_equal(userdb_size(db), 3);
        assert_int_equal(userdb_lookup(db, "alice")->n_groups, 1);
        userdb_free(db);
        plugin->close(st);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abi),
                cmocka_unit_test(test_open_errors),
                cmocka_unit_test(test_auth),
                cmocka_unit_test(test_reload),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_open_password_args),
                cmocka_unit_test(test_account_expiry),
                cmocka_unit_test(test_password_prelim),
                cmocka_unit_test(test_password_refusals),
                cmocka_unit_test(test_password_change),
                cmocka_unit_test(test_password_change_lost_race),
                cmocka_unit_test(test_password_change_unsynced),
                cmocka_unit_test(test_password_lock_busy),
                cmocka_unit_test(test_password_not_writable),
                cmocka_unit_test(test_password_stale_temp),
                cmocka_unit_test(test_rewrite_vs_read),
                cmocka_unit_test(test_password_concurrent),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/file.so\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
