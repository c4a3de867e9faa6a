/* SPDX-License-Identifier: MIT */

/*
 * The `pam` plugin: hands the request to the system's Linux-PAM.
 *
 *   auth    required pam service=NAME
 *   account required pam service=NAME
 *
 * service= names a file in /etc/pam.d (no '/'). Every call runs on its own
 * PAM handle: pam_start(service, user), PAM_RHOST set to the request's remote
 * when there is one, then pam_authenticate() (auth) or pam_acct_mgmt()
 * (account), both with PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK, then pam_end().
 * auth and account use separate handles because the plugin ABI keeps no
 * per-request state between them; modules that pass data from their auth to
 * their account step through pam_set_data() therefore do not see it (none of
 * the stock Linux-PAM modules needs that for a decision).
 *
 * The PAM result is returned as it is: latch results use Linux-PAM's numbers.
 *
 * Conversation: PAM_PROMPT_ECHO_OFF is answered with the request's password
 * (a malloc'd copy that the module frees; Linux-PAM wipes it). Every
 * PAM_PROMPT_ECHO_ON is refused (PAM_CONV_ERR): the user name is already set
 * with pam_start(), and answering an echoing prompt with the password would
 * risk it being shown or logged. PAM_ERROR_MSG and PAM_TEXT_INFO are logged
 * at debug level.
 *
 * Failure delays requested by modules (pam_fail_delay(), e.g. pam_unix's 2 s)
 * are not slept: PAM_FAIL_DELAY is set to a function that does nothing, so
 * a worker thread is never parked; latchd's [throttle] does the back-off.
 */

#include <errno.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

#include "macro.h"
#include "secret.h"

struct pam_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char *service;
};

struct conv_data {
        struct pam_state *s;
        struct latch_req *req;
        const char *password;
};

static void free_responses(struct pam_response *r, int n) {
        if (!r)
                return;
        for (int i = 0; i < n; i++)
                secret_free(r[i].resp);
        free(r);
}

static int conv(int n, const struct pam_message **msg, struct pam_response **ret_resp,
                void *appdata) {
        struct conv_data *d = appdata;
        struct pam_response *resp;

        if (n <= 0 || n > PAM_MAX_NUM_MSG || !msg || !ret_resp)
                return PAM_CONV_ERR;
        resp = calloc(n, sizeof *resp);
        if (!resp)
                return PAM_BUF_ERR;

        for (int i = 0; i < n; i++) {
                const char *text = msg[i]->msg ?: "";

                switch (msg[i]->msg_style) {
                case PAM_PROMPT_ECHO_OFF:
                        if (!d->password || d->password[0] == '\0')
                                goto fail;
                        resp[i].resp = strdup(d->password);
                        if (!resp[i].resp) {
                                free_responses(resp, n);
                                return PAM_BUF_ERR;
                        }
                        break;
                case PAM_PROMPT_ECHO_ON:
                        d->s->host->log(d->s->ctx, d->req, LATCH_LOG_DEBUG,
                                        "refusing to answer an echoing prompt: %s", text);
                        goto fail;
                case PAM_ERROR_MSG:
                case PAM_TEXT_INFO:
                        d->s->host->log(d->s->ctx, d->req, LATCH_LOG_DEBUG, "%s: %s",
                                        msg[i]->msg_style == PAM_ERROR_MSG ? "error" : "info",
                                        text);
                        break;
                default:
                        d->s->host->log(d->s->ctx, d->req, LATCH_LOG_DEBUG,
                                        "unsupported conversation message style %d",
                                        msg[i]->msg_style);
                        goto fail;
                }
        }
        *ret_resp = resp;
        return PAM_SUCCESS;

fail:
        free_responses(resp, n);
        return PAM_CONV_ERR;
}

static void no_fail_delay(int retval, unsigned usec_delay, void *appdata) {}

static int map_result(int pam_code) {
        /* Identical numbers by design (see <latch/plugin.h>). */
        if (pam_code < 0 || pam_code >= _LATCH_RESULT_MAX)
                return LATCH_SYSTEM_ERR;
        return pam_code;
}

enum pam_step { STEP_AUTH, STEP_ACCOUNT };

static int run(struct pam_state *s, struct latch_req *req, enum pam_step step) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *remote = s->host->item(req, LATCH_ITEM_REMOTE);
        struct conv_data d = {
                .s = s,
                .req = req,
                .password = step == STEP_AUTH ? s->host->item(req, LATCH_ITEM_PASSWORD) : NULL,
        };
        const struct pam_conv pc = { .conv = conv, .appdata_ptr = &d };
        pam_handle_t *pamh = NULL;
        int r;

        if (!user || user[0] == '\0')
                return LATCH_USER_UNKNOWN;

        r = pam_start(s->service, user, &pc, &pamh);
        if (r != PAM_SUCCESS) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "pam_start(%s): %s", s->service,
                             pam_strerror(pamh, r));
                if (pamh)
                        pam_end(pamh, r);
                return map_result(r);
        }

        union {
                void (*fn)(int, unsigned, void *);
                const void *item;
        } delay = { .fn = no_fail_delay };
        r = pam_set_item(pamh, PAM_FAIL_DELAY, delay.item);
        if (r == PAM_SUCCESS && remote && remote[0] != '\0')
                r = pam_set_item(pamh, PAM_RHOST, remote);
        if (r != PAM_SUCCESS) {
                s->host->log(s->ctx, req, LATCH_LOG_ERR, "pam_set_item: %s",
                             pam_strerror(pamh, r));
                pam_end(pamh, r);
                return map_result(r);
        }

        if (step == STEP_AUTH)
                r = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        else
                r = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        if (r != PAM_SUCCESS)
                s->host->log(s->ctx, req, LATCH_LOG_DEBUG, "%s(%s): %s",
                             step == STEP_AUTH ? "pam_authenticate" : "pam_acct_mgmt",
                             s->service, pam_strerror(pamh, r));

        pam_end(pamh, r);
        return map_result(r);
}

static int pam_plugin_auth(void *userdata, struct latch_req *req) {
        return run(userdata, req, STEP_AUTH);
}

static int pam_plugin_account(void *userdata, struct latch_req *req) {
        return run(userdata, req, STEP_ACCOUNT);
}

static void pam_plugin_close(void *userdata) {
        struct pam_state *s = userdata;

        if (!s)
                return;
        free(s->service);
        free(s);
}

static int pam_plugin_open(const struct latch_host *host, struct latch_ctx *ctx, int argc,
                           const char *const *argv, void **ret_state) {
        const char *service = NULL;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "service=", 8) == 0)
                        service = argv[i] + 8;
                else {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown argument '%s'", argv[i]);
                        return -EINVAL;
                }
        }
        if (!service || service[0] == '\0') {
                host->log(ctx, NULL, LATCH_LOG_ERR, "missing argument service=NAME");
                return -EINVAL;
        }
        if (strchr(service, '/') || streq(service, ".") || streq(service, "..")) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "service=%s: not a PAM service name",
                          service);
                return -EINVAL;
        }

        struct pam_state *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->host = host;
        s->ctx = ctx;
        s->service = strdup(service);
        if (!s->service) {
                free(s);
                return -ENOMEM;
        }
        *ret_state = s;
        return 0;
}

static const struct latch_plugin pam_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "pam",
        .open = pam_plugin_open,
        .close = pam_plugin_close,
        .auth = pam_plugin_auth,
        .account = pam_plugin_account,
};

/* log and item are the host services it calls. */
LATCH_PLUGIN_DEFINE(pam_plugin, item)
