/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "daemon-state.h"
#include "access.h"
#include "dispatch.h"
#include "fastpath.h"
#include "frame.h"
#include "log.h"
#include "request.h"

#define CONN_INITIAL_BUFFER 4096
#define CONN_FRAMES_PER_TURN 32
/* Ready connections taken per epoll_wait(); more wait for the next wake-up
 * (the set is level-triggered: none is lost). */
#define CONN_READY_BATCH 64

static void conn_update_events(struct conn *c);

/* realloc() that wipes the old block: buffers hold passwords, ids, tokens. */
static void *grow_wiped(void *old, size_t old_cap, size_t used, size_t cap) {
        uint8_t *b = malloc(cap);
        if (!b)
                return NULL;
        if (old) {
                memcpy(b, old, used);
                sodium_memzero(old, old_cap);
                free(old);
        }
        return b;
}
static void conn_process(struct conn *c);

bool conn_peer_gone(const struct conn *c) {
        struct pollfd p = { .fd = c->fd, .events = POLLOUT };

        if (c->fd < 0)
                return true;
        /* A peer that closed its end (or died) shows as POLLHUP on a Unix
         * stream socket; one that only shut down writing does not. */
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

struct conn *conn_ref(struct conn *c) {
        c->refs++;
        return c;
}

void conn_unref(struct conn *c) {
        if (!c || --c->refs > 0)
                return;
        peer_done(&c->peer);
        if (c->in)
                sodium_memzero(c->in, c->in_cap);
        free(c->in);
        if (c->out)
                sodium_memzero(c->out, c->out_cap);
        free(c->out);
        free(c);
}

/* Takes the oldest request off the queue if its reply is made: replies
 * leave in the order the requests came. NULL when there is none. */
static struct request *conn_pop_replied(struct conn *c) {
        struct request *r = c->head;

        if (!r || !r->replied)
                return NULL;
        c->head = r->next;
        if (!c->head)
                c->tail = NULL;
        c->inflight--;
        return r;
}

void conn_close(struct conn *c) {
        if (c->fd < 0)
                return;
        struct daemon *d = c->d;

        if (c->events_set)
                (void) epoll_ctl(d->conn_epoll, EPOLL_CTL_DEL, c->fd, NULL);
        c->events_set = false;
        c->timer = sd_event_source_disable_unref(c->timer);
        c->resume = sd_event_source_disable_unref(c->resume);
        c->fd = safe_close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                d->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        d->n_conns--;
        /* Requests still running keep the struct alive; their replies are
         * dropped. Free the replies already made. */
        for (struct request *r; (r = conn_pop_replied(c));)
                request_unref(r);
        if (c->in)
                sodium_memzero(c->in, c->in_cap);
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        conn_unref(c); /* the reference of d->conns */
}

/* Whether a whole frame (or a header that is refused on its own: empty,
 * too large) waits in the input buffer. */
static bool conn_has_frame(const struct conn *c) {
        uint32_t n = 0;
        return frame_peek(c->in, c->in_len, c->d->config->max_frame, &n) != FRAME_NEED_MORE;
}

static void conn_maybe_finish(struct conn *c) {
        if (c->fd < 0)
                return;
        /* After end-of-file, every frame that came before it is answered
         * first: the input buffer must be empty too (conn_process() drops a
         * partial frame left at end-of-file). */
        if ((c->closing || (c->read_eof && c->in_len == 0)) && c->inflight == 0 && c->out_off == c->out_len)
                conn_close(c);
}

static int conn_flush(struct conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        /* The client went away: nothing more to say to it. */
                        c->out_off = c->out_len = 0;
                        c->closing = true;
                        return -errno;
                }
                c->out_off += (size_t) n;
                c->last_activity_usec = now_usec();
        }
        if (c->out_off == c->out_len) {
                /* Replies hold session ids and tokens. */
                sodium_memzero(c->out, c->out_len);
                c->out_off = c->out_len = 0;
        }
        return 0;
}

uint8_t *conn_out_reserve(struct conn *c, size_t n) {
        if (c->out_off > 0 && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + n > c->out_cap) {
                /* Compact before growing. */
                if (c->out_off > 0) {
                        size_t keep = c->out_len - c->out_off;
                        memmove(c->out, c->out + c->out_off, keep);
                        sodium_memzero(c->out + keep, c->out_len - keep);
                        c->out_len = keep;
                        c->out_off = 0;
                }
                if (c->out_len + n > c->out_cap) {
                        size_t cap = MAX(c->out_cap * 2, c->out_len + n);
                        cap = MAX(cap, (size_t) CONN_INITIAL_BUFFER);
                        uint8_t *b = grow_wiped(c->out, c->out_cap, c->out_len, cap);
                        if (!b)
                                return NULL;
                        c->out = b;
                        c->out_cap = cap;
                }
        }
        return c->out + c->out_len;
}

static int out_append(struct conn *c, const uint8_t *p, size_t n) {
        uint8_t *b = conn_out_reserve(c, n);
        if (!b)
                return -ENOMEM;
        memcpy(b, p, n);
        c->out_len += n;
        return 0;
}

void conn_reply_ready(struct conn *c) {
        bool any = false;

        /* Freeing a request may drop the last other reference to c. */
        conn_ref(c);
        for (struct request *r; (r = conn_pop_replied(c));) {
                /* A dropped request (its client left) has no reply bytes. */
                if (c->fd >= 0 && r->reply && !c->peer_hup && out_append(c, r->reply, r->reply_len) < 0)
                        c->closing = true;
                request_unref(r);
                any = true;
        }
        if (!any || c->fd < 0) {
                conn_unref(c);
                return;
        }
        if (c->processing) {
                /* Answered inline while reading a batch of frames:
                 * conn_process() sends the whole batch once at its end. */
                conn_unref(c);
                return;
        }
        (void) conn_flush(c);
        conn_maybe_finish(c);
        if (c->fd >= 0) {
                conn_update_events(c);
                /* Replies drained: frames that waited in the input buffer
                 * may go now. */
                conn_process(c);
        }
        conn_unref(c);
}

static bool conn_may_take_more(const struct conn *c) {
        /* While stopping, requests in flight finish but no new one starts. */
        return !c->closing && !c->d->stopping && c->inflight < CONN_MAX_INFLIGHT &&
               c->out_len - c->out_off < CONN_MAX_OUTPUT;
}

static void conn_update_events(struct conn *c) {
        uint32_t ev = 0;

        if (c->fd < 0)
                return;
        if (c->peer_hup) {
                /* epoll reports a hang-up whatever events are asked for:
                 * stop watching, or the loop spins until the last request
                 * in flight ends. */
                if (c->events_set)
                        (void) epoll_ctl(c->d->conn_epoll, EPOLL_CTL_DEL, c->fd, NULL);
                c->events_set = false;
                return;
        }
        /* Read only when there is room for more work and no whole frame is
         * already waiting for its turn (conn_yield()): input stays in the
         * socket, which is what pushes back on a client that sends faster
         * than it is served. */
        if (!c->read_eof && conn_may_take_more(c) && !conn_has_frame(c))
                ev |= EPOLLIN;
        if (c->out_off < c->out_len)
                ev |= EPOLLOUT;
        /* The set is shared: a syscall only when the mask changes. */
        if (c->events_set && ev != c->events) {
                struct epoll_event e = { .events = ev, .data.ptr = c };
                if (epoll_ctl(c->d->conn_epoll, EPOLL_CTL_MOD, c->fd, &e) == 0)
                        c->events = ev;
        }
}

/* Input holds passwords: the bytes left behind by the move are wiped. */
static void consume_input(struct conn *c, size_t n) {
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        sodium_memzero(c->in + c->in_len, n);
}

/* A request that fails before reaching an op still takes its place in the
 * reply order. */
static void reject(struct conn *c, struct decoded *in, const char *code, const char *msg) {
        struct request *r = request_new(c);
        if (!r) {
                decoded_done(in);
                c->closing = true;
                return;
        }
        if (in)
                r->in = *in;
        reply_error(r, code, "%s", msg);
}

static int on_resume(sd_event_source *s, void *userdata) {
        struct conn *c = conn_ref(userdata);

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        conn_process(c);
        conn_unref(c);
        return 0;
}

/* More frames are buffered than one turn may take: carry on at the next
 * turn of the loop, after the other connections' pending events. */
static void conn_yield(struct conn *c) {
        if (!c->resume &&
            sd_event_add_defer(c->d->event, &c->resume, on_resume, c) < 0)
                return;
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
}

/* Takes the frames buffered in c->in, in order, as far as the limits allow.
 *
 * Fairness: a connection takes at most CONN_FRAMES_PER_TURN frames per turn
 * of the event loop, whoever calls us (a read, a reply that made room, the
 * deferred resume); the rest waits in the buffer for the next turn. A frame
 * never waits because of end-of-file: read_eof only means no frame comes
 * after the buffered ones. */
static void conn_process(struct conn *c) {
        struct daemon *d = c->d;
        uint64_t turn = 0;

        /* Ops that answer at once call back into conn_reply_ready(), which
         * calls us: the outer loop carries on instead of recursing. */
        if (c->processing)
                return;
        c->processing = true;
        (void) sd_event_get_iteration(d->event, &turn);
        if (turn != c->turn) {
                c->turn = turn;
                c->taken_this_turn = 0;
        }
        while (c->fd >= 0 && conn_may_take_more(c)) {
                uint32_t n = 0;
                enum frame_status st = frame_peek(c->in, c->in_len, d->config->max_frame, &n);

                if (st == FRAME_NEED_MORE)
                        break;
                if (c->taken_this_turn >= CONN_FRAMES_PER_TURN) {
                        conn_yield(c);
                        break;
                }
                c->taken_this_turn++;
                if (st == FRAME_EMPTY) {
                        consume_input(c, WIRE_HEADER);
                        log_msg(LOG_INFO, "client %s: empty frame", c->peer_desc);
                        reject(c, NULL, "bad_request", "empty frame: a frame holds 1 or more bytes");
                        continue;
                }
                if (st == FRAME_TOO_LARGE) {
                        /* The rest of the stream cannot be trusted to resync
                         * cheaply: answer, then close. */
                        log_msg(LOG_INFO, "client %s: frame of %u bytes over max_frame", c->peer_desc,
                                (unsigned) wire_get_header(c->in));
                        sodium_memzero(c->in, c->in_len);
                        c->in_len = 0;
                        char msg[96];
                        snprintf(msg, sizeof msg, "frame exceeds max_frame (%u bytes)", d->config->max_frame);
                        reject(c, NULL, "too_large", msg);
                        c->closing = true;
                        break;
                }

                c->last_activity_usec = now_usec();
                /* The hot ops, when the request is plain enough, answer
                 * straight into the output buffer; only when nothing
                 * earlier is still waiting for its reply, so that replies
                 * keep their order. */
                if (!c->head && fastpath_request(c, (const char *) c->in + WIRE_HEADER, n) > 0) {
                        consume_input(c, WIRE_HEADER + n);
                        continue;
                }
                struct decoded in;
                char msg[256];
                int r = decode_request((const char *) c->in + WIRE_HEADER, n, &in, msg, sizeof msg);
                consume_input(c, WIRE_HEADER + n);
                if (r < 0) {
                        log_msg(LOG_INFO, "client %s: bad request: %s", c->peer_desc, msg);
                        reject(c, &in, "bad_request", msg);
                        continue;
                }
                struct request *req = request_new(c);
                if (!req) {
                        decoded_done(&in);
                        c->closing = true;
                        break;
                }
                req->in = in;
                dispatch_request(req);
        }
        c->processing = false;
        /* End-of-file with only part of a frame left: that frame never
         * comes whole. Every whole frame before it has been taken. */
        if (c->fd >= 0 && c->read_eof && c->in_len > 0 && !conn_has_frame(c)) {
                log_msg(LOG_INFO, "client %s: connection closed inside a frame", c->peer_desc);
                sodium_memzero(c->in, c->in_len);
                c->in_len = 0;
        }
        if (c->fd >= 0 && c->out_off < c->out_len)
                (void) conn_flush(c);
        conn_maybe_finish(c);
        conn_update_events(c);
}

/* One recv() per call, then the frames it completed. epoll is
 * level-triggered: input left in the socket brings us back at the next turn,
 * so no connection reads (or is served) without end in one turn. */
static int conn_read(struct conn *c) {
        struct daemon *d = c->d;

        if (c->fd < 0 || c->read_eof || !conn_may_take_more(c))
                return 0;
        /* Size the buffer for the frame being read, once its header is in;
         * never beyond one whole frame. */
        size_t want = CONN_INITIAL_BUFFER;
        uint32_t n = 0;
        enum frame_status st = frame_peek(c->in, c->in_len, d->config->max_frame, &n);
        if (st == FRAME_NEED_MORE && n > 0)
                want = MAX(want, (size_t) WIRE_HEADER + n);
        if (c->in_cap < want) {
                uint8_t *b = grow_wiped(c->in, c->in_cap, c->in_len, want);
                if (!b)
                        return -ENOMEM;
                c->in = b;
                c->in_cap = want;
        }
        if (c->in_len < c->in_cap) {
                ssize_t k;
                do
                        k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
                while (k < 0 && errno == EINTR);
                if (k < 0 && errno != EAGAIN) {
                        /* Reset by the peer: nothing more comes, nothing
                         * can be answered. */
                        c->read_eof = true;
                        c->closing = true;
                } else if (k == 0)
                        c->read_eof = true;
                else if (k > 0)
                        c->in_len += (size_t) k;
        }
        /* A full buffer holds a whole frame: conn_process() takes it. */
        conn_process(c);
        if (c->fd < 0)
                return 0;
        /* Shrink a buffer that grew for one large frame (consumed input is
         * wiped already). */
        if (c->in_len == 0 && c->in_cap > 4 * CONN_INITIAL_BUFFER) {
                free(c->in);
                c->in = NULL;
                c->in_cap = 0;
        }
        return 0;
}

static void conn_on_io(struct conn *c, uint32_t revents) {
        conn_ref(c);

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (conn_read(c) < 0)
                        c->closing = true;
        }
        if (c->fd >= 0 && (revents & EPOLLOUT)) {
                (void) conn_flush(c);
                /* Room again: frames that waited in the buffer may go. */
                if (c->fd >= 0 && c->in_len > 0)
                        conn_process(c);
        }
        if (c->fd >= 0 && (revents & (EPOLLHUP | EPOLLERR))) {
                /* The peer is gone both ways: nothing can reach it. */
                c->peer_hup = true;
                c->read_eof = true;
                c->closing = true;
                c->out_off = c->out_len = 0;
        }
        conn_maybe_finish(c);
        conn_update_events(c);
        conn_unref(c);
}

/* Client sockets live in an epoll set of their own, which sd-event watches
 * as one source: one wake-up serves every ready connection (sd-event would
 * dispatch one source per turn, with an epoll_wait() each), while signals,
 * timers, the listening socket and the watchdog stay sd-event's. */
static int on_conns_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct daemon *d = userdata;
        struct epoll_event evs[CONN_READY_BATCH];
        int n;

        do
                n = epoll_wait(d->conn_epoll, evs, CONN_READY_BATCH, 0);
        while (n < 0 && errno == EINTR);
        /* Serving one may close another of the batch: hold them all. */
        for (int i = 0; i < n; i++)
                conn_ref(evs[i].data.ptr);
        for (int i = 0; i < n; i++) {
                struct conn *c = evs[i].data.ptr;
                if (c->fd >= 0 && c->events_set)
                        conn_on_io(c, evs[i].events);
        }
        for (int i = 0; i < n; i++)
                conn_unref(evs[i].data.ptr);
        return 0;
}

static int conn_set_open(struct daemon *d) {
        int fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = sd_event_add_io(d->event, &d->conn_source, fd, EPOLLIN, on_conns_ready, d);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_description(d->conn_source, "connections");
        d->conn_epoll = fd;
        return 0;
}

void conn_set_close(struct daemon *d) {
        if (!d->conn_source)
                return;
        d->conn_source = sd_event_source_disable_unref(d->conn_source);
        d->conn_epoll = safe_close(d->conn_epoll);
}

/* Reads and takes what the client sent and we have not read yet. The
 * timer may fire before the input that came meanwhile is read: after a
 * stall of the whole daemon (SIGSTOP, swapping, a slow disk) both are due in
 * the same turn. A client whose request waits in the socket is not idle. */
static void conn_catch_up(struct conn *c) {
        uint64_t seen = c->last_activity_usec;

        /* A few reads suffice for any frame already in the socket: the first
         * brings its header, which sizes the buffer for the whole of it. A
         * client still sending a frame byte by byte gains nothing here. */
        for (unsigned i = 0; i < 4 && c->fd >= 0 && !c->read_eof; i++) {
                size_t before = c->in_len;
                if (conn_read(c) < 0)
                        c->closing = true;
                if (c->fd < 0 || c->last_activity_usec != seen || c->in_len == before)
                        break;
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct conn *c = conn_ref(userdata);
        uint64_t timeout = (uint64_t) c->d->config->client_timeout * 1000000;

        if (c->inflight == 0 && now_usec() >= c->last_activity_usec + timeout) {
                conn_catch_up(c);
                conn_maybe_finish(c);
                if (c->fd < 0)
                        goto out;
                conn_update_events(c);
        }
        uint64_t now = now_usec();
        /* Work of ours in flight, or a whole frame waiting for its turn, is
         * not the client's idleness. A frame held back because the client
         * does not read its replies (CONN_MAX_OUTPUT waiting) waits on the
         * client: that is idleness, or it could hold the connection open
         * for good. */
        bool ours = c->inflight > 0 || (conn_has_frame(c) && c->out_len - c->out_off < CONN_MAX_OUTPUT);
        if (ours || now < c->last_activity_usec + timeout) {
                uint64_t next = ours ? now + timeout : c->last_activity_usec + timeout;
                (void) sd_event_source_set_time(s, next);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                goto out;
        }
        c->d->stats.connections_timed_out++;
        log_msg(LOG_INFO, "client %s: idle for %llds, closing", c->peer_desc,
                (long long) c->d->config->client_timeout);
        conn_close(c);
out:
        conn_unref(c);
        return 0;
}

int conn_new(struct daemon *d, int fd, struct conn **ret) {
        struct conn *c = calloc(1, sizeof(*c));
        int r;

        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->d = d;
        c->fd = fd;
        c->refs = 1;
        r = peer_from_socket(fd, &c->peer);
        if (r < 0)
                goto fail;
        snprintf(c->peer_desc, sizeof c->peer_desc, "pid=%d uid=%u", (int) c->peer.pid, (unsigned) c->peer.uid);
        c->last_activity_usec = now_usec();
        if (!d->conn_source) {
                r = conn_set_open(d);
                if (r < 0)
                        goto fail;
        }
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(d->conn_epoll, EPOLL_CTL_ADD, fd, &e) < 0) {
                r = -errno;
                goto fail;
        }
        c->events = EPOLLIN;
        c->events_set = true;
        r = sd_event_add_time(d->event, &c->timer, CLOCK_MONOTONIC,
                              c->last_activity_usec + (uint64_t) d->config->client_timeout * 1000000, 100000,
                              on_timer, c);
        if (r < 0)
                goto fail;
        c->next = d->conns;
        if (d->conns)
                d->conns->prev = c;
        d->conns = c;
        d->n_conns++;
        if (ret)
                *ret = c;
        return 0;
fail:
        if (c->events_set)
                (void) epoll_ctl(d->conn_epoll, EPOLL_CTL_DEL, fd, NULL);
        sd_event_source_disable_unref(c->timer);
        safe_close(fd);
        peer_done(&c->peer);
        free(c);
        return r;
}
