/* SPDX-License-Identifier: MIT */

/*
 * faillock: locks a user out after `deny` failed attempts within
 * `fail_interval`, for `unlock_time`, as pam_faillock does, with one stack
 * line placed first:
 *
 *   auth requisite faillock deny=3 fail_interval=15min unlock_time=10min
 *
 * Arguments (each optional; these are the defaults): deny=3 (0..512; 0 never
 * locks), fail_interval=15min (above 0), unlock_time=10min (0: the lock lasts
 * until the tally is cleared). Durations take s, min, h, d suffixes or plain
 * seconds. Anything else is refused at open().
 *
 * auth() is pam_faillock's "preauth": while the user is locked it returns
 * auth_err (pam_faillock's answer), so `requisite` ends the stack at once and
 * a correct password changes nothing; otherwise it returns ignore, which no
 * control acts on, so the rest of the stack decides exactly as without this
 * line (preauth's success would instead let a later `sufficient` failure
 * pass). account() returns ignore for the same reason. password(), for a
 * `password requisite faillock` line first in a password stack, does what
 * auth() does in the preliminary pass (a locked user cannot change the
 * password either) and returns ignore in the update pass. In a login that
 * changes an expired password, the password line's outcome() stays out: the
 * auth line of the same login counts it, once.
 *
 * outcome() plays "authfail" and "authsucc": the host reports the stack's
 * final result, a failure adds one to the tally and success clears it.
 * Attempts refused because the user was already locked are not counted, so a
 * lockout does not extend itself (pam_faillock never reaches authfail for
 * them). Nor are results where the credential was not judged wrong: an
 * unknown user (pam_faillock keeps no tally for those either), a backend that
 * failed (the caller sees `unavailable`), an account-state refusal after a
 * correct password (acct_expired, new_authtok_reqd, authtok_expired), or a
 * password change refused past the current password (authtok_err: the new
 * password was refused; authtok_lock_busy, authtok_disable_aging). A wrong
 * current password (auth_err) counts.
 *
 * The tally lives in the host's key-value store (namespace "faillock", key =
 * the user name): the Unix times of the most recent failures, at most `deny`
 * of them, each 8 bytes little-endian. It is changed only through
 * kv_update(), so parallel attempts lose no count, and it survives restarts.
 * The user is locked when `deny` failures lie within fail_interval of the
 * latest one and now < latest + unlock_time (unlock_time=0: until an
 * administrator clears the tally). As in pam_faillock, the first failure after
 * a lock expired starts a fresh tally.
 */

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <latch/plugin.h>

#include "plugin-store.h"

#define TALLY_ENTRY_SIZE 8
#define DENY_MAX (LATCH_KV_VALUE_MAX / TALLY_ENTRY_SIZE)

struct faillock_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        unsigned deny;          /* 0: never lock */
        int64_t fail_interval;  /* seconds, > 0 */
        int64_t unlock_time;    /* seconds; 0: never by time */
        bool password_line;     /* password() was called: a line of a password stack */
};

struct tally {
        size_t n;
        int64_t t[DENY_MAX];
};

static void tally_decode(struct tally *t, const void *buf, size_t len) {
        const uint8_t *p = buf;

        /* A value of another shape cannot come from this plugin: start over
         * rather than lock anybody out on garbage. */
        if (len % TALLY_ENTRY_SIZE != 0 || len / TALLY_ENTRY_SIZE > DENY_MAX)
                len = 0;

        t->n = len / TALLY_ENTRY_SIZE;
        for (size_t i = 0; i < t->n; i++) {
                uint64_t v = 0;
                for (size_t b = 0; b < TALLY_ENTRY_SIZE; b++)
                        v |= (uint64_t) p[i * TALLY_ENTRY_SIZE + b] << (8 * b);
                t->t[i] = (int64_t) v;
        }
}

static size_t tally_encode(const struct tally *t, void *buf) {
        uint8_t *p = buf;

        for (size_t i = 0; i < t->n; i++)
                for (size_t b = 0; b < TALLY_ENTRY_SIZE; b++)
                        p[i * TALLY_ENTRY_SIZE + b] = (uint8_t) ((uint64_t) t->t[i] >> (8 * b));
        return t->n * TALLY_ENTRY_SIZE;
}

/* Whether the tally holds `deny` failures within fail_interval of the latest
 * one; *ret_latest gets the latest failure. */
static bool tally_over(const struct faillock_state *s, const struct tally *t, int64_t *ret_latest) {
        int64_t latest = INT64_MIN;
        size_t count = 0;

        if (s->deny == 0 || t->n < s->deny)
                return false;

        for (size_t i = 0; i < t->n; i++)
                latest = t->t[i] > latest ? t->t[i] : latest;
        for (size_t i = 0; i < t->n; i++)
                if (latest - t->t[i] < s->fail_interval)
                        count++;

        *ret_latest = latest;
        return count >= s->deny;
}

/* Whether the tally locks the user at `now`; *ret_until gets the end of the
 * lock (0: none by time). */
static bool tally_locked(const struct faillock_state *s, const struct tally *t, int64_t now, int64_t *ret_until) {
        int64_t latest;

        if (!tally_over(s, t, &latest))
                return false;
        if (s->unlock_time == 0) {
                *ret_until = 0;
                return true;
        }
        if (now < latest + s->unlock_time) {
                *ret_until = latest + s->unlock_time;
                return true;
        }
        return false;
}

/* A user name the store can key on, or NULL. */
static const char *request_user(const struct faillock_state *s, const struct latch_req *req, size_t *ret_len) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        size_t n;

        if (!user)
                return NULL;
        n = strlen(user);
        if (n == 0 || n > LATCH_KV_KEY_MAX)
                return NULL;
        *ret_len = n;
        return user;
}

/* ---- arguments ---- */

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (max - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

/* "90", "90s", "30min", "8h", "2d" → seconds. */
static int parse_duration(const char *s, int64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t mult;
        } units[] = {
                {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400},
        };
        char digits[32];
        const char *p = s;
        uint64_t mult = 1, v;
        size_t n;
        int r;

        while (*p >= '0' && *p <= '9')
                p++;
        n = (size_t) (p - s);
        if (n == 0 || n >= sizeof(digits))
                return -EINVAL;
        memcpy(digits, s, n);
        digits[n] = '\0';

        if (*p) {
                size_t i;
                for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strcmp(p, units[i].suffix) == 0)
                                break;
                if (i == sizeof(units) / sizeof(units[0]))
                        return -EINVAL;
                mult = units[i].mult;
        }

        /* Ten years is plenty and keeps every sum with a time in range. */
        r = parse_uint(digits, UINT64_C(315360000) / mult, &v);
        if (r < 0)
                return r;
        *ret = (int64_t) (v * mult);
        return 0;
}

static int faillock_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                         void **ret_state) {
        struct faillock_state *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->host = host;
        s->ctx = ctx;
        s->deny = 3;
        s->fail_interval = 15 * 60;
        s->unlock_time = 10 * 60;

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];

                if (strncmp(a, "deny=", 5) == 0) {
                        uint64_t v;
                        r = parse_uint(a + 5, DENY_MAX, &v);
                        if (r < 0) {
                                host->log(ctx, NULL, LATCH_LOG_ERR, "invalid '%s': expected 0..%d", a, DENY_MAX);
                                goto fail;
                        }
                        s->deny = (unsigned) v;
                } else if (strncmp(a, "fail_interval=", 14) == 0) {
                        r = parse_duration(a + 14, &s->fail_interval);
                        if (r >= 0 && s->fail_interval == 0)
                                r = -EINVAL;
                        if (r < 0) {
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "invalid '%s': expected a duration above 0 (90s, 15min, 1h, 1d)", a);
                                goto fail;
                        }
                } else if (strncmp(a, "unlock_time=", 12) == 0) {
                        r = parse_duration(a + 12, &s->unlock_time);
                        if (r < 0) {
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "invalid '%s': expected a duration (0, 90s, 10min, 1h, 1d)", a);
                                goto fail;
                        }
                } else {
                        r = -EINVAL;
                        host->log(ctx, NULL, LATCH_LOG_ERR,
                                  "unknown argument '%s' (expected deny=, fail_interval=, unlock_time=)", a);
                        goto fail;
                }
        }

        /* The tally must be shared by every worker and survive restarts: a
         * host without its store (an isolated worker) cannot run this. */
        r = plugin_require_store(host, ctx);
        if (r < 0)
                goto fail;

        *ret_state = s;
        return 0;

fail:
        free(s);
        return r;
}

static void faillock_close(void *state) {
        free(state);
}

static int faillock_auth(void *state, struct latch_req *req) {
        struct faillock_state *s = state;
        uint8_t buf[LATCH_KV_VALUE_MAX];
        size_t len = sizeof(buf), userlen;
        struct tally t;
        const char *user;
        int64_t until;
        int r;

        if (s->deny == 0)
                return LATCH_IGNORE;
        user = request_user(s, req, &userlen);
        if (!user)
                return LATCH_IGNORE;

        r = s->host->kv_get(s->ctx, user, userlen, buf, &len);
        if (r == -ENOENT)
                return LATCH_IGNORE;
        if (r < 0) {
                /* Fail closed: without the tally a lock cannot be ruled out. */
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot read the tally: %s", strerror(-r));
                return LATCH_SYSTEM_ERR;
        }

        tally_decode(&t, buf, len);
        if (!tally_locked(s, &t, s->host->now(s->ctx), &until))
                return LATCH_IGNORE;

        /* The lock itself was logged once, when it began (outcome). */
        s->host->log(s->ctx, req, LATCH_LOG_DEBUG, "refused: locked out");
        return LATCH_AUTH_ERR;
}

static int faillock_account(void *state, struct latch_req *req) {
        return LATCH_IGNORE;
}

/* `password requisite faillock ...` placed first in a password stack: the
 * preliminary pass refuses a locked user as auth() does, before any line
 * checks the current password, so a password change is no way around a
 * lock; a wrong current password then counts through outcome() like a
 * wrong login password. The update pass stays out of the decision. */
static int faillock_password(void *state, struct latch_req *req, int flags) {
        struct faillock_state *s = state;

        /* A line is of one stack type: once called here, it is a password
         * line for good (outcome() needs to know). */
        __atomic_store_n(&s->password_line, true, __ATOMIC_RELAXED);
        if (!(flags & LATCH_PRELIM_CHECK))
                return LATCH_IGNORE;
        return faillock_auth(state, req);
}

struct record_failure {
        const struct faillock_state *s;
        int64_t now;
        bool already_locked;   /* the attempt met a lock: not counted */
        bool locked_now;       /* this failure began a lock */
        int64_t until;
};

static int record_failure_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct record_failure *f = userdata;
        const struct faillock_state *s = f->s;
        struct tally t;
        int64_t latest;
        size_t k = 0;

        tally_decode(&t, old, old ? oldlen : 0);

        if (tally_locked(s, &t, f->now, &f->until)) {
                f->already_locked = true;
                return 0;
        }
        /* A lock that has run out: the next failure starts a fresh count. */
        if (tally_over(s, &t, &latest))
                t.n = 0;

        /* Failures older than fail_interval can no longer count. */
        for (size_t i = 0; i < t.n; i++)
                if (f->now - t.t[i] < s->fail_interval)
                        t.t[k++] = t.t[i];
        t.n = k;

        /* Keep the most recent deny - 1, then add this one. */
        if (t.n >= s->deny) {
                size_t drop = t.n - (s->deny - 1);
                memmove(t.t, t.t + drop, (t.n - drop) * sizeof(t.t[0]));
                t.n -= drop;
        }
        t.t[t.n++] = f->now;

        if (t.n * TALLY_ENTRY_SIZE > *newlen)
                return -ENOBUFS;
        *newlen = tally_encode(&t, newbuf);
        f->locked_now = tally_locked(s, &t, f->now, &f->until);
        return 1;
}

static int clear_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        return old ? 2 : 0;
}

/* Whether a final result means the credential was judged and refused. */
static bool result_counts(int result) {
        switch (result) {
        case LATCH_USER_UNKNOWN:
        /* the caller sees `unavailable`: nothing was judged */
        case LATCH_OPEN_ERR:
        case LATCH_SYMBOL_ERR:
        case LATCH_SERVICE_ERR:
        case LATCH_SYSTEM_ERR:
        case LATCH_BUF_ERR:
        case LATCH_AUTHINFO_UNAVAIL:
        case LATCH_TRY_AGAIN:
        case LATCH_ABORT:
        case LATCH_MODULE_UNKNOWN:
        /* the password was right; the account is what is refused */
        case LATCH_ACCT_EXPIRED:
        case LATCH_NEW_AUTHTOK_REQD:
        case LATCH_AUTHTOK_EXPIRED:
        /* a password change that failed past the current password: the new
         * one was refused (too short, mismatched), or the store was busy */
        case LATCH_AUTHTOK_ERR:
        case LATCH_AUTHTOK_LOCK_BUSY:
        case LATCH_AUTHTOK_DISABLE_AGING:
                return false;
        default:
                return true;
        }
}

static bool is_login(const char *op) {
        return op && strcmp(op, "login") == 0;
}

static void faillock_outcome(void *state, struct latch_req *req, int result) {
        struct faillock_state *s = state;
        size_t userlen;
        const char *user;
        int r;

        if (s->deny == 0)
                return;
        user = request_user(s, req, &userlen);
        if (!user)
                return;
        /* A login that changed an expired password ran the auth stack too:
         * its faillock line there counts the outcome, once. */
        if (__atomic_load_n(&s->password_line, __ATOMIC_RELAXED) &&
            is_login(s->host->item(req, LATCH_ITEM_OP)))
                return;

        if (result == LATCH_SUCCESS) {
                uint8_t buf[LATCH_KV_VALUE_MAX];
                size_t len = sizeof(buf);

                /* Most logins have no tally: look before taking the writer
                 * lock. */
                r = s->host->kv_get(s->ctx, user, userlen, buf, &len);
                if (r == -ENOENT)
                        return;
                r = s->host->kv_update(s->ctx, user, userlen, clear_cb, NULL);
                if (r < 0)
                        s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot clear the tally: %s", strerror(-r));
                return;
        }

        if (!result_counts(result))
                return;

        struct record_failure f = {
                .s = s,
                .now = s->host->now(s->ctx),
        };
        r = s->host->kv_update(s->ctx, user, userlen, record_failure_cb, &f);
        if (r < 0) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot record a failure: %s", strerror(-r));
                return;
        }
        if (f.locked_now) {
                if (f.until == 0)
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE,
                                     "locked out after %u failed attempts, until the tally is cleared", s->deny);
                else {
                        /* A time a reader can read: ISO 8601, UTC. */
                        char when[32];
                        struct tm tm;
                        time_t t = (time_t) f.until;
                        if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                                snprintf(when, sizeof when, "%" PRId64, f.until);
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE, "locked out after %u failed attempts, until %s",
                                     s->deny, when);
                }
        }
}

/* ---- admin actions, as pam_faillock's faillock(8) command ---- */

struct clear_result {
        bool existed;
};

static int reset_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        ((struct clear_result *) userdata)->existed = old != NULL;
        return old ? 2 : 0;
}

/*
 * show {user}: failures (the recorded failures' Unix times, oldest first),
 *   locked (bool), locked_until (when locked: the Unix time the lock ends,
 *   0 for "until reset"), and this line's deny, fail_interval, unlock_time.
 * reset {user}: clears the tally (unlocks the user); answers `reset`
 *   (whether there was a tally).
 *
 * Both are an administrator's: a user acting on their own account (`self`,
 * ABI 1.2) is refused, as a locked user must not unlock themself and the
 * tally would tell a guesser how close the lock is.
 */
static int faillock_admin(void *state, struct latch_admin *a) {
        struct faillock_state *s = state;
        const char *user = a->arg(a, "user");
        size_t userlen = user ? strlen(user) : 0;
        int r;

        if (strcmp(a->action, "show") != 0 && strcmp(a->action, "reset") != 0) {
                a->fail(a, "unknown action '%s' (expected show or reset)", a->action);
                return -EOPNOTSUPP;
        }
        if (a->size >= offsetof(struct latch_admin, self) + sizeof(a->self) && a->self) {
                a->fail(a, "faillock's actions are an administrator's");
                return -EPERM;
        }
        if (userlen == 0 || userlen > LATCH_KV_KEY_MAX) {
                a->fail(a, "'user' is required (1 to %d bytes)", LATCH_KV_KEY_MAX);
                return -EINVAL;
        }

        if (strcmp(a->action, "reset") == 0) {
                struct clear_result c = { false };
                r = s->host->kv_update(s->ctx, user, userlen, reset_cb, &c);
                if (r < 0) {
                        a->fail(a, "cannot update the store: %s", strerror(-r));
                        return r;
                }
                if (c.existed)
                        s->host->log(s->ctx, NULL, LATCH_LOG_NOTICE, "tally of user '%s' reset by an administrator",
                                     user);
                if (a->reply_string(a, "user", user) < 0 || a->reply_bool(a, "reset", c.existed) < 0)
                        return -ENOMEM;
                return 0;
        }

        uint8_t buf[LATCH_KV_VALUE_MAX];
        size_t len = sizeof buf;
        struct tally t = { 0 };
        int64_t until = 0;
        bool locked;

        r = s->host->kv_get(s->ctx, user, userlen, buf, &len);
        if (r < 0 && r != -ENOENT) {
                a->fail(a, "cannot read the tally: %s", strerror(-r));
                return r;
        }
        if (r == 0)
                tally_decode(&t, buf, len);
        locked = tally_locked(s, &t, s->host->now(s->ctx), &until);
        if (a->reply_string(a, "user", user) < 0 || a->reply_bool(a, "locked", locked) < 0 ||
            (locked && a->reply_int(a, "locked_until", until) < 0) || a->reply_int(a, "deny", s->deny) < 0 ||
            a->reply_int(a, "fail_interval", s->fail_interval) < 0 ||
            a->reply_int(a, "unlock_time", s->unlock_time) < 0)
                return -ENOMEM;
        /* An empty array rather than no member: "no failures" is an answer. */
        if (a->reply_array(a, "failures") < 0)
                return -ENOMEM;
        for (size_t i = 0; i < t.n; i++)
                if (a->reply_append_int(a, "failures", t.t[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static const struct latch_plugin faillock_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "faillock",
        .open = faillock_open,
        .close = faillock_close,
        .auth = faillock_auth,
        .account = faillock_account,
        .password = faillock_password,
        .outcome = faillock_outcome,
        .admin = faillock_admin,
};

/* kv_update is the last host service it calls (item, log, now, kv_get
 * come before it in struct latch_host). */
LATCH_PLUGIN_DEFINE(faillock_plugin, kv_update)
