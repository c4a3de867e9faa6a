/* SPDX-License-Identifier: MIT */

/*
 * debug: returns the result its arguments name, as pam_debug does:
 *
 *   auth   required  debug auth=user_unknown
 *   account required debug acct=acct_expired
 *   password required debug password_prelim=success password_update=authtok_err
 *
 * Names are Linux-PAM's return names as written in `[value=action]` controls
 * (libpam's _pam_token_returns). Without an argument every call returns
 * success, pam_debug's default. The password stack's two passes (ABI 1.2)
 * have `password_prelim=` (pam_debug's `prechauthtok=`, also accepted) and
 * `password_update=` (pam_debug's `chauthtok=`); `password=` sets both. As
 * in pam_debug, the first argument for an event wins. Unlike pam_debug, an
 * unknown name or argument is an error at open(), so a typo in a stack is
 * caught by --check-config.
 *
 * It can also converse before deciding (ABI 1.1), for tests and benchmarks
 * of conversations:
 *
 *   auth required debug ask=secret:Password: ask=text:Code: expect=pw expect=123456
 *
 * Each `ask=STYLE:MESSAGE` (style secret, text, info or error) is a prompt
 * of the auth call: the first call posts them all and returns
 * LATCH_INCOMPLETE; the call that continues it compares the answers, in
 * order, with the `expect=` arguments (any missing expect accepts anything)
 * and returns auth_err on a mismatch, else the auth= result.
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

#define DEBUG_ASKS_MAX 8

struct debug_state {
        int auth;
        int account;
        int password_prelim;
        int password_update;
        const struct latch_host *host;
        size_t n_asks, n_expects;
        int ask_style[DEBUG_ASKS_MAX];
        char *ask_message[DEBUG_ASKS_MAX];
        char *expect[DEBUG_ASKS_MAX];
};

static int style_from_name(const char *s, size_t n) {
        static const struct { const char *name; int style; } styles[] = {
                { "secret", LATCH_PROMPT_SECRET }, { "text", LATCH_PROMPT_TEXT },
                { "error", LATCH_PROMPT_ERROR },   { "info", LATCH_PROMPT_INFO },
        };
        for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++)
                if (strlen(styles[i].name) == n && strncmp(s, styles[i].name, n) == 0)
                        return styles[i].style;
        return -EINVAL;
}

static void debug_close(void *state) {
        struct debug_state *st = state;

        if (!st)
                return;
        for (size_t i = 0; i < st->n_asks; i++)
                free(st->ask_message[i]);
        for (size_t i = 0; i < st->n_expects; i++)
                free(st->expect[i]);
        free(st);
}

static int result_from_name(const char *s) {
        for (int i = 0; i < _LATCH_RESULT_MAX; i++)
                if (strcmp(s, result_names[i]) == 0)
                        return i;
        return -EINVAL;
}

static int debug_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                      void **ret_state) {
        struct debug_state *st;
        bool seen_auth = false, seen_account = false, seen_prelim = false, seen_update = false;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->auth = LATCH_SUCCESS;
        st->account = LATCH_SUCCESS;
        st->password_prelim = LATCH_SUCCESS;
        st->password_update = LATCH_SUCCESS;
        st->host = host;

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i], *eq = strchr(a, '=');
                bool *seen, *seen2 = NULL;
                int *slot, *slot2 = NULL, r;
                size_t k = eq ? (size_t) (eq - a) : 0;

                if (eq && (size_t) (eq - a) == 3 && strncmp(a, "ask", 3) == 0) {
                        const char *colon = strchr(eq + 1, ':');
                        int style = colon ? style_from_name(eq + 1, (size_t) (colon - eq - 1)) : -EINVAL;
                        if (style < 0 || !colon[1] || st->n_asks >= DEBUG_ASKS_MAX) {
                                host->log(ctx, NULL, LATCH_LOG_ERR,
                                          "bad argument '%s' (expected ask=secret|text|info|error:MESSAGE, at most %d)",
                                          a, DEBUG_ASKS_MAX);
                                debug_close(st);
                                return -EINVAL;
                        }
                        st->ask_style[st->n_asks] = style;
                        st->ask_message[st->n_asks] = strdup(colon + 1);
                        if (!st->ask_message[st->n_asks++]) {
                                debug_close(st);
                                return -ENOMEM;
                        }
                        continue;
                }
                if (eq && (size_t) (eq - a) == 6 && strncmp(a, "expect", 6) == 0) {
                        if (st->n_expects >= DEBUG_ASKS_MAX) {
                                host->log(ctx, NULL, LATCH_LOG_ERR, "too many expect= arguments");
                                debug_close(st);
                                return -EINVAL;
                        }
                        st->expect[st->n_expects] = strdup(eq + 1);
                        if (!st->expect[st->n_expects++]) {
                                debug_close(st);
                                return -ENOMEM;
                        }
                        continue;
                }
                if (eq && (size_t) (eq - a) == 4 && strncmp(a, "auth", 4) == 0) {
                        slot = &st->auth;
                        seen = &seen_auth;
                } else if (eq && (((size_t) (eq - a) == 4 && strncmp(a, "acct", 4) == 0) ||
                                  ((size_t) (eq - a) == 7 && strncmp(a, "account", 7) == 0))) {
                        slot = &st->account;
                        seen = &seen_account;
                } else if (eq && ((k == 15 && strncmp(a, "password_prelim", 15) == 0) ||
                                  (k == 12 && strncmp(a, "prechauthtok", 12) == 0))) {
                        slot = &st->password_prelim;
                        seen = &seen_prelim;
                } else if (eq && ((k == 15 && strncmp(a, "password_update", 15) == 0) ||
                                  (k == 9 && strncmp(a, "chauthtok", 9) == 0))) {
                        slot = &st->password_update;
                        seen = &seen_update;
                } else if (eq && k == 8 && strncmp(a, "password", 8) == 0) {
                        slot = &st->password_prelim;
                        seen = &seen_prelim;
                        slot2 = &st->password_update;
                        seen2 = &seen_update;
                } else {
                        host->log(ctx, NULL, LATCH_LOG_ERR,
                                  "unknown argument '%s' (expected auth=, acct=, password=, password_prelim= or "
                                  "password_update=RESULT)", a);
                        debug_close(st);
                        return -EINVAL;
                }

                r = result_from_name(eq + 1);
                if (r < 0) {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown result name '%s' in '%s'", eq + 1, a);
                        debug_close(st);
                        return -EINVAL;
                }
                /* pam_debug takes the first argument for an event. */
                if (!*seen)
                        *slot = r;
                *seen = true;
                if (slot2 && !*seen2)
                        *slot2 = r;
                if (seen2)
                        *seen2 = true;
        }

        *ret_state = st;
        return 0;
}

/* Marks a request whose prompts were posted (the slot holds no memory). */
static char asked_marker;

static int debug_auth(void *state, struct latch_req *req) {
        const struct debug_state *st = state;
        const struct latch_host *host = st->host;
        size_t k = 0;

        if (st->n_asks == 0)
                return st->auth;
        if (host->get_data(req) != &asked_marker) {
                for (size_t i = 0; i < st->n_asks; i++)
                        if (host->prompt(req, st->ask_style[i], st->ask_message[i]) < 0)
                                return LATCH_CONV_ERR;
                if (host->set_data(req, &asked_marker, NULL) < 0)
                        return LATCH_BUF_ERR;
                return LATCH_INCOMPLETE;
        }
        (void) host->set_data(req, NULL, NULL);
        for (size_t i = 0; i < st->n_asks; i++) {
                const char *ans = host->answer(req, (int) i);
                if (st->ask_style[i] != LATCH_PROMPT_SECRET && st->ask_style[i] != LATCH_PROMPT_TEXT)
                        continue;
                if (!ans)
                        return LATCH_CONV_ERR;
                if (k < st->n_expects && strcmp(ans, st->expect[k]) != 0)
                        return LATCH_AUTH_ERR;
                k++;
        }
        return st->auth;
}

static int debug_account(void *state, struct latch_req *req) {
        return ((const struct debug_state *) state)->account;
}

static int debug_password(void *state, struct latch_req *req, int flags) {
        const struct debug_state *st = state;
        return flags & LATCH_PRELIM_CHECK ? st->password_prelim : st->password_update;
}

static const struct latch_plugin debug_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "debug",
        .open = debug_open,
        .close = debug_close,
        .auth = debug_auth,
        .account = debug_account,
        .password = debug_password,
};

/* get_data is the last host service it calls (conversations need 1.1). */
LATCH_PLUGIN_DEFINE(debug_plugin, get_data)
