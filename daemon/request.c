/* SPDX-License-Identifier: MIT */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon-state.h"
#include "frame.h"
#include "log.h"
#include "request.h"

struct request *request_new(struct conn *c) {
        struct request *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->refs = 1;
        r->conn = conn_ref(c);
        r->op_index = -1;
        r->start_usec = now_usec();
        if (c->tail)
                c->tail->next = r;
        else
                c->head = r;
        c->tail = r;
        c->inflight++;
        return r;
}

struct request *request_ref(struct request *r) {
        r->refs++;
        return r;
}

void request_unref(struct request *r) {
        if (!r || --r->refs > 0)
                return;
        sd_event_source_disable_unref(r->deadline);
        decoded_done(&r->in);
        if (r->reply)
                sodium_memzero(r->reply, r->reply_len);
        free(r->reply);
        conn_unref(r->conn);
        free(r);
}

static void finish(struct request *r, json_t *o) {
        struct daemon *d = r->conn->d;
        char stackbuf[4096];
        uint8_t *buf = NULL;

        /* Most replies fit the stack buffer: serialise once. Jansson says
         * how much it needed when they do not; then once more, to size. */
        size_t n = json_dumpb(o, stackbuf, sizeof stackbuf, JSON_COMPACT);
        if (n > 0 && n <= sizeof stackbuf) {
                buf = malloc(WIRE_HEADER + n);
                if (buf)
                        memcpy(buf + WIRE_HEADER, stackbuf, n);
        } else if (n > 0) {
                buf = malloc(WIRE_HEADER + n);
                if (buf && json_dumpb(o, (char *) buf + WIRE_HEADER, n, JSON_COMPACT) != n) {
                        free(buf);
                        buf = NULL;
                }
        }
        sodium_memzero(stackbuf, MIN(n, sizeof stackbuf));
        if (buf) {
                wire_put_header(buf, (uint32_t) n);
                r->reply = buf;
                r->reply_len = WIRE_HEADER + n;
        } else {
                /* Out of memory: a fixed answer that needs no allocation
                 * would still need a buffer; drop the connection instead. */
                free(buf);
                r->conn->closing = true;
        }
        json_decref(o);
        r->replied = true;
        r->deadline = sd_event_source_disable_unref(r->deadline);
        if (r->op_index >= 0 && r->op_index < STATS_MAX_OPS) {
                d->stats.requests[r->op_index]++;
                histogram_add(&d->stats.op_latency[r->op_index], now_usec() - r->start_usec);
        }
        conn_reply_ready(r->conn);
}

static json_t *reply_base(struct request *r, bool ok) {
        json_t *o = json_object();
        if (!o)
                return NULL;
        /* The id is echoed as given, whatever its type. */
        json_object_set(o, "id", r->in.id ? r->in.id : json_null());
        json_object_set_new(o, "ok", json_boolean(ok));
        return o;
}

void reply_ok(struct request *r, json_t *results) {
        if (r->replied) {
                json_decref(results);
                return;
        }
        json_t *o = reply_base(r, true);
        if (o && results)
                json_object_update_missing(o, results);
        json_decref(results);
        if (!o) {
                r->conn->closing = true;
                r->replied = true;
                conn_reply_ready(r->conn);
                return;
        }
        finish(r, o);
}

/* The one place an error reply is built: reply_error() and
 * reply_error_extra() differ only in the members `extra` adds (its reference
 * is taken, also when nothing is sent). */
static _printf_(4, 0) void reply_error_va(struct request *r, const char *code, json_t *extra, const char *fmt,
                                          va_list ap) {
        char msg[512];

        if (r->replied) {
                json_decref(extra);
                return;
        }
        vsnprintf(msg, sizeof msg, fmt, ap);
        stats_count_error(&r->conn->d->stats, r->op_index, stats_error_index(code), now_usec());
        json_t *o = reply_base(r, false);
        if (!o || (extra && json_object_update(o, extra) < 0)) {
                json_decref(o);
                json_decref(extra);
                r->conn->closing = true;
                r->replied = true;
                conn_reply_ready(r->conn);
                return;
        }
        json_decref(extra);
        json_object_set_new(o, "error", json_string(code));
        /* json_string refuses invalid UTF-8; messages are ours, but a user
         * name echoed into one might not be. */
        json_t *m = json_string(msg);
        json_object_set_new(o, "message", m ? m : json_string("(unprintable message)"));
        finish(r, o);
}

void reply_error(struct request *r, const char *code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_error_va(r, code, NULL, fmt, ap);
        va_end(ap);
}

void reply_error_extra(struct request *r, const char *code, json_t *extra, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_error_va(r, code, extra, fmt, ap);
        va_end(ap);
}

void request_drop(struct request *r) {
        if (r->replied)
                return;
        r->replied = true;
        r->deadline = sd_event_source_disable_unref(r->deadline);
        conn_reply_ready(r->conn);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct request *r = userdata;

        r->abandoned = true;
        log_msg(LOG_WARNING, "client %s: %s: no answer from the backend in time", r->conn->peer_desc,
                r->in.op ? r->in.op : "?");
        reply_error(r, "unavailable", "the backend did not answer in time; try again later");
        return 0;
}

int request_set_deadline(struct request *r, uint64_t usec) {
        return sd_event_add_time_relative(r->conn->d->event, &r->deadline, CLOCK_MONOTONIC, usec, 10000,
                                          on_deadline, r);
}
