/* SPDX-License-Identifier: MIT */
/*
 * Request frames. Requests carry passwords and session ids, so they are
 * written by hand into one buffer that this file owns and wipes, rather than
 * through Jansson (whose objects and dumps we could not wipe reliably).
 */

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"
#include "secret.h"
#include "wire.h"

/* The ops whose repetition changes nothing that matters (validate slides
 * the idle expiry, which a repeat only slides again), so a request lost with
 * its connection may be sent once more. */
bool op_is_idempotent(const char *op) {
        static const char *const ops[] = { "hello", "validate", "verify", "jwks", "stats" };

        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                if (streq(op, ops[i]))
                        return true;
        return false;
}

static bool client_request_reserve(struct client_request *req, size_t more) {
        if (req->error)
                return false;
        if (secret_buf_reserve(&req->buf, &req->cap, req->len, more) < 0) {
                req->error = LATCH_ERR_NO_MEMORY;
                return false;
        }
        return true;
}

static void client_request_put(struct client_request *req, const char *s, size_t n) {
        if (!client_request_reserve(req, n))
                return;
        memcpy(req->buf + req->len, s, n);
        req->len += n;
}

static void client_request_put_json_string(struct client_request *req, const char *s) {
        size_t n = strlen(s);

        if (!wire_utf8_valid(s, n)) {
                if (!req->error)
                        req->error = LATCH_ERR_INVALID_ARGUMENT;
                return;
        }
        if (!client_request_reserve(req, WIRE_JSON_STRING_MAX(n)))
                return;
        req->len = (size_t) (wire_json_string(req->buf + req->len, s, n) - req->buf);
}

static void client_request_put_key(struct client_request *req, const char *key) {
        client_request_put(req, ",", 1);
        client_request_put_json_string(req, key);
        client_request_put(req, ":", 1);
}

void client_request_begin(struct client_request *req, const char *op) {
        *req = (struct client_request) { .idempotent = op_is_idempotent(op) };
        /* The length prefix is filled in by client_request_end(). */
        client_request_put(req, "\0\0\0\0{\"op\":", 10);
        client_request_put_json_string(req, op);
}

void client_request_add_string(struct client_request *req, const char *key, const char *value) {
        if (!value)
                return;
        client_request_put_key(req, key);
        client_request_put_json_string(req, value);
}

void client_request_add_string_array(struct client_request *req, const char *key, const char *const *values,
                                     size_t n) {
        client_request_put_key(req, key);
        client_request_put(req, "[", 1);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        client_request_put(req, ",", 1);
                client_request_put_json_string(req, values[i]);
        }
        client_request_put(req, "]", 1);
}

void client_request_add_bool(struct client_request *req, const char *key, bool value) {
        client_request_put_key(req, key);
        client_request_put(req, value ? "true" : "false", value ? 4 : 5);
}

static int client_request_set_length(struct client_request *req) {
        size_t n = req->len - WIRE_HEADER;

        if (n > UINT32_MAX)
                return LATCH_ERR_INVALID_ARGUMENT;
        wire_put_header((uint8_t *) req->buf, (uint32_t) n);
        return LATCH_OK;
}

int client_request_end(struct client_request *req) {
        client_request_put(req, "}", 1);
        if (req->error)
                return req->error;
        return client_request_set_length(req);
}

int client_request_from_text(struct client_request *req, const char *json, size_t len, bool idempotent) {
        *req = (struct client_request) { .idempotent = idempotent };
        client_request_put(req, "\0\0\0\0", WIRE_HEADER);
        client_request_put(req, json, len);
        if (req->error)
                return req->error;
        return client_request_set_length(req);
}

void client_request_done(struct client_request *req) {
        if (req->buf) {
                sodium_memzero(req->buf, req->cap);
                free(req->buf);
        }
        *req = (struct client_request) {};
}
