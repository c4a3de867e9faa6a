/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

#include "conn.h"
#include "daemon-state.h"
#include "decode.h"
#include "log.h"
#include "ops-common.h"
#include "session.h"
#include "workqueue.h"

#define DEFAULT_STACK_DEADLINE_USEC (10ULL * 1000000)

bool ops_printable(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

bool ops_result_is_unavailable(int result) {
        switch (result) {
        case LATCH_AUTHINFO_UNAVAIL:
        case LATCH_TRY_AGAIN:
        case LATCH_BUF_ERR:
        case LATCH_SYSTEM_ERR:
        case LATCH_SERVICE_ERR:
        case LATCH_OPEN_ERR:
        case LATCH_SYMBOL_ERR:
        case LATCH_MODULE_UNKNOWN:
        case LATCH_INCOMPLETE:
        case LATCH_CONV_AGAIN:
                return true;
        default:
                return false;
        }
}

uint64_t ops_stack_deadline_usec(const struct daemon *d) {
        uint64_t t = DEFAULT_STACK_DEADLINE_USEC;
        for (size_t i = 0; i < d->config->n_plugins; i++)
                t = MAX(t, (uint64_t) d->config->plugins[i].timeout_ms * 1000);
        return t;
}

/* A throttled attempt waiting for its turn on a loop timer. */
struct delayed {
        sd_event_source *source;
        struct request *r;
        struct work *w;
        struct throttle_ticket *ticket;
};

static void submit_now(struct request *r, struct work *w, struct throttle_ticket *ticket) {
        struct daemon *d = r->conn->d;
        int k;

        if (r->abandoned || r->conn->fd < 0 || conn_peer_gone(r->conn)) {
                /* Answered by its deadline, or the client left, while
                 * waiting: never run it (nor spend argon2id on it). */
                throttle_cancel(d->throttle, ticket);
                r->abandoned = true;
                request_drop(r);
                w->done(w);
                return;
        }
        k = workqueue_submit(d->pool, w);
        if (k < 0) {
                log_msg(LOG_WARNING, "client %s: worker queue full, refusing %s", r->conn->peer_desc, r->in.op);
                throttle_cancel(d->throttle, ticket);
                reply_error(r, "unavailable", "latchd is busy; try again later");
                r->abandoned = true;
                w->done(w);
        }
}

static int on_delay(sd_event_source *s, uint64_t usec, void *userdata) {
        struct delayed *dl = userdata;
        submit_now(dl->r, dl->w, dl->ticket);
        sd_event_source_disable_unref(dl->source);
        free(dl);
        return 0;
}

void ops_begin_throttled(struct request *r, struct work *w, struct throttle_ticket *ticket, const char *user,
                         const char *remote) {
        struct daemon *d = r->conn->d;
        uint64_t delay = throttle_begin(d->throttle, user, remote, now_usec(), ticket);

        /* The deadline covers the wait too: a client is told `unavailable`
         * rather than left hanging past it. */
        (void) request_set_deadline(r, delay + ops_stack_deadline_usec(d));
        if (delay == 0) {
                submit_now(r, w, ticket);
                return;
        }
        d->stats.throttle_delayed++;
        d->stats.throttle_delay_usec += delay;
        struct delayed *dl = calloc(1, sizeof(*dl));
        if (!dl ||
            sd_event_add_time_relative(d->event, &dl->source, CLOCK_MONOTONIC, delay, 10000, on_delay, dl) < 0) {
                free(dl);
                submit_now(r, w, ticket);
                return;
        }
        dl->r = r;
        dl->w = w;
        dl->ticket = ticket;
}

void ops_submit_write(struct request *r, struct work *w) {
        struct daemon *d = r->conn->d;

        if (workqueue_submit(d->writer, w) < 0) {
                reply_error(r, "unavailable", "latchd is busy; try again later");
                r->abandoned = true;
                w->done(w);
        }
}

void ops_log_store_damaged(const char *what, int err) {
        log_msg(LOG_CRIT,
                "%s: session store damaged (%s): restore sessions.mdb from a backup (see \"State: back up and "
                "restore\" in docs/OPERATIONS.md)",
                what, strerror(-err));
}

int ops_session_args(struct request *r, const char *opt_name, const char **ret_session, const char **ret_opt) {
        char msg[256];

        if (arg_string(r->in.root, "session", true, OPS_MAX_SESSION, ret_session, msg, sizeof msg) < 0 ||
            (opt_name && arg_string(r->in.root, opt_name, false, OPS_MAX_NAME, ret_opt, msg, sizeof msg) < 0)) {
                reply_error(r, "bad_request", "%s", msg);
                return -EINVAL;
        }
        return 0;
}

int ops_session_get(struct daemon *d, const char *session, uint8_t ret_key[STORE_KEY_SIZE], int64_t now, session_fn fn,
                    void *userdata) {
        if (!session_id_key(session, ret_key))
                return -ENOENT;
        return store_session_get(d->store, ret_key, now, fn, userdata);
}

void ops_reply_store_error(struct request *r, const char *what, int err) {
        if (err == -EUCLEAN) {
                ops_log_store_damaged(what, err);
                reply_error(r, "internal", "the session store is damaged");
        } else {
                log_errno(LOG_ERR, err, "%s: session store", what);
                reply_error(r, "unavailable", "the session store failed; try again later");
        }
}
