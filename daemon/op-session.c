/* SPDX-License-Identifier: MIT */
/*
 * validate, logout, sessions.list, sessions.revoke.
 *
 * validate is the hot path: it answers on the loop thread from one short
 * LMDB read transaction. It slides the idle expiry without writing on every
 * call: last_seen is persisted (on the writer thread, not waited for) only
 * when it is older than the touch granularity, and the idle expiry it
 * reports is always the one the store will enforce.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon-state.h"
#include "dispatch.h"
#include "log.h"
#include "ops-common.h"
#include "session.h"
#include "store.h"
#include "wire.h"
#include "workqueue.h"

#define LIST_MAX 10000

/* How stale a persisted last_seen may get: a tenth of the idle timeout,
 * between 1 s and 60 s. */
static int64_t touch_granularity(int64_t idle_timeout) {
        return MAX(INT64_C(1), MIN(INT64_C(60), idle_timeout / 10));
}

/* Slides are recorded in the store at once (it counts them for every read
 * and sweep) and written by one flush job at a time on the writer thread:
 * while one flush runs, the next slides gather, merged by session, so a
 * busy server writes few transactions however many sessions slide, and
 * none is dropped. d->touches is that job; d->touch_running says it is
 * queued or running. */
struct touch_batch {
        struct work work;
        struct daemon *d;
};

static void touch_run(struct work *w) {
        struct touch_batch *b = (struct touch_batch *) w;
        int r = store_session_flush_slides(b->d->store, NULL);
        if (r < 0)
                log_errno(LOG_WARNING, r, "cannot persist idle-expiry slides yet (kept for the next try)");
}

static void touch_submit(struct daemon *d);

static void touch_done(struct work *w) {
        struct touch_batch *b = (struct touch_batch *) w;
        struct daemon *d = b->d;

        d->touch_running = false;
        touch_submit(d);
}

static void touch_submit(struct daemon *d) {
        if (d->touch_running || store_session_slides_pending(d->store) == 0)
                return;
        if (!d->touches) {
                d->touches = malloc(sizeof *d->touches);
                if (!d->touches)
                        return;
                *d->touches = (struct touch_batch){ .work = { .run = touch_run, .done = touch_done }, .d = d };
        }
        /* A full writer queue leaves the slides recorded (they count all
         * the same); the next validate or flush tries again. */
        if (workqueue_submit(d->writer, &d->touches->work) < 0)
                return;
        d->touch_running = true;
}

static void touch_later(struct daemon *d, const uint8_t key[STORE_KEY_SIZE], int64_t now) {
        int r = store_session_slide(d->store, key, now);
        if (r < 0)
                log_msg(LOG_WARNING, "cannot record an idle-expiry slide: %s", strerror(-r));
        touch_submit(d);
}

int64_t validate_idle_expiry(const struct session_info *s, int64_t now, bool *ret_touch) {
        *ret_touch = now - s->last_seen_at >= touch_granularity(s->idle_timeout);
        return *ret_touch ? MIN(now + s->idle_timeout, s->expires_at) : session_idle_expires_at(s);
}

void validate_touch_later(struct daemon *d, const uint8_t key[STORE_KEY_SIZE], int64_t now) {
        touch_later(d, key, now);
}

/* The reply is built from the record inside the read transaction (the
 * JSON object copies what it needs), and sent after the transaction has
 * ended. */
struct validate_ctx {
        struct daemon *d;
        struct request *r;
        const char *service;
        int64_t now;
        json_t *reply;  /* found and allowed: the results */
        bool found;
        bool forbidden;
        bool touch;
};

static int validate_found(void *userdata, const struct session_info *s) {
        struct validate_ctx *v = userdata;
        int64_t idle_expires_at;

        /* The peer first: one refused by the session's service learns no
         * more than that, whatever service it names. */
        if (!access_service_allowed(v->d, &v->r->conn->peer, s->service)) {
                v->found = true;
                v->forbidden = true;
                return 1;
        }
        if (v->service && !streq(v->service, s->service))
                return 0; /* answered as unknown */
        v->found = true;
        idle_expires_at = validate_idle_expiry(s, v->now, &v->touch);
        v->reply = session_to_json(s, idle_expires_at, true);
        if (v->reply)
                json_object_del(v->reply, "last_seen_at");
        return 1;
}

void op_validate(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *session, *service;
        uint8_t key[STORE_KEY_SIZE];

        if (ops_session_args(r, "service", &session, &service) < 0)
                return;
        uint64_t start = r->start_usec;
        struct validate_ctx v = { .d = d, .r = r, .service = service, .now = daemon_now() };
        int k = ops_session_get(d, session, key, v.now, validate_found, &v);
        if (v.touch)
                touch_later(d, key, v.now);
        sodium_memzero(key, sizeof key);
        if (k == -ENOENT || (k >= 0 && !v.found))
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
        else if (k < 0) {
                ops_reply_store_error(r, "validate", k);
        } else if (v.forbidden)
                reply_error(r, "forbidden", "this peer may not use this session's service");
        else if (!v.reply)
                reply_error(r, "internal", "out of memory");
        else {
                reply_ok(r, v.reply);
                v.reply = NULL;
        }
        json_decref(v.reply);
        histogram_add(&d->stats.validate_latency, now_usec() - start);
}

/* logout: find the session (for the access check and the audit line), then
 * delete it on the writer thread and answer once it is durable. */
struct logout_job {
        struct work work;
        struct daemon *d;
        struct request *r;
        uint8_t key[STORE_KEY_SIZE];
        char handle[STORE_HANDLE_LEN + 1];
        char *user;
        char *service;
        int result;
};

static void logout_run(struct work *w) {
        struct logout_job *j = (struct logout_job *) w;
        j->result = store_session_delete(j->d->store, j->key);
}

static void logout_done(struct work *w) {
        struct logout_job *j = (struct logout_job *) w;
        struct request *r = j->r;
        char uid[16];

        if (!r->abandoned) {
                snprintf(uid, sizeof uid, "%u", (unsigned) r->conn->peer.uid);
                if (j->result == 0) {
                        log_fields(LOG_INFO,
                                   (const char *[]){ "LATCH_OP", "logout", "LATCH_SERVICE", j->service, "LATCH_USER",
                                                     j->user, "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid,
                                                     "LATCH_SESSION_HANDLE", j->handle, NULL },
                                   "logout of session %s (user '%s', service '%s')", j->handle, log_esc(j->user),
                                   log_esc(j->service));
                        reply_ok(r, NULL);
                } else if (j->result == -ENOENT)
                        reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                else {
                        ops_reply_store_error(r, "logout", j->result);
                }
        }
        request_unref(r);
        sodium_memzero(j->key, sizeof j->key);
        free(j->user);
        free(j->service);
        free(j);
}

struct logout_ctx {
        struct daemon *d;
        struct request *r;
        struct logout_job *j;
        bool found;
        bool allowed;
};

static int logout_found(void *userdata, const struct session_info *s) {
        struct logout_ctx *c = userdata;

        c->found = true;
        c->allowed = access_service_allowed(c->d, &c->r->conn->peer, s->service);
        memcpy(c->j->handle, s->handle, sizeof c->j->handle);
        c->j->user = strdup(s->user);
        c->j->service = strdup(s->service);
        return 0;
}

void op_logout(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *session;

        if (ops_session_args(r, NULL, &session, NULL) < 0)
                return;
        struct logout_job *j = calloc(1, sizeof(*j));
        if (!j) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->work = (struct work){ .run = logout_run, .done = logout_done };
        j->d = d;
        struct logout_ctx c = { d, r, j, false, false };
        int k = ops_session_get(d, session, j->key, daemon_now(), logout_found, &c);
        if (k < 0 || !c.found || !c.allowed || !j->user || !j->service) {
                if (k == -ENOENT || (k >= 0 && !c.found))
                        reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                else if (k < 0)
                        ops_reply_store_error(r, "logout", k);
                else if (!c.allowed)
                        reply_error(r, "forbidden", "this peer may not use this session's service");
                else
                        reply_error(r, "internal", "out of memory");
                sodium_memzero(j->key, sizeof j->key);
                free(j->user);
                free(j->service);
                free(j);
                return;
        }
        j->r = request_ref(r);
        ops_submit_write(r, &j->work);
}

struct list_ctx {
        json_t *array;
        size_t n;
        bool truncated;
};

static int list_one(void *userdata, const struct session_info *s) {
        struct list_ctx *l = userdata;

        if (l->n >= LIST_MAX) {
                l->truncated = true;
                return 1;
        }
        /* A name that is not UTF-8 (a plugin may map a user to any bytes)
         * cannot go into JSON: say so, not "out of memory". */
        if (!wire_utf8_valid(s->user, strlen(s->user)) || !wire_utf8_valid(s->service, strlen(s->service)))
                return -EILSEQ;
        json_t *o = session_to_json(s, session_idle_expires_at(s), false);
        if (!o || json_array_append_new(l->array, o) < 0)
                return -ENOMEM;
        l->n++;
        return 0;
}

void op_sessions_list(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *user, *service;
        char msg[256];

        if (arg_string(r->in.root, "user", false, OPS_MAX_USER, &user, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "service", false, OPS_MAX_NAME, &service, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        struct list_ctx l = { .array = json_array() };
        if (!l.array) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        int k = store_session_list(d->store, user, service, daemon_now(), list_one, &l);
        if (k == -EILSEQ) {
                json_decref(l.array);
                log_msg(LOG_ERR, "sessions.list: a stored session's user or service name is not UTF-8");
                reply_error(r, "internal", "a session's user or service name is not UTF-8");
                return;
        }
        if (k < 0) {
                json_decref(l.array);
                ops_reply_store_error(r, "sessions.list", k);
                return;
        }
        reply_ok(r, json_pack("{s:o, s:b}", "sessions", l.array, "truncated", l.truncated));
}

struct revoke_job {
        struct work work;
        struct daemon *d;
        struct request *r;
        char *handle;
        char *user;
        size_t count;
        int result;
};

static void revoke_run(struct work *w) {
        struct revoke_job *j = (struct revoke_job *) w;
        if (j->handle)
                j->result = store_session_revoke_handle(j->d->store, j->handle, &j->count);
        else
                j->result = store_session_revoke_user(j->d->store, j->user, &j->count);
}

static void revoke_done(struct work *w) {
        struct revoke_job *j = (struct revoke_job *) w;
        struct request *r = j->r;
        char uid[16], count[24];

        if (!r->abandoned) {
                if (j->result < 0 && j->result != -ENOENT) {
                        ops_reply_store_error(r, "sessions.revoke", j->result);
                } else {
                        size_t n = j->result == -ENOENT ? 0 : j->count;
                        snprintf(uid, sizeof uid, "%u", (unsigned) r->conn->peer.uid);
                        snprintf(count, sizeof count, "%zu", n);
                        log_fields(LOG_NOTICE,
                                   (const char *[]){ "LATCH_OP", "sessions.revoke", "LATCH_USER", j->user,
                                                     "LATCH_SESSION_HANDLE", j->handle, "LATCH_RESULT", "ok",
                                                     "LATCH_PEER_UID", uid, "LATCH_REVOKED", count, NULL },
                                   "revoked %zu session(s) of %s '%s'", n, j->handle ? "handle" : "user",
                                   log_esc(j->handle ? j->handle : j->user));
                        reply_ok(r, json_pack("{s:I}", "revoked", (json_int_t) n));
                }
        }
        request_unref(r);
        free(j->handle);
        free(j->user);
        free(j);
}

void op_sessions_revoke(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *handle, *user;
        char msg[256];

        if (arg_string(r->in.root, "handle", false, OPS_MAX_NAME, &handle, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "user", false, OPS_MAX_USER, &user, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        if (!handle == !user) {
                reply_error(r, "bad_request", "give exactly one of 'handle' or 'user'");
                return;
        }
        if (!ops_printable(handle ? handle : user)) {
                reply_error(r, "bad_request", "'%s' must be printable", handle ? "handle" : "user");
                return;
        }
        struct revoke_job *j = calloc(1, sizeof(*j));
        if (!j || (handle && !(j->handle = strdup(handle))) || (user && !(j->user = strdup(user)))) {
                if (j) {
                        free(j->handle);
                        free(j);
                }
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->work = (struct work){ .run = revoke_run, .done = revoke_done };
        j->d = d;
        j->r = request_ref(r);
        ops_submit_write(r, &j->work);
}
