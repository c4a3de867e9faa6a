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

/* Calls no host service: any host of this ABI major will do. */
LATCH_PLUGIN_DEFINE(permit_plugin, abi_minor)
