/* SPDX-License-Identifier: MIT */

/*
 * The `pam` plugin: hands the request to the system's Linux-PAM.
 *
 *   auth     required pam service=NAME [max_waiting=N]
 *   account  required pam service=NAME
 *   password required pam service=NAME
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
 * The PAM result is returned as it is (but see run() for pam_chauthtok()'s
 * PAM_TRY_AGAIN): latch results use Linux-PAM's numbers.
 * So pam_acct_mgmt()'s PAM_NEW_AUTHTOK_REQD (pam_unix: the shadow entry says
 * the password must change, `chage -d 0` or past its maximum age) is
 * LATCH_NEW_AUTHTOK_REQD, which makes a login go on to change it.
 *
 * Password changes (ABI 1.2, password()) bridge pam_chauthtok():
 *
 *   LATCH_PRELIM_CHECK  verifies the current password with pam_authenticate()
 *                       on the same PAM service (its `auth` lines), relaying
 *                       its conversation; LATCH_ITEM_OLDPASSWORD, when a line
 *                       before set it (or the login whose password expired),
 *                       answers the first no-echo prompt, else the client
 *                       does. On success the password that answered becomes
 *                       LATCH_ITEM_OLDPASSWORD. Nothing changes in this pass.
 *   LATCH_UPDATE_AUTHTOK runs pam_chauthtok() (the service's `password`
 *                       lines; PAM_CHANGE_EXPIRED_AUTHTOK when our flags have
 *                       LATCH_CHANGE_EXPIRED_AUTHTOK), relaying its
 *                       conversation. No-echo prompts asking for the current
 *                       password (see asks_current()) are answered from
 *                       LATCH_ITEM_OLDPASSWORD; the others (new, retype) from
 *                       LATCH_ITEM_PASSWORD when a line before set it, else
 *                       by the client, whose new password then becomes
 *                       LATCH_ITEM_PASSWORD for the lines after.
 *
 * Why the preliminary pass verifies the current password itself: libpam runs
 * both of pam_chauthtok()'s passes inside the one call, so the update pass is
 * the only place it can run; and pam_unix, running as root (as it must, to
 * read /etc/shadow), does not ask for or check the current password at all
 * unless PAM_CHANGE_EXPIRED_AUTHTOK is set (root may set anyone's password,
 * as passwd(1) lets it). Without the check, anyone able to call `passwd`
 * could set any user's password.
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
 * plugin always did. Message texts are made fit for the host (prompt_text():
 * U+FFFD for what it refuses, cut at LATCH_PROMPT_MESSAGE_MAX; empty info
 * and error lines dropped). Messages with nothing to answer (info, error) wait to
 * go out with the next question; those of a module that asks nothing more
 * are logged at debug level. The thread and its PAM handle live in the
 * request's slot (host->set_data()): a request abandoned mid-conversation
 * makes the conversation function fail (PAM_CONV_ERR) and the thread end,
 * without a log line (the abandonment is the cause, and no call is there to
 * log in). A call that returns a result, whichever, has ended and joined its
 * thread first, so nothing of the request is logged after its result (in
 * latch-worker every log line is a frame, and latchd takes none then).
 *
 * Those threads are bounded per line: at most max_waiting= (1 to 1024,
 * default 16) wait for their client at once. When one more would, the
 * one that has waited longest is ended as an abandoned one would be, and
 * its answer, if it comes, gets LATCH_AUTHINFO_UNAVAIL: clients that never
 * answer cannot make latchd keep a thread (and a PAM handle) each until
 * their conversations time out. (In latch-worker each process serves one
 * request at a time; latchd bounds the waiting workers of an isolated line
 * itself, [plugin.NAME] max_waiting.)
 *
 * Failure delays requested by modules (pam_fail_delay(), e.g. pam_unix's 2 s)
 * are not slept: PAM_FAIL_DELAY is set to a function that does nothing, so
 * a worker thread is never parked; latchd's [throttle] does the back-off.
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

#include "macro.h"
#include "secret.h"
#include "utf8.h"

#define MAX_WAITING_DEFAULT 16
#define MAX_WAITING_LIMIT 1024

struct pam_job;

struct pam_state {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char *service;

        /* The jobs whose module waits for the client, oldest first. Taken
         * before a job's own lock, never after it. */
        pthread_mutex_t lock;
        struct pam_job *waiting_oldest, *waiting_newest;
        unsigned n_waiting, max_waiting;
};

enum job_state { JOB_RUNNING, JOB_ASKING, JOB_DONE };

/* What a job runs: pam_authenticate() for auth() and for password()'s
 * preliminary pass, pam_acct_mgmt() for account(), pam_chauthtok() for
 * password()'s update pass. */
enum pam_step { STEP_AUTH, STEP_ACCOUNT, STEP_PRELIM, STEP_UPDATE };

static const char *const step_call[] = {
        [STEP_AUTH] = "pam_authenticate",
        [STEP_ACCOUNT] = "pam_acct_mgmt",
        [STEP_PRELIM] = "pam_authenticate",
        [STEP_UPDATE] = "pam_chauthtok",
};

/* One request's PAM call, on its own thread (see the top of the file). */
struct pam_job {
        struct pam_state *s;
        int step;                /* enum pam_step */
        int pam_flags;           /* STEP_UPDATE: 0 or PAM_CHANGE_EXPIRED_AUTHTOK */
        char *user, *remote;
        /* Secrets. STEP_AUTH: the request's password, STEP_PRELIM: its
         * current password (LATCH_ITEM_OLDPASSWORD); either answers the first
         * no-echo prompt and is NULL after that. */
        char *password;
        bool asked_secret;       /* a no-echo prompt went by */
        /* STEP_UPDATE: LATCH_ITEM_OLDPASSWORD and LATCH_ITEM_PASSWORD, which
         * answer every prompt for the current and for a new password. */
        char *old, *new;
        /* The client's answer that becomes an item when the step succeeds:
         * STEP_PRELIM, to the first no-echo prompt (the current password);
         * STEP_UPDATE, the last one to a new-password prompt (the new
         * password: a module that re-asks after a refusal asks both again). */
        char *captured;
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
        bool capture[LATCH_PROMPTS_MAX]; /* the answer becomes `captured` */
        bool cancel;             /* the request ended: fail the conversation */

        /* Guarded by s->lock: its place in s's waiting list while the client
         * is asked, and whether it was ended to make room (no longer in it). */
        struct pam_job *older, *newer;
        bool waiting, evicted;
};

/* ---- the line's waiting jobs ---- */

static void waiting_unlink(struct pam_state *s, struct pam_job *j) {
        if (j->older)
                j->older->newer = j->newer;
        else
                s->waiting_oldest = j->newer;
        if (j->newer)
                j->newer->older = j->older;
        else
                s->waiting_newest = j->older;
        j->older = j->newer = NULL;
        j->waiting = false;
        s->n_waiting--;
}

/* The job's module now waits for the client: to the end of the list. Past
 * max_waiting the oldest job is cancelled (its conversation fails, its
 * thread ends; the job stays its request's). */
static void job_wait(struct pam_state *s, struct pam_job *j) {
        bool evicted = false;

        pthread_mutex_lock(&s->lock);
        j->newer = NULL;
        j->older = s->waiting_newest;
        if (s->waiting_newest)
                s->waiting_newest->newer = j;
        else
                s->waiting_oldest = j;
        s->waiting_newest = j;
        j->waiting = true;
        s->n_waiting++;
        if (s->n_waiting > s->max_waiting) {
                struct pam_job *old = s->waiting_oldest; /* not j: max_waiting >= 1 */
                waiting_unlink(s, old);
                old->evicted = true;
                pthread_mutex_lock(&old->lock);
                old->cancel = true;
                pthread_cond_broadcast(&old->cond);
                pthread_mutex_unlock(&old->lock);
                evicted = true;
        }
        pthread_mutex_unlock(&s->lock);
        if (evicted)
                s->host->log(s->ctx, NULL, LATCH_LOG_WARNING,
                             "more than %u logins waiting for an answer (max_waiting); the oldest was ended",
                             s->max_waiting);
}

/* Takes the job out of the list (its client answered, or its request
 * ended): -ECANCELED when it had been ended to make room. */
static int job_unwait(struct pam_state *s, struct pam_job *j) {
        int r = 0;

        pthread_mutex_lock(&s->lock);
        if (j->evicted)
                r = -ECANCELED;
        else if (j->waiting)
                waiting_unlink(s, j);
        pthread_mutex_unlock(&s->lock);
        return r;
}

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
                j->capture[i] = false;
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

/* Whether a no-echo prompt of pam_chauthtok() asks for the current password
 * rather than a new one. Modules say so in the message: pam_unix's "Current
 * password: " (before Linux-PAM 1.4 "(current) UNIX password: "), pam_sss's
 * "Current Password: ", pam_krb5's "Current Kerberos password: ", pam_ldap's
 * "(current) LDAP Password: "; no stock module asks for a new password with
 * that word. Modules translate their messages to the process's locale, and
 * neither latchd nor latch-worker calls setlocale(), so it is "C": English. */
static bool asks_current(const char *message) {
        return message && strcasestr(message, "current");
}

/* A no-echo prompt (the job's lock held): answers it from what the request
 * already holds, when it does. Returns 1 with *ret_resp set (a copy PAM
 * frees), 0 to relay it to the client (*ret_capture: keep the answer), or
 * -ENOMEM. */
static int answer_secret(struct pam_job *j, const char *message, char **ret_resp, bool *ret_capture) {
        const char *from = NULL;
        bool first = !j->asked_secret;

        j->asked_secret = true;
        *ret_capture = false;
        switch (j->step) {
        case STEP_AUTH:
        case STEP_PRELIM:
                /* The request's (current) password answers the first one. */
                if (j->password) {
                        *ret_resp = TAKE_PTR(j->password);
                        return 1;
                }
                *ret_capture = j->step == STEP_PRELIM && first;
                return 0;
        case STEP_UPDATE:
                if (asks_current(message))
                        from = j->old;
                else {
                        from = j->new;
                        *ret_capture = !from;
                }
                if (!from)
                        return 0;
                *ret_resp = secret_strndup(from, strlen(from));
                return *ret_resp ? 1 : -ENOMEM;
        default:
                return 0;
        }
}

/* What an empty question shows instead (the host refuses an empty prompt). */
#define EMPTY_QUESTION "Answer: "
#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static bool cp_refused(uint32_t cp) {
        return (cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7f || utf8_cp_deceives(cp);
}

/* A PAM message as a prompt the host takes (see LATCH_PROMPT_MESSAGE_MAX
 * in <latch/plugin.h>): bytes that are not UTF-8, and code points the host
 * refuses, become U+FFFD; the text is cut at LATCH_PROMPT_MESSAGE_MAX bytes,
 * between code points. Modules write what they like (pam_echo a file as it
 * is, pam_motd the motd), and one refused line would fail the whole call
 * with LATCH_CONV_ERR: the question after it would never reach the client.
 * `m` is not empty. Returns a new string, or NULL (out of memory). */
static char *prompt_text(const char *m) {
        char *t = malloc(LATCH_PROMPT_MESSAGE_MAX + 1);
        size_t n = 0;

        if (!t)
                return NULL;
        for (const char *p = m; *p;) {
                uint32_t cp;
                size_t used = utf8_decode(p, &cp), k;
                const char *out;

                if (used == 0 || cp_refused(cp)) {
                        out = REPLACEMENT;
                        k = strlen(REPLACEMENT);
                        used = MAX(used, (size_t) 1);
                } else {
                        out = p;
                        k = used;
                }
                if (n + k > LATCH_PROMPT_MESSAGE_MAX)
                        break;
                memcpy(t + n, out, k);
                n += k;
                p += used;
        }
        t[n] = '\0';
        return t;
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
                bool capture = false;
                slot[i] = -1;
                if (style < 0)
                        goto fail;
                /* An empty line says nothing, and the host takes no empty
                 * prompt: dropped (it has no answer to miss). */
                if ((style == LATCH_PROMPT_INFO || style == LATCH_PROMPT_ERROR) &&
                    (!msg[i]->msg || msg[i]->msg[0] == '\0'))
                        continue;
                if (style == LATCH_PROMPT_SECRET) {
                        int r = answer_secret(j, msg[i]->msg, &resp[i].resp, &capture);
                        if (r < 0)
                                goto fail;
                        if (r > 0)
                                continue;
                }
                if (j->n >= LATCH_PROMPTS_MAX)
                        goto fail;
                slot[i] = j->n;
                j->capture[j->n] = capture;
                j->style[j->n] = style;
                j->text[j->n] = msg[i]->msg && msg[i]->msg[0] != '\0' ? prompt_text(msg[i]->msg)
                                                                      : strdup(EMPTY_QUESTION);
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
        for (int i = 0; i < n; i++) {
                int k = slot[i];
                if (k < 0 || !j->answer[k])
                        continue;
                if (j->capture[k]) {
                        char *copy = secret_strndup(j->answer[k], strlen(j->answer[k]));
                        if (!copy)
                                goto fail;
                        secret_free(j->captured);
                        j->captured = copy;
                }
                resp[i].resp = TAKE_PTR(j->answer[k]);
        }
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

        switch (j->step) {
        case STEP_AUTH:
        case STEP_PRELIM:
                r = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
                break;
        case STEP_ACCOUNT:
                r = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
                break;
        default:
                /* Not PAM_SILENT: a module refusing the new password says why
                 * ("BAD PASSWORD: ...", "Sorry, passwords do not match.") as
                 * it asks again, and the client must see it. */
                r = pam_chauthtok(pamh, j->pam_flags);
                break;
        }
        if (r != PAM_SUCCESS) {
                bool cancelled;

                /* A cancelled job (its request ended mid-conversation, or
                 * max_waiting ended it) fails because of that, and nobody
                 * waits for its result: nothing to say, and no call to say
                 * it in. */
                pthread_mutex_lock(&j->lock);
                cancelled = j->cancel;
                pthread_mutex_unlock(&j->lock);
                if (!cancelled)
                        s->host->log(s->ctx, NULL, LATCH_LOG_DEBUG, "%s(%s): %s", step_call[j->step],
                                     s->service, pam_strerror(pamh, r));
        }
        pam_end(pamh, r);
        /* libpam's pam_get_authtok(), which pam_unix and pam_pwquality ask
         * the new password with, fails a retype that differs with
         * PAM_TRY_AGAIN ("the user should try again"). To latch's clients
         * TRY_AGAIN means the backend could not be asked (`unavailable`); a
         * mistyped new password is a refused one, LATCH_AUTHTOK_ERR. */
        if (j->step == STEP_UPDATE && r == PAM_TRY_AGAIN)
                return LATCH_AUTHTOK_ERR;
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
        (void) job_unwait(j->s, j);
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
        secret_free(j->old);
        secret_free(j->new);
        secret_free(j->captured);
        free(j);
}

/* A copy of a non-empty secret item into *ret (NULL when the item is absent
 * or empty). Returns 0 or -ENOMEM. */
static int copy_item(struct pam_state *s, struct latch_req *req, int item, char **ret) {
        const char *v = s->host->item(req, item);

        *ret = NULL;
        if (!v || v[0] == '\0')
                return 0;
        *ret = secret_strndup(v, strlen(v));
        return *ret ? 0 : -ENOMEM;
}

static int job_new(struct pam_state *s, struct latch_req *req, int step, int pam_flags,
                   struct pam_job **ret) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        const char *remote = s->host->item(req, LATCH_ITEM_REMOTE);
        struct pam_job *j = calloc(1, sizeof *j);
        int r = 0;

        if (!j)
                return -ENOMEM;
        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);
        j->s = s;
        j->step = step;
        j->pam_flags = pam_flags;
        j->user = strdup(user);
        j->remote = remote ? strdup(remote) : NULL;
        if (step == STEP_AUTH)
                r = copy_item(s, req, LATCH_ITEM_PASSWORD, &j->password);
        else if (step == STEP_PRELIM)
                r = copy_item(s, req, LATCH_ITEM_OLDPASSWORD, &j->password);
        else if (step == STEP_UPDATE) {
                r = copy_item(s, req, LATCH_ITEM_OLDPASSWORD, &j->old);
                if (r >= 0)
                        r = copy_item(s, req, LATCH_ITEM_PASSWORD, &j->new);
        }
        if (!j->user || (remote && !j->remote) || r < 0) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* A password step that succeeded: the password the client gave becomes the
 * request's item (see the top of the file). Returns the step's result. */
static int job_set_items(struct pam_state *s, struct latch_req *req, struct pam_job *j) {
        int item = j->step == STEP_PRELIM ? LATCH_ITEM_OLDPASSWORD : LATCH_ITEM_PASSWORD;
        int r;

        if (!j->captured)
                return LATCH_SUCCESS;
        r = s->host->set_item(req, item, j->captured);
        if (r >= 0)
                return LATCH_SUCCESS;
        s->host->log(s->ctx, req, LATCH_LOG_ERR, "set_item(%s): %s",
                     item == LATCH_ITEM_OLDPASSWORD ? "OLDPASSWORD" : "PASSWORD", strerror(-r));
        /* After the update the password has changed: say so (the lines after
         * this one will ask for the new password themselves). Before it,
         * nothing happened: fail. */
        return j->step == STEP_UPDATE ? LATCH_SUCCESS : LATCH_BUF_ERR;
}

/* Every call that returns a final result (anything but LATCH_INCOMPLETE)
 * returns through here: emptying the slot runs job_free(), which ends the
 * module's conversation and joins its thread. A thread left waiting in
 * conv() would end only with the request, after the result went out, and
 * what it logged then would come after the answer (in latch-worker, a log
 * frame where latchd expects none, or one written to a closed socket). */
static int job_end(struct pam_state *s, struct latch_req *req, int result) {
        (void) s->host->set_data(req, NULL, NULL);
        return result;
}

static int call(struct pam_state *s, struct latch_req *req, int step, int pam_flags) {
        const char *user = s->host->item(req, LATCH_ITEM_USER);
        struct pam_job *j;
        int r;

        if (!user || user[0] == '\0')
                return LATCH_USER_UNKNOWN;
        /* A 1.0 host cannot converse: no prompts, as before. */
        if (s->host->size < LATCH_HOST_SIZE_FOR(get_data))
                return LATCH_SYSTEM_ERR;
        /* Only a 1.2 host calls password(), and it can set items. */
        if ((step == STEP_PRELIM || step == STEP_UPDATE) && s->host->size < LATCH_HOST_SIZE_FOR(set_item))
                return LATCH_SYSTEM_ERR;

        j = s->host->get_data(req);
        if (j && j->step != step) {
                /* Not the call that continues this job (a pass that never
                 * came back, then the other one): end it and start over. */
                (void) s->host->set_data(req, NULL, NULL);
                j = NULL;
        }
        if (!j) {
                if (job_new(s, req, step, pam_flags, &j) < 0)
                        return LATCH_BUF_ERR;
                if (s->host->set_data(req, j, job_free) < 0) {
                        job_free(j);
                        return LATCH_BUF_ERR;
                }
                r = pthread_create(&j->thread, NULL, job_thread, j);
                if (r != 0) {
                        s->host->log(s->ctx, req, LATCH_LOG_ERR, "pthread_create: %s", strerror(r));
                        /* Emptying the slot runs its cleanup, job_free(j): j
                         * is gone after this. */
                        (void) s->host->set_data(req, NULL, NULL);
                        return LATCH_SYSTEM_ERR;
                }
                j->started = true;
                pthread_mutex_lock(&j->lock);
        } else {
                /* The client answered: hand the answers to the module. */
                if (job_unwait(s, j) < 0) {
                        s->host->log(s->ctx, req, LATCH_LOG_WARNING,
                                     "the conversation had been ended to make room for newer ones (max_waiting %u)",
                                     s->max_waiting);
                        return job_end(s, req, LATCH_AUTHINFO_UNAVAIL);
                }
                pthread_mutex_lock(&j->lock);
                if (j->state != JOB_ASKING) {
                        pthread_mutex_unlock(&j->lock);
                        return job_end(s, req, LATCH_SYSTEM_ERR);
                }
                for (int i = 0; i < j->n; i++) {
                        const char *a = s->host->answer(req, i);
                        if (a && !(j->answer[i] = secret_strndup(a, strlen(a)))) {
                                pthread_mutex_unlock(&j->lock);
                                return job_end(s, req, LATCH_BUF_ERR);
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
                                return job_end(s, req, LATCH_CONV_ERR);
                        }
                pthread_mutex_unlock(&j->lock);
                job_wait(s, j);
                return LATCH_INCOMPLETE;
        }
        r = j->result;
        /* Info lines nobody asked after: logged, as before. */
        for (int i = 0; i < j->n; i++)
                s->host->log(s->ctx, req, LATCH_LOG_DEBUG, "%s: %s",
                             j->style[i] == LATCH_PROMPT_ERROR ? "error" : "info", j->text[i]);
        pthread_mutex_unlock(&j->lock);
        if (r == LATCH_SUCCESS && (step == STEP_PRELIM || step == STEP_UPDATE))
                r = job_set_items(s, req, j);
        return job_end(s, req, r);
}

static int pam_plugin_auth(void *userdata, struct latch_req *req) {
        return call(userdata, req, STEP_AUTH, 0);
}

static int pam_plugin_account(void *userdata, struct latch_req *req) {
        return call(userdata, req, STEP_ACCOUNT, 0);
}

static int pam_plugin_password(void *userdata, struct latch_req *req, int flags) {
        int pam_flags = flags & LATCH_CHANGE_EXPIRED_AUTHTOK ? PAM_CHANGE_EXPIRED_AUTHTOK : 0;

        if (flags & LATCH_PRELIM_CHECK)
                return call(userdata, req, STEP_PRELIM, 0);
        if (flags & LATCH_UPDATE_AUTHTOK)
                return call(userdata, req, STEP_UPDATE, pam_flags);
        return LATCH_SYSTEM_ERR;
}

static void pam_plugin_close(void *userdata) {
        struct pam_state *s = userdata;

        if (!s)
                return;
        pthread_mutex_destroy(&s->lock);
        free(s->service);
        free(s);
}

static int pam_plugin_open(const struct latch_host *host, struct latch_ctx *ctx, int argc,
                           const char *const *argv, void **ret_state) {
        const char *service = NULL;
        unsigned long max_waiting = MAX_WAITING_DEFAULT;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "service=", 8) == 0)
                        service = argv[i] + 8;
                else if (strncmp(argv[i], "max_waiting=", 12) == 0) {
                        const char *v = argv[i] + 12;
                        char *end;
                        errno = 0;
                        max_waiting = *v >= '0' && *v <= '9' ? strtoul(v, &end, 10) : 0;
                        if (max_waiting == 0 || max_waiting > MAX_WAITING_LIMIT || errno != 0 || *end != '\0') {
                                host->log(ctx, NULL, LATCH_LOG_ERR, "max_waiting=%s: expected a number from 1 to %d",
                                          v, MAX_WAITING_LIMIT);
                                return -EINVAL;
                        }
                } else {
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
        s->max_waiting = (unsigned) max_waiting;
        pthread_mutex_init(&s->lock, NULL);
        s->service = strdup(service);
        if (!s->service) {
                pthread_mutex_destroy(&s->lock);
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
        .password = pam_plugin_password,
};

/* It converses: get_data (ABI 1.1) is the last host service auth() and
 * account() call. password() also calls set_item (ABI 1.2), but only a 1.2
 * host, which has it, calls password(): the plugin still loads in a 1.1 host. */
LATCH_PLUGIN_DEFINE(pam_plugin, get_data)
