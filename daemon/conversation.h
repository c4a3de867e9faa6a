/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Conversations waiting for their client's answer (the `challenge` answer
 * and the `respond` op; docs/PROTOCOL.md). Each holds what its op needs to
 * go on (the request, the stack's place): an opaque payload the table never
 * looks into, ended through the `end` callback when it expires or the table
 * goes. No thread waits for a conversation: the payload is data.
 *
 * An id is 256 bits from the OS CSPRNG, base64url without padding, never
 * beginning with '-' (it is a command-line argument of latchctl); it is
 * single-use: conversation_take() removes it, and the step after it gets a
 * new one. A conversation is bound to the uid of the peer that started it
 * (SO_PEERCRED): a client may answer from another connection or process of
 * the same uid (latchctl respond does), never from another uid. Lookups
 * compare ids in constant time.
 *
 * Caps: at most CONVERSATIONS_MAX in all, CONVERSATIONS_PER_PEER_MAX per
 * uid, and CONVERSATIONS_PER_USER_MAX per (service, user); beyond them
 * conversation_add() refuses (-EBUSY) and nothing grows. The per-user cap is
 * what keeps a second factor from being guessed in bulk: lines before the
 * one that asked (faillock's lock check among them) ran when the
 * conversation started, so without it a client could park a thousand
 * conversations while the user is unlocked and answer them all at once.
 * With it, at most that many answers are in flight past a faillock check.
 *
 * Loop thread only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONVERSATION_ID_BYTES 32
/* base64url of 32 bytes, no padding, plus the NUL */
#define CONVERSATION_ID_LEN 43
#define CONVERSATIONS_MAX 4096
#define CONVERSATIONS_PER_PEER_MAX 1024
#define CONVERSATIONS_PER_USER_MAX 4

struct conversations;

/* Called for a conversation that ends without being taken (it expired, or
 * the daemon is stopping), with its payload: the owner ends its op. */
typedef void (*conversation_end_fn)(void *payload, bool expired);

int conversations_new(conversation_end_fn end, struct conversations **ret);
/* Ends every conversation (end(payload, false)); returns how many. The
 * daemon calls it when it starts to stop, while the pool still runs, so
 * that each ending is reported as a failure like any other. */
size_t conversations_end_all(struct conversations *t);
/* Ends every conversation left (end(payload, false)) and frees the table. */
void conversations_free(struct conversations *t);

/* Adds a conversation for `uid`, on behalf of `user` of `service` (the cap
 * per user; neither is kept, only a hash of the pair), holding `payload`,
 * expiring at monotonic `expires_usec`. Writes its id (CONVERSATION_ID_LEN
 * + 1 bytes) to ret_id. Returns 0, -EBUSY (a cap is reached: the payload
 * stays the caller's) or -ENOMEM. */
int conversation_add(struct conversations *t, uid_t uid, const char *service, const char *user,
                     uint64_t expires_usec, void *payload, char ret_id[CONVERSATION_ID_LEN + 1]);

/* The payload of conversation `id` for `uid` at `now_usec`, left in the
 * table, or NULL: unknown, already taken, expired or another uid's (all
 * the same to the caller, which answers invalid_conversation; a foreign
 * peer does not end the owner's conversation). */
void *conversation_find(struct conversations *t, const char *id, uid_t uid, uint64_t now_usec);

/* Removes conversation `id` (found before with conversation_find()) and
 * returns its payload: single use. */
void *conversation_take(struct conversations *t, const char *id, uid_t uid, uint64_t now_usec);

/* Ends the conversations expired at now_usec (end(payload, true)); returns
 * how many. The daemon calls it from a timer. */
size_t conversations_expire(struct conversations *t, uint64_t now_usec);

/* How many wait, in all. */
size_t conversations_count(const struct conversations *t);
