/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A stand-in for latchd in the client tests: a thread listening on a Unix
 * socket in a fresh temporary folder that answers each request it reads
 * with the next scripted step, and records what it saw.
 */

#include <stdbool.h>
#include <stddef.h>

struct fake_step {
        const char *reply;   /* JSON text sent as one frame; NULL: none */
        const void *raw;     /* then these bytes as they are (no framing) */
        size_t raw_len;
        bool split;          /* write everything one byte at a time */
        bool close;          /* then close the connection */
        bool hang;           /* answer nothing; wait until the client goes */
};

struct fake_server;

/* Starts serving `steps` (copied by pointer: keep them alive). Aborts the
 * test on failure. */
struct fake_server *fake_server_start(const struct fake_step *steps, size_t n_steps);
const char *fake_server_path(const struct fake_server *fs);
/* Stops the thread (closing everything) and frees; the counters below must
 * be read before. */
void fake_server_stop(struct fake_server *fs);

/* Waits until the server has handled `n` steps and closed `closes`
 * connections (a poll loop with a generous upper bound; not a timing
 * assertion). */
void fake_server_wait(struct fake_server *fs, unsigned steps, unsigned closes);

unsigned fake_server_connections(struct fake_server *fs);
unsigned fake_server_requests(struct fake_server *fs);
/* The text of request i (0-based), borrowed; NULL when there is none. */
const char *fake_server_request(struct fake_server *fs, unsigned i);
