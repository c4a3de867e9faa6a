/* SPDX-License-Identifier: MIT */

/*
 * The `file` plugin: users and password hashes from a userdb file.
 *
 *   auth    required file path=/etc/latch/users
 *   account required file path=/etc/latch/users
 *
 * path= is required and must be absolute (latchd resolves relative paths in
 * stack files before calling open(); a relative path reaching the plugin is
 * refused rather than resolved against an arbitrary working folder).
 *
 * The file is read at open(): a missing, unreadable or malformed file makes
 * open() fail, naming the file (and every bad line as FILE:LINE), so
 * `latchd --check-config` and a reload catch it. Afterwards every call
 * stat()s the file (cheap next to a password hash) and re-reads it when its
 * device, inode, size, mtime or ctime changed. A new version that cannot be
 * read or parsed is logged once (each problem as FILE:LINE) and the previous
 * table stays in use until a good version appears. Tables are reference
 * counted, so a call keeps the table it started with while another thread
 * swaps in a new one.
 *
 * auth: right password -> LATCH_SUCCESS, and every group of the user is
 * appended to the `groups` claim; wrong password, or a hash that never
 * verifies (locked, DES, MD5, ...) -> LATCH_AUTH_ERR; unknown user ->
 * LATCH_USER_UNKNOWN. An unknown user, or a user whose hash cannot verify,
 * still costs one argon2id verification against a dummy hash made at open()
 * with the parameters new hashes get, so timing does not tell them apart
 * from a wrong password.
 *
 * account: LATCH_SUCCESS for a user in the file, LATCH_USER_UNKNOWN otherwise.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <latch/plugin.h>

#include "fs-util.h"
#include "macro.h"
#include "secret.h"
#include "userdb.h"

struct table {
        struct userdb *db;
        unsigned refs; /* atomic */
};

/* What identifies one version of the file on disk. */
struct file_sig {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
};

struct file_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char *path;
        char *dummy_hash;

        pthread_mutex_t table_lock; /* guards `table` */
        struct table *table;

        pthread_mutex_t reload_lock; /* one reloader at a time; guards what follows */
        struct file_sig sig;         /* the version `table` came from */
        struct file_sig failed_sig;  /* the last version that failed to load */
        bool have_failed;
        int stat_errno; /* last stat() failure already logged, or 0 */
};

static void table_unref(struct table *t) {
        if (!t)
                return;
        if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
                userdb_free(t->db);
                free(t);
        }
}

static bool sig_equal(const struct file_sig *a, const struct file_sig *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static struct file_sig sig_from_stat(const struct stat *st) {
        return (struct file_sig) {
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime = st->st_mtim,
                .ctime = st->st_ctim,
        };
}

static void diag_log(void *userdata, const char *name, unsigned line, const char *message) {
        struct file_state *s = userdata;
        s->host->log(s->ctx, NULL, LATCH_LOG_ERR, "%s:%u: %s", name, line, message);
}

/* Reads and parses the file; returns 0 and a new table with one reference. */
static int load_table(struct file_state *s, struct table **ret_table, struct file_sig *ret_sig) {
        _cleanup_close_ int fd = -1;
        struct userdb *db = NULL;
        struct stat st;
        int r;

        fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        /* fstat the fd we read, so the signature matches the content */
        r = fstat_regular(fd, &st);
        if (r < 0)
                return r;
        r = userdb_parse_fd(fd, s->path, diag_log, s, &db);
        if (r < 0)
                return r;

        struct table *t = malloc(sizeof *t);
        if (!t) {
                userdb_free(db);
                return -ENOMEM;
        }
        *t = (struct table) { .db = db, .refs = 1 };
        *ret_table = t;
        *ret_sig = sig_from_stat(&st);
        return 0;
}

/* Picks up a new version of the file, if there is one. */
static void maybe_reload(struct file_state *s) {
        struct file_sig now, sig;
        struct table *t = NULL, *old;
        struct stat st;
        int r;

        if (stat(s->path, &st) < 0) {
                int e = errno;
                pthread_mutex_lock(&s->reload_lock);
                if (s->stat_errno != e) {
                        s->stat_errno = e;
                        s->host->log(s->ctx, NULL, LATCH_LOG_ERR,
                                     "%s: cannot stat (%s), keeping the users loaded before",
                                     s->path, strerror(e));
                }
                pthread_mutex_unlock(&s->reload_lock);
                return;
        }
        now = sig_from_stat(&st);

        pthread_mutex_lock(&s->reload_lock);
        s->stat_errno = 0;
        if (sig_equal(&now, &s->sig) || (s->have_failed && sig_equal(&now, &s->failed_sig)))
                goto out;

        r = load_table(s, &t, &sig);
        if (r < 0) {
                /* Logged once per version: `failed_sig` stops further tries. */
                s->have_failed = true;
                s->failed_sig = now;
                s->host->log(s->ctx, NULL, LATCH_LOG_ERR,
                             "%s: cannot reload (%s), keeping the users loaded before", s->path,
                             r == -EBADMSG ? "malformed" : strerror(-r));
                goto out;
        }

        pthread_mutex_lock(&s->table_lock);
        old = s->table;
        s->table = t;
        pthread_mutex_unlock(&s->table_lock);
        table_unref(old);

        s->sig = sig;
        s->have_failed = false;
        s->host->log(s->ctx, NULL, LATCH_LOG_INFO, "%s: reloaded, %zu users", s->path,
                     userdb_size(t->db));
out:
        pthread_mutex_unlock(&s->reload_lock);
}

/* Returns the current table with a reference the caller drops. */
static struct table *table_acquire(struct file_state *s) {
        struct table *t;

        maybe_reload(s);
        pthread_mutex_lock(&s->table_lock);
        t = s->table;
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&s->table_lock);
        return t;
}

static void file_close(void *userdata) {
        struct file_state *s = userdata;

        if (!s)
                return;
        table_unref(s->table);
        secret_free(s->dummy_hash);
        free(s->path);
        pthread_mutex_destroy(&s->table_lock);
        pthread_mutex_destroy(&s->reload_lock);
        free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct file_state *, file_close);

static int file_open(const struct latch_host *host, struct latch_ctx *ctx, int argc,
                     const char *const *argv, void **ret_state) {
        _cleanup_(file_closep) struct file_state *s = NULL;
        const char *path = NULL;
        int r;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "path=", 5) == 0)
                        path = argv[i] + 5;
                else {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown argument '%s'", argv[i]);
                        return -EINVAL;
                }
        }
        if (!path || path[0] == '\0') {
                host->log(ctx, NULL, LATCH_LOG_ERR, "missing argument path=FILE");
                return -EINVAL;
        }
        if (path[0] != '/') {
                host->log(ctx, NULL, LATCH_LOG_ERR, "path=%s: must be an absolute path", path);
                return -EINVAL;
        }
        if (sodium_init() < 0) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "cannot initialise libsodium");
                return -EIO;
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->host = host;
        s->ctx = ctx;
        pthread_mutex_init(&s->table_lock, NULL);
        pthread_mutex_init(&s->reload_lock, NULL);
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        /* A password nobody knows, hashed as new hashes are: the cost an
         * unknown user must pay to look like a wrong password. */
        uint8_t rnd[16];
        char pw[sizeof rnd * 2 + 1];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(pw, sizeof pw, rnd, sizeof rnd);
        r = userdb_hash_password(pw, &s->dummy_hash);
        sodium_memzero(pw, sizeof pw);
        sodium_memzero(rnd, sizeof rnd);
        if (r < 0) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "cannot make the dummy hash: %s",
                          strerror(-r));
                return r;
        }

        r = load_table(s, &s->table, &s->sig);
        if (r < 0) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "%s: cannot load the user database: %s",
                          s->path,
                          r == -EBADMSG ? "malformed (problems listed above)" : strerror(-r));
                return r;
        }

        *ret_state = TAKE_PTR(s);
        return 0;
}

static int file_auth(void *userdata, struct latch_req *req) {
        struct file_state *s = userdata;
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *password = s->host->item(req, LATCH_ITEM_PASSWORD);
        struct table *t;
        const struct userdb_entry *e;
        int result, k;

        /* No password sent: ask for it (pam_unix's "Password:"); the answer
         * comes back as the request's password. A 1.0 host always has one. */
        if (!password) {
                if (s->host->size < LATCH_HOST_SIZE_FOR(get_data))
                        return LATCH_AUTHINFO_UNAVAIL;
                password = s->host->answer(req, 0);
                if (!password) {
                        if (s->host->prompt(req, LATCH_PROMPT_SECRET, "Password:") < 0)
                                return LATCH_CONV_ERR;
                        return LATCH_INCOMPLETE;
                }
        }

        t = table_acquire(s);
        e = userdb_lookup(t->db, user);

        if (!e || !userdb_hash_supported(e->hash)) {
                k = userdb_verify(s->dummy_hash, password);
                (void) k; /* cannot match: nobody knows the dummy's password */
                result = e ? LATCH_AUTH_ERR : LATCH_USER_UNKNOWN;
                goto out;
        }

        k = userdb_verify(e->hash, password);
        if (k < 0) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot verify the password: %s",
                             strerror(-k));
                result = LATCH_BUF_ERR;
                goto out;
        }
        if (k == 0) {
                result = LATCH_AUTH_ERR;
                goto out;
        }

        result = LATCH_SUCCESS;
        for (size_t i = 0; i < e->n_groups; i++) {
                int r = s->host->claim_append_string(req, "groups", e->groups[i]);
                if (r < 0) {
                        s->host->log(s->ctx, req, LATCH_LOG_ERR,
                                     "cannot add group claim: %s", strerror(-r));
                        result = LATCH_SYSTEM_ERR;
                        break;
                }
        }
out:
        table_unref(t);
        return result;
}

static int file_account(void *userdata, struct latch_req *req) {
        struct file_state *s = userdata;
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        struct table *t = table_acquire(s);
        int result = userdb_lookup(t->db, user) ? LATCH_SUCCESS : LATCH_USER_UNKNOWN;

        table_unref(t);
        return result;
}

static const struct latch_plugin file_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "file",
        .open = file_open,
        .close = file_close,
        .auth = file_auth,
        .account = file_account,
};

/* claim_append_string is the last host service it calls (log and item
 * come before it in struct latch_host). */
LATCH_PLUGIN_DEFINE(file_plugin, claim_append_string)
