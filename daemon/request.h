/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A request in flight, from its decoded frame to its reply.
 *
 * Every request gets exactly one reply: reply_ok() or reply_error(), called
 * on the event loop thread, either from the op handler directly or from the
 * done() of its pool job. The reply is serialised at once; the connection
 * sends it when every earlier request has been answered.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "decode.h"
#include "macro.h"

struct conn;
struct op;

struct request {
        unsigned refs;                /* the connection's queue, plus a pool job in flight */
        struct conn *conn;            /* a reference */
        struct request *next;
        struct decoded in;
        const struct op *op;
        int op_index;                 /* into the stats arrays, -1 if unknown */
        uint8_t *reply;               /* a whole frame */
        size_t reply_len;
        bool replied;
        bool abandoned;               /* answered `unavailable` by its deadline */
        uint64_t start_usec;
        sd_event_source *deadline;
};

/* A new request, queued last on c, holding one reference (the queue's). A
 * pool job working for it takes another with request_ref(), so that a
 * request answered by its deadline outlives the job. */
struct request *request_new(struct conn *c);
struct request *request_ref(struct request *r);
void request_unref(struct request *r);

/* Replies {"id":..., "ok":true, ...results}. Takes the reference to results
 * (an object or NULL). */
void reply_ok(struct request *r, json_t *results);

/* Replies {"id":..., "ok":false, "error":code, "message":...}. The message
 * must hold no secret. */
void reply_error(struct request *r, const char *code, const char *fmt, ...) _printf_(3, 4);

/* reply_error() with more members in the object (takes the reference to
 * `extra`, an object or NULL), for `challenge`. */
void reply_error_extra(struct request *r, const char *code, json_t *extra, const char *fmt, ...) _printf_(4, 5);

/* Ends a request without a reply, for a client known to be gone: it leaves
 * the connection's queue like an answered one. */
void request_drop(struct request *r);

/* Arms a deadline: when it passes before the reply, the request answers
 * `unavailable` and is marked abandoned (the late result is discarded). */
int request_set_deadline(struct request *r, uint64_t usec);
