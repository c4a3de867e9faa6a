/* SPDX-License-Identifier: MIT */

/*
 * deny: refuses every request with the results pam_deny returns:
 * PAM_AUTH_ERR from both pam_sm_authenticate() and pam_sm_acct_mgmt(), so a
 * stack written for Linux-PAM decides the same with `deny` in it.
 */

#include <latch/plugin.h>

static int deny_auth(void *state, struct latch_req *req) {
        return LATCH_AUTH_ERR;
}

static int deny_account(void *state, struct latch_req *req) {
        return LATCH_AUTH_ERR;
}

static const struct latch_plugin deny_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "deny",
        .auth = deny_auth,
        .account = deny_account,
};

/* Calls no host service: any host of this ABI major will do. */
LATCH_PLUGIN_DEFINE(deny_plugin, abi_minor)
