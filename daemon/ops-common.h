/* SPDX-License-Identifier: MIT */
#pragma once

/* Limits and helpers shared by the op handlers. */

#include <stdbool.h>

#include "request.h"
#include "store.h"
#include "throttle.h"

struct work;

#define OPS_MAX_NAME 128      /* service, audience, handle */
#define OPS_MAX_USER 256
#define OPS_MAX_REMOTE 256
/* Passwords longer than this are refused before any hashing: argon2id
 * takes any length, but an unbounded one is a cheap way to burn CPU. */
#define OPS_MAX_PASSWORD 4096
#define OPS_MAX_SESSION 128

/* The one message for every `denied`: unknown user, wrong password, locked
 * or expired account all read the same. */
#define DENIED_MESSAGE "authentication failed"

/* No control characters (they would forge log lines). */
bool ops_printable(const char *s);

/* Whether a stack result means "the backend failed" rather than "no". */
bool ops_result_is_unavailable(int result);

/* Runs `w` on the worker pool after the throttle's delay for (user,
 * remote), with the request's deadline armed. On a full queue the request
 * answers `unavailable`, the ticket is cancelled, and w->done() runs at once
 * with r->abandoned set so that it frees the job. */
void ops_begin_throttled(struct request *r, struct work *w, struct throttle_ticket *ticket, const char *user,
                         const char *remote);

/* Queues `w` on the writer thread; on a full queue answers `unavailable`,
 * marks r abandoned and calls w->done() at once. */
void ops_submit_write(struct request *r, struct work *w);

/* Answers a failed session-store call: a damaged store (-EUCLEAN) is
 * `internal`, logged as "store damaged" with what to do; anything else is
 * `unavailable` (try again later). `what` names the op for the log line. */
void ops_reply_store_error(struct request *r, const char *what, int err);

/* The prologue of the ops on one session (validate, token, logout): reads
 * the required "session" argument and, when `opt_name` is not NULL, the
 * optional name argument of that name into *ret_opt. On bad input answers
 * `bad_request` and returns -EINVAL. */
int ops_session_args(struct request *r, const char *opt_name, const char **ret_session, const char **ret_opt);

/* store_session_get() by the session id the client sent, its key left in
 * `ret_key` (the caller wipes it). An id of the wrong shape is -ENOENT, as
 * an unknown one: the answer must not tell them apart. */
int ops_session_get(struct daemon *d, const char *session, uint8_t ret_key[STORE_KEY_SIZE], int64_t now, session_fn fn,
                    void *userdata);

/* The log line of a damaged store, for answers not sent by reply_error(). */
void ops_log_store_damaged(const char *what, int err);

/* The deadline for a credential stack: the largest [plugin.X] timeout, or
 * the default. */
uint64_t ops_stack_deadline_usec(const struct daemon *d);

/* validate's rules for the idle expiry (op-session.c), for the fast path
 * too: the idle expiry to report for session s seen at `now`, and whether
 * the slide must be persisted (*ret_touch), which validate_touch_later()
 * then queues for the writer thread. */
int64_t validate_idle_expiry(const struct session_info *s, int64_t now, bool *ret_touch);
void validate_touch_later(struct daemon *d, const uint8_t key[STORE_KEY_SIZE], int64_t now);
