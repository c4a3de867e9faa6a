/* SPDX-License-Identifier: MIT */
/*
 * conn.c over a socketpair: one end is the connection latchd serves, the
 * other the client. The event loop is turned by hand, so what happens in a
 * turn (and between turns) is exact: framing, reply order, the per-turn
 * fairness cap, the frame and output limits, half-close, and a stall past
 * client_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "conf.h"
#include "conn.h"
#include "daemon.h"
#include "frame.h"

struct fixture {
        struct daemon d;
        struct conn *c;
        int client;    /* the client's end, blocking */
        uint8_t *in;   /* bytes the client received, not yet parsed */
        size_t in_len, in_cap;
        bool eof;      /* the client read end-of-file */
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        int sv[2];

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->d.event), 0);
        assert_int_equal(config_default(&f->d.config), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(conn_new(&f->d, sv[0], &f->c), 0);
        f->client = sv[1];
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        while (f->d.conns)
                conn_close(f->d.conns);
        conn_set_close(&f->d);
        close(f->client);
        config_free(f->d.config);
        sd_event_unref(f->d.event);
        free(f->in);
        free(f);
        return 0;
}

/* One turn of the loop (sd-event dispatches one source per turn). */
static void turn(struct fixture *f) { assert_true(sd_event_run(f->d.event, 0) >= 0); }

static void send_bytes(struct fixture *f, const void *p, size_t n) {
        assert_int_equal(send(f->client, p, n, MSG_NOSIGNAL), (ssize_t) n);
}

static size_t put_frame(uint8_t *out, const char *json) {
        size_t n = strlen(json);
        wire_put_header(out, (uint32_t) n);
        memcpy(out + WIRE_HEADER, json, n);
        return WIRE_HEADER + n;
}

static void send_frame(struct fixture *f, const char *json) {
        uint8_t buf[4096];
        send_bytes(f, buf, put_frame(buf, json));
}

/* Sends hello frames with ids first..first+n-1 in one send(): many small
 * sends would each cost a socket buffer's worth of overhead. */
static void send_hellos(struct fixture *f, int first, int n) {
        uint8_t *buf = malloc((size_t) n * 64), *p = buf;
        char json[64];

        assert_non_null(buf);
        for (int i = first; i < first + n; i++) {
                snprintf(json, sizeof json, "{\"op\": \"hello\", \"id\": %d}", i);
                p += put_frame(p, json);
        }
        send_bytes(f, buf, (size_t) (p - buf));
        free(buf);
}

/* Reads what the client can read without waiting. */
static void client_drain(struct fixture *f) {
        for (;;) {
                if (f->in_cap - f->in_len < 65536) {
                        f->in_cap = f->in_cap * 2 + 65536;
                        f->in = realloc(f->in, f->in_cap);
                        assert_non_null(f->in);
                }
                ssize_t k = recv(f->client, f->in + f->in_len, f->in_cap - f->in_len, MSG_DONTWAIT);
                if (k < 0 && errno == EAGAIN)
                        return;
                if (k < 0 && errno == ECONNRESET) {
                        f->eof = true;
                        return;
                }
                assert_true(k >= 0);
                if (k == 0) {
                        f->eof = true;
                        return;
                }
                f->in_len += (size_t) k;
        }
}

/* Takes the next whole reply the client holds; NULL if there is none. */
static json_t *next_reply(struct fixture *f) {
        uint32_t n = 0;

        client_drain(f);
        if (frame_peek(f->in, f->in_len, UINT32_MAX, &n) != FRAME_OK)
                return NULL;
        json_t *o = json_loadb((const char *) f->in + WIRE_HEADER, n, 0, NULL);
        assert_non_null(o);
        memmove(f->in, f->in + WIRE_HEADER + n, f->in_len - WIRE_HEADER - n);
        f->in_len -= WIRE_HEADER + n;
        return o;
}

/* Turns the loop until a reply comes (bounded: every step here is local). */
static json_t *await_reply(struct fixture *f) {
        for (unsigned i = 0; i < 10000; i++) {
                json_t *o = next_reply(f);
                if (o)
                        return o;
                (void) sd_event_run(f->d.event, 1000);
        }
        fail_msg("no reply");
        return NULL;
}

static void await_eof(struct fixture *f) {
        for (unsigned i = 0; i < 10000 && !f->eof; i++) {
                (void) sd_event_run(f->d.event, 1000);
                client_drain(f);
        }
        assert_true(f->eof);
}

static int64_t reply_id(json_t *o) { return json_integer_value(json_object_get(o, "id")); }

static const char *err_code(json_t *o) {
        json_t *e = json_object_get(o, "error");
        return e ? json_string_value(e) : "";
}

/* A frame split anywhere, the header too, is still one request. */
static void test_framing(void **state) {
        struct fixture *f = *state;
        uint8_t buf[256];
        size_t n = put_frame(buf, "{\"op\": \"hello\", \"id\": 7}");

        for (size_t i = 0; i < n; i++) {
                send_bytes(f, buf + i, 1);
                turn(f);
        }
        json_t *o = await_reply(f);
        assert_int_equal(reply_id(o), 7);
        assert_true(json_is_true(json_object_get(o, "ok")));
        json_decref(o);

        /* An empty frame is refused, and the stream stays in sync. */
        memset(buf, 0, WIRE_HEADER);
        send_bytes(f, buf, WIRE_HEADER);
        send_frame(f, "{\"op\": \"hello\", \"id\": 8}");
        o = await_reply(f);
        assert_string_equal(err_code(o), "bad_request");
        json_decref(o);
        o = await_reply(f);
        assert_int_equal(reply_id(o), 8);
        json_decref(o);

        /* Bad JSON and an unknown op take their place in the order. */
        send_frame(f, "{not json");
        send_frame(f, "{\"op\": \"nope\", \"id\": 9}");
        o = await_reply(f);
        assert_string_equal(err_code(o), "bad_request");
        json_decref(o);
        o = await_reply(f);
        assert_int_equal(reply_id(o), 9);
        assert_string_equal(err_code(o), "unknown_op");
        json_decref(o);
}

/* Pipelined frames are answered in order, at most 32 per turn. */
static void test_order_and_fairness(void **state) {
        struct fixture *f = *state;
        enum { N = 300 };

        send_hellos(f, 0, N);
        /* All 300 are in the socket; one turn takes 32 of them. */
        turn(f);
        int got = 0;
        for (json_t *o; (o = next_reply(f)); got++) {
                assert_int_equal(reply_id(o), got);
                json_decref(o);
        }
        assert_int_equal(got, 32);
        while (got < N) {
                json_t *o = await_reply(f);
                assert_int_equal(reply_id(o), got++);
                json_decref(o);
        }
}

/* A frame over max_frame is answered, then the connection closes: what
 * follows cannot be trusted to be in sync. */
static void test_too_large(void **state) {
        struct fixture *f = *state;
        uint8_t hdr[WIRE_HEADER];

        send_frame(f, "{\"op\": \"hello\", \"id\": 1}");
        wire_put_header(hdr, f->d.config->max_frame + 1);
        send_bytes(f, hdr, sizeof hdr);
        json_t *o = await_reply(f);
        assert_int_equal(reply_id(o), 1);
        json_decref(o);
        o = await_reply(f);
        assert_string_equal(err_code(o), "too_large");
        json_decref(o);
        await_eof(f);
        assert_null(f->d.conns);
}

/* A client that sends and never reads: latchd stops reading it once about
 * CONN_MAX_OUTPUT of replies wait, and loses nothing when it reads again. */
static void test_output_limit(void **state) {
        struct fixture *f = *state;
        char json[64];
        uint8_t buf[64];
        int sent = 0;

        assert_int_equal(fcntl(f->client, F_SETFL, O_NONBLOCK), 0);
        for (unsigned stuck = 0; stuck < 50;) {
                snprintf(json, sizeof json, "{\"op\": \"hello\", \"id\": %d}", sent);
                size_t n = put_frame(buf, json);
                ssize_t k = send(f->client, buf, n, MSG_NOSIGNAL);
                if (k == (ssize_t) n) {
                        sent++;
                        stuck = 0;
                        continue;
                }
                assert_true(k < 0 && errno == EAGAIN); /* whole small frames, or nothing */
                turn(f);
                stuck++;
        }
        /* Both socket buffers are full and latchd has stopped taking frames. */
        assert_non_null(f->d.conns);
        assert_true(f->c->out_len - f->c->out_off >= CONN_MAX_OUTPUT / 2);
        assert_true(f->c->out_len - f->c->out_off < CONN_MAX_OUTPUT + 4096);
        assert_int_equal(fcntl(f->client, F_SETFL, 0), 0);
        for (int i = 0; i < sent; i++) {
                json_t *o = await_reply(f);
                assert_int_equal(reply_id(o), i);
                json_decref(o);
        }
}

/* After shutdown(SHUT_WR), every whole frame sent before it is answered in
 * order, then the connection closes; a partial frame at the end is dropped. */
static void test_half_close(void **state) {
        struct fixture *f = *state;
        enum { N = 1000 };
        uint8_t buf[64];

        send_hellos(f, 0, N);
        size_t n = put_frame(buf, "{\"op\": \"hello\", \"id\": -1}");
        send_bytes(f, buf, n - 2);
        assert_int_equal(shutdown(f->client, SHUT_WR), 0);
        for (int i = 0; i < N; i++) {
                json_t *o = await_reply(f);
                assert_int_equal(reply_id(o), i);
                json_decref(o);
        }
        await_eof(f);
        assert_int_equal(f->in_len, 0);
        assert_null(f->d.conns);
}

/* Half-closed right after whole frames: nothing is "inside a frame". */
static void test_half_close_exact(void **state) {
        struct fixture *f = *state;

        send_frame(f, "{\"op\": \"hello\", \"id\": 1}");
        send_frame(f, "{\"op\": \"hello\", \"id\": 2}");
        assert_int_equal(shutdown(f->client, SHUT_WR), 0);
        json_t *o = await_reply(f);
        assert_int_equal(reply_id(o), 1);
        json_decref(o);
        o = await_reply(f);
        assert_int_equal(reply_id(o), 2);
        json_decref(o);
        await_eof(f);
}

/* The loop stalls past client_timeout (here: it is simply not turned) while
 * the client asks: the request is answered, not taken for idleness. A
 * client that asked nothing is dropped at the same turn. */
static void test_stall_past_client_timeout(void **state) {
        struct fixture *f = *state;
        int sv[2];
        struct conn *idle = NULL;

        f->d.config->client_timeout = 1;
        /* Re-arm the timer for the shorter timeout, as a fresh connection. */
        while (f->d.conns)
                conn_close(f->d.conns);
        close(f->client);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(conn_new(&f->d, sv[0], &f->c), 0);
        f->client = sv[1];
        int other[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), 0);
        assert_int_equal(fcntl(other[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(conn_new(&f->d, other[0], &idle), 0);

        /* When both are due in one turn, sd-event may run the idle timer
         * before the connections' input handler: make it so here, every
         * time. */
        assert_int_equal(sd_event_source_set_priority(f->d.conn_source, SD_EVENT_PRIORITY_IDLE), 0);
        send_frame(f, "{\"op\": \"hello\", \"id\": 5}");
        usleep(1500 * 1000);
        json_t *o = await_reply(f);
        assert_int_equal(reply_id(o), 5);
        json_decref(o);
        /* The idle one goes; the one that asked stays (until it idles). */
        char c;
        struct pollfd p = { .fd = other[1], .events = POLLIN };
        for (unsigned i = 0; i < 10000 && poll(&p, 1, 0) == 0; i++)
                (void) sd_event_run(f->d.event, 1000);
        assert_int_equal(recv(other[1], &c, 1, MSG_DONTWAIT), 0);
        assert_non_null(f->d.conns);
        assert_ptr_equal(f->d.conns, f->c);
        assert_int_equal(f->d.stats.connections_timed_out, 1);
        close(other[1]);
}

/* A client that stops reading its replies: once latchd stops taking its
 * frames (the replies fill CONN_MAX_OUTPUT), the frames left in the buffer
 * wait on the client, not on latchd. It is dropped after client_timeout
 * like any idle client, not kept for as long as it cares to wait. */
static void test_unread_replies_are_idleness(void **state) {
        struct fixture *f = *state;
        char json[64];
        uint8_t buf[64];
        int sv[2];

        f->d.config->client_timeout = 1;
        /* Re-arm the timer for the shorter timeout, as a fresh connection. */
        while (f->d.conns)
                conn_close(f->d.conns);
        close(f->client);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(conn_new(&f->d, sv[0], &f->c), 0);
        f->client = sv[1];

        assert_int_equal(fcntl(f->client, F_SETFL, O_NONBLOCK), 0);
        for (unsigned stuck = 0, sent = 0; stuck < 50;) {
                snprintf(json, sizeof json, "{\"op\": \"hello\", \"id\": %u}", sent);
                size_t n = put_frame(buf, json);
                ssize_t k = send(f->client, buf, n, MSG_NOSIGNAL);
                if (k == (ssize_t) n) {
                        sent++;
                        stuck = 0;
                        continue;
                }
                assert_true(k < 0 && errno == EAGAIN);
                turn(f);
                stuck++;
        }
        assert_non_null(f->d.conns);
        assert_true(f->c->out_len - f->c->out_off >= CONN_MAX_OUTPUT / 2);

        /* Well past client_timeout, the loop turning all along. */
        for (unsigned i = 0; i < 30 && f->d.conns; i++) {
                usleep(100 * 1000);
                (void) sd_event_run(f->d.event, 1000);
        }
        assert_null(f->d.conns);
        assert_int_equal(f->d.stats.connections_timed_out, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_order_and_fairness, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_half_close_exact, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stall_past_client_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unread_replies_are_idleness, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
