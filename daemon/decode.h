/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Decoding of one request frame into a JSON object, and typed access to its
 * arguments. Pure: no I/O; the fuzzer drives it directly.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define DECODE_MAX_DEPTH 16

/* A decoded request: root owns everything; id and op are borrowed from it. */
struct decoded {
        json_t *root;
        json_t *id;     /* NULL when absent */
        const char *op; /* NULL when the frame could not be decoded */
};

/* Decodes buf (len bytes: UTF-8 JSON, one object, no duplicate members, at
 * most DECODE_MAX_DEPTH levels deep, nothing after it). Returns 0, or
 * -EBADMSG with a human message in msg, which never quotes the input (it may
 * hold a password): Jansson's own error text does, so it is not used. When the object decoded but `op` is missing or not a string,
 * ret->root and ret->id are still set so that the error can echo the id. */
int decode_request(const char *buf, size_t len, struct decoded *ret, char *msg, size_t msglen);

void decoded_done(struct decoded *d);

/* Fetches a string argument. Returns 0 and a borrowed pointer (NULL when
 * absent and optional), or -EBADMSG with a message naming the field. Strings
 * are limited to maxlen bytes and may not contain NUL. */
int arg_string(json_t *root, const char *name, bool required, size_t maxlen, const char **ret, char *msg,
               size_t msglen);
int arg_bool(json_t *root, const char *name, bool *ret, char *msg, size_t msglen);
