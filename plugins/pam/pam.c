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
 * Conversation: the module's conversation reaches the client (plugin ABI
 * 1.1). pam_authenticate() or pam_acct_mgmt() runs on a thread of its own
 * for the request; its conversation function hands the messages to the
 * plugin's call, which posts them as prompts (PAM_PROMPT_ECHO_OFF → secret,
 * PAM_PROMPT_ECHO_ON → text, PAM_ERROR_MSG → error, PAM_TEXT_INFO → info)
 * and returns LATCH_INCOMPLETE; the call that continues the request hands
 * the client's answers back and the module goes on where it was. The first
 * PAM_PROMPT_ECHO_OFF is answered with the request's password when it has
 * one (so a client that sends the password sees no prompt for it), as the
 * plugin always did. Messages with nothing to answer (info, error) wait to
 * go out with the next question; those of a module that asks nothing more
 * are logged at debug level. The thread and its PAM handle live in the
 * request's slot (host->set_data()): a request abandoned mid-conversation
 * makes the conversation function fail (PAM_CONV_ERR) and the thread end.
 *
 * Failure delays requested by modules (pam_fail_delay(), e.g. pam_unix's 2 s)
 * are not slept: PAM_FAIL_DELAY is set to a function that does nothing, so
 * a worker thread is never parked; latchd's [throttle] does the back-off.
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

enum job_state { JOB_RUNNING, JOB_ASKING, JOB_DONE };

/* One request's PAM call, on its own thread (see the top of the file). */
struct pam_job {
        struct pam_state *s;
        int step;
        char *user, *remote;
        char *password;          /* secret; NULL once it answered the first no-echo prompt */
        pthread_t thread;
        bool started;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        enum job_state state;
        int result;              /* when JOB_DONE */
        /* JOB_ASKING: what the module asks (the info lines kept before it
         * included), and the client's answers once they are in. */
        int n;
        int style[LATCH_PROMPTS_MAX];
        char *text[LATCH_PROMPTS_MAX];
        bool answered;
        char *answer[LATCH_PROMPTS_MAX]; /* secrets */
        bool cancel;             /* the request ended: fail the conversation */
};

static void free_responses(struct pam_response *r, int n) {
        if (!r)
                return;
        for (int i = 0; i < n; i++)
                secret_free(r[i].resp);
        free(r);
}

static void job_clear_messages(struct pam_job *j) {
        for (int i = 0; i < j->n; i++) {
                free(j->text[i]);
                j->text[i] = NULL;
                secret_free(j->answer[i]);
                j->answer[i] = NULL;
        }
        j->n = 0;
        j->answered = false;
}

static int latch_style(int pam_style) {
        switch (pam_style) {
        case PAM_PROMPT_ECHO_OFF:
                return LATCH_PROMPT_SECRET;
        case PAM_PROMPT_ECHO_ON:
                return LATCH_PROMPT_TEXT;
        case PAM_ERROR_MSG:
                return LATCH_PROMPT_ERROR;
        case PAM_TEXT_INFO:
                return LATCH_PROMPT_INFO;
        default:
                return -1;
        }
}

/* The module's conversation, on the job's thread. */
static int conv(int n, const struct pam_message **msg, struct pam_response **ret_resp, void *appdata) {
        struct pam_job *j = appdata;
        struct pam_response *resp;
        int first = 0, asks = 0, slot[PAM_MAX_NUM_MSG];

        if (n <= 0 || n > PAM_MAX_NUM_MSG || !msg || !ret_resp)
                return PAM_CONV_ERR;
        resp = calloc(n, sizeof *resp);
        if (!resp)
                return PAM_BUF_ERR;

        pthread_mutex_lock(&j->lock);
        if (j->cancel)
                goto fail;
        /* Info lines kept from before stay in front. */
        first = j->n;
        for (int i = 0; i < n; i++) {
                int style = latch_style(msg[i]->msg_style);
                slot[i] = -1;
                if (style < 0)
                        goto fail;
                if (style == LATCH_PROMPT_SECRET && j->password) {
                        /* The request's password answers the first one. */
                        resp[i].resp = TAKE_PTR(j->password);
                        continue;
                }
                if (j->n >= LATCH_PROMPTS_MAX)
                        goto fail;
                slot[i] = j->n;
                j->style[j->n] = style;
                j->text[j->n] = strdup(msg[i]->msg ?: "");
                if (!j->text[j->n])
                        goto fail;
                j->n++;
                asks += style == LATCH_PROMPT_SECRET || style == LATCH_PROMPT_TEXT;
        }
        if (asks == 0) {
                /* Nothing to answer: the lines go out with the next question. */
                pthread_mutex_unlock(&j->lock);
                *ret_resp = resp;
                return PAM_SUCCESS;
        }

        j->state = JOB_ASKING;
        j->answered = false;
        pthread_cond_broadcast(&j->cond);
        while (!j->answered && !j->cancel)
                pthread_cond_wait(&j->cond, &j->lock);
        if (j->cancel)
                goto fail;
        for (int i = 0; i < n; i++)
                if (slot[i] >= 0 && j->answer[slot[i]])
                        resp[i].resp = TAKE_PTR(j->answer[slot[i]]);
        job_clear_messages(j);
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&j->lock);
        *ret_resp = resp;
        return PAM_SUCCESS;

fail:
        (void) first;
        pthread_mutex_unlock(&j->lock);
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

/* The PAM call itself, on the job's thread. */
static int run(struct pam_job *j) {
        struct pam_state *s = j->s;
        const struct pam_conv pc = { .conv = conv, .appdata_ptr = j };
        pam_handle_t *pamh = NULL;
        int r;

        r = pam_start(s->service, j->user, &pc, &pamh);
        if (r != PAM_SUCCESS) {
                s->host->log(s->ctx, NULL, LATCH_LOG_ERR, "pam_start(%s): %s", s->service, pam_strerror(pamh, r));
                if (pamh)
                        pam_end(pamh, r);
                return map_result(r);
        }

        union {
                void (*fn)(int, unsigned, void *);
                const void *item;
        } delay = { .fn = no_fail_delay };
        r = pam_set_item(pamh, PAM_FAIL_DELAY, delay.item);
        if (r == PAM_SUCCESS && j->remote && j->remote[0] != '\0')
                r = pam_set_item(pamh, PAM_RHOST, j->remote);
        if (r != PAM_SUCCESS) {
                s->host->log(s->ctx, NULL, LATCH_LOG_ERR, "pam_set_item: %s", pam_strerror(pamh, r));
                pam_end(pamh, r);
                return map_result(r);
        }

        if (j->step == STEP_AUTH)
                r = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        else
                r = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        if (r != PAM_SUCCESS)
                s->host->log(s->ctx, NULL, LATCH_LOG_DEBUG, "%s(%s): %s",
                             j->step == STEP_AUTH ? "pam_authenticate" : "pam_acct_mgmt", s->service,
                             pam_strerror(pamh, r));
        pam_end(pamh, r);
        return map_result(r);
}

static void *job_thread(void *userdata) {
        struct pam_job *j = userdata;
        int r = run(j);

        pthread_mutex_lock(&j->lock);
        j->result = r;
        j->state = JOB_DONE;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        return NULL;
}

/* The request's slot cleanup: ends the conversation (if the module still
 * waits for answers) and the thread. */
static void job_free(void *userdata) {
        struct pam_job *j = userdata;

        if (!j)
                return;
        if (j->started) {
                pthread_mutex_lock(&j->lock);
                j->cancel = true;
                pthread_cond_broadcast(&j->cond);
                pthread_mutex_unlock(&j->lock);
                pthread_join(j->thread, NULL);
        }
        job_clear_messages(j);
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->cond);
        free(j->user);
        free(j->remote);
        secret_free(j->password);
        free(j);
}

static int job_new(struct pam_state *s, struct latch_req *req, int step, struct pam_job **ret) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *remote = s->host->item(req, LATCH_ITEM_REMOTE);
        const char *password = step == STEP_AUTH ? s->host->item(req, LATCH_ITEM_PASSWORD) : NULL;
        struct pam_job *j = calloc(1, sizeof *j);

        if (!j)
                return -ENOMEM;
        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);
        j->s = s;
        j->step = step;
        j->user = strdup(user);
        j->remote = remote ? strdup(remote) : NULL;
        j->password = password && password[0] ? secret_strndup(password, strlen(password)) : NULL;
        if (!j->user || (remote && !j->remote) || (password && password[0] && !j->password)) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

static int call(struct pam_state *s, struct latch_req *req, int step) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        struct pam_job *j;
        int r;

        if (!user || user[0] == '\0')
                return LATCH_USER_UNKNOWN;
        /* A 1.0 host cannot converse: no prompts, as before. */
        if (s->host->size < LATCH_HOST_SIZE_FOR(get_data))
                return LATCH_SYSTEM_ERR;

        j = s->host->get_data(req);
        if (!j) {
                if (job_new(s, req, step, &j) < 0)
                        return LATCH_BUF_ERR;
                if (s->host->set_data(req, j, job_free) < 0) {
                        job_free(j);
                        return LATCH_BUF_ERR;
                }
                if (pthread_create(&j->thread, NULL, job_thread, j) != 0) {
                        (void) s->host->set_data(req, NULL, NULL);
                        job_free(j);
                        return LATCH_SYSTEM_ERR;
                }
                j->started = true;
                pthread_mutex_lock(&j->lock);
        } else {
                /* The client answered: hand the answers to the module. */
                pthread_mutex_lock(&j->lock);
                if (j->state != JOB_ASKING) {
                        pthread_mutex_unlock(&j->lock);
                        return LATCH_SYSTEM_ERR;
                }
                for (int i = 0; i < j->n; i++) {
                        const char *a = s->host->answer(req, i);
                        if (a && !(j->answer[i] = secret_strndup(a, strlen(a)))) {
                                pthread_mutex_unlock(&j->lock);
                                return LATCH_BUF_ERR;
                        }
                }
                j->answered = true;
                j->state = JOB_RUNNING;
                pthread_cond_broadcast(&j->cond);
        }

        while (j->state == JOB_RUNNING)
                pthread_cond_wait(&j->cond, &j->lock);
        if (j->state == JOB_ASKING) {
                for (int i = 0; i < j->n; i++)
                        if (s->host->prompt(req, j->style[i], j->text[i]) < 0) {
                                pthread_mutex_unlock(&j->lock);
                                return LATCH_CONV_ERR;
                        }
                pthread_mutex_unlock(&j->lock);
                return LATCH_INCOMPLETE;
        }
        r = j->result;
        /* Info lines nobody asked after: logged, as before. */
        for (int i = 0; i < j->n; i++)
                s->host->log(s->ctx, req, LATCH_LOG_DEBUG, "%s: %s",
                             j->style[i] == LATCH_PROMPT_ERROR ? "error" : "info", j->text[i]);
        pthread_mutex_unlock(&j->lock);
        (void) s->host->set_data(req, NULL, NULL); /* joins the thread */
        return r;
}

static int pam_plugin_auth(void *userdata, struct latch_req *req) {
        return call(userdata, req, STEP_AUTH);
}

static int pam_plugin_account(void *userdata, struct latch_req *req) {
        return call(userdata, req, STEP_ACCOUNT);
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

/* It converses: get_data (ABI 1.1) is the last host service it calls. */
LATCH_PLUGIN_DEFINE(pam_plugin, get_data)
