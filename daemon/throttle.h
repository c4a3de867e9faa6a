/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's failure backoff ([throttle], latchd.conf(5)), in the spirit of
 * Dovecot's auth penalty: each failed attempt raises a delay that doubles
 * per failure up to max_delay and decays with time.
 *
 * Keys: the end user's `remote` (IPv6 by /64, weighing a quarter) and
 * (remote, user) when the app passes remote, and always the user alone
 * (weighing half when a remote is known), so one attacker behind a web app
 * slows itself down, not every other user of the app, and rotating
 * addresses does not reset the count for a user.
 *
 * Parallel attempts are counted: an attempt in flight weighs like a failure
 * until it ends, so firing many attempts at once does not slip past the
 * delay (the weakness Dovecot documents for its penalty).
 *
 * Waiting happens on a loop timer, never on a worker. Loop thread only.
 */

#include <stdbool.h>
#include <stdint.h>

struct throttle;

struct throttle_ticket {
        struct throttle_entry *e[3]; /* remote, (remote, user), user */
};

int throttle_new(bool enabled, int64_t max_delay_sec, struct throttle **ret);
void throttle_free(struct throttle *t);
void throttle_configure(struct throttle *t, bool enabled, int64_t max_delay_sec);

/* Registers an attempt and returns how long (µs) it must wait before it
 * runs. Fills the ticket, which must be passed to throttle_done() (or
 * throttle_cancel()) exactly once. */
uint64_t throttle_begin(struct throttle *t, const char *user, const char *remote, uint64_t now_usec,
                        struct throttle_ticket *ret);

/* Ends an attempt: a failure raises the delay; a success clears the
 * (remote, user) key. */
void throttle_done(struct throttle *t, struct throttle_ticket *ticket, bool success, uint64_t now_usec);
/* Ends an attempt that never ran (e.g. refused as busy): no effect. */
void throttle_cancel(struct throttle *t, struct throttle_ticket *ticket);

/* Drops entries that have decayed to nothing; call periodically. */
void throttle_gc(struct throttle *t, uint64_t now_usec);
size_t throttle_size(const struct throttle *t);
