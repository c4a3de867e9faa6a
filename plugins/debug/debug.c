/* SPDX-License-Identifier: MIT */

/*
 * debug: returns the result its arguments name, as pam_debug does:
 *
 *   auth   required  debug auth=user_unknown
 *   account required debug acct=acct_expired
 *
 * Names are Linux-PAM's return names as written in `[value=action]` controls
 * (libpam's _pam_token_returns). Without an argument both calls return
 * success, pam_debug's default. As in pam_debug, the first `auth=` (or
 * `acct=`) argument wins. Unlike pam_debug, an unknown name or argument is an
 * error at open(), so a typo in a stack is caught by --check-config.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

/* Indexed by enum latch_result (the values are Linux-PAM's). */
static const char *const result_names[_LATCH_RESULT_MAX] = {
        [LATCH_SUCCESS] = "success",
        [LATCH_OPEN_ERR] = "open_err",
        [LATCH_SYMBOL_ERR] = "symbol_err",
        [LATCH_SERVICE_ERR] = "service_err",
        [LATCH_SYSTEM_ERR] = "system_err",
        [LATCH_BUF_ERR] = "buf_err",
        [LATCH_PERM_DENIED] = "perm_denied",
        [LATCH_AUTH_ERR] = "auth_err",
        [LATCH_CRED_INSUFFICIENT] = "cred_insufficient",
        [LATCH_AUTHINFO_UNAVAIL] = "authinfo_unavail",
        [LATCH_USER_UNKNOWN] = "user_unknown",
        [LATCH_MAXTRIES] = "maxtries",
        [LATCH_NEW_AUTHTOK_REQD] = "new_authtok_reqd",
        [LATCH_ACCT_EXPIRED] = "acct_expired",
        [LATCH_SESSION_ERR] = "session_err",
        [LATCH_CRED_UNAVAIL] = "cred_unavail",
        [LATCH_CRED_EXPIRED] = "cred_expired",
        [LATCH_CRED_ERR] = "cred_err",
        [LATCH_NO_MODULE_DATA] = "no_module_data",
        [LATCH_CONV_ERR] = "conv_err",
        [LATCH_AUTHTOK_ERR] = "authtok_err",
        [LATCH_AUTHTOK_RECOVERY_ERR] = "authtok_recover_err",
        [LATCH_AUTHTOK_LOCK_BUSY] = "authtok_lock_busy",
        [LATCH_AUTHTOK_DISABLE_AGING] = "authtok_disable_aging",
        [LATCH_TRY_AGAIN] = "try_again",
        [LATCH_IGNORE] = "ignore",
        [LATCH_ABORT] = "abort",
        [LATCH_AUTHTOK_EXPIRED] = "authtok_expired",
        [LATCH_MODULE_UNKNOWN] = "module_unknown",
        [LATCH_BAD_ITEM] = "bad_item",
        [LATCH_CONV_AGAIN] = "conv_again",
        [LATCH_INCOMPLETE] = "incomplete",
};

struct debug_state {
        int auth;
        int account;
};

static int result_from_name(const char *s) {
        for (int i = 0; i < _LATCH_RESULT_MAX; i++)
                if (strcmp(s, result_names[i]) == 0)
                        return i;
        return -EINVAL;
}

static int debug_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                      void **ret_state) {
        struct debug_state *st;
        bool seen_auth = false, seen_account = false;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->auth = LATCH_SUCCESS;
        st->account = LATCH_SUCCESS;

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i], *eq = strchr(a, '=');
                bool *seen;
                int *slot, r;

                if (eq && (size_t) (eq - a) == 4 && strncmp(a, "auth", 4) == 0) {
                        slot = &st->auth;
                        seen = &seen_auth;
                } else if (eq && (((size_t) (eq - a) == 4 && strncmp(a, "acct", 4) == 0) ||
                                  ((size_t) (eq - a) == 7 && strncmp(a, "account", 7) == 0))) {
                        slot = &st->account;
                        seen = &seen_account;
                } else {
                        host->log(ctx, NULL, LATCH_LOG_ERR,
                                  "unknown argument '%s' (expected auth=RESULT or acct=RESULT)", a);
                        free(st);
                        return -EINVAL;
                }

                r = result_from_name(eq + 1);
                if (r < 0) {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown result name '%s' in '%s'", eq + 1, a);
                        free(st);
                        return -EINVAL;
                }
                /* pam_debug takes the first argument for an event. */
                if (!*seen)
                        *slot = r;
                *seen = true;
        }

        *ret_state = st;
        return 0;
}

static void debug_close(void *state) {
        free(state);
}

static int debug_auth(void *state, struct latch_req *req) {
        return ((const struct debug_state *) state)->auth;
}

static int debug_account(void *state, struct latch_req *req) {
        return ((const struct debug_state *) state)->account;
}

static const struct latch_plugin debug_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "debug",
        .open = debug_open,
        .close = debug_close,
        .auth = debug_auth,
        .account = debug_account,
};

/* log is the only host service it calls. */
LATCH_PLUGIN_DEFINE(debug_plugin, log)
