/* SPDX-License-Identifier: MIT */

#include <crypt.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
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
#include "userdb.h"

struct userdb_item {
        struct userdb_entry pub;
        /* "user\0hash\0group\0group\0": every string of pub points in here */
        char *block;
        size_t block_size;
        const char **groups; /* n_groups + 1 pointers into block */
};

struct userdb {
        struct userdb_item *items; /* sorted by user name */
        size_t n;
};

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Checks one name of `len` bytes; returns NULL when it is fine, or why not. */
static const char *name_problem(const char *s, size_t len) {
        if (len == 0)
                return "is empty";
        if (len > USERDB_NAME_MAX)
                return "is longer than 64 bytes";
        if (s[0] == '-')
                return "starts with '-'";
        if (s[0] == '#')
                return "starts with '#'";
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == ':' || c == ',' || c == ' ' || c < 0x20 || c == 0x7f)
                        return "contains ':', ',', whitespace or a control character";
        }
        return NULL;
}

bool userdb_name_valid(const char *name) {
        if (!name)
                return false;
        return !name_problem(name, strnlen(name, USERDB_NAME_MAX + 1));
}

bool userdb_groups_valid(const char *groups) {
        if (!groups)
                return false;
        if (groups[0] == '\0')
                return true;
        for (const char *p = groups;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                if (name_problem(p, len))
                        return false;
                if (!comma)
                        return true;
                p = comma + 1;
        }
}

/* ---- expiry ----------------------------------------------------------- */

/* The 4th field: empty (never) or 1..19 decimal digits without a sign,
 * at most INT64_MAX. */
static int parse_expires_field(const char *s, size_t len, int64_t *ret) {
        int64_t v = 0;

        if (len == 0) {
                *ret = USERDB_EXPIRES_NEVER;
                return 0;
        }
        if (len > 19)
                return -ERANGE;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                int d = s[i] - '0';
                if (v > (INT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

bool userdb_expired(const struct userdb_entry *e, int64_t now) {
        return e && e->expires != USERDB_EXPIRES_NEVER && now >= e->expires;
}

int userdb_parse_expires(const char *s, int64_t *ret) {
        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        if (streq(s, "never")) {
                *ret = USERDB_EXPIRES_NEVER;
                return 0;
        }
        if (streq(s, "now")) {
                *ret = 0;
                return 0;
        }
        /* YYYY-MM-DD: 00:00 UTC that day, checked by a round trip so that
         * 2027-02-30 is refused rather than normalised. */
        if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
                int y, m, d;
                char tail;
                for (size_t i = 0; i < 10; i++)
                        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                                return -EINVAL;
                if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
                        return -EINVAL;
                struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
                time_t t = timegm(&tm);
                if (t < 0 || tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
                        return -EINVAL;
                *ret = t;
                return 0;
        }
        if (s[0] == '\0')
                return -EINVAL; /* "never" says it */
        return parse_expires_field(s, strlen(s), ret);
}

/* ---- parsing ---------------------------------------------------------- */

struct parser {
        const char *name;
        userdb_diag_fn diag;
        void *userdata;
        unsigned errors;
};

static void parser_report(struct parser *p, unsigned line, const char *fmt, ...)
        _printf_(3, 4);
static void parser_report(struct parser *p, unsigned line, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        p->errors++;
        if (!p->diag)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        p->diag(p->userdata, p->name, line, msg);
}

static void item_done(struct userdb_item *it) {
        if (it->block) {
                sodium_memzero(it->block, it->block_size);
                free(it->block);
        }
        free(it->groups);
        *it = (struct userdb_item) {};
}

void userdb_free(struct userdb *db) {
        if (!db)
                return;
        for (size_t i = 0; i < db->n; i++)
                item_done(&db->items[i]);
        free(db->items);
        free(db);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct userdb *, userdb_free);

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static bool has_bad_hash_char(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c <= 0x20 || c == 0x7f)
                        return true;
        }
        return false;
}

/*
 * Parses one line (without its '\n') into *ret (a fresh item). Returns 1 for
 * a user line, 0 for a comment or blank line, -EBADMSG after reporting a
 * malformed line, -ENOMEM.
 */
static int parse_line(struct parser *p, unsigned lineno, const char *s, size_t len,
                      struct userdb_item *ret) {
        size_t i = 0;
        const char *why;

        while (i < len && is_blank(s[i]))
                i++;
        if (i == len || s[i] == '#')
                return 0;

        if (memchr(s, '\0', len)) {
                parser_report(p, lineno, "line contains a NUL byte");
                return -EBADMSG;
        }

        const char *c1 = memchr(s, ':', len);
        if (!c1) {
                parser_report(p, lineno, "expected 'user:hash[:groups[:expires]]', found no ':'");
                return -EBADMSG;
        }
        size_t user_len = c1 - s;
        why = name_problem(s, user_len);
        if (why) {
                parser_report(p, lineno, "user name %s", why);
                return -EBADMSG;
        }

        const char *hash = c1 + 1;
        const char *end = s + len;
        const char *c2 = memchr(hash, ':', end - hash);
        size_t hash_len = (c2 ? c2 : end) - hash;
        if (has_bad_hash_char(hash, hash_len)) {
                parser_report(p, lineno, "hash contains whitespace or a control character");
                return -EBADMSG;
        }

        const char *groups = c2 ? c2 + 1 : end;
        const char *c3 = memchr(groups, ':', end - groups);
        size_t groups_len = (c3 ? c3 : end) - groups;
        int64_t expires = USERDB_EXPIRES_NEVER;
        if (c3) {
                const char *ex = c3 + 1;
                if (memchr(ex, ':', end - ex)) {
                        parser_report(p, lineno,
                                      "too many ':'-separated fields (expected at most 4)");
                        return -EBADMSG;
                }
                if (parse_expires_field(ex, end - ex, &expires) < 0) {
                        parser_report(p, lineno,
                                      "expiry must be empty or a number of seconds since 1970");
                        return -EBADMSG;
                }
        }

        /* Count and check the groups before allocating anything. */
        size_t n_groups = 0;
        if (groups_len > 0) {
                const char *g = groups, *gend = groups + groups_len;
                for (;;) {
                        const char *comma = memchr(g, ',', gend - g);
                        size_t glen = (comma ? comma : gend) - g;
                        why = name_problem(g, glen);
                        if (why) {
                                parser_report(p, lineno, "group name %zu %s", n_groups + 1, why);
                                return -EBADMSG;
                        }
                        n_groups++;
                        if (!comma)
                                break;
                        g = comma + 1;
                }
        }

        /* user\0 hash\0 and the groups, each followed by \0 (commas become \0) */
        size_t size = user_len + 1 + hash_len + 1 + groups_len + 1;
        char *block = malloc(size);
        if (!block)
                return -ENOMEM;
        const char **gv = calloc(n_groups + 1, sizeof(char *));
        if (!gv) {
                free(block);
                return -ENOMEM;
        }

        memcpy(block, s, user_len);
        block[user_len] = '\0';
        char *h = block + user_len + 1;
        memcpy(h, hash, hash_len);
        h[hash_len] = '\0';
        char *g = h + hash_len + 1;
        memcpy(g, groups, groups_len);
        g[groups_len] = '\0';
        for (size_t k = 0; k < n_groups; k++) {
                gv[k] = g;
                char *comma = strchr(g, ',');
                if (comma) {
                        *comma = '\0';
                        g = comma + 1;
                }
        }

        *ret = (struct userdb_item) {
                .pub = {
                        .user = block,
                        .hash = h,
                        .groups = gv,
                        .n_groups = n_groups,
                        .expires = expires,
                        .line = lineno,
                },
                .block = block,
                .block_size = size,
                .groups = gv,
        };
        return 1;
}

static int item_cmp(const void *a, const void *b) {
        const struct userdb_item *x = a, *y = b;
        int r = strcmp(x->pub.user, y->pub.user);
        if (r != 0)
                return r;
        return x->pub.line < y->pub.line ? -1 : x->pub.line > y->pub.line;
}

int userdb_parse_buffer(const void *buf, size_t len, const char *name, userdb_diag_fn diag,
                        void *userdata, struct userdb **ret_db) {
        _cleanup_(userdb_freep) struct userdb *db = NULL;
        struct parser p = {
                .name = name ?: "<buffer>",
                .diag = diag,
                .userdata = userdata,
        };
        size_t allocated = 0;
        unsigned lineno = 0;
        int r;

        assert_return(buf || len == 0, -EINVAL);
        assert_return(ret_db, -EINVAL);

        if (len > USERDB_FILE_MAX)
                return -EFBIG;

        db = calloc(1, sizeof *db);
        if (!db)
                return -ENOMEM;

        for (const char *s = buf, *end = s + len; s < end;) {
                const char *nl = memchr(s, '\n', end - s);
                size_t line_len = (nl ? nl : end) - s;
                struct userdb_item it;

                lineno++;
                r = parse_line(&p, lineno, s, line_len, &it);
                if (r == -ENOMEM)
                        return r;
                if (r > 0) {
                        if (db->n == allocated) {
                                size_t m = allocated ? allocated * 2 : 16;
                                struct userdb_item *n = reallocarray(db->items, m, sizeof *n);
                                if (!n) {
                                        item_done(&it);
                                        return -ENOMEM;
                                }
                                db->items = n;
                                allocated = m;
                        }
                        db->items[db->n++] = it;
                }
                s += line_len + (nl ? 1 : 0);
        }

        if (db->n > 1)
                qsort(db->items, db->n, sizeof *db->items, item_cmp);
        for (size_t i = 1; i < db->n; i++)
                if (streq(db->items[i - 1].pub.user, db->items[i].pub.user))
                        parser_report(&p, db->items[i].pub.line,
                                      "duplicate user (first defined on line %u)",
                                      db->items[i - 1].pub.line);

        if (p.errors > 0)
                return -EBADMSG;

        *ret_db = TAKE_PTR(db);
        return 0;
}

/* Reads fd to its end into a malloc'd buffer (wiped by the caller). */
static int read_all(int fd, char **ret_buf, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, allocated = 0;

        for (;;) {
                if (allocated - len < 4096) {
                        size_t m = allocated ? allocated * 2 : 16384;
                        if (m > USERDB_FILE_MAX + 1)
                                m = USERDB_FILE_MAX + 1;
                        if (m <= len) {
                                if (buf)
                                        sodium_memzero(buf, len);
                                return -EFBIG;
                        }
                        char *n = malloc(m);
                        if (!n) {
                                if (buf)
                                        sodium_memzero(buf, len);
                                return -ENOMEM;
                        }
                        /* realloc() would leave an unwiped copy behind */
                        if (buf) {
                                memcpy(n, buf, len);
                                sodium_memzero(buf, len);
                                free(buf);
                        }
                        buf = n;
                        allocated = m;
                }
                ssize_t k = read(fd, buf + len, allocated - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = negative_errno();
                        sodium_memzero(buf, len);
                        return r;
                }
                if (k == 0)
                        break;
                len += k;
        }
        if (len > USERDB_FILE_MAX) {
                sodium_memzero(buf, len);
                return -EFBIG;
        }
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int userdb_parse_fd(int fd, const char *name, userdb_diag_fn diag, void *userdata,
                    struct userdb **ret_db) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret_db, -EINVAL);

        r = read_all(fd, &buf, &len);
        if (r < 0)
                return r;
        r = userdb_parse_buffer(buf ?: "", len, name, diag, userdata, ret_db);
        if (buf)
                sodium_memzero(buf, len);
        return r;
}

int userdb_parse_file(const char *path, userdb_diag_fn diag, void *userdata,
                      struct userdb **ret_db) {
        _cleanup_close_ int fd = -1;

        assert_return(path, -EINVAL);
        assert_return(ret_db, -EINVAL);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return userdb_parse_fd(fd, path, diag, userdata, ret_db);
}

size_t userdb_size(const struct userdb *db) { return db ? db->n : 0; }

const struct userdb_entry *userdb_get(const struct userdb *db, size_t i) {
        if (!db || i >= db->n)
                return NULL;
        return &db->items[i].pub;
}

static int item_key_cmp(const void *key, const void *elem) {
        const struct userdb_item *it = elem;
        return strcmp(key, it->pub.user);
}

const struct userdb_entry *userdb_lookup(const struct userdb *db, const char *user) {
        if (!db || !user || db->n == 0)
                return NULL;
        const struct userdb_item *it =
                bsearch(user, db->items, db->n, sizeof *db->items, item_key_cmp);
        return it ? &it->pub : NULL;
}

/* ---- hashes ----------------------------------------------------------- */

static bool hash_is_argon2id(const char *hash) { return startswith(hash, "$argon2id$"); }

static bool hash_is_crypt(const char *hash) {
        return startswith(hash, "$y$") || startswith(hash, "$2b$") ||
               startswith(hash, "$2y$") || startswith(hash, "$6$");
}

bool userdb_hash_supported(const char *hash) {
        return hash && (hash_is_argon2id(hash) || hash_is_crypt(hash));
}

/* Length of an acceptable password, or 0 when it must be refused. */
static size_t password_len(const char *password) {
        if (!password)
                return 0;
        size_t n = strnlen(password, USERDB_PASSWORD_MAX + 1);
        return n > USERDB_PASSWORD_MAX ? 0 : n;
}

int userdb_verify(const char *hash, const char *password) {
        size_t plen = password_len(password);

        if (!hash || plen == 0)
                return 0;

        if (hash_is_argon2id(hash)) {
                if (sodium_init() < 0)
                        return -ENOMEM;
                return crypto_pwhash_str_verify(hash, password, plen) == 0;
        }

        if (hash_is_crypt(hash)) {
                /* struct crypt_data is ~32 KiB: too large for a worker's stack.
                 * crypt_rn() is libxcrypt's crypt_r() that returns NULL
                 * rather than a failure token; unlike crypt_r() it is not
                 * intercepted by ASan, whose interceptor crashes when
                 * libcrypt was not loaded at startup (a dlopen()ed plugin). */
                struct crypt_data *cd = calloc(1, sizeof *cd);
                if (!cd)
                        return -ENOMEM;
                const char *out = crypt_rn(password, hash, cd, sizeof *cd);
                size_t hlen = strlen(hash);
                bool ok = out && out[0] != '*' && strnlen(out, CRYPT_OUTPUT_SIZE) == hlen &&
                          secret_equal(out, hash, hlen);
                sodium_memzero(cd, sizeof *cd);
                free(cd);
                return ok;
        }

        /* DES, MD5, empty, '*', '!...': locked or too weak, never verifies */
        return 0;
}

int userdb_hash_password(const char *password, char **ret_hash) {
        char out[crypto_pwhash_STRBYTES];
        size_t plen = password_len(password);

        assert_return(ret_hash, -EINVAL);
        if (plen == 0)
                return -EINVAL;
        if (sodium_init() < 0)
                return -ENOMEM;
        if (crypto_pwhash_str(out, password, plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                return -ENOMEM;
        char *h = strdup(out);
        sodium_memzero(out, sizeof out);
        if (!h)
                return -ENOMEM;
        *ret_hash = h;
        return 0;
}

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

                while (i < line_len && is_blank(s[i]))
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
 * over `base`. `st` describes the old file, or is NULL when there is none. */
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
        /* The rename is durable only once the folder is synced. */
        if (fsync(dirfd) < 0)
                return -EIO;
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
            password_len(password) == 0)
                return -EINVAL;
        if (e->op == EDIT_CHANGE && password_len(e->old_password) == 0)
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
                r = read_all(fd, &in, &in_len);
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
