/* SPDX-License-Identifier: MIT */
/*
 * liblatch's event-loop API against the scripted fake latchd: requests in
 * flight together, answered in order; blocking calls refused meanwhile;
 * callbacks that submit more; abort; split answers.
 */

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake-server.h"
#include "latch/latch.h"

#define OK_ALICE "{\"ok\":true,\"user\":\"alice\"}"
#define NO_SESSION "{\"ok\":false,\"error\":\"invalid_session\",\"message\":\"no such session\"}"

struct seen {
        int n;
        int err[16];
        char user[16][16];
        latch_client *resubmit_on; /* submit one more from the first callback */
};

static void on_answer(latch_client *c, int err, latch_reply *reply, void *userdata) {
        struct seen *s = userdata;

        assert_true(s->n < 16);
        s->err[s->n] = err;
        if (reply) {
                const char *u = latch_reply_string(reply, "user");
                strncpy(s->user[s->n], u ? u : "", sizeof(s->user[0]) - 1);
                latch_reply_free(reply);
        } else
                assert_int_not_equal(err, LATCH_OK);
        s->n++;
        if (s->resubmit_on && s->n == 1) {
                assert_int_equal(latch_submit_validate(c, "again", NULL, on_answer, s), LATCH_OK);
                /* Not from inside a callback. */
                assert_int_equal(latch_client_process(c), LATCH_ERR_INVALID_ARGUMENT);
        }
}

/* Runs the loop until nothing is pending (bounded: the fake answers at
 * once; the bound only stops a broken build from hanging). */
static void run(latch_client *c) {
        for (int i = 0; i < 10000 && latch_client_pending(c) > 0; i++) {
                int fd = -1;
                assert_int_equal(latch_client_fd(c, &fd), LATCH_OK);
                struct pollfd p = { .fd = fd, .events = (short) latch_client_events(c) };
                assert_true(poll(&p, 1, 5000) >= 0);
                assert_int_equal(latch_client_process(c), LATCH_OK);
        }
        assert_int_equal(latch_client_pending(c), 0);
}

static void test_in_flight_in_order(void **state) {
        const struct fake_step steps[] = {
                { .reply = OK_ALICE }, { .reply = NO_SESSION }, { .reply = OK_ALICE, .split = true },
                { .reply = "{\"ok\":true,\"user\":\"bob\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 4);
        latch_client *c = NULL;
        struct seen s = {};
        latch_reply *r = NULL;

        assert_int_equal(latch_client_new(fake_server_path(fs), &c), LATCH_OK);
        s.resubmit_on = c;
        assert_int_equal(latch_submit_validate(c, "s1", NULL, on_answer, &s), LATCH_OK);
        assert_int_equal(latch_submit_json(c, "{\"op\":\"validate\",\"session\":\"s2\"}", on_answer, &s), LATCH_OK);
        assert_int_equal(latch_submit_validate(c, "s3", "svc", on_answer, &s), LATCH_OK);
        assert_int_equal(latch_client_pending(c), 3);
        assert_true(latch_client_events(c) & POLLOUT);
        assert_int_not_equal(latch_client_connection_id(c), 0);

        /* A blocking call would read an answer meant for a callback. */
        assert_int_equal(latch_hello(c, &r), LATCH_ERR_INVALID_ARGUMENT);
        assert_null(r);
        assert_int_equal(latch_submit_json(c, "[1]", on_answer, &s), LATCH_ERR_INVALID_ARGUMENT);

        run(c);
        assert_int_equal(s.n, 4);
        assert_int_equal(s.err[0], LATCH_OK);
        assert_string_equal(s.user[0], "alice");
        assert_int_equal(s.err[1], LATCH_ERR_INVALID_SESSION);
        assert_int_equal(s.err[2], LATCH_OK);
        assert_int_equal(s.err[3], LATCH_OK);
        assert_string_equal(s.user[3], "bob");
        assert_int_equal(fake_server_connections(fs), 1);
        assert_non_null(strstr(fake_server_request(fs, 2), "\"service\":\"svc\""));
        assert_non_null(strstr(fake_server_request(fs, 3), "\"again\""));

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_abort_and_free(void **state) {
        const struct fake_step steps[] = { { .hang = true } };
        struct fake_server *fs = fake_server_start(steps, 1);
        latch_client *c = NULL;
        struct seen s = {};

        assert_int_equal(latch_client_new(fake_server_path(fs), &c), LATCH_OK);
        assert_int_equal(latch_submit_validate(c, "s1", NULL, on_answer, &s), LATCH_OK);
        assert_int_equal(latch_client_process(c), LATCH_OK);
        latch_client_abort(c, LATCH_ERR_TIMEOUT);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.err[0], LATCH_ERR_TIMEOUT);
        assert_int_equal(latch_client_pending(c), 0);
        assert_int_equal(latch_client_connection_id(c), 0);

        /* Freeing the client answers what is left. */
        assert_int_equal(latch_submit_validate(c, "s2", NULL, on_answer, &s), LATCH_OK);
        latch_client_free(c);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.err[1], LATCH_ERR_DISCONNECTED);
        fake_server_stop(fs);
}

static void test_non_idempotent_not_resent(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .reply = OK_ALICE } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = NULL;
        struct seen s = {};

        assert_int_equal(latch_client_new(fake_server_path(fs), &c), LATCH_OK);
        assert_int_equal(latch_submit_json(c, "{\"op\":\"logout\",\"session\":\"s\"}", on_answer, &s), LATCH_OK);
        run(c);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.err[0], LATCH_ERR_DISCONNECTED);
        assert_int_equal(fake_server_requests(fs), 1);
        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_idempotent_resent_once(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .reply = OK_ALICE } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = NULL;
        struct seen s = {};

        assert_int_equal(latch_client_new(fake_server_path(fs), &c), LATCH_OK);
        assert_int_equal(latch_submit_validate(c, "s", NULL, on_answer, &s), LATCH_OK);
        run(c);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.err[0], LATCH_OK);
        assert_int_equal(fake_server_connections(fs), 2);
        latch_client_free(c);
        fake_server_stop(fs);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_in_flight_in_order),
                cmocka_unit_test(test_abort_and_free),
                cmocka_unit_test(test_non_idempotent_not_resent),
                cmocka_unit_test(test_idempotent_resent_once),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
