/* SPDX-License-Identifier: MIT */
/*
 * Driving a client from an event loop: requests are queued with a callback
 * (latch_submit_*), written and answered as the connection's descriptor
 * becomes ready (latch_client_process), many in flight at once. latchd
 * answers a connection in request order, so the answers resolve the queue
 * from its head. A dropped connection resends idempotent requests once, as
 * the blocking calls do.
 */

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "client-internal.h"
#include "macro.h"
#include "wire.h"

struct pending {
        struct pending *next;
        struct client_request req; /* the frame; wiped once answered */
        size_t written;            /* bytes of req already sent */
        bool retried;
        latch_callback_t callback;
        void *userdata;
};

struct client_async {
        struct pending *head, *tail; /* in request order */
        struct pending *unsent;      /* first request not completely written, or NULL */
        size_t n_pending;
        uint8_t *in;                 /* received bytes not yet a whole frame */
        size_t in_len, in_cap;
        bool processing;
};

size_t client_async_pending(const latch_client *c) {
        return c && c->async ? c->async->n_pending : 0;
}

static void input_wipe(struct client_async *a) {
        if (a->in) {
                sodium_memzero(a->in, a->in_cap);
                free(a->in);
        }
        a->in = NULL;
        a->in_len = a->in_cap = 0;
}

static void pending_free(struct pending *p) {
        client_request_done(&p->req);
        free(p);
}

/* Takes the head of the queue off and answers it. The callback may submit
 * more requests (they go to the tail). */
static void complete_head(latch_client *c, int err, latch_reply *reply) {
        struct client_async *a = c->async;
        struct pending *p = a->head;

        a->head = p->next;
        if (!a->head)
                a->tail = NULL;
        if (a->unsent == p)
                a->unsent = p->next;
        a->n_pending--;
        latch_callback_t cb = p->callback;
        void *userdata = p->userdata;
        pending_free(p);
        if (cb)
                cb(c, err, reply, userdata);
        else
                latch_reply_free(reply);
}

/* The connection dropped: what was answered is done; requests not written
 * at all wait for the next connection (not a retry); idempotent ones that
 * were sent go once more; the others fail with `err`, as they may or may
 * not have taken effect. Order is kept. */
static void connection_lost(latch_client *c, int err, const char *why) {
        struct client_async *a = c->async;
        struct pending *list = a->head, *unsent = a->unsent;
        struct pending *keep_head = NULL, *keep_tail = NULL;
        bool before_unsent = true;

        client_disconnect(c);
        input_wipe(a);
        /* Detached, so that callbacks run below may submit new requests
         * (they queue behind the kept ones). n_pending stays above zero
         * meanwhile: submit() does not connect from inside a callback. */
        a->head = a->tail = a->unsent = NULL;

        while (list) {
                struct pending *p = list;
                list = p->next;
                p->next = NULL;
                if (p == unsent)
                        before_unsent = false;
                bool sent = before_unsent || p->written > 0;

                if (!sent || (p->req.idempotent && !p->retried && err == LATCH_ERR_DISCONNECTED)) {
                        if (sent)
                                p->retried = true;
                        p->written = 0;
                        if (keep_tail)
                                keep_tail->next = p;
                        else
                                keep_head = p;
                        keep_tail = p;
                        continue;
                }
                a->n_pending--;
                client_fail(c, err, "%s%s", why, p->retried ? " (also when retried)" : "");
                latch_callback_t cb = p->callback;
                void *userdata = p->userdata;
                pending_free(p);
                if (cb)
                        cb(c, c->last_error, NULL, userdata);
        }
        if (keep_tail) {
                keep_tail->next = a->head;
                if (!a->head)
                        a->tail = keep_tail;
                a->head = keep_head;
        }
        a->unsent = a->head;
}

static int async_ensure(latch_client *c) {
        if (!c->async) {
                c->async = calloc(1, sizeof(*c->async));
                if (!c->async)
                        return client_fail(c, LATCH_ERR_NO_MEMORY, NULL);
        }
        return LATCH_OK;
}

static int async_connect(latch_client *c) {
        uint64_t deadline = c->timeout_ms == 0 ? WIRE_NO_DEADLINE : wire_now_usec() + (uint64_t) c->timeout_ms * 1000;

        if (c->fd >= 0)
                return LATCH_OK;
        return client_ensure_connected(c, deadline);
}

void client_async_free(latch_client *c) {
        if (!c->async)
                return;
        struct client_async *a = c->async;
        while (a->head) {
                client_fail(c, LATCH_ERR_DISCONNECTED, "the client was freed before the answer");
                complete_head(c, LATCH_ERR_DISCONNECTED, NULL);
        }
        input_wipe(a);
        free(a);
        c->async = NULL;
}

_public_ int latch_client_fd(latch_client *client, int *ret_fd) {
        int r;

        assert_return(client && ret_fd, LATCH_ERR_INVALID_ARGUMENT);
        /* With nothing in flight a kept connection may be stale (closed by
         * latchd while idle): client_ensure_connected() replaces it. */
        if (client_async_pending(client) == 0)
                r = client_ensure_connected(client, client->timeout_ms == 0 ? WIRE_NO_DEADLINE :
                                                    wire_now_usec() + (uint64_t) client->timeout_ms * 1000);
        else
                r = async_connect(client);
        if (r != LATCH_OK)
                return r;
        *ret_fd = client->fd;
        return LATCH_OK;
}

_public_ int latch_client_events(const latch_client *client) {
        if (!client || client->fd < 0)
                return 0;
        const struct client_async *a = client->async;
        if (!a || a->n_pending == 0)
                return POLLIN; /* EOF of an idle connection */
        return POLLIN | (a->unsent ? POLLOUT : 0);
}

_public_ uint64_t latch_client_connection_id(const latch_client *client) {
        return client && client->fd >= 0 ? client->connection_id : 0;
}

_public_ size_t latch_client_pending(const latch_client *client) {
        return client_async_pending(client);
}

static int submit(latch_client *c, struct client_request *req, latch_callback_t callback, void *userdata) {
        int r = async_ensure(c);
        if (r != LATCH_OK) {
                client_request_done(req);
                return r;
        }
        struct pending *p = calloc(1, sizeof(*p));
        if (!p) {
                client_request_done(req);
                return client_fail(c, LATCH_ERR_NO_MEMORY, NULL);
        }
        p->req = *req;
        p->callback = callback;
        p->userdata = userdata;

        /* Connect now when nothing is in flight, so that the caller can
         * watch the descriptor right away. */
        if (c->async->n_pending == 0) {
                r = latch_client_fd(c, &(int) { -1 });
                if (r != LATCH_OK) {
                        pending_free(p);
                        return r;
                }
        }

        struct client_async *a = c->async;
        if (a->tail)
                a->tail->next = p;
        else
                a->head = p;
        a->tail = p;
        if (!a->unsent)
                a->unsent = p;
        a->n_pending++;
        client_succeed(c);
        return LATCH_OK;
}

_public_ int latch_submit_json(latch_client *client, const char *request_json, latch_callback_t callback,
                               void *userdata) {
        struct client_request req;
        int r;

        assert_return(client && request_json, LATCH_ERR_INVALID_ARGUMENT);

        size_t len = strlen(request_json);
        json_t *request = json_loadb(request_json, len, JSON_REJECT_DUPLICATES, NULL);
        const char *op = json_string_value(json_object_get(request, "op"));
        bool ok = json_is_object(request) && op;
        bool idempotent = ok && op_is_idempotent(op);
        json_wipe_strings(request);
        json_decref(request);
        if (!ok)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "request is not a JSON object with a string \"op\"");

        r = client_request_from_text(&req, request_json, len, idempotent);
        if (r != LATCH_OK) {
                client_request_done(&req);
                return client_fail(client, r, r == LATCH_ERR_INVALID_ARGUMENT ? "request too large" : NULL);
        }
        return submit(client, &req, callback, userdata);
}

_public_ int latch_submit_validate(latch_client *client, const char *session, const char *service,
                                   latch_callback_t callback, void *userdata) {
        struct client_request req;
        int r;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        if (!session)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "missing argument: session");
        client_request_begin(&req, "validate");
        client_request_add_string(&req, "session", session);
        client_request_add_string(&req, "service", service);
        r = client_request_end(&req);
        if (r != LATCH_OK) {
                client_request_done(&req);
                return client_fail(client, r, r == LATCH_ERR_INVALID_ARGUMENT ? "argument is not valid UTF-8" : NULL);
        }
        return submit(client, &req, callback, userdata);
}

/* Writes what the socket takes. Returns 0, or -errno when it failed. */
static int flush_output(latch_client *c) {
        struct client_async *a = c->async;

        while (a->unsent) {
                struct pending *p = a->unsent;
                ssize_t n = send(c->fd, p->req.buf + p->written, p->req.len - p->written, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                p->written += (size_t) n;
                if (p->written == p->req.len)
                        a->unsent = p->next;
        }
        return 0;
}

/* One whole frame's payload: the head's answer. Returns LATCH_OK, or
 * LATCH_ERR_PROTOCOL after failing everything (the stream is out of step). */
static int answer_head(latch_client *c, const char *data, size_t n) {
        json_t *resp = json_loadb(data, n, JSON_REJECT_DUPLICATES, NULL);
        json_t *ok = json_object_get(resp, "ok");

        if (!json_is_object(resp) || !json_is_boolean(ok)) {
                json_wipe_strings(resp);
                json_decref(resp);
                return LATCH_ERR_PROTOCOL;
        }
        if (json_is_false(ok)) {
                const char *code = json_string_value(json_object_get(resp, "error"));
                if (code)
                        client_fail_server(c, code, json_string_value(json_object_get(resp, "message")));
                else
                        client_fail(c, LATCH_ERR_PROTOCOL, "malformed error response (no \"error\" code)");
                json_wipe_strings(resp);
                json_decref(resp);
                complete_head(c, c->last_error, NULL);
                return LATCH_OK;
        }

        latch_reply *reply = calloc(1, sizeof(*reply));
        char *raw = reply ? malloc(n + 1) : NULL;
        if (!raw) {
                free(reply);
                json_wipe_strings(resp);
                json_decref(resp);
                client_fail(c, LATCH_ERR_NO_MEMORY, NULL);
                complete_head(c, LATCH_ERR_NO_MEMORY, NULL);
                return LATCH_OK;
        }
        memcpy(raw, data, n);
        raw[n] = '\0';
        reply->response = resp;
        reply->raw = raw;
        client_succeed(c);
        complete_head(c, LATCH_OK, reply);
        return LATCH_OK;
}

/* Reads what is there and answers every complete frame. Returns 0, -ECONNRESET
 * (EOF), -EPROTO (a frame we cannot use) or -errno. */
static int read_input(latch_client *c) {
        struct client_async *a = c->async;

        for (;;) {
                if (a->in_cap - a->in_len < 4096) {
                        size_t cap = a->in_cap ? a->in_cap * 2 : 16384;
                        uint8_t *in = malloc(cap);
                        if (!in)
                                return -ENOMEM;
                        if (a->in_len)
                                memcpy(in, a->in, a->in_len);
                        size_t len = a->in_len;
                        input_wipe(a);
                        a->in = in;
                        a->in_cap = cap;
                        a->in_len = len;
                }
                ssize_t n = recv(c->fd, a->in + a->in_len, a->in_cap - a->in_len, MSG_DONTWAIT);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                a->in_len += (size_t) n;

                size_t pos = 0;
                while (a->in_len - pos >= WIRE_HEADER) {
                        size_t len = wire_get_header(a->in + pos);
                        if (len == 0 || len > c->max_response || !a->head || a->head == a->unsent)
                                return -EPROTO;
                        if (a->in_len - pos - WIRE_HEADER < len)
                                break;
                        if (answer_head(c, (const char *) a->in + pos + WIRE_HEADER, len) != LATCH_OK)
                                return -EPROTO;
                        pos += WIRE_HEADER + len;
                        if (!c->async || c->fd < 0)
                                return 0; /* a callback dropped the connection */
                }
                if (pos > 0) {
                        memmove(a->in, a->in + pos, a->in_len - pos);
                        sodium_memzero(a->in + a->in_len - pos, pos);
                        a->in_len -= pos;
                }
        }
}

_public_ int latch_client_process(latch_client *client) {
        int r;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(!client->async || !client->async->processing, LATCH_ERR_INVALID_ARGUMENT);
        if (client->fd < 0 && client_async_pending(client) == 0)
                return LATCH_OK;
        r = async_ensure(client);
        if (r != LATCH_OK)
                return r;
        struct client_async *a = client->async;
        a->processing = true;

        for (unsigned attempt = 0;; attempt++) {
                if (client->fd < 0 && a->n_pending > 0) {
                        r = async_connect(client);
                        if (r != LATCH_OK) {
                                /* Nothing can be sent: every request fails. */
                                while (a->head)
                                        complete_head(client, r, NULL);
                                break;
                        }
                }
                if (client->fd < 0)
                        break;

                int e = flush_output(client);
                if (e == 0)
                        e = read_input(client);
                if (e == 0)
                        break;
                if (e == -EPROTO) {
                        connection_lost(client, LATCH_ERR_PROTOCOL, "malformed or unexpected response");
                        break;
                }
                if (e == -ENOMEM) {
                        connection_lost(client, LATCH_ERR_NO_MEMORY, "out of memory");
                        break;
                }
                /* Dropped (EOF, reset, EPIPE) or another I/O error. */
                bool dropped = e == -ECONNRESET || e == -EPIPE || e == -ECONNABORTED || e == -ENOTCONN;
                char why[256];
                snprintf(why, sizeof why, "connection to %s lost before the answer%s%s", client->socket_path,
                         dropped ? "" : ": ", dropped ? "" : strerror(-e));
                connection_lost(client, LATCH_ERR_DISCONNECTED, why);
                if (a->n_pending == 0 || attempt > 0)
                        break;
                /* Resent requests go out at once on a new connection. */
        }

        a->processing = false;
        return LATCH_OK;
}

_public_ void latch_client_abort(latch_client *client, int err) {
        if (!client || !client->async)
                return;
        if (err == LATCH_OK)
                err = LATCH_ERR_DISCONNECTED;
        client_disconnect(client);
        input_wipe(client->async);
        while (client->async->head) {
                client_fail(client, err, "request abandoned");
                complete_head(client, err, NULL);
        }
}
