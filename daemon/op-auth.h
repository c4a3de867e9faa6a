/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Re-authentication for other ops (op-auth.c): the auth stack of a service
 * runs for a user as `authenticate` runs it (throttle, conversation with
 * `challenge` and `respond`, the plugins' outcome), and on success an op's
 * follow-up takes over the answer.
 */

#include "request.h"

/* What a successful re-authentication leads to. run() is called on a pool
 * thread right after the stack succeeded, in the same job; reply() on the
 * loop thread answers the request (which is live: not abandoned, its
 * client still there). free() releases the follow-up on every path, run
 * or not. */
struct auth_followup {
        void (*run)(struct auth_followup *f);
        void (*reply)(struct auth_followup *f, struct request *r);
        void (*free)(struct auth_followup *f);
};

/* Runs the auth stack of `service` for `user` with `password` (NULL: the
 * stack asks through a conversation), LATCH_ITEM_OP "authenticate"; a
 * failure answers `denied` or `unavailable` as authenticate does and counts
 * for the throttle of (user, remote). `opname` (static) names the op in log
 * lines. Takes `followup` over; always answers r, now or later. The caller
 * wipes its own copy of the password. */
void op_auth_reauthenticate(struct request *r, const char *opname, const char *service, const char *user,
                            const char *password, const char *remote, struct auth_followup *followup);
