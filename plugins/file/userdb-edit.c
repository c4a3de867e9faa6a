/* SPDX-License-Identifier: MIT */

/*
 * The editors of a userdb file (userdb.h): `latchctl user` and the file
 * plugin's password changes. Each takes the folder's flock, rewrites the
 * whole file into a temporary one beside it and renames that over it.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs-util.h"
#include "macro.h"
#include "secret.h"
#include "userdb-internal.h"
#include "userdb.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct userdb *, userdb_free);

/* ---- editing ---------------------------------------------------------- */

enum edit_op {
        EDIT_ADD,     /* a new line */
        EDIT_PASSWD,  /* new hash and expiry; groups given or kept */
        EDIT_EXPIRE,  /* new expiry; hash and groups kept */
        EDIT_CHANGE,  /* new hash, expiry cleared, groups kept: after checking the old password */
        EDIT_DEL,
};

struct edit {
        enum edit_op op;
        const char *user;
        const char *hash;   /* the new hash (ADD, PASSWD, CHANGE) */
        const char *groups; /* NULL keeps them (PASSWD) or none (ADD) */
        int64_t expires;
        const char *old_password; /* CHANGE: must verify against the file as it is */
        int lock_timeout_ms;      /* < 0: wait as long as it takes */
};

/* A growing output buffer; wiped when released since it holds hashes. */
struct outbuf {
        char *data;
        size_t len, allocated;
};

static void outbuf_done(struct outbuf *o) {
        if (o->data) {
                sodium_memzero(o->data, o->allocated);
                free(o->data);
        }
        *o = (struct outbuf) {};
}

static int outbuf_put(struct outbuf *o, const char *s, size_t n) {
        if (n == 0)
                return 0;
        if (secret_buf_reserve(&o->data, &o->allocated, o->len, n) < 0)
                return -ENOMEM;
        memcpy(o->data + o->len, s, n);
        o->len += n;
        return 0;
}

static int outbuf_put_str(struct outbuf *o, const char *s) { return outbuf_put(o, s, strlen(s)); }

/* Appends "user:hash[:groups[:expires]]\n" (the shortest form that holds
 * them); groups may be NULL or empty for none. */
static int put_user_line(struct outbuf *o, const char *user, const char *hash, size_t hash_len,
                         const char *groups, size_t groups_len, int64_t expires) {
        char ex[24] = "";
        int r;

        if (expires != USERDB_EXPIRES_NEVER)
                snprintf(ex, sizeof ex, ":%" PRId64, expires);

        r = outbuf_put_str(o, user);
        if (r >= 0)
                r = outbuf_put(o, ":", 1);
        if (r >= 0)
                r = outbuf_put(o, hash, hash_len);
        if (r >= 0 && ((groups && groups_len > 0) || ex[0])) {
                r = outbuf_put(o, ":", 1);
                if (r >= 0 && groups)
                        r = outbuf_put(o, groups, groups_len);
        }
        if (r >= 0)
                r = outbuf_put_str(o, ex);
        if (r >= 0)
                r = outbuf_put(o, "\n", 1);
        return r;
}

/* The fields of a line as found (none of them copied); absent ones empty. */
struct line_fields {
        const char *hash, *groups, *expires;
        size_t hash_len, groups_len, expires_len;
};

static void split_line(const char *s, size_t len, struct line_fields *f) {
        const char *end = s + len;
        const char *c1 = memchr(s, ':', len);

        *f = (struct line_fields) { .hash = end, .groups = end, .expires = end };
        if (!c1)
                return;
        f->hash = c1 + 1;
        const char *c2 = memchr(f->hash, ':', end - f->hash);
        f->hash_len = (c2 ? c2 : end) - f->hash;
        if (!c2)
                return;
        f->groups = c2 + 1;
        const char *c3 = memchr(f->groups, ':', end - f->groups);
        f->groups_len = (c3 ? c3 : end) - f->groups;
        if (!c3)
                return;
        f->expires = c3 + 1;
        f->expires_len = end - f->expires;
}

/* The new line for `user`, whose current line (perhaps malformed) is `s`. */
static int put_replaced_line(struct outbuf *out, const struct edit *e, const char *s,
                             size_t len) {
        struct line_fields f;
        int64_t expires = e->expires;

        split_line(s, len, &f);
        const char *hash = e->hash ?: f.hash;
        size_t hash_len = e->hash ? strlen(e->hash) : f.hash_len;
        const char *groups = e->groups ?: f.groups;
        size_t groups_len = e->groups ? strlen(e->groups) : f.groups_len;

        if (e->op == EDIT_EXPIRE && e->hash == NULL && f.hash == s + len)
                return -EBADMSG; /* no hash to keep */
        return put_user_line(out, e->user, hash, hash_len, groups, groups_len, expires);
}

/*
 * Rewrites `in` into `out` for the operation. The name of a line is what
 * precedes its first ':' (the whole line without one), so malformed lines of
 * `user` are also replaced or dropped, and lines of others kept verbatim.
 */
static int edit_content(const char *in, size_t in_len, const struct edit *e,
                        struct outbuf *out) {
        size_t user_len = strlen(e->user);
        bool found = false;
        int r;

        for (const char *s = in, *end = in + in_len; s < end;) {
                const char *nl = memchr(s, '\n', end - s);
                size_t line_len = (nl ? nl : end) - s;
                size_t i = 0;

                while (i < line_len && userdb_is_blank(s[i]))
                        i++;
                bool comment = i == line_len || s[i] == '#';
                const char *colon = memchr(s, ':', line_len);
                size_t name_len = colon ? (size_t) (colon - s) : line_len;
                bool mine = !comment && name_len == user_len && memcmp(s, e->user, user_len) == 0;

                if (mine && e->op == EDIT_ADD)
                        return -EEXIST;
                if (mine && e->op != EDIT_DEL && !found) {
                        r = put_replaced_line(out, e, s, line_len);
                        if (r < 0)
                                return r;
                } else if (!mine) {
                        r = outbuf_put(out, s, line_len);
                        if (r >= 0)
                                r = outbuf_put(out, "\n", nl ? 1 : (e->op == EDIT_ADD ? 1 : 0));
                        if (r < 0)
                                return r;
                }
                found = found || mine;
                s += line_len + (nl ? 1 : 0);
        }

        if (e->op == EDIT_ADD)
                return put_user_line(out, e->user, e->hash, strlen(e->hash), e->groups,
                                     e->groups ? strlen(e->groups) : 0, e->expires);
        return found ? 0 : -ENOENT;
}

/* Checks the old password of EDIT_CHANGE against the file as it is now
 * (under the lock): the whole file must parse, as for the plugin. */
static int check_old_password(const char *in, size_t in_len, const char *name,
                              const struct edit *e) {
        _cleanup_(userdb_freep) struct userdb *db = NULL;
        int r;

        r = userdb_parse_buffer(in, in_len, name, NULL, NULL, &db);
        if (r < 0)
                return r;
        const struct userdb_entry *entry = userdb_lookup(db, e->user);
        if (!entry)
                return -ENOENT;
        r = userdb_verify(entry->hash, e->old_password);
        if (r < 0)
                return r;
        return r ? 0 : -EKEYREJECTED;
}

static int open_parent_dir(const char *path, char **ret_base) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;

        char *slash = strrchr(copy, '/');
        const char *dir, *base;
        if (!slash) {
                dir = ".";
                base = copy;
        } else {
                *slash = '\0';
                dir = slash == copy ? "/" : copy;
                base = slash + 1;
        }
        if (base[0] == '\0' || streq(base, ".") || streq(base, ".."))
                return -EINVAL;

        char *b = strdup(base);
        if (!b)
                return -ENOMEM;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                free(b);
                return r;
        }
        *ret_base = b;
        return fd;
}

/* Writes `data` to a new temporary file beside `base` in dirfd and renames it
 * over `base`. `st` describes the old file, or is NULL when there is none.
 * Returns 0, USERDB_EDIT_NOT_DURABLE when only the folder's fsync failed
 * (the new file is in place), or a negative errno (the old file is). */
static int replace_file(int dirfd, const char *base, const struct stat *st, const char *data,
                        size_t len) {
        char tmp[NAME_MAX + 1];
        _cleanup_close_ int fd = -1;
        int r;

        if (strlen(base) > NAME_MAX - 20)
                return -ENAMETOOLONG;

        for (int attempt = 0;; attempt++) {
                uint8_t rnd[8];
                char hex[sizeof rnd * 2 + 1];

                randombytes_buf(rnd, sizeof rnd);
                sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
                snprintf(tmp, sizeof tmp, ".%s.%s", base, hex);
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                            0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 16)
                        return negative_errno();
        }

        if (st) {
                if ((st->st_uid != geteuid() || st->st_gid != getegid()) &&
                    fchown(fd, st->st_uid, st->st_gid) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                if (fchmod(fd, st->st_mode & 07777) < 0) {
                        r = negative_errno();
                        goto fail;
                }
        }

        for (size_t done = 0; done < len;) {
                ssize_t k = write(fd, data + done, len - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                done += k;
        }
        if (fsync(fd) < 0) {
                r = -EIO;
                goto fail;
        }
        fd = safe_close(fd);
        if (renameat(dirfd, tmp, dirfd, base) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* The rename is durable only once the folder is synced. If that
         * fails the change has still happened: every reader already sees the
         * new file, and nothing here can take the rename back. Reporting a
         * failure would make callers act as if the old password were still
         * in force (latchd would revoke no sessions), so it is success that
         * may not survive a crash, for the caller to warn about. */
        if (fsync(dirfd) < 0)
                return USERDB_EDIT_NOT_DURABLE;
        return 0;

fail:
        (void) unlinkat(dirfd, tmp, 0);
        return r;
}

/* Takes the editors' lock: flock(2) on the folder, which every editor
 * (latchctl user, the plugin's password changes) opens the same way. With a
 * timeout, polls: a stuck holder must not keep a latchd thread forever. */
static int lock_dir(int dirfd, int timeout_ms) {
        struct timespec start, now;

        if (timeout_ms < 0) {
                while (flock(dirfd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return negative_errno();
                return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return negative_errno();
                clock_gettime(CLOCK_MONOTONIC, &now);
                int64_t ms = (now.tv_sec - start.tv_sec) * 1000 +
                             (now.tv_nsec - start.tv_nsec) / 1000000;
                if (ms >= timeout_ms)
                        return -EAGAIN;
                (void) nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
        }
}

/* Whether `name` is one of replace_file()'s temporary files for `base`:
 * "." base "." and 16 lowercase hex digits. */
static bool is_temp_name(const char *name, const char *base) {
        size_t blen = strlen(base);

        if (name[0] != '.' || strncmp(name + 1, base, blen) != 0 || name[1 + blen] != '.')
                return false;
        const char *hex = name + 2 + blen;
        if (strlen(hex) != 16)
                return false;
        for (size_t i = 0; i < 16; i++)
                if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                        return false;
        return true;
}

/* Removes temporary files an editor that died (power loss, SIGKILL) left
 * behind. Called under the lock, so none of them is being written. Readers
 * never look at them, so a failure here is harmless and ignored. */
static void remove_stale_temps(int dirfd, const char *base) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (!is_temp_name(de->d_name, base))
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                (void) unlinkat(dirfd, de->d_name, 0);
        }
        closedir(d);
}

static int userdb_edit(const char *path, const struct edit *e, const char *password) {
        _cleanup_free_ char *base = NULL, *in = NULL;
        _cleanup_close_ int dirfd = -1, fd = -1;
        char *hash = NULL;
        struct outbuf out = {};
        struct edit ed = *e;
        struct stat st;
        bool exists = true;
        size_t in_len = 0;
        int r;

        if (!path || !e->user)
                return -EINVAL;
        if (!userdb_name_valid(e->user))
                return -EINVAL;
        if (e->groups && !userdb_groups_valid(e->groups))
                return -EINVAL;
        if (e->expires < USERDB_EXPIRES_NEVER)
                return -EINVAL;
        if ((e->op == EDIT_ADD || e->op == EDIT_PASSWD || e->op == EDIT_CHANGE) &&
            userdb_password_len(password) == 0)
                return -EINVAL;
        if (e->op == EDIT_CHANGE && userdb_password_len(e->old_password) == 0)
                return -EINVAL;

        /* Hash before taking the lock: it is the slow part, and needs no file. */
        if (password) {
                r = userdb_hash_password(password, &hash);
                if (r < 0)
                        return r;
                ed.hash = hash;
        }

        dirfd = open_parent_dir(path, &base);
        if (dirfd < 0) {
                r = dirfd;
                goto finish;
        }
        r = lock_dir(dirfd, e->lock_timeout_ms);
        if (r < 0)
                goto finish;
        remove_stale_temps(dirfd, base);

        fd = openat(dirfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                if (r != -ENOENT || e->op != EDIT_ADD)
                        goto finish;
                exists = false;
        } else {
                r = fstat_regular(fd, &st);
                if (r < 0)
                        goto finish;
                r = userdb_read_all(fd, &in, &in_len);
                if (r < 0)
                        goto finish;
        }

        if (e->op == EDIT_CHANGE) {
                r = check_old_password(in ?: "", in_len, path, e);
                if (r < 0)
                        goto finish;
        }

        r = edit_content(in ?: "", in_len, &ed, &out);
        if (r < 0)
                goto finish;

        r = replace_file(dirfd, base, exists ? &st : NULL, out.data ?: "", out.len);

finish:
        /* the lock goes with dirfd's close */
        outbuf_done(&out);
        if (in)
                sodium_memzero(in, in_len);
        secret_free(hash);
        return r;
}

int userdb_add(const char *path, const char *user, const char *password, const char *groups,
               int64_t expires) {
        return userdb_edit(path,
                           &(struct edit) { .op = EDIT_ADD, .user = user, .groups = groups,
                                            .expires = expires, .lock_timeout_ms = -1 },
                           password);
}

int userdb_passwd(const char *path, const char *user, const char *password,
                  const char *groups, int64_t expires) {
        return userdb_edit(path,
                           &(struct edit) { .op = EDIT_PASSWD, .user = user, .groups = groups,
                                            .expires = expires, .lock_timeout_ms = -1 },
                           password);
}

int userdb_expire(const char *path, const char *user, int64_t expires) {
        return userdb_edit(path,
                           &(struct edit) { .op = EDIT_EXPIRE, .user = user, .expires = expires,
                                            .lock_timeout_ms = -1 },
                           NULL);
}

int userdb_change_password(const char *path, const char *user, const char *old_password,
                           const char *new_password, int lock_timeout_ms) {
        return userdb_edit(path,
                           &(struct edit) { .op = EDIT_CHANGE, .user = user,
                                            .expires = USERDB_EXPIRES_NEVER,
                                            .old_password = old_password,
                                            .lock_timeout_ms = lock_timeout_ms },
                           new_password);
}

int userdb_del(const char *path, const char *user) {
        return userdb_edit(path,
                           &(struct edit) { .op = EDIT_DEL, .user = user,
                                            .expires = USERDB_EXPIRES_NEVER,
                                            .lock_timeout_ms = -1 },
                           NULL);
}
