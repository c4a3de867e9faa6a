/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Session ids and handles (docs/SESSIONS.md).
 *
 * An id is 264 bits from the OS CSPRNG as 44 base64url characters; the store
 * sees only BLAKE2b-256(id). A handle is 128 independent random bits as 22
 * base64url characters: nothing about the id can be derived from it.
 *
 * Neither ever starts with '-', so that it cannot pass for an option on a
 * command line (latchctl validate ID): one starting so is drawn again,
 * which leaves an id more than 263 bits of entropy.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define SESSION_ID_LEN 44
#define SESSION_ID_BYTES 33

struct daemon;

/* Writes a new id (NUL-terminated) and its store key. */
void session_id_new(char ret_id[SESSION_ID_LEN + 1], uint8_t ret_key[STORE_KEY_SIZE]);
void session_handle_new(char ret_handle[STORE_HANDLE_LEN + 1]);

/* Whether s has the shape of an id; computes its key when it does. Ids
 * of any other shape are unknown sessions, answered like every unknown one. */
bool session_id_key(const char *s, uint8_t ret_key[STORE_KEY_SIZE]);

/* The public view of a session: handle, user, service, times, claims.
 * claims_json that fails to parse becomes {}. New reference. */
json_t *session_to_json(const struct session_info *s, int64_t idle_expires_at, bool with_claims);

/* Copies a session out of the store's transaction, so that the caller can
 * answer after the transaction has ended: *ret gets the times and handle,
 * and its strings point into *ret_buf, one malloc()ed block that the caller
 * frees (and that stays valid until then). Returns 0 or -ENOMEM, leaving
 * *ret and *ret_buf untouched on failure. */
int session_info_copy(const struct session_info *s, struct session_info *ret, char **ret_buf);

/* Whether claims_json is exactly what session_to_json() would write for
 * it: then a reply may copy the stored text instead of parsing it (struct
 * session_info's claims_canonical). Text written by json_dumps() with
 * JSON_COMPACT | JSON_SORT_KEYS is, unless it holds what Jansson reads back
 * differently (a string with NUL, say): hence the check, once, at login. */
bool session_claims_canonical(const char *claims_json);

/* The message for every invalid_session answer: unknown, malformed,
 * expired and revoked look the same. */
#define INVALID_SESSION_MESSAGE "no such session, or it has expired or been revoked"
