/* SPDX-License-Identifier: MIT */
/*
 * Tests of the session store's files (daemon/store.c): modes, owners and
 * foreign layouts, a full disk, links, cut-short files, faults and bit
 * flips. STORE_TEST_SEED as in test-store.c.
 */

#include "store-test.h"

/* ---- 6. permissions and foreign files ---- */

static void write_file(const char *dir, const char *name, const void *data, size_t n) {
        char *p;
        int fd;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        close(fd);
        free(p);
}

static void set_layout(const char *dir, uint32_t version, bool foreign) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        char *path;

        assert_true(asprintf(&path, "%s/sessions.mdb", dir) > 0);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
        assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        if (foreign) {
                MDB_val k = { 3, (void *) "foo" }, v = { 3, (void *) "bar" };
                assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
                assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        } else {
                MDB_val k = { 6, (void *) "layout" }, v = { sizeof version, &version };
                assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
                assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        }
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        free(path);
}

static void test_permissions(void **state) {
        char *dir = make_dir();
        store *s = NULL;
        struct stat st;
        char *path;
        uint8_t garbage[8192];

        assert_int_equal(chmod(dir, 0770), 0);
        assert_int_equal(store_open(dir, &s), -EPERM);
        assert_null(s);
        assert_int_equal(chmod(dir, 0702), 0);
        assert_int_equal(store_open(dir, &s), -EPERM);
        assert_int_equal(chmod(dir, 0700), 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(dir, 65534, 65534), 0);
                assert_int_equal(store_open(dir, &s), -EPERM);
                assert_int_equal(chown(dir, 0, 0), 0);
        }
        assert_int_equal(store_open("/nonexistent/latch-store", &s), -ENOENT);

        /* A good one: files 0600 and close-on-exec. */
        assert_int_equal(store_open(dir, &s), 0);
        assert_true(asprintf(&path, "%s/sessions.mdb", dir) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        free(path);
        assert_true(asprintf(&path, "%s/sessions.mdb-lock", dir) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        free(path);

        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t ours = 0;
        assert_non_null(d);
        while ((de = readdir(d))) {
                char link[PATH_MAX], target[PATH_MAX];
                ssize_t l;
                int fd = atoi(de->d_name);

                if (de->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
                l = readlink(link, target, sizeof target - 1);
                if (l < 0)
                        continue;
                target[l] = '\0';
                if (strncmp(target, dir, strlen(dir)) != 0)
                        continue;
                ours++;
                assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        }
        closedir(d);
        assert_true(ours >= 2);
        store_close(s);
        s = NULL;

        /* A future layout version, and a foreign LMDB file. */
        set_layout(dir, 2, false);
        assert_int_equal(store_open(dir, &s), -EINVAL);
        set_layout(dir, 1, false);
        assert_int_equal(store_open(dir, &s), 0);
        store_close(s);
        s = NULL;
        remove_dir(dir);

        dir = make_dir();
        set_layout(dir, 0, true);
        assert_int_equal(store_open(dir, &s), -EINVAL);
        remove_dir(dir);

        /* Garbage. */
        dir = make_dir();
        for (size_t i = 0; i < sizeof garbage; i++)
                garbage[i] = (uint8_t) (i * 131 + 7);
        write_file(dir, "sessions.mdb", garbage, sizeof garbage);
        assert_int_equal(store_open(dir, &s), -EINVAL);
        write_file(dir, "sessions.mdb", "not lmdb", 8);
        assert_int_equal(store_open(dir, &s), -EINVAL);
        assert_null(s);
        remove_dir(dir);
}

/* ---- 6b. disk full ---- */

/* Raises a u64 to *(uint64_t *) userdata when it is below (else leaves
 * it), as the totp plugin records an accepted time step. */
static int raise_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        uint64_t want = *(uint64_t *) userdata, v = 0;

        if (old && oldlen == sizeof v)
                memcpy(&v, old, sizeof v);
        if (v >= want)
                return 0;
        memcpy(newbuf, &want, sizeof want);
        *newlen = sizeof want;
        return 1;
}

/* A value as large as values go (LMDB puts it on overflow pages). */
static int fill_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        memset(newbuf, 0x5a, LATCH_KV_VALUE_MAX);
        *newlen = LATCH_KV_VALUE_MAX;
        return 1;
}

/* The same, of the byte *(uint8_t *) userdata, to tell values apart. */
static int fill_byte_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        memset(newbuf, *(uint8_t *) userdata, LATCH_KV_VALUE_MAX);
        *newlen = LATCH_KV_VALUE_MAX;
        return 1;
}

/* Whether key holds LATCH_KV_VALUE_MAX bytes `byte` (fill_byte_fn()). */
static bool kv_filled(store *s, const char *key, uint8_t byte) {
        uint8_t val[LATCH_KV_VALUE_MAX];
        size_t len = sizeof val;

        if (store_kv_get(s, "totp", key, strlen(key), val, &len) != 0 || len != sizeof val)
                return false;
        for (size_t i = 0; i < len; i++)
                if (val[i] != byte)
                        return false;
        return true;
}

static uint64_t kv_u64(store *s, const char *key) {
        uint64_t v = 0;
        size_t len = sizeof v;

        if (store_kv_get(s, "totp", key, strlen(key), &v, &len) != 0 || len != sizeof v)
                return 0;
        return v;
}

/* Runs in a child, since it lowers RLIMIT_FSIZE: the file can no longer
 * grow, which LMDB sees as EFBIG from pwrite(), as it would see ENOSPC on a
 * full disk. Returns an exit code: 100 + the number of the key-value write
 * that failed when all went as expected, else below 100: what did not. */
static int disk_full_child(const char *dir) {
        store *s = NULL;
        struct rlimit rl;
        struct stat st;
        char *path;
        size_t i, ok = 0;
        int r = 0;

        if (store_open(dir, &s) < 0)
                return 10;
        if (asprintf(&path, "%s/sessions.mdb", dir) < 0 || stat(path, &st) < 0)
                return 11;
        signal(SIGXFSZ, SIG_IGN);
        rl = (struct rlimit) { .rlim_cur = st.st_size + 64 * 1024, .rlim_max = RLIM_INFINITY };
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                return 12;

        for (i = 0; i < 100000; i++) {
                struct session_info info;
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, 7000000 + i);
                make_info(&info, 7000000 + i, "filler", "wiki", "{\"groups\":[\"users\"]}", 0, 1000000, 1000000);
                r = store_session_create(s, key, &info);
                if (r < 0) {
                        /* Nothing of the failed session is left. */
                        if (store_session_get(s, key, 0, noop_fn, NULL) != -ENOENT)
                                return 13;
                        break;
                }
                ok++;
        }
        if (r != -ENOSPC) {
                fprintf(stderr, "disk full: got %d after %zu sessions\n", r, ok);
                return 14;
        }
        if (store_check_consistency(s) != 0)
                return 15;
        if (list_count_nocmocka(s, "filler") != ok)
                return 16;
        fprintf(stderr, "disk full: -ENOSPC after %zu sessions\n", ok);

        /* Key-value writes of their own fill what room is left: the one
         * that fails is taken back, as its caller reports the failure. */
        char filler[32];
        for (i = 0; i < 100; i++) { /* 64 KiB of room: a few writes */
                snprintf(filler, sizeof filler, "filler%zu", i);
                r = store_kv_update(s, "totp", filler, strlen(filler), fill_fn, NULL);
                if (r < 0)
                        break;
        }
        if (r != -ENOSPC)
                return 23;
        uint8_t val[LATCH_KV_VALUE_MAX];
        size_t len = sizeof val;
        if (store_kv_get(s, "totp", filler, strlen(filler), val, &len) != -ENOENT)
                return 24;

        /* Key-value updates in a batch: recorded (they count at once, and
         * a second raise to the same step is refused), but the batch's end
         * cannot make them durable and says so. The batch writes the key
         * that just failed too, another value of the same size, so that
         * its write cannot fit either. */
        struct store_kv_batch b = {};
        uint64_t step = 9;
        uint8_t byte = 0xa5;
        store_kv_batch_begin(s, &b);
        if (store_kv_update(s, "totp", filler, strlen(filler), fill_byte_fn, &byte) != 0 || b.seq == 0)
                return 17;
        if (store_kv_update(s, "totp", "bob", 3, raise_fn, &step) != 0)
                return 17;
        uint64_t first = b.seq;
        if (store_kv_update(s, "totp", "bob", 3, raise_fn, &step) != 0 || b.seq != first)
                return 18;
        if (store_kv_batch_end(&b) != -ENOSPC)
                return 19;
        if (kv_u64(s, "bob") != 9 || !kv_filled(s, filler, byte))
                return 20;

        /* Room again: the next write that carries updates writes it too.
         * The process then ends without closing the store, so that only
         * what was committed is left for the parent to find. */
        rl.rlim_cur = RLIM_INFINITY;
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                return 21;
        if (store_kv_update(s, "totp", "alice", 5, raise_fn, &step) != 0)
                return 22;
        fprintf(stderr, "disk full: a key-value write failed after %zu; written once there was room\n", i);
        free(path);
        return 100 + (int) i; /* i < 100: the parent checks filler<i> */
}

static void test_disk_full(void **state) {
        char *dir = make_dir();
        store *s;
        pid_t pid;
        int status;

        /* Create the environment first, at full size limits. */
        s = open_store(dir, 0, false);
        store_close(s);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(disk_full_child(dir));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* 100 + the number of the key-value write that failed (see the
         * child); below 100, what went wrong. */
        assert_true(WEXITSTATUS(status) >= 100);

        /* Intact, and writable again with room. */
        s = open_store(dir, 0, false);
        assert_int_equal(store_check_consistency(s), 0);
        assert_int_equal(kv_u64(s, "alice"), 9);
        assert_int_equal(kv_u64(s, "bob"), 9);
        {
                /* The batch's value of the key whose own write failed was
                 * carried by the later write. */
                char filler[32];
                snprintf(filler, sizeof filler, "filler%d", WEXITSTATUS(status) - 100);
                assert_true(kv_filled(s, filler, 0xa5));
        }
        assert_true(list_count(s, "filler", NULL, 0) > 0);
        size_t n;
        assert_int_equal(store_session_revoke_user(s, "filler", &n), 0);
        assert_true(n > 0);
        assert_int_equal(store_check_consistency(s), 0);
        store_close(s);
        remove_dir(dir);
}

/* ---- 6c. a key-value update whose own write fails is taken back ---- */

/* Sets the value to the string userdata, or deletes the key (NULL). */
static int set_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        const char *v = userdata;

        if (!v)
                return 2;
        *newlen = strlen(v);
        memcpy(newbuf, v, *newlen);
        return 1;
}

/* Changes nothing; fails unless the value it is given is the string
 * userdata (NULL: absent): what a later update sees. */
static int expect_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        const char *want = userdata;

        if (!want)
                return old || oldlen > 0 ? -EBADMSG : 0;
        return old && oldlen == strlen(want) && memcmp(old, want, oldlen) == 0 ? 0 : -EBADMSG;
}

/* Whether key holds the string want (NULL: is absent), for a get and for
 * an update alike. */
static bool kv_is(store *s, const char *key, const char *want) {
        char buf[64];
        size_t len = sizeof buf;
        int r;

        r = store_kv_get(s, "totp", key, strlen(key), buf, &len);
        if (want ? r != 0 || len != strlen(want) || memcmp(buf, want, len) != 0 : r != -ENOENT)
                return false;
        return store_kv_update(s, "totp", key, strlen(key), expect_fn, (void *) want) == 0;
}

/* Runs in a child, as disk_full_child(). Returns 0 when all went as
 * expected, else what did not. */
static int taken_back_child(const char *dir) {
        store *s = NULL;
        struct rlimit rl;
        struct stat st;
        char *path, filler[32];
        uint8_t pin = 0x11, other = 0x22;
        int r = 0;

        if (store_open(dir, &s) < 0)
                return 10;
        if (asprintf(&path, "%s/sessions.mdb", dir) < 0 || stat(path, &st) < 0)
                return 11;
        free(path);
        signal(SIGXFSZ, SIG_IGN);
        rl = (struct rlimit) { .rlim_cur = st.st_size + 64 * 1024, .rlim_max = RLIM_INFINITY };
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                return 12;

        /* Fill what room is left. */
        for (size_t i = 0; i < 100 && r >= 0; i++) {
                snprintf(filler, sizeof filler, "filler%zu", i);
                r = store_kv_update(s, "totp", filler, strlen(filler), fill_fn, NULL);
        }
        if (r != -ENOSPC)
                return 13;

        /* A batch's update of the same size, which cannot be written
         * either and so stays pending (it counts): every write from now on
         * carries it and fails, however little else it holds. */
        struct store_kv_batch b = {};
        store_kv_batch_begin(s, &b);
        if (store_kv_update(s, "totp", "pin", 3, fill_byte_fn, &pin) != 0)
                return 14;
        if (store_kv_batch_end(&b) != -ENOSPC || !kv_filled(s, "pin", pin))
                return 15;

        /* Updates outside a batch whose write fails: an error, and then
         * the value before, for gets and later updates alike. */
        if (store_kv_update(s, "totp", "seed", 4, set_fn, "new seed") != -ENOSPC)
                return 20;
        if (!kv_is(s, "seed", "old seed"))
                return 21;
        if (store_kv_update(s, "totp", "fresh", 5, set_fn, "new") != -ENOSPC)
                return 22;
        if (!kv_is(s, "fresh", NULL))
                return 23;
        if (store_kv_update(s, "totp", "gone", 4, set_fn, NULL) != -ENOSPC)
                return 24;
        if (!kv_is(s, "gone", "old gone"))
                return 25;
        /* Over a pending value (the batch's): that one is back, pending. */
        if (store_kv_update(s, "totp", "pin", 3, fill_byte_fn, &other) != -ENOSPC)
                return 26;
        if (!kv_filled(s, "pin", pin))
                return 27;

        /* Room again: the next write carries what is pending (the batch's
         * value), and nothing that was taken back. The process then ends
         * without closing the store, so that only what was committed is
         * left for the parent to find. */
        rl.rlim_cur = RLIM_INFINITY;
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                return 30;
        if (store_kv_update(s, "totp", "alice", 5, set_fn, "after") != 0)
                return 31;
        if (!kv_is(s, "seed", "old seed") || !kv_is(s, "fresh", NULL) || !kv_is(s, "gone", "old gone") ||
            !kv_filled(s, "pin", pin))
                return 32;
        return 0;
}

static void test_kv_update_taken_back(void **state) {
        char *dir = make_dir();
        store *s;
        pid_t pid;
        int status;

        s = open_store(dir, 0, false);
        assert_int_equal(store_kv_update(s, "totp", "seed", 4, set_fn, "old seed"), 0);
        assert_int_equal(store_kv_update(s, "totp", "gone", 4, set_fn, "old gone"), 0);
        store_close(s);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(taken_back_child(dir));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("taken_back_child() failed at step %d", WEXITSTATUS(status));

        /* What the file holds: the values before the failed updates, the
         * batch's, and the write that found room. */
        s = open_store(dir, 0, false);
        assert_int_equal(store_check_consistency(s), 0);
        assert_true(kv_is(s, "seed", "old seed"));
        assert_true(kv_is(s, "fresh", NULL));
        assert_true(kv_is(s, "gone", "old gone"));
        assert_true(kv_filled(s, "pin", 0x11));
        assert_true(kv_is(s, "alice", "after"));
        store_close(s);
        remove_dir(dir);
}

/* ---- 9. hostile files: modes, links, cut short, faults, bit flips ---- */

static char *path_in(const char *dir, const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* A store of n sessions (closed again); the size of its file. */
static off_t fill_store(const char *dir, size_t n) {
        store *s = open_store(dir, 0, true);
        struct stat st;
        char *p = path_in(dir, "sessions.mdb");

        for (size_t i = 0; i < n; i++) {
                struct session_info info;
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, 9000000 + i);
                make_info(&info, 9000000 + i, i % 2 ? "alice" : "bob", "wiki", "{\"groups\":[\"users\"]}", 1000,
                          1000000, 100000);
                assert_int_equal(store_session_create(s, key, &info), 0);
        }
        store_close(s);
        assert_int_equal(stat(p, &st), 0);
        free(p);
        return st.st_size;
}

/* Opens expecting `want`, with a problem line that contains `needle`. */
static void open_refused(const char *dir, int want, const char *needle) {
        char *problem = NULL;
        store *s = NULL;

        assert_int_equal(store_open_checked(dir, NULL, &s, &problem), want);
        assert_null(s);
        assert_non_null(problem);
        if (!strstr(problem, needle))
                fail_msg("'%s' not in '%s'", needle, problem);
        assert_null(strchr(problem, '\n'));
        free(problem);
}

static void test_open_refuses_loose_modes(void **state) {
        char *dir = make_dir();
        char *db = path_in(dir, "sessions.mdb"), *lock = path_in(dir, "sessions.mdb-lock"),
             *stray = path_in(dir, "notes"), *fix;
        store *s = NULL;

        fill_store(dir, 10);

        /* Read or search access for group or others is refused too, not
         * only write access. */
        const struct {
                const char *path;
                mode_t bad, good;
        } cases[] = {
                { dir, 0750, 0700 }, { dir, 0705, 0700 }, { dir, 0755, 0700 },
                { db, 0640, 0600 },  { db, 0604, 0600 },  { db, 0644, 0600 },
                { lock, 0660, 0600 }, { lock, 0666, 0600 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(chmod(cases[i].path, cases[i].bad), 0);
                assert_true(asprintf(&fix, "chmod %s %s", cases[i].path == dir ? "0700" : "0600", cases[i].path) >
                            0);
                open_refused(dir, -EPERM, fix);
                free(fix);
                assert_int_equal(chmod(cases[i].path, cases[i].good), 0);
        }

        /* Any other file in the folder as well. */
        write_file(dir, "notes", "x", 1);
        assert_int_equal(chmod(stray, 0644), 0);
        open_refused(dir, -EPERM, "chmod 0600");
        assert_int_equal(chmod(stray, 0600), 0);

        assert_int_equal(store_open(dir, &s), 0);
        store_close(s);
        unlink(stray);
        free(stray);
        free(db);
        free(lock);
        remove_dir(dir);
}

static void test_open_refuses_links(void **state) {
        char *dir = make_dir(), *elsewhere = make_dir();
        char *db = path_in(dir, "sessions.mdb"), *lock = path_in(dir, "sessions.mdb-lock");
        char *target = path_in(elsewhere, "sessions.mdb"), *target_lock = path_in(elsewhere, "sessions.mdb-lock");
        struct stat st;
        store *s = NULL;

        /* A link to a file elsewhere: not written through. */
        write_file(elsewhere, "sessions.mdb", "", 0);
        assert_int_equal(symlink(target, db), 0);
        open_refused(dir, -ELOOP, "is a symbolic link");
        assert_int_equal(stat(target, &st), 0);
        assert_int_equal(st.st_size, 0);

        /* A dangling link: its target is not created. */
        assert_int_equal(unlink(target), 0);
        open_refused(dir, -ELOOP, "is a symbolic link");
        assert_int_equal(lstat(target, &st), -1);
        assert_int_equal(unlink(db), 0);

        /* The lock file likewise. */
        fill_store(dir, 3);
        assert_int_equal(rename(lock, target_lock), 0);
        assert_int_equal(symlink(target_lock, lock), 0);
        open_refused(dir, -ELOOP, "sessions.mdb-lock is a symbolic link");
        assert_int_equal(unlink(lock), 0);

        assert_int_equal(store_open(dir, &s), 0);
        store_close(s);
        unlink(target_lock);
        free(db);
        free(lock);
        free(target);
        free(target_lock);
        remove_dir(dir);
        remove_dir(elsewhere);
}

static void test_open_refuses_cut_short(void **state) {
        char *dir = make_dir();
        char *db = path_in(dir, "sessions.mdb");
        long page = sysconf(_SC_PAGESIZE);
        off_t size = fill_store(dir, 2000);
        uint8_t key[STORE_KEY_SIZE];
        store *s = NULL;

        assert_true(size > 16 * page);
        /* Half of it, then only its two meta pages: either would fault
         * (SIGBUS) on the first read of a page past the end. */
        assert_int_equal(truncate(db, size / 2 / page * page), 0);
        open_refused(dir, -EUCLEAN, "is damaged");
        open_refused(dir, -EUCLEAN, "OPERATIONS.md");
        assert_int_equal(truncate(db, 2 * page), 0);
        open_refused(dir, -EUCLEAN, "is damaged");

        /* Moved away as the message says, a new store starts. */
        assert_int_equal(unlink(db), 0);
        assert_int_equal(store_open(dir, &s), 0);
        make_key(key, 9000000);
        assert_int_equal(store_session_get(s, key, 0, noop_fn, NULL), -ENOENT);
        store_close(s);
        free(db);
        remove_dir(dir);
}

/* The file cut short under a running store: with store_catch_faults() the
 * next read ends the process with STORE_EXIT_FAULT and one line naming the
 * file, not a silent SIGBUS. */
static void test_fault_while_open(void **state) {
        char *dir = make_dir();
        char *db = path_in(dir, "sessions.mdb");
        char out[4096] = "";
        size_t got = 0;
        int pipefd[2], status;
        pid_t pid;

        fill_store(dir, 2000);
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                store *s = NULL;
                size_t n = 0;

                signal(SIGBUS, SIG_DFL); /* not cmocka's: the store's own must take it */

                dup2(pipefd[1], STDERR_FILENO);
                if (store_open(dir, &s) < 0 || store_catch_faults(s) < 0)
                        _exit(10);
                if (truncate(db, 2 * sysconf(_SC_PAGESIZE)) < 0)
                        _exit(11);
                (void) store_session_list(s, NULL, NULL, 0, count_fn, &n);
                _exit(12); /* not reached: the list reads pages past the end */
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t r = read(pipefd[0], out + got, sizeof out - 1 - got);
                if (r <= 0)
                        break;
                got += (size_t) r;
        }
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status))
                fail_msg("the child died by signal %d", WTERMSIG(status));
        assert_int_equal(WEXITSTATUS(status), STORE_EXIT_FAULT);
        assert_non_null(strstr(out, "store damaged"));
        assert_non_null(strstr(out, db));
        free(db);
        remove_dir(dir);
}

/* Bit flips in the data pages: every call answers, damage reads as
 * -EUCLEAN (at open, with a line naming the file), never as -ENOMEM or
 * -EIO. Forked per seed: a flip may make LMDB read a page past the end of
 * the file (SIGBUS, caught as STORE_EXIT_FAULT), which is also an
 * acceptable end. */
static int bit_flip_child(const char *dir, uint64_t rs, size_t n) {
        store *s = NULL;
        char *problem = NULL;
        size_t damaged = 0, count = 0;
        int r;

        /* Refused at open, with a line that names the file: the damage was
         * in what open reads (read first in a child of its own, since LMDB
         * can crash on it). */
        r = store_open_checked(dir, NULL, &s, &problem);
        if (r == -EUCLEAN || r == -EINVAL) {
                r = problem && strstr(problem, "sessions.mdb is ") ? 0 : 27;
                free(problem);
                return r;
        }
        if (r < 0) {
                fprintf(stderr, "open: %s\n", strerror(-r));
                return 20;
        }
        if (store_catch_faults(s) < 0)
                return 21;
        for (size_t i = 0; i < n; i++) {
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, 9000000 + i);
                r = store_session_get(s, key, 2000, noop_fn, NULL);
                if (r == -EUCLEAN)
                        damaged++;
                else if (r != 0 && r != -ENOENT) {
                        fprintf(stderr, "get: %s\n", strerror(-r));
                        return 22;
                }
        }
        const char *users[] = { NULL, "alice", "bob" };
        for (size_t i = 0; i < ELEMENTSOF(users); i++) {
                r = store_session_list(s, users[i], NULL, 2000, count_fn, &count);
                if (r == -EUCLEAN)
                        damaged++;
                else if (r != 0) {
                        fprintf(stderr, "list: %s\n", strerror(-r));
                        return 24;
                }
        }
        r = store_check_consistency(s);
        if (r == -EUCLEAN)
                damaged++;
        else if (r != 0) {
                fprintf(stderr, "check: %s\n", strerror(-r));
                return 25;
        }
        /* Writes after damage was seen are refused without touching LMDB;
         * writes through damage not seen yet may meet it as a page number
         * past any the file can hold (-ENOSPC, from EFBIG) or as a failed
         * write (-EIO), which LMDB cannot tell from the disk's own. */
        for (size_t i = 0; i < n; i += 8) {
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, 9000000 + i);
                r = store_session_touch(s, key, 3000);
                if (damaged > 0 && r != -EUCLEAN) {
                        fprintf(stderr, "touch after damage: %s\n", strerror(-r));
                        return 26;
                }
                if (r != 0 && r != -ENOENT && r != -EUCLEAN && r != -ENOSPC && r != -EIO) {
                        fprintf(stderr, "touch: %s\n", strerror(-r));
                        return 23;
                }
                (void) rs;
        }
        store_close(s);
        return damaged > 0 ? 0 : 1;
}

static void test_bit_flips(void **state) {
        const size_t n = 2000;
        long page = sysconf(_SC_PAGESIZE);
        unsigned damaged = 0, refused_or_faulted = 0;

        for (unsigned round = 0; round < 16; round++) {
                char *dir = make_dir(), *db = path_in(dir, "sessions.mdb");
                uint64_t rs = seed ^ (round * 104729);
                off_t size = fill_store(dir, n);
                int fd, status;
                pid_t pid;

                fd = open(db, O_RDWR | O_CLOEXEC);
                assert_true(fd >= 0);
                for (unsigned i = 0; i < 200; i++) {
                        off_t pages = size / page;
                        off_t off = (2 + (off_t) rnd_below(&rs, (uint64_t) (pages - 2))) * page + 16 +
                                    (off_t) rnd_below(&rs, (uint64_t) page - 16);
                        uint8_t b;

                        assert_int_equal(pread(fd, &b, 1, off), 1);
                        b ^= (uint8_t) (1u << rnd_below(&rs, 8));
                        assert_int_equal(pwrite(fd, &b, 1, off), 1);
                }
                close(fd);

                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        /* cmocka's own handlers would carry on in the child. */
                        signal(SIGSEGV, SIG_DFL);
                        signal(SIGBUS, SIG_DFL);
                        signal(SIGABRT, SIG_DFL);
                        _exit(bit_flip_child(dir, rs, n));
                }
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (!WIFEXITED(status))
                        fail_msg("round %u: the child died by signal %d", round, WTERMSIG(status));
                if (WEXITSTATUS(status) == STORE_EXIT_FAULT)
                        refused_or_faulted++;
                else if (WEXITSTATUS(status) == 0)
                        damaged++;
                else if (WEXITSTATUS(status) != 1)
                        fail_msg("round %u: child status %d", round, WEXITSTATUS(status));
                free(db);
                remove_dir(dir);
        }
        print_message("bit flips: %u rounds read damage as -EUCLEAN, %u ended in a logged fault exit\n", damaged,
                      refused_or_faulted);
        assert_true(damaged > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_permissions),
                cmocka_unit_test(test_disk_full),
                cmocka_unit_test(test_kv_update_taken_back),
                cmocka_unit_test(test_open_refuses_loose_modes),
                cmocka_unit_test(test_open_refuses_links),
                cmocka_unit_test(test_open_refuses_cut_short),
                cmocka_unit_test(test_fault_while_open),
                cmocka_unit_test(test_bit_flips),
        };

        return store_test_main(tests, ELEMENTSOF(tests), "store-files");
}
