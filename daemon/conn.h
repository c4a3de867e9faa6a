/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One client connection: reads frames, hands decoded requests to dispatch,
 * and writes replies back in request order (the protocol allows pipelining).
 *
 * Limits: at most CONN_MAX_INFLIGHT requests of one connection are being
 * worked on at once and at most CONN_MAX_OUTPUT reply bytes wait to be
 * written; past either, the connection is not read until it drains. A
 * client that sends no complete frame for client_timeout while nothing of
 * it is in flight is dropped (so is one trickling a frame byte by byte);
 * input waiting in the socket is read before that judgement, and frames
 * held back only because the client leaves its replies unread do not count
 * as work of ours.
 *
 * After end-of-file from the client (a half-close), every whole frame
 * received before it is answered, in order, before the connection closes.
 *
 * A connection is reference-counted: every request holds a reference, so a
 * reply that arrives after the client went away is dropped safely.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "access.h"

#define CONN_MAX_INFLIGHT 64
#define CONN_MAX_OUTPUT (1024 * 1024)

struct daemon;
struct request;

struct conn {
        struct daemon *d;
        struct conn *prev, *next;     /* in d->conns */
        unsigned refs;
        int fd;                       /* -1 once closed */
        uint32_t events;              /* asked of the daemon's connection set */
        bool events_set;              /* in that set */
        sd_event_source *timer;
        sd_event_source *resume;      /* deferred processing of buffered frames */
        struct peer peer;
        char peer_desc[48];           /* "pid=123 uid=33", for logs */

        uint8_t *in;                  /* bytes read, not yet consumed */
        size_t in_len, in_cap;
        uint8_t *out;                 /* reply bytes waiting for the socket */
        size_t out_len, out_off, out_cap;

        struct request *head, *tail;  /* in flight, in arrival order */
        unsigned inflight;
        uint64_t last_activity_usec;
        bool closing;                 /* flush what is queued, then close */
        bool read_eof;
        bool processing;              /* inside conn_process() */
        uint64_t turn;                /* event loop iteration of taken_this_turn */
        unsigned taken_this_turn;     /* frames taken in that iteration */
        bool peer_hup;                /* the peer hung up: no reply can reach it */
};

/* Takes ownership of fd (an accepted, nonblocking, cloexec socket). */
int conn_new(struct daemon *d, int fd, struct conn **ret);

struct conn *conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/* Closes the epoll set of the connections (at exit, after the last
 * conn_close()). */
void conn_set_close(struct daemon *d);

/* Closes the socket now; in-flight requests finish and are dropped. */
void conn_close(struct conn *c);

/* Called by request.c when a request has its reply: moves every finished
 * reply at the head of the queue to the output buffer and writes. */
void conn_reply_ready(struct conn *c);

/* Room for n more reply bytes at c->out + c->out_len (the caller writes
 * them and adds what it wrote to c->out_len), or NULL when out of memory. */
uint8_t *conn_out_reserve(struct conn *c, size_t n);

/* Whether the client has closed its end of the connection (or died): a
 * reply would reach no one. Cheap: one poll() with no timeout. */
bool conn_peer_gone(const struct conn *c);
