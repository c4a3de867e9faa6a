/* SPDX-License-Identifier: MIT */
/*
 * liblatch on an sd-event loop: validates every session named on the
 * command line at once, all in flight on one connection, from one thread,
 * and prints one line per session as its answer comes:
 *
 *   INDEX ok USER        or        INDEX ERROR-NAME
 *
 * Build: cc validate.c $(pkg-config --cflags --libs latch libsystemd)
 * Run:   LATCH_SOCKET=/run/latch/latchd.sock ./a.out SESSION...
 * Exits 0 when every answer came (whatever it said), 1 otherwise.
 */

#include <poll.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include <latch/latch.h>

struct app {
        latch_client *client;
        sd_event *event;
        sd_event_source *io;  /* watches the client's descriptor */
        sd_event_source *timer;
        uint64_t connection;  /* latch_client_connection_id() of io's descriptor */
        size_t answered, total;
};

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* The connection may be replaced (latchd restarted; a new descriptor,
 * maybe with the old number) and the events wanted change as requests go
 * and come: keep the io source in step after every latch_client_process(). */
static int watch(struct app *app) {
        int fd = -1, r;

        if (latch_client_pending(app->client) == 0)
                return sd_event_exit(app->event, 0);
        r = latch_client_fd(app->client, &fd);
        if (r != LATCH_OK) {
                fprintf(stderr, "latch: %s\n", latch_last_message(app->client));
                return sd_event_exit(app->event, 1);
        }
        uint32_t events = (uint32_t) latch_client_events(app->client);
        if (latch_client_connection_id(app->client) != app->connection) {
                app->io = sd_event_source_disable_unref(app->io);
                r = sd_event_add_io(app->event, &app->io, fd, events, on_io, app);
                if (r < 0)
                        return r;
                app->connection = latch_client_connection_id(app->client);
                return 0;
        }
        return sd_event_source_set_io_events(app->io, events);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct app *app = userdata;

        (void) s, (void) fd, (void) revents;
        latch_client_process(app->client); /* answers go to on_answer() */
        return watch(app);
}

struct request {
        struct app *app;
        size_t index;
};

static void on_answer(latch_client *client, int err, latch_reply *reply, void *userdata) {
        struct request *req = userdata;

        if (err == LATCH_OK)
                printf("%zu ok %s\n", req->index, latch_reply_string(reply, "user"));
        else
                printf("%zu %s\n", req->index, latch_error_name(err));
        (void) client;
        req->app->answered++;
        latch_reply_free(reply);
}

/* A stuck daemon must not hang us: past the deadline every request still
 * in flight fails with LATCH_ERR_TIMEOUT. */
static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct app *app = userdata;

        (void) s, (void) usec;
        latch_client_abort(app->client, LATCH_ERR_TIMEOUT);
        return sd_event_exit(app->event, 1);
}

int main(int argc, char **argv) {
        struct app app = { .total = (size_t) argc - 1 };
        struct request *reqs = calloc((size_t) argc, sizeof(*reqs));
        uint64_t now;
        int r, status = 1;

        if (!reqs || latch_client_new(NULL, &app.client) != LATCH_OK || sd_event_default(&app.event) < 0)
                return 1;
        for (int i = 1; i < argc; i++) {
                reqs[i] = (struct request) { .app = &app, .index = (size_t) i - 1 };
                if (latch_submit_validate(app.client, argv[i], NULL, on_answer, &reqs[i]) != LATCH_OK) {
                        fprintf(stderr, "latch: %s\n", latch_last_message(app.client));
                        goto out;
                }
        }
        sd_event_now(app.event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(app.event, &app.timer, CLOCK_MONOTONIC, now + 10 * UINT64_C(1000000), 0, on_timeout,
                              &app);
        if (r < 0 || watch(&app) < 0)
                goto out;
        r = sd_event_loop(app.event);
        status = r == 0 && app.answered == app.total ? 0 : 1;
out:
        sd_event_source_disable_unref(app.io);
        sd_event_source_disable_unref(app.timer);
        latch_client_free(app.client); /* before reqs: it may still call back */
        sd_event_unref(app.event);
        free(reqs);
        return status;
}
