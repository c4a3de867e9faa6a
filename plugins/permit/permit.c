/* SPDX-License-Identifier: MIT */

/*
 * permit: accepts every request, as pam_permit does. Useful to terminate a
 * stack or to test one; never put it where it could admit a stranger.
 */

#include <latch/plugin.h>

static int permit_auth(void *state, struct latch_req *req) {
        return LATCH_SUCCESS;
}

static int permit_account(void *state, struct latch_req *req) {
        return LATCH_SUCCESS;
}

static const struct latch_plugin permit_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "permit",
        .auth = permit_auth,
        .account = permit_account,
};

LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *host) {
        if (!host || host->abi_major != LATCH_PLUGIN_ABI_MAJOR)
                return NULL;
        return &permit_plugin;
}
