/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * liblatch internals shared by its files: the client handle, the request
 * writer (request.c), the call engine (client.c) and replies (reply.c).
 * Nothing here is exported.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latch/latch.h"

#define LATCH_DEFAULT_MAX_RESPONSE (1024u * 1024u)
#define LATCH_MESSAGE_MAX 512

struct latch_client {
        char *socket_path;
        int fd;                 /* -1 while not connected */
        uint64_t connection_id; /* counts connections opened */
        uint32_t timeout_ms;    /* 0: no limit */
        size_t max_response;

        struct client_async *async; /* latch_submit_*() state; NULL until used */

        int last_error;
        char *last_code;        /* latchd's "error" for the last failed call, or NULL */
        latch_reply *last_challenge; /* the last call's `challenge` answer, or NULL */
        char last_message[LATCH_MESSAGE_MAX];
};

struct latch_reply {
        json_t *response;       /* the whole response object */
        char *raw;              /* its text as received, NUL-terminated */
};

/* A request frame being written: 4 length bytes, then one JSON object.
 * Growing it never leaves a copy behind (the old buffer is wiped). */
struct client_request {
        char *buf;
        size_t len, cap;
        int error;              /* first error: LATCH_ERR_* */
        bool idempotent;
};

/* Starts {"op":OP; whether the request may be retried follows from the op. */
void client_request_begin(struct client_request *req, const char *op);
/* A NULL value is skipped. */
void client_request_add_string(struct client_request *req, const char *key, const char *value);
/* An array of strings (secrets: written straight into the buffer). */
void client_request_add_string_array(struct client_request *req, const char *key, const char *const *values,
                                     size_t n);
void client_request_add_bool(struct client_request *req, const char *key, bool value);
/* Closes the object and fills in the length. Returns LATCH_OK or the first
 * error met while writing. */
int client_request_end(struct client_request *req);
/* Frames `json` (a complete object) as is. */
int client_request_from_text(struct client_request *req, const char *json, size_t len, bool idempotent);
/* Wipes and frees the buffer; the struct may be reused after. */
void client_request_done(struct client_request *req);
bool op_is_idempotent(const char *op);

/* Records the outcome of a call on the handle; returns err. The message is
 * formatted like printf; NULL uses latch_strerror(err). */
int client_fail(latch_client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void client_succeed(latch_client *c);

/* Sends the request and reads the answer, retrying idempotent requests once
 * on a dropped connection. On LATCH_OK *ret_reply (may be NULL) gets the
 * reply. Wipes the request in every case. */
int client_call(latch_client *c, struct client_request *req, latch_reply **ret_reply);

/* The connection (client.c). client_ensure_connected() treats anything
 * readable on a kept connection as stale: call it only when no request is
 * in flight. */
void client_disconnect(latch_client *c);
int client_ensure_connected(latch_client *c, uint64_t deadline);
/* Records latchd's error code and message (control characters dropped). */
void client_fail_server(latch_client *c, const char *code, const char *message);

/* Requests in flight through latch_submit_*() (async.c). */
size_t client_async_pending(const latch_client *c);
void client_async_free(latch_client *c);

/* Wipes every string in a JSON value (responses may hold session ids). */
void json_wipe_strings(json_t *v);
