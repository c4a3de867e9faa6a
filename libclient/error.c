/* SPDX-License-Identifier: MIT */
/* Error names and descriptions, and the per-handle record of the last call. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"

static const struct {
        const char *name;
        const char *text;
} errors[_LATCH_ERR_MAX] = {
        [LATCH_OK]                   = { "ok",               "success" },
        [LATCH_ERR_BAD_REQUEST]      = { "bad_request",      "malformed request" },
        [LATCH_ERR_UNKNOWN_OP]       = { "unknown_op",       "operation not supported by the daemon" },
        [LATCH_ERR_TOO_LARGE]        = { "too_large",        "request too large" },
        [LATCH_ERR_DENIED]           = { "denied",           "credentials refused" },
        [LATCH_ERR_INVALID_SESSION]  = { "invalid_session",  "unknown, expired or revoked session" },
        [LATCH_ERR_INVALID_TOKEN]    = { "invalid_token",    "token refused" },
        [LATCH_ERR_FORBIDDEN]        = { "forbidden",        "not allowed for this peer" },
        [LATCH_ERR_UNKNOWN_SERVICE]  = { "unknown_service",  "unknown service" },
        [LATCH_ERR_UNAVAILABLE]      = { "unavailable",      "service temporarily unavailable" },
        [LATCH_ERR_INTERNAL]         = { "internal",         "internal daemon error" },
        [LATCH_ERR_UNKNOWN]          = { "unknown",          "unknown error" },
        [LATCH_ERR_UNREACHABLE]      = { "unreachable",      "cannot connect to the daemon" },
        [LATCH_ERR_DISCONNECTED]     = { "disconnected",     "connection lost before the answer" },
        [LATCH_ERR_TIMEOUT]          = { "timeout",          "timed out waiting for the daemon" },
        [LATCH_ERR_PROTOCOL]         = { "protocol",         "protocol error" },
        [LATCH_ERR_INVALID_ARGUMENT] = { "invalid_argument", "invalid argument" },
        [LATCH_ERR_NO_MEMORY]        = { "no_memory",        "out of memory" },
        [LATCH_ERR_IO]               = { "io",               "input/output error" },
        [LATCH_ERR_CHALLENGE]        = { "challenge",        "more input is needed" },
        [LATCH_ERR_INVALID_CONVERSATION] = { "invalid_conversation", "unknown, used or expired conversation" },
};

_public_ const char *latch_strerror(int err) {
        if (err < 0 || err >= _LATCH_ERR_MAX)
                return "unknown error";
        return errors[err].text;
}

_public_ const char *latch_error_name(int err) {
        if (err < 0 || err >= _LATCH_ERR_MAX)
                return "unknown";
        return errors[err].name;
}

_public_ int latch_error_from_code(const char *code) {
        if (!code)
                return LATCH_ERR_UNKNOWN;
        /* Only the wire codes map back; "ok" or a client-side name coming
         * from a daemon would be nonsense, so those stay unknown too. */
        for (int e = LATCH_ERR_BAD_REQUEST; e <= LATCH_ERR_INTERNAL; e++)
                if (streq(code, errors[e].name))
                        return e;
        for (int e = LATCH_ERR_CHALLENGE; e <= LATCH_ERR_INVALID_CONVERSATION; e++)
                if (streq(code, errors[e].name))
                        return e;
        return LATCH_ERR_UNKNOWN;
}

int client_fail(latch_client *c, int err, const char *fmt, ...) {
        c->last_error = err;
        free(c->last_code);
        c->last_code = NULL;
        latch_reply_free(c->last_challenge);
        c->last_challenge = NULL;

        if (!fmt) {
                snprintf(c->last_message, sizeof(c->last_message), "%s", latch_strerror(err));
                return err;
        }

        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->last_message, sizeof(c->last_message), fmt, ap);
        va_end(ap);
        return err;
}

void client_succeed(latch_client *c) {
        c->last_error = LATCH_OK;
        free(c->last_code);
        c->last_code = NULL;
        latch_reply_free(c->last_challenge);
        c->last_challenge = NULL;
        snprintf(c->last_message, sizeof(c->last_message), "%s", latch_strerror(LATCH_OK));
}

_public_ int latch_last_error(const latch_client *client) {
        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        return client->last_error;
}

_public_ const char *latch_last_message(const latch_client *client) {
        assert_return(client, "invalid argument: no client");
        return client->last_message;
}

_public_ const char *latch_last_error_code(const latch_client *client) {
        assert_return(client, NULL);
        return client->last_code;
}
