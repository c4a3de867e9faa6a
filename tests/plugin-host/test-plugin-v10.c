/* SPDX-License-Identifier: MIT */

/*
 * A plugin built against the ABI 1.0 header, kept as it was released
 * (abi-1.0/latch/plugin.h): the host of 1.1 must load it and call it exactly
 * as a 1.0 host did, handing it a password even when the client sent none.
 */

#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

_Static_assert(LATCH_PLUGIN_ABI_MINOR == 0, "built against the 1.0 header");

LATCH_PLUGIN_EXPORT int tp10_calls;
LATCH_PLUGIN_EXPORT char tp10_seen[64];

static const struct latch_host *tp10_host;

static int tp10_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                     void **ret_state) {
        tp10_host = host;
        *ret_state = NULL;
        return 0;
}

static int tp10_auth(void *state, struct latch_req *req) {
        const char *pw = tp10_host->item(req, LATCH_ITEM_PASSWORD);

        tp10_calls++;
        /* A 1.0 plugin may take the password for granted. */
        strncpy(tp10_seen, pw, sizeof tp10_seen - 1);
        return strcmp(pw, "pw-1.0") == 0 ? LATCH_SUCCESS : LATCH_AUTH_ERR;
}

static const struct latch_plugin tp10_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "tp_v10",
        .open = tp10_open,
        .auth = tp10_auth,
};

LATCH_PLUGIN_DEFINE(tp10_plugin, item)
