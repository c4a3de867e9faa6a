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
#include "userdb-internal.h"
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

bool userdb_is_blank(char c) { return c == ' ' || c == '\t'; }

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

        while (i < len && userdb_is_blank(s[i]))
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

int userdb_read_all(int fd, char **ret_buf, size_t *ret_len) {
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

        r = userdb_read_all(fd, &buf, &len);
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

size_t userdb_password_len(const char *password) {
        if (!password)
                return 0;
        size_t n = strnlen(password, USERDB_PASSWORD_MAX + 1);
        return n > USERDB_PASSWORD_MAX ? 0 : n;
}

int userdb_verify(const char *hash, const char *password) {
        size_t plen = userdb_password_len(password);

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
        size_t plen = userdb_password_len(password);

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
