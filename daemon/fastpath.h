/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The fast path of the hot ops, validate, token and verify: a strict
 * scanner for flat requests and a small JSON writer that puts the reply
 * straight into the connection's output buffer, with no allocation per
 * request for validate (token and verify allocate what the token code
 * does: the signed token, the verified claims).
 *
 * It takes only what it can answer exactly as the general path (decode.c,
 * Jansson, dispatch.c, op-session.c, op-token.c) would, byte for byte: one
 * object of known members (op, id; session and service for validate;
 * session and audience for token; token and audience for verify), none
 * repeated, strings of printable ASCII without escapes, an id that is
 * absent, null, true, false, a plain integer or such a string. Anything else (another op, a member it does not know, an
 * escape, a real number, a string over its limit, ...) is left to the
 * general path, which gives every error and limit its usual answer. The
 * differential test (tests/unit/test-fastpath.c) holds the two paths to the
 * same bytes (an issued token's random jti and its signature aside).
 */

#include <stddef.h>

struct conn;

/* Answers the request frame payload buf (len bytes) of c: returns 1 when
 * it did (the reply frame is appended to c's output buffer, the stats
 * counted), 0 when the request must take the general path (nothing was
 * changed, nothing read from the store). c must have no request waiting
 * for its reply (replies keep their order). */
int fastpath_request(struct conn *c, const char *buf, size_t len);
