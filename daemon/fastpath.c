/* SPDX-License-Identifier: MIT */
/*
 * The fast path of validate, token and verify: see fastpath.h for what it
 * accepts.
 *
 * Why it exists: through Jansson, a validate is three trees built, walked
 * and freed (the request, the reply, the stored claims parsed again) and
 * some sixty allocations, about 80 % of its instructions. Here the request
 * is scanned in place, the reply is written once into the output buffer,
 * and claims stored canonical (struct session_info) are copied as they are.
 *
 * Equivalence with the general path rests on a few facts about Jansson
 * (2.14), all checked by the differential test:
 *   - json_dumpb(JSON_COMPACT) writes members in insertion order with ","
 *     and ":" and no space; integers as %lld; strings with '"', '\\' and
 *     control characters escaped (\b \f \n \r \t, else \u00XX upper-case)
 *     and everything else, DEL and UTF-8 included, as it is;
 *   - a printable ASCII string without escapes, true, false, null and an
 *     integer without sign trouble ("-0" reads back as 0) are written back
 *     exactly as they were read;
 *   - json_pack() refuses a string that is not valid UTF-8 (then the
 *     general path answers `internal`).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conn.h"
#include "daemon-state.h"
#include "dispatch.h"
#include "fastpath.h"
#include "frame.h"
#include "jsonw.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"
#include "ops-common.h"
#include "session.h"
#include "stats.h"
#include "store.h"
#include "tokens.h"

/* One scanned member value. Strings point between their quotes. */
enum fp_kind { FP_ABSENT, FP_NULL, FP_STRING, FP_RAW };

struct fp_value {
        enum fp_kind kind;
        const char *p;
        size_t n;
};

struct fp_request {
        struct fp_value id, op, session, service, audience, token;
};

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end) {
        while (p < end && is_ws(*p))
                p++;
        return p;
}

/* p is past the opening quote. Printable ASCII only, no escape. */
static const char *scan_string(const char *p, const char *end, struct fp_value *v) {
        /* The bytes a plain string may hold: printable ASCII but '"' and
         * '\\' (a table: this loop runs over every byte of a request). */
        static const bool plain[256] = { [0x20 ... 0x21] = true, [0x23 ... 0x5b] = true, [0x5d ... 0x7e] = true };
        const char *s = p;

        while (p < end && plain[(unsigned char) *p])
                p++;
        if (p == end || *p != '"')
                return NULL;
        *v = (struct fp_value){ FP_STRING, s, (size_t) (p - s) };
        return p + 1;
}

static const char *scan_literal(const char *p, const char *end, const char *lit, size_t n) {
        return (size_t) (end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

/* An integer Jansson writes back the same: -?(0|[1-9][0-9]*), at most 18
 * digits (no overflow), not "-0". What follows is checked by the caller
 * (only white space, ',' or '}' may). */
static const char *scan_integer(const char *p, const char *end, struct fp_value *v) {
        const char *s = p;

        if (p < end && *p == '-')
                p++;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9')
                p++;
        size_t n = (size_t) (p - digits);
        if (n == 0 || n > 18 || (n > 1 && digits[0] == '0') ||
            (n == 1 && digits[0] == '0' && digits != s))
                return NULL;
        *v = (struct fp_value){ FP_RAW, s, (size_t) (p - s) };
        return p;
}

static const char *scan_value(const char *p, const char *end, struct fp_value *v) {
        const char *q;

        if (p == end)
                return NULL;
        switch (*p) {
        case '"':
                return scan_string(p + 1, end, v);
        case 'n':
                q = scan_literal(p, end, "null", 4);
                if (q)
                        *v = (struct fp_value){ FP_NULL, p, 4 };
                return q;
        case 't':
                q = scan_literal(p, end, "true", 4);
                if (q)
                        *v = (struct fp_value){ FP_RAW, p, 4 };
                return q;
        case 'f':
                q = scan_literal(p, end, "false", 5);
                if (q)
                        *v = (struct fp_value){ FP_RAW, p, 5 };
                return q;
        default:
                return scan_integer(p, end, v);
        }
}

static struct fp_value *member(struct fp_request *q, const struct fp_value *key) {
#define IS(name) (key->n == sizeof(name) - 1 && memcmp(key->p, name, sizeof(name) - 1) == 0)
        if (IS("id"))
                return &q->id;
        if (IS("op"))
                return &q->op;
        if (IS("session"))
                return &q->session;
        if (IS("service"))
                return &q->service;
        if (IS("audience"))
                return &q->audience;
        if (IS("token"))
                return &q->token;
        return NULL;
#undef IS
}

/* Returns true when buf is one flat object of known members, each once. */
static bool scan_request(const char *buf, size_t len, struct fp_request *q) {
        const char *p = buf, *end = buf + len;

        *q = (struct fp_request){ 0 };
        p = skip_ws(p, end);
        if (p == end || *p++ != '{')
                return false;
        p = skip_ws(p, end);
        if (p < end && *p == '}')
                return false; /* no op: the general path says so */
        for (;;) {
                struct fp_value key, *slot;

                if (p == end || *p != '"')
                        return false;
                p = scan_string(p + 1, end, &key);
                if (!p)
                        return false;
                slot = member(q, &key);
                if (!slot || slot->kind != FP_ABSENT)
                        return false;
                p = skip_ws(p, end);
                if (p == end || *p++ != ':')
                        return false;
                p = skip_ws(p, end);
                p = scan_value(p, end, slot);
                if (!p)
                        return false;
                p = skip_ws(p, end);
                if (p == end)
                        return false;
                if (*p == '}')
                        break;
                if (*p++ != ',')
                        return false;
                p = skip_ws(p, end);
        }
        return skip_ws(p + 1, end) == end;
}

/* ---- the writer ---- */

/* The id as the general path echoes it. */
static void put_id(struct out *w, const struct fp_value *id) {
        switch (id->kind) {
        case FP_ABSENT:
        case FP_NULL:
                put_lit(w, "null");
                break;
        case FP_STRING:
                w->p[w->n++] = '"';
                put_mem(w, id->p, id->n);
                w->p[w->n++] = '"';
                break;
        case FP_RAW:
                put_mem(w, id->p, id->n);
                break;
        }
}

#define REPLY_HEAD_MAX(id) (WIRE_HEADER + sizeof "{\"id\":" + (id)->n + 2 + sizeof ",\"ok\":false")

/* Starts a reply frame: reserves `room` bytes beyond the head. */
static bool reply_begin(struct conn *c, struct out *w, const struct fp_value *id, bool ok, size_t room) {
        w->p = conn_out_reserve(c, REPLY_HEAD_MAX(id) + room);
        w->n = WIRE_HEADER;
        if (!w->p) {
                /* As the general path: no memory for a reply, drop the
                 * client. */
                c->closing = true;
                return false;
        }
        put_lit(w, "{\"id\":");
        put_id(w, id);
        if (ok)
                put_lit(w, ",\"ok\":true");
        else
                put_lit(w, ",\"ok\":false");
        return true;
}

static void reply_end(struct conn *c, struct out *w) {
        wire_put_header(w->p, (uint32_t) (w->n - WIRE_HEADER));
        c->out_len += w->n;
}

static int op_index(const char *name);

/* The indexes of the fast path's ops in ops[] (and the stats arrays):
 * looked up once. */
static int validate_index(void) {
        static int index = -2;
        if (index == -2)
                index = op_index("validate");
        return index;
}

static int token_index(void) {
        static int index = -2;
        if (index == -2)
                index = op_index("token");
        return index;
}

static int verify_index(void) {
        static int index = -2;
        if (index == -2)
                index = op_index("verify");
        return index;
}

/* {"id":..,"ok":false,"error":code,"message":msg}; code and msg are ours,
 * printable ASCII without quotes or backslashes. */
static void fast_error(struct conn *c, const struct fp_value *id, int op, int err_index, const char *code,
                       const char *msg) {
        struct out w;
        size_t code_n = strlen(code), msg_n = strlen(msg);

        /* The frame's time stands for now: no clock read on this path. */
        stats_count_error(&c->d->stats, op, err_index, c->last_activity_usec);
        if (!reply_begin(c, &w, id, false, sizeof ",\"error\":\"\",\"message\":\"\"}" + code_n + msg_n))
                return;
        put_lit(&w, ",\"error\":\"");
        put_mem(&w, code, code_n);
        put_lit(&w, "\",\"message\":\"");
        put_mem(&w, msg, msg_n);
        put_lit(&w, "\"}");
        reply_end(c, &w);
}

/* ops_session_get() for the session id of the request: -ENOENT for one of
 * the wrong length, as for one of the wrong shape. The key is left in
 * ret_key (the caller wipes it). */
static int fast_session_get(struct daemon *d, const struct fp_request *q, uint8_t ret_key[STORE_KEY_SIZE], int64_t now,
                            session_fn fn, void *userdata) {
        char session[SESSION_ID_LEN + 1];
        int k;

        if (q->session.n != SESSION_ID_LEN)
                return -ENOENT;
        memcpy(session, q->session.p, SESSION_ID_LEN);
        session[SESSION_ID_LEN] = '\0';
        k = ops_session_get(d, session, ret_key, now, fn, userdata);
        sodium_memzero(session, sizeof session);
        return k;
}

/* The request's audience as a C string in buf, or NULL when it has none. */
static const char *fast_audience(const struct fp_request *q, char buf[static OPS_MAX_NAME + 1]) {
        if (q->audience.kind != FP_STRING)
                return NULL;
        memcpy(buf, q->audience.p, q->audience.n);
        buf[q->audience.n] = '\0';
        return buf;
}

/* ---- validate ---- */

struct fast_validate {
        struct conn *c;
        const struct fp_request *q;
        int64_t now;
        bool found;
        bool touch;
};

/* Inside the store's read transaction: it only copies bytes into the
 * output buffer (no callback, no I/O, nothing that could reach the store
 * again). */
static int fast_validate_found(void *userdata, const struct session_info *s) {
        struct fast_validate *v = userdata;
        struct conn *c = v->c;
        const struct fp_value *id = &v->q->id, *service = &v->q->service;
        size_t user_n = strlen(s->user), service_n = strlen(s->service), claims_n = 0;
        json_t *claims = NULL;
        struct out w;

        /* The peer first, as validate_found() does. */
        if (!access_service_allowed(c->d, &c->peer, s->service)) {
                v->found = true;
                fast_error(c, id, validate_index(), STAT_ERR_FORBIDDEN, "forbidden",
                           "this peer may not use this session's service");
                return 1;
        }
        if (service->kind == FP_STRING && (service->n != service_n || memcmp(service->p, s->service, service_n) != 0))
                return 0; /* answered as unknown */
        v->found = true;
        int64_t idle_expires_at = validate_idle_expiry(s, v->now, &v->touch);
        if (!wire_utf8_valid(s->user, user_n) ||
            !wire_utf8_valid(s->service, service_n)) {
                /* Jansson cannot hold it: the general path fails the same. */
                fast_error(c, id, validate_index(), STAT_ERR_INTERNAL, "internal", "out of memory");
                return 1;
        }
        if (s->claims_canonical)
                claims_n = strlen(s->claims_json);
        else {
                /* Stored before claims were kept canonical: parsed and
                 * written again, as the general path does. */
                claims = s->claims_json ? json_loads(s->claims_json, 0, NULL) : NULL;
                if (!json_is_object(claims)) {
                        json_decref(claims);
                        claims = json_object();
                }
                claims_n = claims ? json_dumpb(claims, NULL, 0, JSON_COMPACT) : 0;
                if (claims_n == 0) {
                        json_decref(claims);
                        fast_error(c, id, validate_index(), STAT_ERR_INTERNAL, "internal", "out of memory");
                        return 1;
                }
        }
        size_t room = sizeof ",\"handle\":\"\",\"user\":,\"service\":,\"created_at\":,\"expires_at\":"
                      ",\"idle_expires_at\":,\"claims\":}" +
                      STORE_HANDLE_LEN + JSTR_MAX(user_n) + JSTR_MAX(service_n) + 3 * I64_MAX_CHARS + claims_n;
        if (!reply_begin(c, &w, id, true, room)) {
                json_decref(claims);
                return 1;
        }
        put_lit(&w, ",\"handle\":\"");
        put_mem(&w, s->handle, STORE_HANDLE_LEN);
        put_lit(&w, "\",\"user\":");
        put_jstr(&w, s->user, user_n);
        put_lit(&w, ",\"service\":");
        put_jstr(&w, s->service, service_n);
        put_lit(&w, ",\"created_at\":");
        put_i64(&w, s->created_at);
        put_lit(&w, ",\"expires_at\":");
        put_i64(&w, s->expires_at);
        put_lit(&w, ",\"idle_expires_at\":");
        put_i64(&w, idle_expires_at);
        put_lit(&w, ",\"claims\":");
        if (claims) {
                w.n += json_dumpb(claims, (char *) w.p + w.n, claims_n, JSON_COMPACT);
                json_decref(claims);
        } else
                put_mem(&w, s->claims_json, claims_n);
        put_lit(&w, "}");
        reply_end(c, &w);
        return 1;
}

static int op_index(const char *name) {
        for (unsigned i = 0; i < n_ops; i++)
                if (streq(ops[i].name, name))
                        return (int) i;
        return -1;
}

static void fast_validate(struct conn *c, const struct fp_request *q) {
        struct daemon *d = c->d;
        int index = validate_index();
        uint64_t start = c->last_activity_usec; /* when the frame was taken */
        uint8_t key[STORE_KEY_SIZE];

        if (index >= 0 && index < STATS_MAX_OPS)
                d->stats.requests[index]++;

        struct fast_validate v = { .c = c, .q = q, .now = daemon_now() };
        int k = fast_session_get(d, q, key, v.now, fast_validate_found, &v);
        if (v.touch)
                validate_touch_later(d, key, v.now);
        sodium_memzero(key, sizeof key);
        if (k == -ENOENT || (k >= 0 && !v.found))
                fast_error(c, &q->id, validate_index(), STAT_ERR_INVALID_SESSION, "invalid_session", INVALID_SESSION_MESSAGE);
        else if (k == -EUCLEAN) {
                ops_log_store_damaged("validate", k);
                fast_error(c, &q->id, validate_index(), STAT_ERR_INTERNAL, "internal", "the session store is damaged");
        } else if (k < 0) {
                log_errno(LOG_ERR, k, "validate: session store");
                fast_error(c, &q->id, validate_index(), STAT_ERR_UNAVAILABLE, "unavailable", "the session store failed; try again later");
        }
        uint64_t elapsed = now_usec() - start;
        histogram_add(&d->stats.validate_latency, elapsed);
        if (index >= 0 && index < STATS_MAX_OPS)
                histogram_add(&d->stats.op_latency[index], elapsed);
}

/* ---- token ---- */

struct fast_token_lookup {
        int r;
        struct session_info s;
        char *buf;
};

/* The session is copied out: signing waits for the end of the read
 * transaction. */
static int fast_token_copy(void *userdata, const struct session_info *s) {
        struct fast_token_lookup *t = userdata;

        t->r = session_info_copy(s, &t->s, &t->buf);
        return 1;
}

static void fast_token(struct conn *c, const struct fp_request *q) {
        struct daemon *d = c->d;
        int index = token_index();
        uint64_t start = c->last_activity_usec;
        struct fast_token_lookup t = { .r = -ENOENT };
        uint8_t key[STORE_KEY_SIZE];
        char audience_buf[OPS_MAX_NAME + 1];
        char *token = NULL;
        int64_t exp = 0;
        struct out w;

        if (index >= 0 && index < STATS_MAX_OPS)
                d->stats.requests[index]++;
        const char *audience = fast_audience(q, audience_buf);
        int k = fast_session_get(d, q, key, daemon_now(), fast_token_copy, &t);
        sodium_memzero(key, sizeof key);
        if (k >= 0)
                k = t.r;
        /* The answers of op_token(), in its order. */
        if (k == -ENOENT)
                fast_error(c, &q->id, index, STAT_ERR_INVALID_SESSION, "invalid_session", INVALID_SESSION_MESSAGE);
        else if (k == -ENOMEM)
                fast_error(c, &q->id, index, STAT_ERR_INTERNAL, "internal", "out of memory");
        else if (k == -EUCLEAN) {
                ops_log_store_damaged("token", k);
                fast_error(c, &q->id, index, STAT_ERR_INTERNAL, "internal", "the session store is damaged");
        } else if (k < 0)
                fast_error(c, &q->id, index, STAT_ERR_UNAVAILABLE, "unavailable",
                           "the session store failed; try again later");
        else if (!access_service_allowed(d, &c->peer, t.s.service))
                fast_error(c, &q->id, index, STAT_ERR_FORBIDDEN, "forbidden",
                           "this peer may not use this session's service");
        else if (!token_audience_allowed(d, t.s.service, audience))
                fast_error(c, &q->id, index, STAT_ERR_FORBIDDEN, "forbidden",
                           "this service may not issue tokens for that audience");
        else if ((k = token_issue(d, &t.s, audience, &token, &exp)) < 0) {
                log_errno(LOG_ERR, k, "token: cannot sign");
                fast_error(c, &q->id, index, STAT_ERR_INTERNAL, "internal", "cannot sign a token");
        } else {
                /* A token is base64url and dots: nothing to escape. */
                size_t n = strlen(token);
                if (reply_begin(c, &w, &q->id, true, sizeof ",\"token\":\"\",\"expires_at\":}" + n + I64_MAX_CHARS)) {
                        put_lit(&w, ",\"token\":\"");
                        put_mem(&w, token, n);
                        put_lit(&w, "\",\"expires_at\":");
                        put_i64(&w, exp);
                        put_lit(&w, "}");
                        reply_end(c, &w);
                }
                sodium_memzero(token, n);
                free(token);
        }
        free(t.buf);
        if (index >= 0 && index < STATS_MAX_OPS)
                histogram_add(&d->stats.op_latency[index], now_usec() - start);
}

/* ---- verify ---- */

/* Whether text, a JSON object Jansson has just parsed, is byte for byte
 * what json_dumpb(JSON_COMPACT) writes for it: no white space, strings
 * escaped exactly as Jansson escapes them, no real number (their text is
 * Jansson's own "%.17g" business), no "-0". Tokens of ours always are
 * (their claims are written so); anything unsure answers no, and the claims
 * are written again instead. */
static bool json_is_compact_canonical(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                uint8_t c = p[i];
                switch (c) {
                case '{':
                case '}':
                case '[':
                case ']':
                case ':':
                case ',':
                        break;
                case 't':
                case 'n':
                        if (n - i < 4)
                                return false;
                        i += 3; /* true, null: the parser saw them whole */
                        break;
                case 'f':
                        if (n - i < 5)
                                return false;
                        i += 4;
                        break;
                case '"':
                        for (i++; i < n && p[i] != '"'; i++) {
                                if (p[i] < 0x20)
                                        return false;
                                if (p[i] != '\\')
                                        continue;
                                if (++i >= n)
                                        return false;
                                if (strchr("\"\\bfnrt", p[i]) && p[i] != '\0')
                                        continue;
                                /* \u00XX upper-case, only for a control
                                 * character without a short form. */
                                if (p[i] != 'u' || n - i < 5 || p[i + 1] != '0' || p[i + 2] != '0' ||
                                    (p[i + 3] != '0' && p[i + 3] != '1') ||
                                    !((p[i + 4] >= '0' && p[i + 4] <= '9') || (p[i + 4] >= 'A' && p[i + 4] <= 'F')))
                                        return false;
                                unsigned cp = (unsigned) (p[i + 3] - '0') * 16 +
                                              (unsigned) (p[i + 4] <= '9' ? p[i + 4] - '0' : p[i + 4] - 'A' + 10);
                                if (cp == 0 || cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t')
                                        return false;
                                i += 4;
                        }
                        if (i >= n)
                                return false;
                        break;
                case '-':
                        if (i + 1 < n && p[i + 1] == '0')
                                return false; /* -0 (or a real) */
                        break;
                default:
                        if (c < '0' || c > '9')
                                return false;
                        while (i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')
                                i++;
                        if (i + 1 < n && (p[i + 1] == '.' || p[i + 1] == 'e' || p[i + 1] == 'E'))
                                return false;
                }
        }
        return true;
}

static int fast_session_exists(void *userdata, const struct session_info *s) {
        *(bool *) userdata = true;
        return 0;
}

static void fast_verify(struct conn *c, const struct fp_request *q) {
        struct daemon *d = c->d;
        int index = verify_index();
        uint64_t start = c->last_activity_usec;
        char audience_buf[OPS_MAX_NAME + 1];
        json_t *claims = NULL;
        struct out w;

        if (index >= 0 && index < STATS_MAX_OPS)
                d->stats.requests[index]++;
        struct jwt_verify_options opts = {
                .now = daemon_now(),
                .leeway = d->config->token_leeway,
                .audience = fast_audience(q, audience_buf),
                .issuer = d->config->issuer,
        };
        /* The answers of op_verify(), in its order. */
        int e = keyring_verify(d->keys, q->token.p, q->token.n, &opts, &claims);
        if (e == JWT_ERR_NOMEM || e == JWT_ERR_KEYSET) {
                log_msg(LOG_ERR, "verify: %s", jwt_strerror(e));
                fast_error(c, &q->id, index, STAT_ERR_INTERNAL, "internal", "cannot verify tokens right now");
                goto done;
        }
        if (e != JWT_OK) {
                fast_error(c, &q->id, index, STAT_ERR_INVALID_TOKEN, "invalid_token", jwt_strerror(e));
                goto done;
        }
        const char *sid = json_string_value(json_object_get(claims, "sid"));
        bool live = false;
        int k = sid ? store_session_get_by_handle(d->store, sid, opts.now, fast_session_exists, &live) : -ENOENT;
        if (k == -EUCLEAN) {
                ops_log_store_damaged("verify", k);
                fast_error(c, &q->id, index, STAT_ERR_INTERNAL, "internal", "the session store is damaged");
                goto done;
        }
        if (k < 0 && k != -ENOENT) {
                fast_error(c, &q->id, index, STAT_ERR_UNAVAILABLE, "unavailable",
                           "the session store failed; try again later");
                goto done;
        }
        if (!live) {
                fast_error(c, &q->id, index, STAT_ERR_INVALID_TOKEN, "invalid_token", "the token's session has ended");
                goto done;
        }
        /* The claims as Jansson writes them. A token of ours carries them
         * so already: its payload, decoded again, is copied when it checks
         * out. Else they are written once into a buffer on the stack, or in
         * two passes when they do not fit. */
        char text[8192];
        size_t n = 0;
        const char *dot1 = memchr(q->token.p, '.', q->token.n);
        const char *dot2 = dot1 ? memchr(dot1 + 1, '.', q->token.n - (size_t) (dot1 + 1 - q->token.p)) : NULL;
        if (!dot2 || b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), (uint8_t *) text, sizeof text, &n) != 0 ||
            !json_is_compact_canonical((const uint8_t *) text, n))
                n = json_dumpb(claims, text, sizeof text, JSON_COMPACT);
        if (n == 0) {
                c->closing = true; /* as finish() does when it cannot write a reply */
                goto done;
        }
        if (reply_begin(c, &w, &q->id, true, sizeof ",\"claims\":}" + n)) {
                put_lit(&w, ",\"claims\":");
                if (n <= sizeof text)
                        put_mem(&w, text, n);
                else
                        w.n += json_dumpb(claims, (char *) w.p + w.n, n, JSON_COMPACT);
                put_lit(&w, "}");
                reply_end(c, &w);
        }
done:
        json_decref(claims);
        if (index >= 0 && index < STATS_MAX_OPS)
                histogram_add(&d->stats.op_latency[index], now_usec() - start);
}

int fastpath_request(struct conn *c, const char *buf, size_t len) {
        struct fp_request q;

        if (!scan_request(buf, len, &q))
                return 0;
        if (q.op.kind != FP_STRING)
                return 0;
        bool validate = q.op.n == strlen("validate") && memcmp(q.op.p, "validate", q.op.n) == 0;
        bool token = q.op.n == strlen("token") && memcmp(q.op.p, "token", q.op.n) == 0;
        bool verify = q.op.n == strlen("verify") && memcmp(q.op.p, "verify", q.op.n) == 0;
        if (!validate && !token && !verify)
                return 0;
        if (verify) {
                if (q.session.kind != FP_ABSENT || q.service.kind != FP_ABSENT || q.token.kind != FP_STRING)
                        return 0;
                if (q.audience.kind == FP_RAW || (q.audience.kind == FP_STRING && q.audience.n > OPS_MAX_NAME))
                        return 0;
                fast_verify(c, &q);
                return 1;
        }
        if (q.token.kind != FP_ABSENT)
                return 0;
        /* Limits and types as op_validate() checks them: anything it would
         * refuse is its to refuse. */
        if (q.session.kind != FP_STRING || q.session.n > OPS_MAX_SESSION)
                return 0;
        if (validate) {
                if (q.audience.kind != FP_ABSENT)
                        return 0;
                if (q.service.kind == FP_RAW || (q.service.kind == FP_STRING && q.service.n > OPS_MAX_NAME))
                        return 0;
                /* A peer refused by the service it names is refused before
                 * anything else, by dispatch (the rare case: not worth a
                 * fast copy). */
                if (q.service.kind == FP_STRING) {
                        char service[OPS_MAX_NAME + 1];
                        memcpy(service, q.service.p, q.service.n);
                        service[q.service.n] = '\0';
                        if (!access_service_allowed(c->d, &c->peer, service))
                                return 0;
                }
                fast_validate(c, &q);
        } else {
                if (q.service.kind != FP_ABSENT)
                        return 0;
                if (q.audience.kind == FP_RAW || (q.audience.kind == FP_STRING && q.audience.n > OPS_MAX_NAME))
                        return 0;
                fast_token(c, &q);
        }
        return 1;
}
