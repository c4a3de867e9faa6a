/* SPDX-License-Identifier: MIT */

/*
 * totp: a second factor, RFC 6238 time-based one-time codes, as pam_oath
 * or Authelia's TOTP, placed after the password line:
 *
 *   auth required totp [digits=6] [period=30] [window=1]
 *                      [algorithm=sha1|sha256|sha512] [issuer=NAME]
 *
 * auth() asks "Verification code:" through the conversation and accepts a
 * code of any time step within `window` steps of now, or one of the user's
 * one-time recovery codes. A user with no (confirmed) enrollment gets
 * user_unknown without being asked, so
 * `[success=ok user_unknown=ignore default=bad]` makes the factor optional.
 *
 * The line's digits, period, algorithm and issuer are what an enrollment
 * made through it gets; afterwards each user's record keeps its own (the
 * authenticator app was set up with them), and only `window` comes from the
 * line that checks.
 *
 * State: one record per user in the host's key-value store (namespace
 * "totp", key = the user name), never in a file: the confirmed secret and
 * its settings, a pending enrollment, the last time step accepted, and the
 * recovery codes' hashes. Every change goes through kv_update(), one write
 * transaction, so the checks below are atomic.
 *
 * Replay: a time step is accepted at most once per user. The record keeps
 * the last accepted step and a code is accepted only for a step above it,
 * checked and raised in the same kv_update(); of concurrent submissions of
 * one code exactly one wins. The step that confirmed an enrollment counts
 * as accepted, so the confirmation code cannot be replayed as the first
 * login. The step is kept for as long as the record lives, which is longer
 * than any acceptance window.
 *
 * Recovery codes: 10 at a time, 80 random bits each ("abcd-efgh-ijkl-mnop",
 * base32), stored as keyed BLAKE2b (libsodium's crypto_generichash) under a
 * random 128-bit salt per user, each removed from the record when used.
 * A slow password hash (argon2) would add nothing: it protects guessable
 * secrets from an offline search, and 80 random bits are beyond one already;
 * it would instead cost every wrong code at the prompt tens of milliseconds
 * of a pool thread. The salt keeps equal codes of different users apart and
 * any precomputation useless.
 *
 * Enrollment: `enroll` makes a pending secret, which the user's current
 * enrollment (if any) outlives until a first code of the new secret
 * confirms it; a pending enrollment not confirmed within 10 minutes
 * (PENDING_LIFETIME) is void. Confirming replaces the old secret and voids
 * the old recovery codes (they were handed out with it): `recovery` makes
 * new ones. `remove` forgets the record, codes included.
 *
 * Secrets never reach a log line. The only replies that carry one are the
 * answers to `enroll` (the secret the app must learn) and `recovery` (the
 * codes to hand to the user), to an administrator or to the user's own
 * re-authenticated session.
 *
 * Self-service (latch_admin.self, ABI 1.2: a user acting through their own
 * session): `status` and `confirm` are allowed; `enroll`, `recovery` and
 * `remove` change the factor and need `reauthenticated` (the password given
 * again in that very call); otherwise -EPERM.
 *
 * Admin actions (latchd's `plugin` op): enroll, confirm, recovery, remove,
 * status; see totp_admin().
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <latch/plugin.h>

#include "otp.h"
#include "utf8.h"
#include "plugin-store.h"

#define RECOVERY_CODES 10
#define RECOVERY_BYTES 10   /* 80 bits: 16 base32 characters */
#define RECOVERY_CHARS 16
#define RECOVERY_HASH 32
#define SALT_SIZE 16
#define PERIOD_MAX 3600
#define WINDOW_MAX 10
#define ISSUER_MAX 128
/* How long an enrollment waits for its first code. Long enough to install
 * an app and scan; short enough that a secret shown on a forgotten screen
 * is soon worth nothing. */
#define PENDING_LIFETIME (10 * 60)

struct totp_params {
        uint8_t alg;
        uint8_t digits;
        uint32_t period;
        uint8_t secret[OTP_SECRET_SIZE];
};

/* Version 2 added pending_at; a version 1 record reads with pending_at 0,
 * so its pending enrollment (if any) has expired. */
#define RECORD_VERSION 2
#define FLAG_ACTIVE 1u
#define FLAG_PENDING 2u

/* A user's record, as stored (little-endian, fixed size; see encode()). */
struct record {
        uint8_t flags;
        struct totp_params active;
        struct totp_params pending;
        uint64_t pending_at;       /* when `pending` was made (Unix seconds) */
        uint64_t last_step;        /* the last step accepted; 0 = none */
        uint8_t salt[SALT_SIZE];
        uint8_t n_recovery;
        uint8_t recovery[RECOVERY_CODES][RECOVERY_HASH];
};

#define PARAMS_SIZE (1 + 1 + 4 + OTP_SECRET_SIZE)
#define RECORD_SIZE_V1 (1 + 1 + 2 * PARAMS_SIZE + 8 + SALT_SIZE + 1 + RECOVERY_CODES * RECOVERY_HASH)
#define RECORD_SIZE (RECORD_SIZE_V1 + 8)

struct totp_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        unsigned digits, period, window;
        enum otp_algorithm alg;
        char issuer[ISSUER_MAX + 1];
};

/* ---- the record ---- */

static void put_u32(uint8_t **p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                *(*p)++ = (uint8_t) (v >> (8 * i));
}

static void put_u64(uint8_t **p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                *(*p)++ = (uint8_t) (v >> (8 * i));
}

static uint32_t get_u32(const uint8_t **p) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++)
                v |= (uint32_t) *(*p)++ << (8 * i);
        return v;
}

static uint64_t get_u64(const uint8_t **p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v |= (uint64_t) *(*p)++ << (8 * i);
        return v;
}

static void put_params(uint8_t **p, const struct totp_params *t) {
        *(*p)++ = t->alg;
        *(*p)++ = t->digits;
        put_u32(p, t->period);
        memcpy(*p, t->secret, OTP_SECRET_SIZE);
        *p += OTP_SECRET_SIZE;
}

static void get_params(const uint8_t **p, struct totp_params *t) {
        t->alg = *(*p)++;
        t->digits = *(*p)++;
        t->period = get_u32(p);
        memcpy(t->secret, *p, OTP_SECRET_SIZE);
        *p += OTP_SECRET_SIZE;
}

static bool params_valid(const struct totp_params *t) {
        return t->alg < _OTP_ALGORITHM_MAX && (t->digits == 6 || t->digits == 8) && t->period >= 1 &&
               t->period <= PERIOD_MAX;
}

static size_t record_encode(const struct record *r, uint8_t *buf) {
        uint8_t *p = buf;

        *p++ = RECORD_VERSION;
        *p++ = r->flags;
        put_params(&p, &r->active);
        put_params(&p, &r->pending);
        put_u64(&p, r->pending_at);
        put_u64(&p, r->last_step);
        memcpy(p, r->salt, SALT_SIZE);
        p += SALT_SIZE;
        *p++ = r->n_recovery;
        memcpy(p, r->recovery, sizeof r->recovery);
        p += sizeof r->recovery;
        return (size_t) (p - buf);
}

/* 0, or -EBADMSG for a value this plugin did not write. */
static int record_decode(const void *buf, size_t len, struct record *r) {
        const uint8_t *p = buf;

        memset(r, 0, sizeof *r);
        if (len < 1 || !((p[0] == RECORD_VERSION && len == RECORD_SIZE) || (p[0] == 1 && len == RECORD_SIZE_V1)))
                return -EBADMSG;
        bool v1 = *p++ == 1;
        r->flags = *p++;
        get_params(&p, &r->active);
        get_params(&p, &r->pending);
        r->pending_at = v1 ? 0 : get_u64(&p);
        r->last_step = get_u64(&p);
        memcpy(r->salt, p, SALT_SIZE);
        p += SALT_SIZE;
        r->n_recovery = *p++;
        memcpy(r->recovery, p, sizeof r->recovery);
        if (r->n_recovery > RECOVERY_CODES || (r->flags & ~(FLAG_ACTIVE | FLAG_PENDING)) ||
            ((r->flags & FLAG_ACTIVE) && !params_valid(&r->active)) ||
            ((r->flags & FLAG_PENDING) && !params_valid(&r->pending))) {
                sodium_memzero(r, sizeof *r);
                return -EBADMSG;
        }
        return 0;
}

/* Whether r has a pending enrollment that can still be confirmed at `now`. */
static bool pending_live(const struct record *r, int64_t now) {
        return (r->flags & FLAG_PENDING) && now >= 0 && (uint64_t) now <= r->pending_at + PENDING_LIFETIME;
}

/* Reads the user's record: 0, -ENOENT, or another negative errno (logged). */
static int record_get(const struct totp_state *s, const struct latch_req *req, const char *user,
                      struct record *ret) {
        uint8_t buf[RECORD_SIZE + 1];
        size_t len = sizeof buf;
        int r;

        r = s->host->kv_get(s->ctx, user, strlen(user), buf, &len);
        if (r == -ENOBUFS)
                r = -EBADMSG;
        if (r == 0)
                r = record_decode(buf, len, ret);
        sodium_memzero(buf, sizeof buf);
        if (r < 0 && r != -ENOENT)
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot read the user's record: %s", strerror(-r));
        return r;
}

/* ---- codes ---- */

/* The step within `window` of now, above `last_step`, whose code under `t`
 * is `code`: 1 and *ret_step, or 0. Every candidate is computed and compared
 * in constant time, so the time taken says nothing about which matched. */
static int match_code(const struct totp_params *t, uint32_t code, int64_t now, unsigned window, uint64_t last_step,
                      uint64_t *ret_step) {
        uint64_t step = otp_step(now, t->period), found = 0;
        int matched = 0;

        for (uint64_t s = step > window ? step - window : 0; s <= step + window; s++) {
                uint32_t v = 0;
                if (otp_hotp((enum otp_algorithm) t->alg, t->secret, OTP_SECRET_SIZE, s, t->digits, &v) < 0)
                        continue;
                bool eq = sodium_memcmp(&v, &code, sizeof v) == 0;
                if (eq && s > last_step && !matched) {
                        matched = 1;
                        found = s;
                }
        }
        *ret_step = found;
        return matched;
}

/* A recovery code as typed ("ABCD-efgh ijkl-mnop") → 16 upper-case base32
 * characters in out; -EINVAL when it cannot be one. */
static int recovery_normalize(const char *in, char out[RECOVERY_CHARS + 1]) {
        size_t n = 0;

        for (; *in; in++) {
                char c = *in;
                if (c == '-' || c == ' ')
                        continue;
                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) || n >= RECOVERY_CHARS)
                        return -EINVAL;
                out[n++] = c;
        }
        out[n] = '\0';
        return n == RECOVERY_CHARS ? 0 : -EINVAL;
}

static void recovery_hash(const uint8_t salt[SALT_SIZE], const char code[RECOVERY_CHARS],
                          uint8_t out[RECOVERY_HASH]) {
        crypto_generichash(out, RECOVERY_HASH, (const unsigned char *) code, RECOVERY_CHARS, salt, SALT_SIZE);
}

/* ---- kv_update callbacks (pure: they may run more than once) ---- */

struct accept_step {
        const uint8_t *secret;  /* the secret the code was checked against */
        bool pending;           /* confirming the pending enrollment */
        int64_t now;            /* when pending: the time it must still be live at */
        uint64_t step;
        bool accepted;
};

/* Accepts `step` if it is still above the last one and the secret is still
 * the one checked; when confirming, the (still live) pending enrollment
 * becomes the active one in the same write, its step the last one (so the
 * confirming code cannot log in), and the recovery codes of the secret it
 * replaces are void. Confirming is single-use by clearing FLAG_PENDING. */
static int accept_step_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct accept_step *a = userdata;
        struct record r;
        int ret = 0;

        a->accepted = false;
        if (!old || record_decode(old, oldlen, &r) < 0)
                return 0;
        const struct totp_params *t = a->pending ? &r.pending : &r.active;
        if (!(r.flags & (a->pending ? FLAG_PENDING : FLAG_ACTIVE)) ||
            sodium_memcmp(t->secret, a->secret, OTP_SECRET_SIZE) != 0 || (!a->pending && a->step <= r.last_step) ||
            (a->pending && !pending_live(&r, a->now)))
                goto out;
        r.last_step = a->step;
        if (a->pending) {
                r.active = r.pending;
                sodium_memzero(&r.pending, sizeof r.pending);
                r.pending_at = 0;
                r.flags = FLAG_ACTIVE;
                sodium_memzero(r.salt, sizeof r.salt);
                sodium_memzero(r.recovery, sizeof r.recovery);
                r.n_recovery = 0;
        }
        *newlen = record_encode(&r, newbuf);
        a->accepted = true;
        ret = 1;
out:
        sodium_memzero(&r, sizeof r);
        return ret;
}

struct use_recovery {
        uint8_t hash[RECOVERY_HASH];
        const uint8_t *salt;
        bool used;
        unsigned left;
};

static int use_recovery_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct use_recovery *u = userdata;
        struct record r;
        int ret = 0, hit = -1;

        u->used = false;
        if (!old || record_decode(old, oldlen, &r) < 0)
                return 0;
        /* The salt changes when new codes are made: a hash made with the
         * old one matches nothing, as it should. */
        if (!(r.flags & FLAG_ACTIVE) || sodium_memcmp(r.salt, u->salt, SALT_SIZE) != 0)
                goto out;
        for (unsigned i = 0; i < r.n_recovery; i++)
                if (sodium_memcmp(r.recovery[i], u->hash, RECOVERY_HASH) == 0 && hit < 0)
                        hit = (int) i;
        if (hit < 0)
                goto out;
        memmove(r.recovery[hit], r.recovery[hit + 1], (size_t) (r.n_recovery - hit - 1) * RECOVERY_HASH);
        r.n_recovery--;
        memset(r.recovery[r.n_recovery], 0, RECOVERY_HASH);
        *newlen = record_encode(&r, newbuf);
        u->used = true;
        u->left = r.n_recovery;
        ret = 1;
out:
        sodium_memzero(&r, sizeof r);
        return ret;
}

/* ---- checking an answer ---- */

/* Checks `answer` (a code or a recovery code) for `user`: LATCH_SUCCESS,
 * LATCH_AUTH_ERR, LATCH_USER_UNKNOWN or LATCH_AUTHINFO_UNAVAIL. */
static int check_answer(struct totp_state *s, struct latch_req *req, const char *user, const char *answer) {
        struct record rec;
        uint32_t code;
        int r, result = LATCH_AUTH_ERR;

        r = record_get(s, req, user, &rec);
        if (r == -ENOENT)
                return LATCH_USER_UNKNOWN;
        if (r < 0)
                return LATCH_AUTHINFO_UNAVAIL;
        if (!(rec.flags & FLAG_ACTIVE)) {
                result = LATCH_USER_UNKNOWN;
                goto out;
        }

        if (otp_parse_code(answer, rec.active.digits, &code) == 0) {
                struct accept_step a = { .secret = rec.active.secret };
                uint64_t step;

                int64_t now = s->host->now(s->ctx);

                if (!match_code(&rec.active, code, now, s->window, rec.last_step, &step)) {
                        /* Told apart for the log only: the client sees the
                         * same refusal either way. */
                        if (match_code(&rec.active, code, now, s->window, 0, &step))
                                s->host->log(s->ctx, req, LATCH_LOG_NOTICE,
                                             "refused a verification code of a time step already used (replay)");
                        else
                                s->host->log(s->ctx, req, LATCH_LOG_INFO, "wrong verification code");
                        goto out;
                }
                a.step = step;
                r = s->host->kv_update(s->ctx, user, strlen(user), accept_step_cb, &a);
                if (r < 0) {
                        s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot record the code's time step: %s",
                                     strerror(-r));
                        result = LATCH_AUTHINFO_UNAVAIL;
                } else if (a.accepted)
                        result = LATCH_SUCCESS;
                else
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE,
                                     "refused a verification code of a time step already used (replay)");
                goto out;
        }

        char norm[RECOVERY_CHARS + 1];
        if (recovery_normalize(answer, norm) == 0 && rec.n_recovery > 0) {
                struct use_recovery u = { .salt = rec.salt };

                recovery_hash(rec.salt, norm, u.hash);
                sodium_memzero(norm, sizeof norm);
                r = s->host->kv_update(s->ctx, user, strlen(user), use_recovery_cb, &u);
                sodium_memzero(u.hash, sizeof u.hash);
                if (r < 0) {
                        s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot use a recovery code: %s", strerror(-r));
                        result = LATCH_AUTHINFO_UNAVAIL;
                } else if (u.used) {
                        s->host->log(s->ctx, req, LATCH_LOG_NOTICE, "recovery code used, %u left", u.left);
                        result = LATCH_SUCCESS;
                } else
                        s->host->log(s->ctx, req, LATCH_LOG_INFO, "wrong recovery code");
                goto out;
        }
        sodium_memzero(norm, sizeof norm);
        s->host->log(s->ctx, req, LATCH_LOG_INFO, "wrong verification code");
out:
        sodium_memzero(&rec, sizeof rec);
        return result;
}

static bool user_ok(const char *user) {
        return user && *user && strlen(user) <= LATCH_KV_KEY_MAX;
}

static int totp_auth(void *state, struct latch_req *req) {
        struct totp_state *s = state;
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *answer;
        struct record rec;
        int r;

        if (!user_ok(user))
                return LATCH_USER_UNKNOWN;

        /* The second call, continuing the one that asked. */
        answer = s->host->answer(req, 0);
        if (answer)
                return check_answer(s, req, user, answer);

        /* Ask only users who have a confirmed enrollment. */
        r = record_get(s, req, user, &rec);
        bool active = r == 0 && (rec.flags & FLAG_ACTIVE);
        sodium_memzero(&rec, sizeof rec);
        if (r < 0 && r != -ENOENT)
                return LATCH_AUTHINFO_UNAVAIL;
        if (!active)
                return LATCH_USER_UNKNOWN;

        r = s->host->prompt(req, LATCH_PROMPT_SECRET, "Verification code:");
        if (r < 0) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "cannot ask for the code: %s", strerror(-r));
                return LATCH_CONV_ERR;
        }
        return LATCH_INCOMPLETE;
}

/* ---- arguments ---- */

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* An issuer is shown by authenticator apps, put in JSON answers and on
 * terminals: UTF-8 text, without controls or code points that reorder or
 * hide what is shown (utf8.h), and without ':', which separates issuer and
 * user in the URI's label. */
static bool issuer_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > ISSUER_MAX)
                return false;
        while (*s) {
                uint32_t cp;
                size_t k = utf8_decode(s, &cp);
                if (k == 0 || cp < 0x20 || cp == 0x7f || cp == ':' || utf8_cp_deceives(cp))
                        return false;
                s += k;
        }
        return true;
}

static int totp_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                     void **ret_state) {
        struct totp_state *s;
        int r;

        if (sodium_init() < 0) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "libsodium cannot start");
                return -EIO;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->host = host;
        s->ctx = ctx;
        s->digits = 6;
        s->period = 30;
        s->window = 1;
        s->alg = OTP_SHA1;
        strcpy(s->issuer, "latch");

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                r = 0;
                if (strncmp(a, "digits=", 7) == 0) {
                        r = parse_uint(a + 7, 6, 8, &s->digits);
                        if (r == 0 && s->digits == 7)
                                r = -EINVAL;
                        if (r < 0)
                                host->log(ctx, NULL, LATCH_LOG_ERR, "invalid '%s': expected 6 or 8", a);
                } else if (strncmp(a, "period=", 7) == 0) {
                        r = parse_uint(a + 7, 1, PERIOD_MAX, &s->period);
                        if (r < 0)
                                host->log(ctx, NULL, LATCH_LOG_ERR, "invalid '%s': expected 1..%d seconds", a,
                                          PERIOD_MAX);
                } else if (strncmp(a, "window=", 7) == 0) {
                        r = parse_uint(a + 7, 0, WINDOW_MAX, &s->window);
                        if (r < 0)
                                host->log(ctx, NULL, LATCH_LOG_ERR, "invalid '%s': expected 0..%d steps", a,
                                          WINDOW_MAX);
                } else if (strncmp(a, "algorithm=", 10) == 0) {
                        r = otp_algorithm_from_string(a + 10);
                        if (r < 0)
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "invalid '%s': expected sha1, sha256 or sha512", a);
                        else
                                s->alg = (enum otp_algorithm) r;
                } else if (strncmp(a, "issuer=", 7) == 0) {
                        if (!issuer_ok(a + 7)) {
                                r = -EINVAL;
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "invalid '%s': expected 1..%d printable characters, no ':'", a,
                                          ISSUER_MAX);
                        } else
                                strcpy(s->issuer, a + 7);
                } else {
                        r = -EINVAL;
                        host->log(ctx, NULL, LATCH_LOG_ERR,
                                  "unknown argument '%s' (expected digits=, period=, window=, algorithm=, issuer=)",
                                  a);
                }
                if (r < 0)
                        goto fail;
        }

        /* Secrets and the replay record must live in latchd's state. */
        if (plugin_require_store(host, ctx) < 0)
                goto fail;
        *ret_state = s;
        return 0;
fail:
        free(s);
        return -EINVAL;
}

static void totp_close(void *state) {
        free(state);
}

/* ---- admin actions ---- */

struct put_record {
        const struct record *rec; /* NULL: delete */
        const struct totp_params *pending; /* set only the pending part, keeping the rest */
        int64_t now;               /* when pending: made now */
        const uint8_t *salt;       /* set only the recovery codes ... */
        const uint8_t (*hashes)[RECOVERY_HASH];
        bool existed, active;
};

static int put_pending_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct put_record *p = userdata;
        struct record r;

        if (!old || record_decode(old, oldlen, &r) < 0)
                memset(&r, 0, sizeof r);
        r.pending = *p->pending;
        r.pending_at = p->now > 0 ? (uint64_t) p->now : 0;
        r.flags |= FLAG_PENDING;
        *newlen = record_encode(&r, newbuf);
        sodium_memzero(&r, sizeof r);
        return 1;
}

static int put_recovery_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct put_record *p = userdata;
        struct record r;

        p->active = false;
        if (!old || record_decode(old, oldlen, &r) < 0)
                return 0;
        if (!(r.flags & FLAG_ACTIVE)) {
                sodium_memzero(&r, sizeof r);
                return 0;
        }
        memcpy(r.salt, p->salt, SALT_SIZE);
        memcpy(r.recovery, p->hashes, sizeof r.recovery);
        r.n_recovery = RECOVERY_CODES;
        *newlen = record_encode(&r, newbuf);
        sodium_memzero(&r, sizeof r);
        p->active = true;
        return 1;
}

/* Forgets an expired pending enrollment (its secret need not linger). */
static int drop_pending_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        const int64_t *now = userdata;
        struct record r;
        int ret = 0;

        if (!old || record_decode(old, oldlen, &r) < 0)
                return 0;
        if ((r.flags & FLAG_PENDING) && !pending_live(&r, *now)) {
                sodium_memzero(&r.pending, sizeof r.pending);
                r.pending_at = 0;
                r.flags &= (uint8_t) ~FLAG_PENDING;
                if (r.flags) {
                        *newlen = record_encode(&r, newbuf);
                        ret = 1;
                } else
                        ret = 2;
        }
        sodium_memzero(&r, sizeof r);
        return ret;
}

static int remove_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        struct put_record *p = userdata;
        p->existed = old != NULL;
        return old ? 2 : 0;
}

static int admin_user(struct totp_state *s, struct latch_admin *a, const char **ret) {
        const char *user = a->arg(a, "user");
        if (!user_ok(user)) {
                a->fail(a, "'user' is required (1 to %d bytes)", LATCH_KV_KEY_MAX);
                return -EINVAL;
        }
        *ret = user;
        return 0;
}

static int kv_failed(struct totp_state *s, struct latch_admin *a, int r) {
        s->host->log(s->ctx, NULL, LATCH_LOG_ERR, "%s: cannot update the store: %s", a->action, strerror(-r));
        a->fail(a, "cannot update the store: %s", strerror(-r));
        return r;
}

static int admin_enroll(struct totp_state *s, struct latch_admin *a, const char *user) {
        struct totp_params t = { .alg = (uint8_t) s->alg, .digits = (uint8_t) s->digits, .period = s->period };
        struct put_record p = { .pending = &t, .now = s->host->now(s->ctx) };
        char b32[OTP_SECRET_SIZE * 2];
        char *uri = NULL;
        int r;

        /* What the answer needs is made first: a pending secret nobody was
         * given would be stored for nothing. */
        randombytes_buf(t.secret, sizeof t.secret);
        otp_base32_encode(t.secret, sizeof t.secret, b32, sizeof b32);
        uri = otp_uri(s->issuer, user, t.secret, sizeof t.secret, s->alg, s->digits, s->period);
        if (!uri) {
                sodium_memzero(&t, sizeof t);
                sodium_memzero(b32, sizeof b32);
                a->fail(a, "out of memory");
                return -ENOMEM;
        }
        r = s->host->kv_update(s->ctx, user, strlen(user), put_pending_cb, &p);
        sodium_memzero(&t, sizeof t);
        if (r < 0) {
                sodium_memzero(b32, sizeof b32);
                sodium_memzero(uri, strlen(uri));
                free(uri);
                return kv_failed(s, a, r);
        }
        r = 0;
        if (a->reply_string(a, "user", user) < 0 || a->reply_string(a, "secret", b32) < 0 ||
            a->reply_string(a, "uri", uri) < 0 || a->reply_string(a, "issuer", s->issuer) < 0 ||
            a->reply_string(a, "algorithm", otp_algorithm_to_string(s->alg)) < 0 ||
            a->reply_int(a, "digits", s->digits) < 0 || a->reply_int(a, "period", s->period) < 0 ||
            a->reply_bool(a, "pending", 1) < 0 ||
            a->reply_int(a, "pending_expires_at", p.now + PENDING_LIFETIME) < 0) {
                a->fail(a, "out of memory");
                r = -ENOMEM;
        }
        sodium_memzero(b32, sizeof b32);
        sodium_memzero(uri, strlen(uri));
        free(uri);
        if (r == 0)
                s->host->log(s->ctx, NULL, LATCH_LOG_NOTICE,
                             "enrollment of user '%s' begun; it takes effect when a first code confirms it", user);
        return r;
}

static int admin_confirm(struct totp_state *s, struct latch_admin *a, const char *user) {
        const char *code = a->arg(a, "code");
        struct accept_step acc = { .pending = true, .now = s->host->now(s->ctx) };
        struct record rec;
        uint32_t v;
        uint64_t step;
        int r;

        r = record_get(s, NULL, user, &rec);
        if (r < 0 && r != -ENOENT) {
                a->fail(a, "cannot read the user's record");
                return -EIO;
        }
        if (r == -ENOENT || !(rec.flags & FLAG_PENDING)) {
                sodium_memzero(&rec, sizeof rec);
                a->fail(a, "no enrollment of '%s' waits for confirmation", user);
                return -ENOENT;
        }
        if (!pending_live(&rec, acc.now)) {
                sodium_memzero(&rec, sizeof rec);
                (void) s->host->kv_update(s->ctx, user, strlen(user), drop_pending_cb, &acc.now);
                a->fail(a, "the enrollment of '%s' expired (it waits %d minutes for its first code): enroll again",
                        user, PENDING_LIFETIME / 60);
                return -ENOENT;
        }
        if (!code || otp_parse_code(code, rec.pending.digits, &v) < 0) {
                a->fail(a, "'code' must be %u digits", rec.pending.digits);
                sodium_memzero(&rec, sizeof rec);
                return -EINVAL;
        }
        /* The pending secret has no accepted step yet: last_step counts the
         * active secret's steps (perhaps of another period), and a code of
         * the active secret may have re-authenticated this very step. */
        if (!match_code(&rec.pending, v, s->host->now(s->ctx), s->window, 0, &step)) {
                sodium_memzero(&rec, sizeof rec);
                a->fail(a, "wrong code: the enrollment is not confirmed");
                return -EACCES;
        }
        acc.secret = rec.pending.secret;
        acc.step = step;
        r = s->host->kv_update(s->ctx, user, strlen(user), accept_step_cb, &acc);
        sodium_memzero(&rec, sizeof rec);
        if (r < 0)
                return kv_failed(s, a, r);
        if (!acc.accepted) {
                a->fail(a, "the code was used already, or the enrollment changed or expired meanwhile");
                return -EACCES;
        }
        s->host->log(s->ctx, NULL, LATCH_LOG_NOTICE, "enrollment of user '%s' confirmed", user);
        if (a->reply_string(a, "user", user) < 0 || a->reply_bool(a, "enrolled", 1) < 0)
                return -ENOMEM;
        return 0;
}

static int admin_recovery(struct totp_state *s, struct latch_admin *a, const char *user) {
        uint8_t salt[SALT_SIZE], hashes[RECOVERY_CODES][RECOVERY_HASH];
        char codes[RECOVERY_CODES][RECOVERY_CHARS + 4];
        struct put_record p = { .salt = salt, .hashes = (const uint8_t (*)[RECOVERY_HASH]) hashes };
        int r = 0;

        randombytes_buf(salt, sizeof salt);
        for (unsigned i = 0; i < RECOVERY_CODES; i++) {
                uint8_t raw[RECOVERY_BYTES];
                char b[RECOVERY_CHARS + 1];

                randombytes_buf(raw, sizeof raw);
                otp_base32_encode(raw, sizeof raw, b, sizeof b);
                recovery_hash(salt, b, hashes[i]);
                /* Shown in lower case, in groups of four, as people copy them. */
                for (unsigned k = 0, o = 0; k < RECOVERY_CHARS; k++) {
                        if (k && k % 4 == 0)
                                codes[i][o++] = '-';
                        codes[i][o++] = (char) (b[k] >= 'A' && b[k] <= 'Z' ? b[k] - 'A' + 'a' : b[k]);
                        codes[i][o] = '\0';
                }
                sodium_memzero(raw, sizeof raw);
                sodium_memzero(b, sizeof b);
        }

        r = s->host->kv_update(s->ctx, user, strlen(user), put_recovery_cb, &p);
        if (r < 0) {
                kv_failed(s, a, r);
                goto out;
        }
        if (!p.active) {
                a->fail(a, "'%s' has no confirmed enrollment", user);
                r = -ENOENT;
                goto out;
        }
        if (a->reply_string(a, "user", user) < 0) {
                r = -ENOMEM;
                goto out;
        }
        for (unsigned i = 0; i < RECOVERY_CODES; i++)
                if (a->reply_append_string(a, "codes", codes[i]) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        s->host->log(s->ctx, NULL, LATCH_LOG_NOTICE, "new recovery codes made for user '%s' (the old ones are void)",
                     user);
out:
        sodium_memzero(codes, sizeof codes);
        sodium_memzero(hashes, sizeof hashes);
        return r;
}

static int admin_remove(struct totp_state *s, struct latch_admin *a, const char *user) {
        struct put_record p = { 0 };
        int r = s->host->kv_update(s->ctx, user, strlen(user), remove_cb, &p);

        if (r < 0)
                return kv_failed(s, a, r);
        if (p.existed)
                s->host->log(s->ctx, NULL, LATCH_LOG_NOTICE, "enrollment of user '%s' removed", user);
        if (a->reply_string(a, "user", user) < 0 || a->reply_bool(a, "removed", p.existed) < 0)
                return -ENOMEM;
        return 0;
}

static int admin_status(struct totp_state *s, struct latch_admin *a, const char *user) {
        struct record rec;
        int r = record_get(s, NULL, user, &rec);

        if (r < 0 && r != -ENOENT) {
                a->fail(a, "cannot read the user's record");
                return -EIO;
        }
        if (r == -ENOENT)
                memset(&rec, 0, sizeof rec);
        r = 0;
        bool pending = pending_live(&rec, s->host->now(s->ctx));
        if (a->reply_string(a, "user", user) < 0 || a->reply_bool(a, "enrolled", !!(rec.flags & FLAG_ACTIVE)) < 0 ||
            a->reply_bool(a, "pending", pending) < 0 ||
            (pending && a->reply_int(a, "pending_expires_at", (int64_t) (rec.pending_at + PENDING_LIFETIME)) < 0) ||
            a->reply_int(a, "recovery_codes", rec.n_recovery) < 0)
                r = -ENOMEM;
        if (r == 0 && (rec.flags & FLAG_ACTIVE) &&
            (a->reply_string(a, "algorithm", otp_algorithm_to_string((enum otp_algorithm) rec.active.alg)) < 0 ||
             a->reply_int(a, "digits", rec.active.digits) < 0 || a->reply_int(a, "period", rec.active.period) < 0))
                r = -ENOMEM;
        sodium_memzero(&rec, sizeof rec);
        return r;
}

/*
 * enroll {user}: a new random 160-bit secret, pending (the user's current
 *   enrollment, if any, stays in force) until `confirm`, for at most
 *   PENDING_LIFETIME; answers user, secret (base32), uri (otpauth://),
 *   issuer, algorithm, digits, period, pending_expires_at.
 * confirm {user, code}: a code of the pending secret makes it the user's;
 *   its time step counts as used, and the old recovery codes are void. A
 *   wrong code is -EACCES (`denied`).
 * recovery {user}: 10 new one-time recovery codes (the old ones are void);
 *   answers codes.
 * remove {user}: forgets everything about the user; answers removed.
 * status {user}: enrolled, pending (and pending_expires_at), recovery_codes
 *   (how many are left), and the enrollment's algorithm, digits, period;
 *   never a secret.
 *
 * A self call (a->self) may run status and confirm; enroll, recovery and
 * remove need a->reauthenticated.
 */
static int totp_admin(void *state, struct latch_admin *a) {
        struct totp_state *s = state;
        const char *user;
        int r;

        if (!strcmp(a->action, "enroll") || !strcmp(a->action, "confirm") || !strcmp(a->action, "recovery") ||
            !strcmp(a->action, "remove") || !strcmp(a->action, "status")) {
                r = admin_user(s, a, &user);
                if (r < 0)
                        return r;
        } else {
                a->fail(a, "unknown action '%s' (expected enroll, confirm, recovery, remove or status)", a->action);
                return -EOPNOTSUPP;
        }
        bool self = a->size >= offsetof(struct latch_admin, reauthenticated) + sizeof(a->reauthenticated) && a->self;
        if (self && !a->reauthenticated && strcmp(a->action, "status") != 0 && strcmp(a->action, "confirm") != 0) {
                a->fail(a, "'%s' changes the second factor: re-authenticate (give the password) first", a->action);
                return -EPERM;
        }
        if (!strcmp(a->action, "enroll"))
                return admin_enroll(s, a, user);
        if (!strcmp(a->action, "confirm"))
                return admin_confirm(s, a, user);
        if (!strcmp(a->action, "recovery"))
                return admin_recovery(s, a, user);
        if (!strcmp(a->action, "remove"))
                return admin_remove(s, a, user);
        return admin_status(s, a, user);
}

static const struct latch_plugin totp_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "totp",
        .open = totp_open,
        .close = totp_close,
        .auth = totp_auth,
        .admin = totp_admin,
};

/* prompt and answer (ABI 1.1) come after kv_update; answer is the last one
 * it calls. */
LATCH_PLUGIN_DEFINE(totp_plugin, answer)
