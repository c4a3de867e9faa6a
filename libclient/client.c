/* SPDX-License-Identifier: MIT */
/*
 * The client handle and the call engine: connecting, framing (4-byte
 * big-endian length + JSON object), deadlines, and the single retry of
 * idempotent requests whose connection dropped.
 */

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "client-internal.h"
#include "config.h"
#include "macro.h"
#include "wire.h"

/* ------------------------------------------------------------------------ */
/* Handle */

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_client *, latch_client_free);

_public_ int latch_client_new(const char *socket_path, latch_client **ret) {
        assert_return(ret, LATCH_ERR_INVALID_ARGUMENT);

        if (!socket_path) {
                const char *e = secure_getenv("LATCH_SOCKET");
                socket_path = e && *e ? e : LATCH_SOCKET_PATH;
        }
        assert_return(*socket_path, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(strlen(socket_path) < sizeof(((struct sockaddr_un *) NULL)->sun_path), LATCH_ERR_INVALID_ARGUMENT);

        _cleanup_(latch_client_freep) latch_client *c = calloc(1, sizeof(*c));
        if (!c)
                return LATCH_ERR_NO_MEMORY;
        c->fd = -1;
        c->socket_path = strdup(socket_path);
        if (!c->socket_path)
                return LATCH_ERR_NO_MEMORY;
        c->timeout_ms = LATCH_DEFAULT_TIMEOUT_MS;
        c->max_response = LATCH_DEFAULT_MAX_RESPONSE;
        client_succeed(c);

        *ret = TAKE_PTR(c);
        return LATCH_OK;
}

void client_disconnect(latch_client *c) {
        c->fd = safe_close(c->fd);
}

_public_ void latch_client_free(latch_client *client) {
        if (!client)
                return;
        client_async_free(client);
        client_disconnect(client);
        free(client->socket_path);
        free(client->last_code);
        latch_reply_free(client->last_challenge);
        free(client);
}

_public_ const latch_reply *latch_last_challenge(const latch_client *client) {
        assert_return(client, NULL);
        return client->last_challenge;
}

_public_ const char *latch_client_socket_path(const latch_client *client) {
        assert_return(client, NULL);
        return client->socket_path;
}

_public_ int latch_client_set_timeout(latch_client *client, uint32_t timeout_ms) {
        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(timeout_ms <= INT32_MAX, LATCH_ERR_INVALID_ARGUMENT);
        client->timeout_ms = timeout_ms;
        return LATCH_OK;
}

_public_ int latch_client_set_max_response(latch_client *client, size_t max) {
        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(max > 0 && max <= UINT32_MAX, LATCH_ERR_INVALID_ARGUMENT);
        client->max_response = max;
        return LATCH_OK;
}

/* ------------------------------------------------------------------------ */
/* Deadlines */

/* A deadline (wire.h: CLOCK_MONOTONIC microseconds) for one call. */
static uint64_t deadline_from_now(const latch_client *c) {
        return c->timeout_ms == 0 ? WIRE_NO_DEADLINE : wire_now_usec() + (uint64_t) c->timeout_ms * 1000;
}

/* Milliseconds left: -1 forever, 0 when expired. */
static int deadline_left(uint64_t deadline) {
        if (deadline == WIRE_NO_DEADLINE)
                return -1;
        uint64_t now = wire_now_usec();
        return now >= deadline ? 0 : (int) MIN((deadline - now) / 1000, (uint64_t) INT32_MAX);
}

/* ------------------------------------------------------------------------ */
/* Connecting */

static int client_open(latch_client *c, uint64_t deadline) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(c->socket_path);
        socklen_t salen;

        memcpy(sa.sun_path, c->socket_path, n);
        if (sa.sun_path[0] == '@') {
                /* Abstract namespace: the name is the bytes after the NUL. */
                sa.sun_path[0] = '\0';
                salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        } else
                salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return client_fail(c, errno == ENOMEM || errno == ENOBUFS ? LATCH_ERR_NO_MEMORY : LATCH_ERR_UNREACHABLE,
                                   "cannot create a socket: %s", strerror(errno));

        /* A Unix stream connect blocks only while the listener's backlog is
         * full, and then honours SO_SNDTIMEO; all later I/O uses
         * MSG_DONTWAIT and poll(). */
        int left = deadline_left(deadline);
        if (left == 0)
                return client_fail(c, LATCH_ERR_TIMEOUT, "timed out connecting to %s", c->socket_path);
        if (left > 0) {
                struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }

        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, salen) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return client_fail(c, LATCH_ERR_TIMEOUT, "timed out connecting to %s (daemon busy)",
                                           c->socket_path);
                return client_fail(c, LATCH_ERR_UNREACHABLE, "cannot connect to %s: %s", c->socket_path,
                                   strerror(errno));
        }

        c->fd = TAKE_FD(fd);
        c->connection_id++;
        return LATCH_OK;
}

/* A kept connection may have been closed by latchd meanwhile (idle
 * timeout). Nothing is outstanding between calls, so anything readable
 * means EOF, a reset or junk: start afresh. This is not a retry: the new
 * request has not been sent anywhere yet. */
static bool client_connection_stale(latch_client *c) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };

        return poll(&p, 1, 0) != 0;
}

int client_ensure_connected(latch_client *c, uint64_t deadline) {
        if (c->fd >= 0 && client_connection_stale(c))
                client_disconnect(c);
        if (c->fd >= 0)
                return LATCH_OK;
        return client_open(c, deadline);
}

_public_ int latch_client_connect(latch_client *client) {
        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);

        int r = client_ensure_connected(client, deadline_from_now(client));
        if (r == LATCH_OK)
                client_succeed(client);
        return r;
}

/* ------------------------------------------------------------------------ */
/* Framing */

static bool errno_is_disconnect(int r) {
        return r == -ECONNRESET || r == -EPIPE || r == -ECONNABORTED || r == -ENOTCONN;
}

void json_wipe_strings(json_t *v) {
        const char *key;
        json_t *item;
        size_t i;

        if (json_is_string(v))
                sodium_memzero((char *) json_string_value(v), json_string_length(v));
        else if (json_is_object(v)) {
                json_object_foreach(v, key, item)
                        json_wipe_strings(item);
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, item)
                        json_wipe_strings(item);
        }
}

/* Copies latchd's message, blanking control characters so a hostile or
 * broken daemon cannot write escape sequences to a terminal through us: C0
 * and DEL, and the C1 controls U+0080-U+009F (0xc2 0x80-0x9f in UTF-8,
 * which a UTF-8 terminal obeys as it does ESC [ for U+009B). */
void client_fail_server(latch_client *c, const char *code, const char *message) {
        client_fail(c, latch_error_from_code(code), "%s", message ? message : latch_strerror(latch_error_from_code(code)));
        for (unsigned char *p = (unsigned char *) c->last_message; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        *p = ' ';
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        p[0] = p[1] = ' ';
                        p++;
                }
        c->last_code = strdup(code); /* NULL on ENOMEM: only a convenience is lost */
}

/* A received frame's payload, wiped when it goes out of scope (replies may
 * hold session ids and tokens). */
struct frame_buf {
        char *data; /* len bytes and a NUL */
        size_t len;
};

static void frame_buf_wipe(struct frame_buf *b) {
        if (b->data) {
                sodium_memzero(b->data, b->len);
                free(b->data);
        }
}

static void json_wipe_decref(json_t *v) {
        json_wipe_strings(v);
        json_decref(v);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(json_t *, json_wipe_decref);

/* An I/O failure of an attempt: the connection goes; a dropped one is
 * -ECONNRESET (nothing recorded, the caller may retry), anything else is
 * recorded on the handle. */
static int client_fail_io(latch_client *c, int r, bool sending) {
        client_disconnect(c);
        if (r == -ETIMEDOUT)
                return client_fail(c, LATCH_ERR_TIMEOUT, "timed out %s %s", sending ? "sending to" : "waiting for",
                                   c->socket_path);
        if (errno_is_disconnect(r))
                return -ECONNRESET;
        return client_fail(c, LATCH_ERR_DISCONNECTED, "cannot %s %s: %s", sending ? "send to" : "read from",
                           c->socket_path, strerror(-r));
}

/* Outcome of one attempt: LATCH_OK, an error recorded on the handle, or
 * -ECONNRESET (dropped before a complete answer; nothing recorded). */
static int client_attempt(latch_client *c, const struct client_request *req, uint64_t deadline, latch_reply **ret) {
        _cleanup_(frame_buf_wipe) struct frame_buf raw = {};
        _cleanup_(json_wipe_decrefp) json_t *resp = NULL;
        int r;

        r = client_ensure_connected(c, deadline);
        if (r != LATCH_OK)
                return r;

        r = wire_send_all(c->fd, req->buf, req->len, deadline);
        if (r < 0)
                return client_fail_io(c, r, true);

        uint8_t hdr[WIRE_HEADER];
        r = wire_recv_all(c->fd, hdr, sizeof(hdr), deadline);
        if (r < 0)
                return client_fail_io(c, r, false);

        size_t n = wire_get_header(hdr);
        if (n == 0) {
                client_disconnect(c);
                return client_fail(c, LATCH_ERR_PROTOCOL, "empty response frame");
        }
        if (n > c->max_response) {
                /* The rest of the frame is never read: the connection is
                 * out of step and goes. */
                client_disconnect(c);
                return client_fail(c, LATCH_ERR_PROTOCOL, "response of %zu bytes exceeds the limit of %zu bytes",
                                   n, c->max_response);
        }

        raw.data = malloc(n + 1);
        if (!raw.data) {
                client_disconnect(c);
                return client_fail(c, LATCH_ERR_NO_MEMORY, NULL);
        }
        raw.len = n;
        r = wire_recv_all(c->fd, raw.data, n, deadline);
        if (r < 0)
                return client_fail_io(c, r, false);
        raw.data[n] = '\0';

        json_error_t jerr;
        resp = json_loadb(raw.data, n, JSON_REJECT_DUPLICATES, &jerr);
        json_t *ok = json_object_get(resp, "ok");
        if (!json_is_object(resp) || !json_is_boolean(ok)) {
                /* After a frame we cannot read, we cannot trust the next. */
                client_disconnect(c);
                return client_fail(c, LATCH_ERR_PROTOCOL, "malformed response (not a JSON object with \"ok\")");
        }

        if (json_is_false(ok)) {
                const char *code = json_string_value(json_object_get(resp, "error"));
                const char *message = json_string_value(json_object_get(resp, "message"));

                if (code) {
                        client_fail_server(c, code, message);
                        if (c->last_error == LATCH_ERR_CHALLENGE) {
                                latch_reply *reply = calloc(1, sizeof(*reply));
                                if (reply) {
                                        reply->response = TAKE_PTR(resp);
                                        reply->raw = TAKE_PTR(raw.data);
                                        c->last_challenge = reply;
                                }
                        }
                } else
                        client_fail(c, LATCH_ERR_PROTOCOL, "malformed error response (no \"error\" code)");
                return c->last_error;
        }

        if (ret) {
                latch_reply *reply = calloc(1, sizeof(*reply));
                if (!reply)
                        return client_fail(c, LATCH_ERR_NO_MEMORY, NULL);
                reply->response = TAKE_PTR(resp);
                reply->raw = TAKE_PTR(raw.data);
                *ret = reply;
        }
        client_succeed(c);
        return LATCH_OK;
}

int client_call(latch_client *c, struct client_request *req, latch_reply **ret_reply) {
        uint64_t deadline = deadline_from_now(c);
        int r;

        /* The connection carries submitted requests whose answers are
         * still to come: a blocking call would read one of them. */
        if (client_async_pending(c) > 0) {
                client_request_done(req);
                return client_fail(c, LATCH_ERR_INVALID_ARGUMENT,
                                   "requests submitted with latch_submit_*() are in flight on this client");
        }

        r = client_attempt(c, req, deadline, ret_reply);
        if (r == -ECONNRESET && req->idempotent)
                /* Once only, on a fresh connection (the old one is closed). */
                r = client_attempt(c, req, deadline, ret_reply);
        if (r == -ECONNRESET)
                r = client_fail(c, LATCH_ERR_DISCONNECTED, "connection to %s lost before the answer%s", c->socket_path,
                                req->idempotent ? " (also when retried)" : "");

        client_request_done(req);
        return r;
}
