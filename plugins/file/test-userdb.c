/* SPDX-License-Identifier: MIT */

/* Unit tests of the userdb library: parsing, hashes, and the editors. */

#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "userdb.h"

/* ---- fsync() that fails on demand -------------------------------------- */

/* No file system fails an fsync() when asked, so this executable brings its
 * own: the editors (linked in statically) call fsync() and the link binds
 * them to this definition before libc's. Unless a test says otherwise it is
 * the plain system call. */
static _Atomic enum {
        FSYNC_REAL,
        FSYNC_FAIL_DIR,  /* folders fail (the sync after the rename) */
        FSYNC_FAIL_FILE, /* anything else fails (the temporary file's) */
} fsync_mode;
static atomic_uint fsync_dir_calls;

int fsync(int fd) {
        struct stat st;
        bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);

        if (dir)
                fsync_dir_calls++;
        if ((dir && fsync_mode == FSYNC_FAIL_DIR) || (!dir && fsync_mode == FSYNC_FAIL_FILE)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fsync, fd);
}

/* ---- helpers ---------------------------------------------------------- */

struct diags {
        char text[8192];
};

static void diag_collect(void *userdata, const char *name, unsigned line, const char *message) {
        struct diags *d = userdata;
        size_t n = strlen(d->text);
        snprintf(d->text + n, sizeof d->text - n, "%s:%u: %s\n", name, line, message);
}

static char *make_tmpdir(void) {
        char *t = strdup("/tmp/test-userdb-XXXXXX");
        assert_non_null(t);
        assert_non_null(mkdtemp(t));
        return t;
}

static void rm_rf(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        (void) rmdir(dir);
}

static unsigned count_entries(const char *dir) {
        unsigned n = 0;
        DIR *d = opendir(dir);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void write_file(const char *path, const char *content, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static char *path_join(const char *dir, const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* A cheap argon2id hash (tests need many of them). */
static char *argon2id_min(const char *password) {
        char out[crypto_pwhash_STRBYTES];
        assert_int_equal(crypto_pwhash_str(out, password, strlen(password),
                                           crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN),
                         0);
        return strdup(out);
}

/* A crypt(3) hash for `prefix` ("$y$", "$2b$", ...), made with crypt_r. */
static char *crypt_hash(const char *prefix, unsigned long count, const char *password) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data cd = {};

        assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt, sizeof salt));
        const char *h = crypt_rn(password, salt, &cd, sizeof cd);
        assert_non_null(h);
        assert_true(h[0] != '*');
        assert_true(strncmp(h, prefix, strlen(prefix)) == 0);
        return strdup(h);
}

/* ---- parsing ---------------------------------------------------------- */

static void test_parse_good(void **state) {
        static const char text[] =
                "# users of the wiki\n"
                "\n"
                "   \t\n"
                "  # indented comment\n"
                "alice:$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA:admins,wiki\n"
                "bob:$6$salt$xyz\n"
                "carol:!:\n"
                "d\xc3\xa9nis:*:g\n"
                "eve:$y$j9T$abc$def"; /* no final newline */
        struct userdb *db = NULL;
        struct diags d = {};

        assert_int_equal(userdb_parse_buffer(text, strlen(text), "users", diag_collect, &d, &db), 0);
        assert_string_equal(d.text, "");
        assert_int_equal(userdb_size(db), 5);

        const struct userdb_entry *e = userdb_lookup(db, "alice");
        assert_non_null(e);
        assert_string_equal(e->user, "alice");
        assert_string_equal(e->hash, "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA");
        assert_int_equal(e->n_groups, 2);
        assert_string_equal(e->groups[0], "admins");
        assert_string_equal(e->groups[1], "wiki");
        assert_null(e->groups[2]);
        assert_int_equal(e->line, 5);

        e = userdb_lookup(db, "bob");
        assert_non_null(e);
        assert_int_equal(e->n_groups, 0);
        assert_null(e->groups[0]);
        assert_int_equal(e->line, 6);

        e = userdb_lookup(db, "carol");
        assert_non_null(e);
        assert_string_equal(e->hash, "!");
        assert_int_equal(e->n_groups, 0);

        e = userdb_lookup(db, "d\xc3\xa9nis");
        assert_non_null(e);
        assert_int_equal(e->n_groups, 1);

        e = userdb_lookup(db, "eve");
        assert_non_null(e);
        assert_string_equal(e->hash, "$y$j9T$abc$def");
        assert_int_equal(e->line, 9);

        assert_null(userdb_lookup(db, "Alice"));
        assert_null(userdb_lookup(db, "alic"));
        assert_null(userdb_lookup(db, ""));
        assert_null(userdb_lookup(db, NULL));
        userdb_free(db);

        /* empty input is an empty table */
        assert_int_equal(userdb_parse_buffer("", 0, "empty", diag_collect, &d, &db), 0);
        assert_int_equal(userdb_size(db), 0);
        assert_null(userdb_lookup(db, "alice"));
        userdb_free(db);
        userdb_free(NULL);
}

static void test_parse_bad(void **state) {
        static const char text[] =
                "ok:$6$a$b:g\n"                  /* 1 */
                "nocolon\n"                      /* 2 */
                ":hash\n"                        /* 3 */
                "-dash:hash\n"                   /* 4 */
                "sp ace:hash\n"                  /* 5 */
                "tab\tx:hash\n"                  /* 6 */
                "x:hash:g1,,g2\n"                /* 7 */
                "y:hash:g1,\n"                   /* 8 */
                "z:hash:g:extra\n"               /* 9 */
                "w:has h\n"                      /* 10 */
                "ok:$6$c$d\n"                    /* 11: duplicate */
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:h\n" /* 12: 65 */
                "dos:hash\r\n"                   /* 13 */
                "v:hash:-g\n"                    /* 14 */
                "nul\0x:hash\n"                  /* 15 */
                "q:hash:g:1:2\n"                 /* 16 */
                "r:hash::-1\n"                   /* 17 */
                "s:hash::+5\n"                   /* 18 */
                "t:hash::9223372036854775808\n"  /* 19: INT64_MAX + 1 */
                "u:hash:: 5\n"                   /* 20 */
                "v2:hash::5x\n";                 /* 21 */
        struct userdb *db = (struct userdb *) 0x1;
        struct diags d = {};

        assert_int_equal(userdb_parse_buffer(text, sizeof text - 1, "db", diag_collect, &d, &db),
                         -EBADMSG);
        assert_ptr_equal(db, (struct userdb *) 0x1); /* untouched on failure */
        assert_string_equal(
                d.text,
                "db:2: expected 'user:hash[:groups[:expires]]', found no ':'\n"
                "db:3: user name is empty\n"
                "db:4: user name starts with '-'\n"
                "db:5: user name contains ':', ',', whitespace or a control character\n"
                "db:6: user name contains ':', ',', whitespace or a control character\n"
                "db:7: group name 2 is empty\n"
                "db:8: group name 2 is empty\n"
                "db:9: expiry must be empty or a number of seconds since 1970\n"
                "db:10: hash contains whitespace or a control character\n"
                "db:12: user name is longer than 64 bytes\n"
                "db:13: hash contains whitespace or a control character\n"
                "db:14: group name 1 starts with '-'\n"
                "db:15: line contains a NUL byte\n"
                "db:16: too many ':'-separated fields (expected at most 4)\n"
                "db:17: expiry must be empty or a number of seconds since 1970\n"
                "db:18: expiry must be empty or a number of seconds since 1970\n"
                "db:19: expiry must be empty or a number of seconds since 1970\n"
                "db:20: expiry must be empty or a number of seconds since 1970\n"
                "db:21: expiry must be empty or a number of seconds since 1970\n"
                "db:11: duplicate user (first defined on line 1)\n");

        /* a 64-byte name is fine; one bad line fails the whole table */
        static const char text2[] =
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:h\n";
        assert_int_equal(userdb_parse_buffer(text2, strlen(text2), "db", NULL, NULL, &db), 0);
        assert_int_equal(userdb_size(db), 1);
        userdb_free(db);

        static const char text3[] = "alice:$6$a$b\nalice:$6$c$d\n";
        db = NULL;
        memset(&d, 0, sizeof d);
        assert_int_equal(userdb_parse_buffer(text3, strlen(text3), "f", diag_collect, &d, &db),
                         -EBADMSG);
        assert_null(db);
        assert_string_equal(d.text, "f:2: duplicate user (first defined on line 1)\n");
}

/* The optional 4th field: when the password expires. */
static void test_parse_expires(void **state) {
        static const char text[] = "a:$6$a$b::0\n"
                                   "b:$6$a$b:g1,g2:1700000000\n"
                                   "c:$6$a$b:g:\n"
                                   "d:$6$a$b:\n"
                                   "e:$6$a$b\n"
                                   "f:!::9223372036854775807\n"
                                   "g:$6$a$b::0001\n";
        struct userdb *db = NULL;
        struct diags d = {};
        const struct userdb_entry *e;

        assert_int_equal(userdb_parse_buffer(text, strlen(text), "x", diag_collect, &d, &db), 0);
        assert_string_equal(d.text, "");

        e = userdb_lookup(db, "a");
        assert_int_equal(e->expires, 0);
        assert_int_equal(e->n_groups, 0);
        assert_true(userdb_expired(e, 0));
        assert_true(userdb_expired(e, 1700000000));

        e = userdb_lookup(db, "b");
        assert_int_equal(e->expires, 1700000000);
        assert_int_equal(e->n_groups, 2);
        assert_string_equal(e->groups[1], "g2");
        assert_false(userdb_expired(e, 1699999999));
        assert_true(userdb_expired(e, 1700000000));
        assert_true(userdb_expired(e, 1700000001));

        for (const char *u = "cde"; *u; u++) {
                char name[2] = { *u, 0 };
                e = userdb_lookup(db, name);
                assert_int_equal(e->expires, USERDB_EXPIRES_NEVER);
                assert_false(userdb_expired(e, INT64_MAX));
        }
        assert_int_equal(userdb_lookup(db, "c")->n_groups, 1);

        e = userdb_lookup(db, "f");
        assert_int_equal(e->expires, INT64_MAX);
        assert_false(userdb_expired(e, INT64_MAX - 1));
        assert_int_equal(userdb_lookup(db, "g")->expires, 1);
        assert_false(userdb_expired(NULL, 0));
        userdb_free(db);
}

static void test_parse_expires_arg(void **state) {
        int64_t v = 42;

        assert_int_equal(userdb_parse_expires("never", &v), 0);
        assert_int_equal(v, USERDB_EXPIRES_NEVER);
        assert_int_equal(userdb_parse_expires("now", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(userdb_parse_expires("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(userdb_parse_expires("1700000000", &v), 0);
        assert_int_equal(v, 1700000000);
        assert_int_equal(userdb_parse_expires("2027-01-31", &v), 0);
        assert_int_equal(v, 1801353600); /* date -u -d 2027-01-31 +%s */
        assert_int_equal(userdb_parse_expires("1970-01-01", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(userdb_parse_expires("2024-02-29", &v), 0);
        assert_int_equal(v, 1709164800);

        static const char *const bad[] = { "", "-1", "+5", " 5", "5 ", "1e9", "tomorrow", "Never",
                                           "2027-02-30", "2027-13-01", "2027-1-31", "1969-12-31",
                                           "2027-01-31T00:00", "2027/01/31", "20270131x",
                                           "9223372036854775808", "2023-02-29" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                v = 42;
                assert_true(userdb_parse_expires(bad[i], &v) < 0);
                assert_int_equal(v, 42);
        }
}

static void test_parse_file(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        struct userdb *db = NULL;
        struct diags d = {};
        char expect[512];

        write_file(path, "# c\nalice:$6$x$y:g\n\nbad line\n", 0600);
        assert_int_equal(userdb_parse_file(path, diag_collect, &d, &db), -EBADMSG);
        assert_null(db);
        snprintf(expect, sizeof expect, "%s:4: expected 'user:hash[:groups[:expires]]', found no ':'\n",
                 path);
        assert_string_equal(d.text, expect);

        write_file(path, "# c\nalice:$6$x$y:g\n", 0600);
        assert_int_equal(userdb_parse_file(path, diag_collect, &d, &db), 0);
        assert_non_null(userdb_lookup(db, "alice"));
        userdb_free(db);

        db = NULL;
        char *missing = path_join(dir, "missing");
        assert_int_equal(userdb_parse_file(missing, diag_collect, &d, &db), -ENOENT);
        assert_null(db);

        free(missing);
        rm_rf(dir);
        free(path);
        free(dir);
}

/* ---- hashes ----------------------------------------------------------- */

static void check_hash(const char *hash, const char *password) {
        assert_true(userdb_hash_supported(hash));
        assert_int_equal(userdb_verify(hash, password), 1);
        assert_int_equal(userdb_verify(hash, "wrong password"), 0);
        assert_int_equal(userdb_verify(hash, ""), 0);
        assert_int_equal(userdb_verify(hash, NULL), 0);
}

static void test_verify_formats(void **state) {
        const char *pw = "correct horse battery staple \xe2\x9c\x93";
        char *h;

        h = argon2id_min(pw);
        assert_true(strncmp(h, "$argon2id$", 10) == 0);
        check_hash(h, pw);
        free(h);

        assert_int_equal(userdb_hash_password(pw, &h), 0);
        /* INTERACTIVE: 64 MiB, 2 passes */
        assert_non_null(strstr(h, "$argon2id$v=19$m=65536,t=2,p=1$"));
        check_hash(h, pw);
        free(h);

        h = crypt_hash("$y$", 0, pw);
        check_hash(h, pw);
        free(h);

        h = crypt_hash("$2b$", 4, pw);
        check_hash(h, pw);
        /* the same hash under the $2y$ name */
        h[2] = 'y';
        check_hash(h, pw);
        free(h);

        h = crypt_hash("$6$", 1000, pw);
        check_hash(h, pw);
        /* a tampered hash does not verify */
        h[strlen(h) - 1] ^= 1;
        assert_int_equal(userdb_verify(h, pw), 0);
        free(h);
}

static void test_verify_never(void **state) {
        const char *pw = "secret";
        struct crypt_data cd = {};
        const char *h;

        /* genuine DES and MD5 hashes of pw: crypt_r accepts them, we do not */
        h = crypt_rn(pw, "ab", &cd, sizeof cd);
        if (h && h[0] != '*') {
                char *des = strdup(h);
                struct crypt_data cd2 = {};
                assert_string_equal(crypt_rn(pw, des, &cd2, sizeof cd2), des);
                assert_false(userdb_hash_supported(des));
                assert_int_equal(userdb_verify(des, pw), 0);
                free(des);
        }
        h = crypt_rn(pw, "$1$saltsalt$", &cd, sizeof cd);
        if (h && h[0] != '*') {
                char *md5 = strdup(h);
                struct crypt_data cd2 = {};
                assert_string_equal(crypt_rn(pw, md5, &cd2, sizeof cd2), md5);
                assert_int_equal(userdb_verify(md5, pw), 0);
                free(md5);
        }
        /* hard-coded in case this libxcrypt was built without them */
        assert_int_equal(userdb_verify("$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", pw), 0);
        assert_int_equal(userdb_verify("abJnggxhB/yWI", pw), 0);

        assert_int_equal(userdb_verify("", pw), 0);
        assert_int_equal(userdb_verify("", ""), 0);
        assert_int_equal(userdb_verify("*", pw), 0);
        assert_int_equal(userdb_verify("!", pw), 0);
        assert_int_equal(userdb_verify(NULL, pw), 0);

        /* a locked ("!"-prefixed) copy of a real hash */
        char *a = argon2id_min(pw), *locked;
        assert_true(asprintf(&locked, "!%s", a) > 0);
        assert_int_equal(userdb_verify(a, pw), 1);
        assert_int_equal(userdb_verify(locked, pw), 0);
        assert_false(userdb_hash_supported(locked));
        free(locked);
        free(a);

        /* argon2i and $2a$ are not on the list */
        char out[crypto_pwhash_argon2i_STRBYTES];
        assert_int_equal(crypto_pwhash_argon2i_str(out, pw, strlen(pw), 3,
                                                   crypto_pwhash_argon2i_MEMLIMIT_MIN),
                         0);
        assert_int_equal(userdb_verify(out, pw), 0);
}

static void test_password_length(void **state) {
        char *pw = malloc(USERDB_PASSWORD_MAX + 2);
        assert_non_null(pw);
        memset(pw, 'p', USERDB_PASSWORD_MAX);
        pw[USERDB_PASSWORD_MAX] = '\0';

        /* the longest password works, and its last byte counts */
        char *h = argon2id_min(pw);
        assert_int_equal(userdb_verify(h, pw), 1);
        pw[USERDB_PASSWORD_MAX - 1] = 'q';
        assert_int_equal(userdb_verify(h, pw), 0);
        pw[USERDB_PASSWORD_MAX - 1] = 'p';

        /* one more byte is refused, not truncated */
        pw[USERDB_PASSWORD_MAX] = 'p';
        pw[USERDB_PASSWORD_MAX + 1] = '\0';
        assert_int_equal(userdb_verify(h, pw), 0);
        char *h2 = (char *) 0x1;
        assert_int_equal(userdb_hash_password(pw, &h2), -EINVAL);
        assert_ptr_equal(h2, (char *) 0x1);
        assert_int_equal(userdb_hash_password("", &h2), -EINVAL);
        free(h);
        free(pw);
}

/* ---- editing ---------------------------------------------------------- */

static const struct userdb_entry *load_user(const char *path, struct userdb **db,
                                            const char *user) {
        struct diags d = {};
        int r = userdb_parse_file(path, diag_collect, &d, db);
        if (r < 0)
                fprintf(stderr, "%s", d.text);
        assert_int_equal(r, 0);
        return userdb_lookup(*db, user);
}

static void test_edit_roundtrip(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        struct userdb *db = NULL;
        const struct userdb_entry *e;
        struct stat st;
        char *text, *expect;

        static const char orig[] = "# the users\n"
                                   "bob:$6$bob$hash:staff\n"
                                   "\n"
                                   "  # carol is locked\n"
                                   "carol:!:x,y\n";
        write_file(path, orig, 0640);
        assert_int_equal(chown(path, 65534, 65534), 0);

        assert_int_equal(userdb_add(path, "alice", "pw-alice", "admins,wiki", USERDB_EXPIRES_NEVER), 0);
        text = read_file(path);
        assert_int_equal(strncmp(text, orig, strlen(orig)), 0);
        const char *added = strstr(text, "\nalice:$argon2id$");
        assert_non_null(added);
        assert_int_equal(added + 1 - text, (ptrdiff_t) strlen(orig));
        assert_non_null(strstr(added, ":admins,wiki\n"));
        assert_int_equal(text[strlen(text) - 1], '\n');
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_uid, 65534);
        assert_int_equal(st.st_gid, 65534);
        assert_int_equal(count_entries(dir), 1);

        e = load_user(path, &db, "alice");
        assert_non_null(e);
        assert_int_equal(userdb_verify(e->hash, "pw-alice"), 1);
        assert_int_equal(e->n_groups, 2);
        userdb_free(db);

        assert_int_equal(userdb_add(path, "alice", "other", NULL, USERDB_EXPIRES_NEVER), -EEXIST);
        assert_int_equal(userdb_add(path, "bob", "other", NULL, USERDB_EXPIRES_NEVER), -EEXIST);

        /* passwd keeps groups with NULL, and the line's place */
        assert_int_equal(userdb_passwd(path, "bob", "pw-bob", NULL, USERDB_EXPIRES_NEVER), 0);
        e = load_user(path, &db, "bob");
        assert_int_equal(userdb_verify(e->hash, "pw-bob"), 1);
        assert_int_equal(e->n_groups, 1);
        assert_string_equal(e->groups[0], "staff");
        assert_int_equal(e->line, 2);
        userdb_free(db);
        free(text);
        text = read_file(path);
        assert_int_equal(strncmp(text, "# the users\nbob:$argon2id$", 26), 0);
        assert_non_null(strstr(text, ":staff\n\n  # carol is locked\ncarol:!:x,y\nalice:"));
        free(text);

        /* passwd with groups replaces them; "" clears them */
        assert_int_equal(userdb_passwd(path, "carol", "pw-carol", "g1", USERDB_EXPIRES_NEVER), 0);
        e = load_user(path, &db, "carol");
        assert_int_equal(userdb_verify(e->hash, "pw-carol"), 1);
        assert_int_equal(e->n_groups, 1);
        assert_string_equal(e->groups[0], "g1");
        userdb_free(db);
        assert_int_equal(userdb_passwd(path, "carol", "pw-carol2", "", USERDB_EXPIRES_NEVER), 0);
        e = load_user(path, &db, "carol");
        assert_int_equal(userdb_verify(e->hash, "pw-carol2"), 1);
        assert_int_equal(userdb_verify(e->hash, "pw-carol"), 0);
        assert_int_equal(e->n_groups, 0);
        userdb_free(db);

        assert_int_equal(userdb_passwd(path, "nobody", "pw", NULL, USERDB_EXPIRES_NEVER), -ENOENT);
        assert_int_equal(userdb_del(path, "nobody"), -ENOENT);

        /* del removes only that line */
        text = read_file(path);
        assert_int_equal(userdb_del(path, "alice"), 0);
        expect = read_file(path);
        char *alice = strstr(text, "alice:");
        assert_non_null(alice);
        *alice = '\0';
        assert_string_equal(expect, text);
        free(expect);
        free(text);
        e = load_user(path, &db, "alice");
        assert_null(e);
        assert_int_equal(userdb_size(db), 2);
        userdb_free(db);

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_uid, 65534);
        assert_int_equal(count_entries(dir), 1);

        /* a file without a final newline gets one before an appended line */
        write_file(path, "# x\nbob:!", 0600);
        assert_int_equal(userdb_add(path, "al", "pw", NULL, USERDB_EXPIRES_NEVER), 0);
        text = read_file(path);
        assert_int_equal(strncmp(text, "# x\nbob:!\nal:$argon2id$", 23), 0);
        free(text);

        /* del of a malformed line of that user, other malformed lines kept */
        write_file(path, "\nbob:!:bad group\nal:x y\nzed:!\n\n", 0600);
        assert_int_equal(userdb_del(path, "al"), 0);
        text = read_file(path);
        assert_string_equal(text, "\nbob:!:bad group\nzed:!\n\n");
        free(text);

        /* passwd collapses duplicate lines of the user into the first */
        write_file(path, "al:!:g\nbob:!\nal:*\n", 0600);
        assert_int_equal(userdb_passwd(path, "al", "pw2", NULL, USERDB_EXPIRES_NEVER), 0);
        e = load_user(path, &db, "al");
        assert_non_null(e);
        assert_int_equal(e->line, 1);
        assert_int_equal(e->n_groups, 1);
        assert_int_equal(userdb_verify(e->hash, "pw2"), 1);
        assert_int_equal(userdb_size(db), 2);
        userdb_free(db);

        free(path);
        rm_rf(dir);
        free(dir);
}

static void test_edit_create(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "new-users");
        struct userdb *db = NULL;
        struct stat st;

        assert_int_equal(userdb_passwd(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER), -ENOENT);
        assert_int_equal(userdb_del(path, "alice"), -ENOENT);
        assert_int_equal(access(path, F_OK), -1);

        mode_t old = umask(0);
        assert_int_equal(userdb_add(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER), 0);
        umask(old);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        const struct userdb_entry *e = load_user(path, &db, "alice");
        assert_non_null(e);
        assert_int_equal(e->n_groups, 0);
        assert_int_equal(userdb_verify(e->hash, "pw"), 1);
        userdb_free(db);

        /* the last user can go; the file stays, empty */
        assert_int_equal(userdb_del(path, "alice"), 0);
        char *text = read_file(path);
        assert_string_equal(text, "");
        free(text);

        /* a symlink is refused */
        char *link = path_join(dir, "link");
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(userdb_add(link, "bob", "pw", NULL, USERDB_EXPIRES_NEVER), -ELOOP);
        assert_int_equal(unlink(link), 0);
        free(link);

        free(path);
        rm_rf(dir);
        free(dir);
}

static void test_edit_bad_input(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        static const char *const bad_names[] = {
                "", "-x", "#x", "a:b", "a b", "a,b", "a\tb", "a\nb", "a\x7f",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };
        static const char *const bad_groups[] = { ",", "a,,b", ",a", "a,", "a b", "a:b", "-a", "g,#h" };
        static const char orig[] = "bob:!\n";

        write_file(path, orig, 0600);
        for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
                assert_false(userdb_name_valid(bad_names[i]));
                assert_int_equal(userdb_add(path, bad_names[i], "pw", NULL, USERDB_EXPIRES_NEVER), -EINVAL);
                assert_int_equal(userdb_passwd(path, bad_names[i], "pw", NULL, USERDB_EXPIRES_NEVER), -EINVAL);
                assert_int_equal(userdb_del(path, bad_names[i]), -EINVAL);
        }
        for (size_t i = 0; i < sizeof bad_groups / sizeof bad_groups[0]; i++) {
                assert_false(userdb_groups_valid(bad_groups[i]));
                assert_int_equal(userdb_add(path, "alice", "pw", bad_groups[i], USERDB_EXPIRES_NEVER), -EINVAL);
                assert_int_equal(userdb_passwd(path, "bob", "pw", bad_groups[i], USERDB_EXPIRES_NEVER), -EINVAL);
        }
        assert_true(userdb_groups_valid(""));
        assert_true(userdb_groups_valid("a,b-c,d.e"));
        assert_true(userdb_name_valid("a-b.c_d@e"));

        char *longpw = malloc(USERDB_PASSWORD_MAX + 2);
        memset(longpw, 'x', USERDB_PASSWORD_MAX + 1);
        longpw[USERDB_PASSWORD_MAX + 1] = '\0';
        assert_int_equal(userdb_add(path, "alice", "", NULL, USERDB_EXPIRES_NEVER), -EINVAL);
        assert_int_equal(userdb_add(path, "alice", NULL, NULL, USERDB_EXPIRES_NEVER), -EINVAL);
        assert_int_equal(userdb_add(path, "alice", longpw, NULL, USERDB_EXPIRES_NEVER), -EINVAL);
        assert_int_equal(userdb_passwd(path, "bob", "", NULL, USERDB_EXPIRES_NEVER), -EINVAL);
        assert_int_equal(userdb_passwd(path, "bob", longpw, NULL, USERDB_EXPIRES_NEVER), -EINVAL);
        free(longpw);

        char *text = read_file(path);
        assert_string_equal(text, orig);
        free(text);
        assert_int_equal(count_entries(dir), 1);

        free(path);
        rm_rf(dir);
        free(dir);
}

/* Expiry through the editors: written in the shortest form, kept by edits
 * of other lines, set alone by userdb_expire(). */
static void test_edit_expires(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        struct userdb *db = NULL;
        const struct userdb_entry *e;
        char *text;

        static const char orig[] = "# kept\n"
                                   "bob:$6$bob$hash::1700000000\n"
                                   "carol:!:x:0\n";
        write_file(path, orig, 0600);

        assert_int_equal(userdb_add(path, "alice", "pw-alice", NULL, 0), 0);
        assert_int_equal(userdb_add(path, "dave", "pw-dave", "g", 1800000000), 0);
        assert_int_equal(userdb_add(path, "erin", "pw-erin", NULL, USERDB_EXPIRES_NEVER), 0);
        assert_int_equal(userdb_add(path, "bad", "pw", NULL, -2), -EINVAL);
        text = read_file(path);
        assert_int_equal(strncmp(text, orig, strlen(orig)), 0);
        assert_non_null(strstr(text, "\nalice:$argon2id$"));
        assert_non_null(strstr(text, "::0\ndave:$argon2id$"));
        assert_non_null(strstr(text, ":g:1800000000\nerin:$argon2id$"));
        assert_int_equal(text[strlen(text) - 1], '\n');
        assert_null(strstr(strstr(text, "erin:"), "::"));
        free(text);

        e = load_user(path, &db, "alice");
        assert_int_equal(e->expires, 0);
        assert_int_equal(userdb_verify(e->hash, "pw-alice"), 1);
        assert_int_equal(userdb_lookup(db, "dave")->expires, 1800000000);
        assert_int_equal(userdb_lookup(db, "erin")->expires, USERDB_EXPIRES_NEVER);
        userdb_free(db);

        /* expire sets only the expiry: hash and groups stay byte for byte */
        assert_int_equal(userdb_expire(path, "carol", USERDB_EXPIRES_NEVER), 0);
        assert_int_equal(userdb_expire(path, "bob", 0), 0);
        text = read_file(path);
        assert_int_equal(strncmp(text, "# kept\nbob:$6$bob$hash::0\ncarol:!:x\nalice:", 42), 0);
        free(text);
        assert_int_equal(userdb_expire(path, "carol", 5), 0);
        text = read_file(path);
        assert_non_null(strstr(text, "\ncarol:!:x:5\n"));
        free(text);
        assert_int_equal(userdb_expire(path, "nobody", 0), -ENOENT);
        assert_int_equal(userdb_expire(path, "bob", -7), -EINVAL);

        /* passwd writes the expiry it is given, keeping the groups */
        assert_int_equal(userdb_passwd(path, "dave", "pw-dave2", NULL, USERDB_EXPIRES_NEVER), 0);
        e = load_user(path, &db, "dave");
        assert_int_equal(e->expires, USERDB_EXPIRES_NEVER);
        assert_int_equal(e->n_groups, 1);
        assert_int_equal(userdb_verify(e->hash, "pw-dave2"), 1);
        userdb_free(db);
        assert_int_equal(userdb_passwd(path, "dave", "pw-dave3", "", 0), 0);
        e = load_user(path, &db, "dave");
        assert_int_equal(e->expires, 0);
        assert_int_equal(e->n_groups, 0);
        userdb_free(db);
        text = read_file(path);
        assert_non_null(strstr(text, "\ndave:$argon2id$"));
        assert_non_null(strstr(strstr(text, "\ndave:"), "::0\n"));
        free(text);

        /* edits of others keep a line's expiry byte for byte, even an odd one */
        write_file(path, "al:$6$a$b:g:0001\nbo:!\n", 0600);
        assert_int_equal(userdb_del(path, "bo"), 0);
        assert_int_equal(userdb_add(path, "cy", "pw", NULL, USERDB_EXPIRES_NEVER), 0);
        text = read_file(path);
        assert_int_equal(strncmp(text, "al:$6$a$b:g:0001\ncy:$argon2id$", 30), 0);
        free(text);

        /* a line of the user without a hash has nothing to keep */
        write_file(path, "al\n", 0600);
        assert_int_equal(userdb_expire(path, "al", 0), -EBADMSG);
        text = read_file(path);
        assert_string_equal(text, "al\n");
        free(text);
        assert_int_equal(count_entries(dir), 1);

        free(path);
        rm_rf(dir);
        free(dir);
}

/* A user's own change: the old password is checked against the file as it
 * is under the lock; the expiry is cleared; groups and other lines kept. */
static void test_change_password(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *h_old = argon2id_min("old-pw"), *orig, *text;
        struct userdb *db = NULL;
        const struct userdb_entry *e;
        struct stat before, after;

        assert_true(asprintf(&orig, "# c\nalice:%s:admins,wiki:0\nbob:$6$x$y\ncarol:!\n", h_old) > 0);
        write_file(path, orig, 0640);
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(stat(path, &before), 0);

        /* refusals change nothing */
        assert_int_equal(userdb_change_password(path, "alice", "wrong", "new-pw", -1), -EKEYREJECTED);
        assert_int_equal(userdb_change_password(path, "dave", "old-pw", "new-pw", -1), -ENOENT);
        assert_int_equal(userdb_change_password(path, "carol", "!", "new-pw", -1), -EKEYREJECTED);
        assert_int_equal(userdb_change_password(path, "alice", "", "new-pw", -1), -EINVAL);
        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "", -1), -EINVAL);
        assert_int_equal(userdb_change_password(path, "-x", "old-pw", "new-pw", -1), -EINVAL);
        text = read_file(path);
        assert_string_equal(text, orig);
        free(text);
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino);

        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "new-pw", -1), 0);
        e = load_user(path, &db, "alice");
        assert_int_equal(userdb_verify(e->hash, "new-pw"), 1);
        assert_int_equal(userdb_verify(e->hash, "old-pw"), 0);
        assert_int_equal(strncmp(e->hash, "$argon2id$", 10), 0);
        assert_int_equal(e->expires, USERDB_EXPIRES_NEVER);
        assert_int_equal(e->n_groups, 2);
        assert_int_equal(e->line, 2);
        userdb_free(db);
        text = read_file(path);
        assert_int_equal(strncmp(text, "# c\nalice:$argon2id$", 20), 0);
        assert_non_null(strstr(text, ":admins,wiki\nbob:$6$x$y\ncarol:!\n"));
        free(text);
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(after.st_mode & 07777, 0640);
        assert_int_equal(after.st_uid, 65534);
        assert_int_equal(after.st_gid, 65534);
        assert_int_equal(count_entries(dir), 1);

        /* the old password no longer works for a second change */
        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "x-pw", -1), -EKEYREJECTED);

        /* a malformed file is not edited by a change (the plugin would not
         * load it either) */
        free(orig);
        assert_true(asprintf(&orig, "alice:%s\nmallory:x:bad group\n", h_old) > 0);
        write_file(path, orig, 0600);
        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "new-pw", -1), -EBADMSG);
        text = read_file(path);
        assert_string_equal(text, orig);
        free(text);

        free(orig);
        free(h_old);
        free(path);
        rm_rf(dir);
        free(dir);
}

/* The lock is the folder's flock: a change waits at most its timeout for it
 * (-EAGAIN), and goes through once it is free. */
static void test_change_lock_timeout(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *h = argon2id_min("old-pw"), *text, *orig;

        assert_true(asprintf(&orig, "alice:%s\n", h) > 0);
        write_file(path, orig, 0600);
        int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(lock >= 0);
        assert_int_equal(flock(lock, LOCK_EX), 0);

        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "new-pw", 50), -EAGAIN);
        text = read_file(path);
        assert_string_equal(text, orig);
        free(text);

        close(lock);
        assert_int_equal(userdb_change_password(path, "alice", "old-pw", "new-pw", 50), 0);

        free(orig);
        free(h);
        free(path);
        rm_rf(dir);
        free(dir);
}

/* An editor killed between writing its temporary file and the rename
 * leaves `.users.XXXXXXXXXXXXXXXX` behind: readers never look at it, and
 * the next editor (holding the lock) removes it. Other files stay. */
static void test_edit_stale_temp(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *stale = path_join(dir, ".users.0123456789abcdef");
        char *other1 = path_join(dir, ".users.0123456789ABCDEF");
        char *other2 = path_join(dir, ".users.0123");
        char *other3 = path_join(dir, ".wiki.0123456789abcdef");
        struct userdb *db = NULL;

        write_file(path, "bob:!\n", 0600);
        write_file(stale, "bob:$6$half", 0600); /* torn: half a line */
        write_file(other1, "x", 0600);
        write_file(other2, "x", 0600);
        write_file(other3, "x", 0600);

        assert_non_null(load_user(path, &db, "bob"));
        assert_int_equal(userdb_size(db), 1);
        userdb_free(db);

        assert_int_equal(userdb_expire(path, "bob", 0), 0);
        assert_int_equal(access(stale, F_OK), -1);
        assert_int_equal(access(other1, F_OK), 0);
        assert_int_equal(access(other2, F_OK), 0);
        assert_int_equal(access(other3, F_OK), 0);
        assert_int_equal(count_entries(dir), 4);

        /* left behind again (empty this time): any editor removes it */
        write_file(stale, "", 0600);
        assert_int_equal(userdb_passwd(path, "bob", "pw", NULL, USERDB_EXPIRES_NEVER), 0);
        assert_int_equal(access(stale, F_OK), -1);

        free(stale);
        free(other1);
        free(other2);
        free(other3);
        free(path);
        rm_rf(dir);
        free(dir);
}

struct change_race {
        const char *path;
        const char *user, *old, *new;
        int result;
};

static void *change_run(void *userdata) {
        struct change_race *c = userdata;
        c->result = userdb_change_password(c->path, c->user, c->old, c->new, -1);
        return NULL;
}

/* Two changes at once: they serialise. With the same old password exactly
 * one wins (the other finds its old password gone); for two users both
 * land. The file is valid after each round and holds no temporary file. */
static void test_change_concurrent(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *ha = argon2id_min("a-old"), *hb = argon2id_min("b-old");
        struct userdb *db = NULL;
        const struct userdb_entry *e;
        char *text;

        assert_true(asprintf(&text, "alice:%s:g\nbob:%s\n", ha, hb) > 0);
        write_file(path, text, 0600);
        free(text);

        for (int round = 0; round < 3; round++) {
                char old[32], n1[32], n2[32];
                snprintf(old, sizeof old, round ? "a-%d-x" : "a-old", round - 1);
                if (round > 0) {
                        /* whichever won the previous round */
                        e = load_user(path, &db, "alice");
                        snprintf(old, sizeof old, "a-%d-1", round - 1);
                        if (userdb_verify(e->hash, old) != 1)
                                snprintf(old, sizeof old, "a-%d-2", round - 1);
                        assert_int_equal(userdb_verify(e->hash, old), 1);
                        userdb_free(db);
                }
                snprintf(n1, sizeof n1, "a-%d-1", round);
                snprintf(n2, sizeof n2, "a-%d-2", round);
                struct change_race c1 = { path, "alice", old, n1, 1 };
                struct change_race c2 = { path, "alice", old, n2, 1 };
                pthread_t t1, t2;
                assert_int_equal(pthread_create(&t1, NULL, change_run, &c1), 0);
                assert_int_equal(pthread_create(&t2, NULL, change_run, &c2), 0);
                assert_int_equal(pthread_join(t1, NULL), 0);
                assert_int_equal(pthread_join(t2, NULL), 0);
                assert_true((c1.result == 0 && c2.result == -EKEYREJECTED) ||
                            (c2.result == 0 && c1.result == -EKEYREJECTED));
                e = load_user(path, &db, "alice");
                assert_int_equal(userdb_verify(e->hash, c1.result == 0 ? n1 : n2), 1);
                assert_int_equal(userdb_verify(e->hash, c1.result == 0 ? n2 : n1), 0);
                assert_int_equal(e->n_groups, 1);
                assert_int_equal(userdb_size(db), 2);
                userdb_free(db);
                assert_int_equal(count_entries(dir), 1);
        }

        /* two users: both changes land, neither loses the other's */
        e = load_user(path, &db, "alice");
        const char *a_now = userdb_verify(e->hash, "a-2-1") == 1 ? "a-2-1" : "a-2-2";
        userdb_free(db);
        struct change_race ca = { path, "alice", a_now, "a-last", 1 };
        struct change_race cb = { path, "bob", "b-old", "b-last", 1 };
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, change_run, &ca), 0);
        assert_int_equal(pthread_create(&tb, NULL, change_run, &cb), 0);
        assert_int_equal(pthread_join(ta, NULL), 0);
        assert_int_equal(pthread_join(tb, NULL), 0);
        assert_int_equal(ca.result, 0);
        assert_int_equal(cb.result, 0);
        e = load_user(path, &db, "alice");
        assert_int_equal(userdb_verify(e->hash, "a-last"), 1);
        assert_int_equal(userdb_verify(userdb_lookup(db, "bob")->hash, "b-last"), 1);
        userdb_free(db);
        assert_int_equal(count_entries(dir), 1);

        free(ha);
        free(hb);
        free(path);
        rm_rf(dir);
        free(dir);
}

#define TORN_ROUNDS 1000

struct torn_reader {
        const char *path;
        const char *hash_alice;
        volatile int stop;
        unsigned reads, bad, saw_never, saw_expired;
};

static void *torn_reader_run(void *userdata) {
        struct torn_reader *r = userdata;

        do {
                struct userdb *db = NULL;
                int k = userdb_parse_file(r->path, NULL, NULL, &db);
                const struct userdb_entry *a = k == 0 ? userdb_lookup(db, "alice") : NULL;
                const struct userdb_entry *b = k == 0 ? userdb_lookup(db, "bob") : NULL;
                if (!a || !b || userdb_size(db) != 3 || strcmp(a->hash, r->hash_alice) != 0 ||
                    a->n_groups != 2 || (a->expires != USERDB_EXPIRES_NEVER && a->expires != 1234567890))
                        r->bad++;
                else if (a->expires == USERDB_EXPIRES_NEVER)
                        r->saw_never++;
                else
                        r->saw_expired++;
                r->reads++;
                userdb_free(db);
        } while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE));
        return NULL;
}

/* 1000 rewrites while a thread reads the file as fast as it can: every read
 * is a whole version, the old or the new (never torn, never missing). */
static void test_rewrite_vs_read(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *ha = argon2id_min("a"), *text;
        struct torn_reader r = { .path = path, .hash_alice = ha };
        pthread_t t;

        /* a file of some size, so that a torn read would show */
        size_t len = 0, cap = 1 << 16;
        text = malloc(cap);
        len += snprintf(text + len, cap - len, "alice:%s:g1,g2\nbob:!\n", ha);
        for (int i = 0; i < 200; i++)
                len += snprintf(text + len, cap - len, "# padding line %03d .........................\n", i);
        len += snprintf(text + len, cap - len, "zed:*:g\n");
        write_file(path, text, 0600);
        free(text);

        assert_int_equal(pthread_create(&t, NULL, torn_reader_run, &r), 0);
        for (int i = 0; i < TORN_ROUNDS; i++)
                assert_int_equal(userdb_expire(path, "alice", i % 2 ? USERDB_EXPIRES_NEVER : 1234567890), 0);
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(pthread_join(t, NULL), 0);

        fprintf(stderr, "%u reads during %d rewrites (%u never, %u expired)\n", r.reads,
                TORN_ROUNDS, r.saw_never, r.saw_expired);
        assert_int_equal(r.bad, 0);
        assert_true(r.reads > 0);
        struct userdb *db = NULL;
        assert_int_equal(load_user(path, &db, "alice")->expires, USERDB_EXPIRES_NEVER);
        userdb_free(db);
        assert_int_equal(count_entries(dir), 1);

        free(ha);
        free(path);
        rm_rf(dir);
        free(dir);
}

/* Writing fails half-way (file size limit): the old file stays as it was. */
static void test_edit_atomic_write_failure(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        struct stat before, after;
        struct rlimit old, small;
        char orig[2048];

        /* longer than the limit below, so even a partial copy fails */
        size_t n = 0;
        n += snprintf(orig + n, sizeof orig - n, "# header\n");
        for (int i = 0; i < 20; i++)
                n += snprintf(orig + n, sizeof orig - n, "user%02d:$6$salt$hash%02d:g\n", i, i);
        write_file(path, orig, 0640);
        assert_int_equal(stat(path, &before), 0);

        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        small = old;
        small.rlim_cur = 100;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int r1 = userdb_add(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER);
        int r2 = userdb_del(path, "user05");
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, SIG_DFL);

        assert_int_equal(r1, -EFBIG);
        assert_int_equal(r2, -EFBIG);
        char *text = read_file(path);
        assert_string_equal(text, orig);
        free(text);
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino);
        assert_int_equal(count_entries(dir), 1); /* no temporary file left */

        free(path);
        rm_rf(dir);
        free(dir);
}

/* The sync of the folder fails after the rename: the new file is in force
 * (readers see it), so the edit is a success, USERDB_EDIT_NOT_DURABLE, not
 * an error a caller would take for "nothing changed". The sync of the
 * temporary file failing, before the rename, is an error and changes
 * nothing. */
static void test_edit_dir_fsync_failure(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        char *hash = argon2id_min("old-pw");
        struct userdb *db = NULL;
        const struct userdb_entry *e;
        struct stat before, after;
        char *orig, *text;

        assert_true(asprintf(&orig, "# keep me\nbob:%s:g\n", hash) > 0);
        write_file(path, orig, 0640);

        /* before the rename: -EIO, the old file (same inode), no temporary */
        assert_int_equal(stat(path, &before), 0);
        fsync_mode = FSYNC_FAIL_FILE;
        assert_int_equal(userdb_passwd(path, "bob", "never-pw", NULL, USERDB_EXPIRES_NEVER), -EIO);
        assert_int_equal(userdb_change_password(path, "bob", "old-pw", "never-pw", -1), -EIO);
        fsync_mode = FSYNC_REAL;
        text = read_file(path);
        assert_string_equal(text, orig);
        free(text);
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino);
        assert_int_equal(count_entries(dir), 1);

        /* after it: done, though not durable; every editor says so */
        unsigned calls = fsync_dir_calls;
        fsync_mode = FSYNC_FAIL_DIR;
        assert_int_equal(userdb_change_password(path, "bob", "old-pw", "new-pw", -1),
                         USERDB_EDIT_NOT_DURABLE);
        e = load_user(path, &db, "bob");
        assert_int_equal(userdb_verify(e->hash, "new-pw"), 1);
        assert_int_equal(userdb_verify(e->hash, "old-pw"), 0);
        userdb_free(db);

        assert_int_equal(userdb_passwd(path, "bob", "newer-pw", NULL, USERDB_EXPIRES_NEVER),
                         USERDB_EDIT_NOT_DURABLE);
        assert_int_equal(userdb_add(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER),
                         USERDB_EDIT_NOT_DURABLE);
        assert_int_equal(userdb_expire(path, "alice", 0), USERDB_EDIT_NOT_DURABLE);
        assert_int_equal(userdb_del(path, "alice"), USERDB_EDIT_NOT_DURABLE);
        fsync_mode = FSYNC_REAL;
        /* the stand-in was reached: once per edit */
        assert_int_equal(fsync_dir_calls - calls, 5);

        e = load_user(path, &db, "bob");
        assert_int_equal(userdb_verify(e->hash, "newer-pw"), 1);
        assert_null(userdb_lookup(db, "alice"));
        userdb_free(db);
        text = read_file(path);
        assert_int_equal(strncmp(text, "# keep me\nbob:$argon2id$", 24), 0);
        assert_non_null(strstr(text, ":g\n"));
        free(text);
        assert_int_equal(count_entries(dir), 1);

        free(orig);
        free(hash);
        free(path);
        rm_rf(dir);
        free(dir);
}

/* A folder the caller cannot write: refused, old file intact. As root, the
 * edit runs in a child that drops to nobody (root ignores permissions). */
static void test_edit_readonly_folder(void **state) {
        char *dir = make_tmpdir();
        char *path = path_join(dir, "users");
        static const char orig[] = "# keep me\nbob:!:g\n";
        int r;

        write_file(path, orig, 0644);
        if (geteuid() == 0) {
                assert_int_equal(chown(dir, 65534, 65534), 0);
                assert_int_equal(chown(path, 65534, 65534), 0);
        }
        assert_int_equal(chmod(dir, 0555), 0);

        if (geteuid() == 0) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        if (setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(100);
                        int a = userdb_add(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER);
                        int b = userdb_del(path, "bob");
                        int c = userdb_passwd(path, "bob", "pw", NULL, USERDB_EXPIRES_NEVER);
                        _exit(a == -EACCES && b == -EACCES && c == -EACCES ? 0 : 1);
                }
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status));
                r = WEXITSTATUS(status);
                assert_int_equal(r, 0);
        } else {
                assert_int_equal(userdb_add(path, "alice", "pw", NULL, USERDB_EXPIRES_NEVER), -EACCES);
                assert_int_equal(userdb_del(path, "bob"), -EACCES);
        }

        char *text = read_file(path);
        assert_string_equal(text, orig);
        free(text);
        assert_int_equal(count_entries(dir), 1);

        assert_int_equal(chmod(dir, 0700), 0);
        free(path);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_parse_expires),
                cmocka_unit_test(test_parse_expires_arg),
                cmocka_unit_test(test_parse_file),
                cmocka_unit_test(test_verify_formats),
                cmocka_unit_test(test_verify_never),
                cmocka_unit_test(test_password_length),
                cmocka_unit_test(test_edit_roundtrip),
                cmocka_unit_test(test_edit_create),
                cmocka_unit_test(test_edit_bad_input),
                cmocka_unit_test(test_edit_expires),
                cmocka_unit_test(test_change_password),
                cmocka_unit_test(test_change_lock_timeout),
                cmocka_unit_test(test_edit_stale_temp),
                cmocka_unit_test(test_change_concurrent),
                cmocka_unit_test(test_rewrite_vs_read),
                cmocka_unit_test(test_edit_atomic_write_failure),
                cmocka_unit_test(test_edit_dir_fsync_failure),
                cmocka_unit_test(test_edit_readonly_folder),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
