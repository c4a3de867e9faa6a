/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's signing keyring: the Ed25519 key that signs tokens now, and
 * the retired keys that stay published (in the JWKS, and for `verify`) until
 * every token they signed has expired.
 *
 * On disk, state_dir/keys/ (mode 0700) holds one file per key, KID.key
 * (mode 0600, 64 bytes: format tag, creation time, retirement time, the
 * retirement time the key set for its predecessors, 32-byte seed). Every
 * change is written to a temporary file, fsynced, renamed into place and the
 * folder fsynced, so that a crash leaves either the old or the new state.
 *
 * Threading: a keyring is owned by one thread, the daemon's event loop; no
 * call may run concurrently with keyring_rotate(), keyring_prune() or
 * keyring_free() on the same keyring. keyring_sign(), keyring_verify() and
 * keyring_jwks() only read it.
 *
 * Private keys live in sodium_malloc() memory, read-only once loaded, and
 * are wiped when released. Nothing here logs.
 */

#include <jansson.h>
#include <stdint.h>

#include "jwt.h"

struct keyring;

/* Opens state_dir/keys (creating it with mode 0700 when absent; state_dir
 * itself must exist), loads every key and generates the first one (created
 * at `now`) when there is none, or when every key is retired.
 * Returns 0 and a new keyring (free with keyring_free()), or:
 *   -EPERM   the folder or a key file is accessible to group or others, or
 *            not owned by the effective uid
 *   -EINVAL  a corrupt key file (wrong size or tag, kid not matching its
 *            name)
 *   -ENOMEM, or another negative errno from the file system. */
int keyring_open(const char *state_dir, int64_t now, struct keyring **ret);

/* Wipes and frees every key, closes the folder. NULL is fine. */
void keyring_free(struct keyring *k);

/* The kid (RFC 7638 thumbprint) of the key that signs now. The string lives
 * as long as that key stays current (until keyring_rotate() or
 * keyring_free()). */
const char *keyring_current_kid(const struct keyring *k);

/* When the current key was made (Unix seconds), for [token] rotate_every. */
int64_t keyring_current_created_at(const struct keyring *k);

/* Signs claims (a JSON object) with the current key, header
 * {"alg":alg,"typ":"JWT","kid":KID}. Returns 0 and a malloc()ed token, or
 * -EINVAL, -EMSGSIZE (token over JWT_MAX_TOKEN), -ENOMEM; see jwt_sign(). */
int keyring_sign(const struct keyring *k, const char *alg, const json_t *claims, char **ret_token);
/* keyring_sign() of claims already written as compact JSON text (see
 * jwt_sign_payload()). */
int keyring_sign_payload(const struct keyring *k, const char *alg, const char *payload, size_t payload_len,
                         char **ret_token);

/* jwt_verify() against the published keys: the current one and retired ones
 * not yet dropped by keyring_prune(). Returns a jwt_error; on JWT_OK
 * *ret_claims (may be NULL) gets a new reference to the claims. */
int keyring_verify(const struct keyring *k, const char *token, size_t len,
                   const struct jwt_verify_options *opts, json_t **ret_claims);

/* Makes a new current key (created at `now`); every previous key stays
 * published, and verifies, until now + retire_after (the caller passes the
 * longest token lifetime plus leeway). The change is durable before this
 * returns. Returns 0 and the new kid in ret_kid, or a negative errno, in
 * which case nothing changed. */
int keyring_rotate(struct keyring *k, int64_t now, int64_t retire_after, char ret_kid[JWT_KID_LEN + 1]);

/* Drops retired keys whose time has come (retired until <= now) and deletes
 * their files. Returns how many were dropped (>= 0) or a negative errno. */
int keyring_prune(struct keyring *k, int64_t now);

/* The JWKS of every published key, current first:
 * {"keys":[{"kty":"OKP","crv":"Ed25519","x":X,"kid":KID,"use":"sig","alg":alg}, ...]}.
 * alg is "EdDSA" or "Ed25519". Returns a new reference, or NULL on bad
 * arguments or out of memory. */
json_t *keyring_jwks(const struct keyring *k, const char *alg);

/* Writes keyring_jwks() to path atomically, mode 0644: a temporary file in
 * the same folder, fsynced, renamed over path, folder fsynced. Returns 0 or a
 * negative errno (-EINVAL, -ENOMEM, or from the file system); on failure path
 * is left as it was. */
int keyring_write_jwks(const struct keyring *k, const char *path, const char *alg);
