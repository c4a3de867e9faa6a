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
 * account: LATCH_SUCCESS for a user in the file, LATCH_NEW_AUTHTOK_REQD when
 * the user's password has expired (the optional 4th field: 0, or a time now
 * or in the past; see userdb.h), LATCH_USER_UNKNOWN for anyone else.
 *
 * password (ABI 1.2), as pam_unix's pam_sm_chauthtok:
 *
 *   password required file path=/var/lib/latch/users/wiki [min_length=8] [retry=3]
 *
 * The preliminary pass asks "Current password:" when LATCH_ITEM_OLDPASSWORD
 * is NULL, sets the item to the answer (as pam_get_authtok() would), and
 * checks it with the same verifier and the same dummy-hash cost as auth: a
 * wrong one is LATCH_AUTH_ERR, an unknown user LATCH_USER_UNKNOWN only after
 * the same prompt and cost (so the `passwd` op tells nobody which users
 * exist). It also checks that the folder can be written and that the file
 * is this process's (user and group), else LATCH_AUTHINFO_UNAVAIL, logged.
 * The update pass takes the new password from LATCH_ITEM_PASSWORD when an
 * earlier line set it, else asks "New password:" and "Retype new password:"
 * in one step; it
 * refuses two entries that differ, one shorter than min_length characters
 * (code points), one that is the user's name or contains it (3 characters
 * or more, either way round, any case) and one equal to the current
 * password, each with an `error` prompt saying why before asking again, at
 * most `retry` times in all (as pam_pwquality's retry=), then
 * LATCH_AUTHTOK_ERR. A new password given as an item cannot be asked again:
 * a refusal is then LATCH_AUTHTOK_ERR at once, and logged. An accepted one
 * becomes LATCH_ITEM_PASSWORD for the lines after, and is stored with
 * userdb_change_password(): under the editors' lock (shared with `latchctl
 * user`; waited for at most 5 s, else LATCH_AUTHTOK_LOCK_BUSY) the current
 * password is checked again against the file as it is then (a change that
 * lost a race to another change is LATCH_AUTH_ERR), the new argon2id hash
 * replaces the old one, the expiry is cleared, and the file is replaced
 * atomically (a temporary file beside it, fsync, rename, fsync of the
 * folder; should only that last fsync fail, the change is in effect and
 * answered as done, with a warning logged). Readers of the file (this
 * plugin's reload, other processes) see the old file or the new one, never
 * a mix; the next call here loads the new one.
 *
 * The file a table came from is kept open while that table is the current
 * one, so its inode number cannot be reused by a later version, which could
 * then look unchanged (same size, times within one clock tick).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* How long a password change waits for the editors' lock. */
#define CHANGE_LOCK_TIMEOUT_MS 5000

struct file_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char *path;
        char *dir; /* the folder of `path`, where changes write */
        char *dummy_hash;
        unsigned min_length; /* of a new password, in characters */
        unsigned retry;      /* tries for a new password */

        pthread_mutex_t table_lock; /* guards `table` */
        struct table *table;

        pthread_mutex_t reload_lock; /* one reloader at a time; guards what follows */
        struct file_sig sig;         /* the version `table` came from */
        int fd;                      /* that version, kept open: see the top */
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

/* Reads and parses the file; returns 0, a new table with one reference, the
 * version's signature and the open file. */
static int load_table(struct file_state *s, struct table **ret_table, struct file_sig *ret_sig,
                      int *ret_fd) {
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
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Picks up a new version of the file, if there is one. */
static void maybe_reload(struct file_state *s) {
        struct file_sig now, sig;
        struct table *t = NULL, *old;
        struct stat st;
        int r, fd = -1;

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

        r = load_table(s, &t, &sig, &fd);
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
        safe_close(s->fd);
        s->fd = fd;
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

/* A decimal count from lo to hi. */
static int parse_count(const char *s, unsigned lo, unsigned hi, unsigned *ret) {
        char *end;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < lo || v > hi)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void file_close(void *userdata) {
        struct file_state *s = userdata;

        if (!s)
                return;
        table_unref(s->table);
        safe_close(s->fd);
        secret_free(s->dummy_hash);
        free(s->path);
        free(s->dir);
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

        unsigned min_length = 8, retry = 3;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "path=", 5) == 0)
                        path = argv[i] + 5;
                else if (strncmp(argv[i], "min_length=", 11) == 0) {
                        r = parse_count(argv[i] + 11, 1, USERDB_PASSWORD_MAX, &min_length);
                        if (r < 0) {
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "min_length=%s: expected a number from 1 to %d",
                                          argv[i] + 11, USERDB_PASSWORD_MAX);
                                return r;
                        }
                } else if (strncmp(argv[i], "retry=", 6) == 0) {
                        r = parse_count(argv[i] + 6, 1, 10, &retry);
                        if (r < 0) {
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "retry=%s: expected a number from 1 to 10", argv[i] + 6);
                                return r;
                        }
                } else {
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
        s->fd = -1;
        s->min_length = min_length;
        s->retry = retry;
        pthread_mutex_init(&s->table_lock, NULL);
        pthread_mutex_init(&s->reload_lock, NULL);
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        const char *slash = strrchr(path, '/');
        s->dir = slash == path ? strdup("/") : strndup(path, slash - path);
        if (!s->dir)
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

        r = load_table(s, &s->table, &s->sig, &s->fd);
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
        const struct userdb_entry *e = userdb_lookup(t->db, user);
        int result;

        if (!e)
                result = LATCH_USER_UNKNOWN;
        else if (userdb_expired(e, s->host->now(s->ctx))) {
                s->host->log(s->ctx, req, LATCH_LOG_INFO, "password expired: a change is due");
                result = LATCH_NEW_AUTHTOK_REQD;
        } else
                result = LATCH_SUCCESS;

        table_unref(t);
        return result;
}

/* ---- password changes ------------------------------------------------ */

/* What one pass keeps between its calls (the request's slot for the line). */
struct change {
        int pass;        /* LATCH_PRELIM_CHECK or LATCH_UPDATE_AUTHTOK */
        int first;       /* index of our first asking prompt that is up, or -1 */
        unsigned tries;  /* new passwords refused so far */
};

/* Whether two secrets are equal, in time that depends on neither their
 * contents nor their lengths: both are hashed (BLAKE2b) and the digests
 * compared with sodium_memcmp(). */
static bool secrets_equal(const char *a, const char *b) {
        uint8_t ha[32], hb[32];

        crypto_generichash(ha, sizeof ha, (const uint8_t *) a, strlen(a), NULL, 0);
        crypto_generichash(hb, sizeof hb, (const uint8_t *) b, strlen(b), NULL, 0);
        bool eq = sodium_memcmp(ha, hb, sizeof ha) == 0;
        sodium_memzero(ha, sizeof ha);
        sodium_memzero(hb, sizeof hb);
        return eq;
}

/* Characters (UTF-8 code points: bytes that do not continue one). */
static size_t utf8_chars(const char *p) {
        size_t n = 0;
        for (; *p; p++)
                n += ((unsigned char) *p & 0xc0) != 0x80;
        return n;
}

/* Whether `pw` is `user`, or contains it (or it backwards) in any case when
 * it has 3 characters or more: pam_pwquality's usercheck. */
static bool contains_user(const char *pw, const char *user) {
        size_t n = strlen(user);
        char rev[USERDB_NAME_MAX + 1];

        if (strcasecmp(pw, user) == 0)
                return true;
        if (n < 3 || n > USERDB_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                rev[i] = user[n - 1 - i];
        rev[n] = '\0';
        return strcasestr(pw, user) || strcasestr(pw, rev);
}

/* Why the new password `pw` (typed again as `again`) is refused, as the
 * message pam_unix, libpam or pam_pwquality show; NULL when it is fine. */
static const char *new_password_problem(const struct file_state *s, const char *user,
                                        const char *old, const char *pw, const char *again,
                                        char *buf, size_t size) {
        if (!secrets_equal(pw, again))
                return "Sorry, passwords do not match.";
        if (pw[0] == '\0')
                return "No password has been supplied.";
        if (strnlen(pw, USERDB_PASSWORD_MAX + 1) > USERDB_PASSWORD_MAX) {
                snprintf(buf, size, "BAD PASSWORD: The password is longer than %d bytes",
                         USERDB_PASSWORD_MAX);
                return buf;
        }
        if (secrets_equal(pw, old))
                return "BAD PASSWORD: The password is the same as the old one";
        if (utf8_chars(pw) < s->min_length) {
                snprintf(buf, size, "BAD PASSWORD: The password is shorter than %u characters",
                         s->min_length);
                return buf;
        }
        if (user && contains_user(pw, user))
                return "BAD PASSWORD: The password contains the user name in some form";
        return NULL;
}

/* Whether this process can replace the file: write its folder, and give
 * the new file the old one's owner (only root may give a file away). */
static int check_writable(struct file_state *s, struct latch_req *req) {
        struct stat st;

        if (faccessat(AT_FDCWD, s->dir, W_OK, AT_EACCESS) < 0) {
                int e = errno;
                s->host->log(s->ctx, req, LATCH_LOG_ERR,
                             "%s: cannot change passwords: folder %s not writable (%s)", s->path,
                             s->dir, strerror(e));
                return -e;
        }
        if (stat(s->path, &st) < 0) {
                int e = errno;
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "%s: cannot change passwords: %s",
                             s->path, strerror(e));
                return -e;
        }
        /* The new file is made by this process: it has the old one's owner
         * only if that is ours, or if we may chown (root; latchd.service's
         * system-call filter denies chown even to a group we are in). */
        if (geteuid() != 0 && (st.st_uid != geteuid() || st.st_gid != getegid())) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR,
                             "%s: cannot change passwords: the file belongs to %u:%u, not to "
                             "this process's %u:%u",
                             s->path, (unsigned) st.st_uid, (unsigned) st.st_gid,
                             (unsigned) geteuid(), (unsigned) getegid());
                return -EPERM;
        }
        return 0;
}

static struct change *change_get(struct file_state *s, struct latch_req *req, int pass) {
        struct change *c = s->host->get_data(req);

        if (c && c->pass == pass)
                return c;
        c = malloc(sizeof *c);
        if (!c)
                return NULL;
        *c = (struct change) { .pass = pass, .first = -1 };
        if (s->host->set_data(req, c, free) < 0) {
                free(c);
                return NULL;
        }
        return c;
}

static int password_prelim(struct file_state *s, struct latch_req *req, struct change *c) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *old = s->host->item(req, LATCH_ITEM_OLDPASSWORD);
        const struct userdb_entry *e;
        struct table *t;
        int result, k;

        if (!old) {
                if (c->first < 0) {
                        k = s->host->prompt(req, LATCH_PROMPT_SECRET, "Current password:");
                        if (k < 0)
                                return LATCH_CONV_ERR;
                        c->first = k;
                        return LATCH_INCOMPLETE;
                }
                old = s->host->answer(req, c->first);
                c->first = -1;
                if (!old)
                        return LATCH_CONV_ERR;
                /* as pam_get_authtok(): the item is what was typed, for the
                 * lines after this one, which check it themselves */
                if (s->host->set_item(req, LATCH_ITEM_OLDPASSWORD, old) < 0)
                        return LATCH_BUF_ERR;
        }

        t = table_acquire(s);
        e = userdb_lookup(t->db, user);
        if (!e || !userdb_hash_supported(e->hash)) {
                k = userdb_verify(s->dummy_hash, old);
                (void) k; /* the same cost as a wrong password; cannot match */
                result = e ? LATCH_AUTH_ERR : LATCH_USER_UNKNOWN;
                goto out;
        }
        k = userdb_verify(e->hash, old);
        if (k < 0) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot verify the password: %s",
                             strerror(-k));
                result = LATCH_BUF_ERR;
        } else if (k == 0)
                result = LATCH_AUTH_ERR;
        else
                result = check_writable(s, req) < 0 ? LATCH_AUTHINFO_UNAVAIL : LATCH_SUCCESS;
out:
        table_unref(t);
        return result;
}

/* Asks for the new password twice, after `why` (an error prompt) if any. */
static int ask_new(struct file_state *s, struct latch_req *req, struct change *c,
                   const char *why) {
        int k;

        if (why && s->host->prompt(req, LATCH_PROMPT_ERROR, why) < 0)
                return LATCH_CONV_ERR;
        k = s->host->prompt(req, LATCH_PROMPT_SECRET, "New password:");
        if (k < 0 || s->host->prompt(req, LATCH_PROMPT_SECRET, "Retype new password:") < 0)
                return LATCH_CONV_ERR;
        c->first = k;
        return LATCH_INCOMPLETE;
}

static int store_new(struct file_state *s, struct latch_req *req, const char *user,
                     const char *old, const char *pw) {
        int r = userdb_change_password(s->path, user, old, pw, CHANGE_LOCK_TIMEOUT_MS);

        switch (r) {
        case 0:
                s->host->log(s->ctx, req, LATCH_LOG_NOTICE, "%s: password changed", s->path);
                return LATCH_SUCCESS;
        case USERDB_EDIT_NOT_DURABLE:
                /* The new hash is live: answering a failure would tell the
                 * client the old password still holds and keep latchd from
                 * revoking the user's sessions. */
                s->host->log(s->ctx, req, LATCH_LOG_WARNING,
                             "%s: password changed, but the folder could not be synced: "
                             "the change may be lost in a crash",
                             s->path);
                return LATCH_SUCCESS;
        case -EKEYREJECTED:
                /* another change came first: the current password is no longer it */
                return LATCH_AUTH_ERR;
        case -ENOENT:
                return LATCH_USER_UNKNOWN;
        case -EAGAIN:
                s->host->log(s->ctx, req, LATCH_LOG_WARNING,
                             "%s: cannot change the password: the file stayed locked", s->path);
                return LATCH_AUTHTOK_LOCK_BUSY;
        default:
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "%s: cannot change the password: %s",
                             s->path, r == -EBADMSG ? "the file is malformed" : strerror(-r));
                return LATCH_AUTHTOK_ERR;
        }
}

static int password_update(struct file_state *s, struct latch_req *req, struct change *c) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *old = s->host->item(req, LATCH_ITEM_OLDPASSWORD);
        const char *pw = s->host->item(req, LATCH_ITEM_PASSWORD);
        const char *why;
        char buf[128];

        if (!old) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR,
                             "no current password in the update pass");
                return LATCH_AUTHTOK_ERR;
        }

        if (pw) {
                /* set by an earlier line (use_authtok): it cannot be asked again */
                why = new_password_problem(s, user, old, pw, pw, buf, sizeof buf);
                if (why) {
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE, "new password refused: %s",
                                     why);
                        return LATCH_AUTHTOK_ERR;
                }
                return store_new(s, req, user, old, pw);
        }

        if (c->first < 0)
                return ask_new(s, req, c, NULL);
        pw = s->host->answer(req, c->first);
        const char *again = s->host->answer(req, c->first + 1);
        c->first = -1;
        if (!pw || !again)
                return LATCH_CONV_ERR;

        why = new_password_problem(s, user, old, pw, again, buf, sizeof buf);
        if (why) {
                if (++c->tries >= s->retry) {
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE,
                                     "new password refused %u times, the last: %s", c->tries,
                                     why);
                        return LATCH_AUTHTOK_ERR;
                }
                return ask_new(s, req, c, why);
        }
        if (s->host->set_item(req, LATCH_ITEM_PASSWORD, pw) < 0)
                return LATCH_BUF_ERR;
        return store_new(s, req, user, old, s->host->item(req, LATCH_ITEM_PASSWORD));
}

static int file_password(void *userdata, struct latch_req *req, int flags) {
        struct file_state *s = userdata;
        int pass = flags & (LATCH_PRELIM_CHECK | LATCH_UPDATE_AUTHTOK);
        struct change *c;

        if (s->host->size < LATCH_HOST_SIZE_FOR(set_item))
                return LATCH_MODULE_UNKNOWN;
        if (pass != LATCH_PRELIM_CHECK && pass != LATCH_UPDATE_AUTHTOK)
                return LATCH_SERVICE_ERR;
        c = change_get(s, req, pass);
        if (!c)
                return LATCH_BUF_ERR;
        return pass == LATCH_PRELIM_CHECK ? password_prelim(s, req, c) : password_update(s, req, c);
}

static const struct latch_plugin file_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "file",
        .open = file_open,
        .close = file_close,
        .auth = file_auth,
        .account = file_account,
        .password = file_password,
};

/* claim_append_string is the last host service it needs (log and item come
 * before it in struct latch_host); password() checks for set_item itself,
 * so the plugin still loads in a 1.0 or 1.1 host, which never calls it. */
LATCH_PLUGIN_DEFINE(file_plugin, claim_append_string)
