/* SPDX-License-Identifier: MIT */
/*
 * authenticate, login and passwd: run the service's stack on the worker
 * pool, then (login) create the session in the same job, so that the answer
 * `ok` means the session is durable. passwd runs the password stack
 * (pam_chauthtok in steps) instead; a login whose account answers
 * new_authtok_reqd goes on through the password stack too. After a password
 * change, the user's other sessions are revoked in the same job (unless the
 * service says revoke_on_password_change = no), before the answer: `ok`
 * means they are gone.
 *
 * Conversations: when a line asks (the stack returns LATCH_INCOMPLETE with
 * prompts up), the job is parked in the conversation table (conversation.c)
 * and the client gets a `challenge`; no thread waits. `respond` takes the
 * job out (single use), hands the answers to the request and runs the same
 * job again on the pool: the stack resumes at the line that asked. The
 * throttle ticket lives across the steps, so the throttle and the plugins'
 * outcome() see only the final result. A conversation that expires or is
 * refused ends as a failure (LATCH_CONV_ERR) for them.
 *
 * The same job re-authenticates a signed-in user for another op (the
 * `plugin` op with `session` and `password`, op-plugin.c): the service's
 * auth stack runs as for authenticate, conversation, throttle and outcome
 * included, and on success the op's follow-up (struct auth_followup) runs in
 * the same job and answers instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conversation.h"
#include "daemon.h"
#include "dispatch.h"
#include "log.h"
#include "op-auth.h"
#include "ops-common.h"
#include "plugin-host.h"
#include "secret.h"
#include "session.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "tokens.h"
#include "workqueue.h"

enum auth_op {
        AUTH_AUTHENTICATE,
        AUTH_LOGIN,
        AUTH_PASSWD,
};

static const char *const auth_op_names[] = {
        [AUTH_AUTHENTICATE] = "authenticate",
        [AUTH_LOGIN] = "login",
        [AUTH_PASSWD] = "passwd",
};

struct auth_job {
        struct work work;
        struct request *r;
        struct daemon *d;
        struct stackset *set;
        const struct stack *stack;
        struct latch_req *lreq;
        enum auth_op op;
        bool login;                    /* op == AUTH_LOGIN */
        const char *opname;             /* the op's name, or the op re-authenticating */
        struct auth_followup *followup; /* not NULL: what a success leads to instead of an answer */
        bool want_token;
        bool revoke;                   /* revoke the user's other sessions after a change */
        bool keep;                     /* passwd: keep_key is the caller's session */
        uint64_t mark;                 /* login: store_revocation_mark() before any check */
        uint64_t own_revocation;       /* after a change: the number of the job's own revocation */
        uint8_t keep_key[STORE_KEY_SIZE];
        char *audience;
        char *user;
        char *service;
        char *remote;
        uint32_t peer_uid;
        int64_t idle_timeout;
        int64_t absolute_timeout;
        struct throttle_ticket ticket;
        struct stack_auth_state state; /* where the stack waits for answers */
        unsigned step;                 /* challenges sent so far */
        char conversation[CONVERSATION_ID_LEN + 1];
        struct store_kv_batch kv;      /* the plugins' key-value updates, across the steps */

        /* Filled by the worker. */
        int result;
        int store_result;
        int revoke_result;             /* after a change: store_session_revoke_user_except() */
        bool session_gone;             /* passwd: the caller's session ended during the conversation */
        bool update_lost;              /* an isolated worker was lost in the update pass */
        size_t revoked;
        char *claims_json;
        char id[SESSION_ID_LEN + 1];
        uint8_t key[STORE_KEY_SIZE];
        struct session_info info;
};

static void auth_job_free(struct auth_job *j) {
        if (!j)
                return;
        latch_req_free(j->lreq);
        if (j->followup)
                j->followup->free(j->followup);
        if (j->set)
                stackset_unref(j->set);
        request_unref(j->r);
        free(j->audience);
        free(j->user);
        free(j->service);
        free(j->remote);
        free(j->claims_json);
        sodium_memzero(j->id, sizeof j->id);
        sodium_memzero(j->key, sizeof j->key);
        sodium_memzero(j->keep_key, sizeof j->keep_key);
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct auth_job *, auth_job_free);

/* Pool thread: whoever knew the old password loses what it opened, before
 * the answer. The caller's own session (passwd) stays; a login's new one is
 * made after. */
static void revoke_after_change(struct auth_job *j) {
        j->revoke_result = store_session_revoke_user_except(j->d->store, j->user, j->keep ? j->keep_key : NULL,
                                                            &j->revoked, &j->own_revocation);
}

static int session_seen(void *userdata, const struct session_info *s) {
        return 0;
}

/* Pool thread: whether passwd's own session still lives. It was checked when
 * the change began; a logout or a revocation may have come while the
 * conversation waited, and the change is made for that session alone. */
static bool keep_session_lives(struct auth_job *j) {
        /* A store error is not taken for an ended session: the change's
         * own writes will meet it and say so. */
        return store_session_get(j->d->store, j->keep_key, daemon_now(), session_seen, NULL) != -ENOENT;
}

/* Pool thread. */
static void auth_job_step(struct auth_job *j) {
        if (j->op == AUTH_PASSWD && j->keep && j->step > 0 && !keep_session_lives(j)) {
                /* Ends as an abandoned conversation does: the lines that
                 * took part hear of a failure, and nothing more is changed
                 * (what a line of the update pass already changed stays,
                 * and revokes as then). */
                j->session_gone = true;
                j->result = LATCH_CONV_ERR;
                stack_authenticate_end(j->stack, j->lreq, &j->state, j->result);
                latch_req_free(j->lreq);
                j->lreq = NULL;
                if (j->state.password_touched && j->revoke)
                        revoke_after_change(j);
                return;
        }
        if (j->op == AUTH_PASSWD)
                j->result = stack_chauthtok_step(j->stack, j->lreq, &j->state, 0);
        else
                j->result = stack_authenticate_step(j->stack, j->lreq, &j->state);
        /* An isolated line's worker lost in the update pass may have
         * changed the password: as a line that succeeded there. */
        if (latch_req_password_unsure(j->lreq))
                j->state.password_touched = j->update_lost = true;
        if (j->result == LATCH_INCOMPLETE) {
                /* A line asked: keep the request for the answers. */
                if (latch_req_challenge(j->lreq))
                        return;
                /* A 1.0 plugin's own INCOMPLETE cannot be continued: the
                 * result stands, as it always has. */
                stack_authenticate_end(j->stack, j->lreq, &j->state, j->result);
        }
        if (j->result == LATCH_SUCCESS) {
                json_t *claims = latch_req_claims(j->lreq);
                j->claims_json = json_dumps(claims ? claims : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
        }
        /* The password is no longer needed: wipe it now, not at reply time. */
        latch_req_free(j->lreq);
        j->lreq = NULL;

        /* A change that failed after a line of its update pass succeeded
         * (a later line refused) may have changed the password all the
         * same: its sessions go as after a change that succeeded. */
        if (j->result != LATCH_SUCCESS) {
                if (j->state.password_touched && j->revoke)
                        revoke_after_change(j);
                return;
        }
        if (j->followup) {
                /* What the authentication recorded (a used code) is on
                 * disk before what it allows happens. */
                j->store_result = store_kv_batch_end(&j->kv);
                store_kv_batch_begin(j->d->store, &j->kv);
                if (j->store_result == 0)
                        j->followup->run(j->followup);
                return;
        }
        if ((j->state.password_changed || j->state.password_touched) && j->revoke) {
                revoke_after_change(j);
                if (j->revoke_result < 0)
                        return;
        }
        if (!j->login)
                return;
        if (!j->claims_json) {
                j->store_result = -ENOMEM;
                return;
        }
        int64_t now = daemon_now();
        session_id_new(j->id, j->key);
        session_handle_new(j->info.handle);
        j->info.user = j->user;
        j->info.service = j->service;
        j->info.claims_json = j->claims_json;
        j->info.claims_canonical = session_claims_canonical(j->claims_json);
        j->info.created_at = now;
        j->info.last_seen_at = now;
        j->info.expires_at = now + j->absolute_timeout;
        j->info.idle_timeout = j->idle_timeout;
        j->info.peer_uid = j->peer_uid;
        /* Not if the user's sessions were revoked since the login began
         * (a password changed meanwhile), but by the job itself: -ESTALE,
         * nothing written. */
        j->store_result = store_session_create_since(j->d->store, j->key, &j->info, j->mark, j->own_revocation);
}

/* Pool thread. The plugins' key-value updates (a totp step, a faillock
 * tally) are not synced one by one: a login's go into its session's commit,
 * and whatever is left is made durable here, once, before the answer. */
static void auth_job_run(struct work *w) {
        struct auth_job *j = (struct auth_job *) w;
        int r;

        j->store_result = 0;
        store_kv_batch_begin(j->d->store, &j->kv);
        auth_job_step(j);
        r = store_kv_batch_end(&j->kv);
        if (r < 0 && j->store_result == 0)
                j->store_result = r;
}

/* The session of a login answered too late, or whose client went away, is
 * deleted (on the writer thread: a synced write never runs on the loop):
 * nobody holds its id. */
struct orphan_job {
        struct work work;
        struct daemon *d;
        uint8_t key[STORE_KEY_SIZE];
};

static void orphan_run(struct work *w) {
        struct orphan_job *o = (struct orphan_job *) w;
        (void) store_session_delete(o->d->store, o->key);
}

static void orphan_done(struct work *w) {
        struct orphan_job *o = (struct orphan_job *) w;
        sodium_memzero(o->key, sizeof o->key);
        free(o);
}

static void drop_orphan_session(struct auth_job *j) {
        if (!j->login || j->result != LATCH_SUCCESS || j->revoke_result < 0 || j->store_result != 0)
                return;
        struct orphan_job *o = malloc(sizeof(*o));
        if (o) {
                *o = (struct orphan_job){ .work = { .run = orphan_run, .done = orphan_done }, .d = j->d };
                memcpy(o->key, j->key, STORE_KEY_SIZE);
                if (workqueue_submit(j->d->writer, &o->work) == 0)
                        return;
                free(o);
        }
        log_msg(LOG_WARNING, "cannot queue the removal of an abandoned session; it expires on its own");
}

static const char *result_name(int result) {
        return result == LATCH_SUCCESS ? "ok" : ops_result_is_unavailable(result) ? "unavailable" : "denied";
}

/* Loop thread: a change that failed after it may have changed the password,
 * and what became of the user's sessions. */
static void log_touched_change(const struct auth_job *j) {
        const char *why = j->update_lost ? "an isolated plugin's worker was lost in the password stack's update pass"
                                         : "a line of the password stack's update pass succeeded";

        if (!j->state.password_touched || j->state.password_changed)
                return;
        if (!j->revoke)
                log_msg(LOG_WARNING,
                        "%s for '%s' on '%s' failed after %s: the password may have changed; the service keeps the "
                        "user's other sessions (revoke_on_password_change = no)",
                        j->opname, log_esc(j->user), log_esc(j->service), why);
        else if (j->revoke_result < 0)
                log_errno(LOG_ERR, j->revoke_result,
                          "%s for '%s' on '%s' failed after %s: the password may have changed, and the user's other "
                          "sessions could not be revoked; revoke them with 'latchctl sessions revoke --user'",
                          j->opname, log_esc(j->user), log_esc(j->service), why);
        else
                log_msg(LOG_WARNING,
                        "%s for '%s' on '%s' failed after %s: the password may have changed; %zu other session(s) "
                        "revoked",
                        j->opname, log_esc(j->user), log_esc(j->service), why, j->revoked);
}

/* ---- ending a conversation that was not continued ---- */

/* Pool thread: the lines that took part hear of the failure. */
static void conversation_end_run(struct work *w) {
        struct auth_job *j = (struct auth_job *) w;
        int r;

        /* What the lines record of the failure (faillock's tally) is one
         * batch, as in a step: kept, and written again later, if its write
         * fails, not taken back (a free guess). */
        store_kv_batch_begin(j->d->store, &j->kv);
        stack_authenticate_end(j->stack, j->lreq, &j->state, j->result);
        r = store_kv_batch_end(&j->kv);
        if (r < 0)
                log_errno(LOG_ERR, r,
                          "%s for '%s' on '%s': cannot store what the plugins recorded of the ended conversation "
                          "(it counts, and is written with the next write)",
                          j->opname, log_esc(j->user), log_esc(j->service));
        /* Frees the plugins' per-request state and kills a worker kept for
         * it (which may take a moment: not on the loop). */
        latch_req_free(j->lreq);
        j->lreq = NULL;
        /* Left after a line of the update pass changed the password (a
         * later line asked, and nobody answered). */
        if (j->state.password_touched && j->revoke)
                revoke_after_change(j);
}

/* Loop thread. */
static void conversation_end_done(struct work *w) {
        _cleanup_(auth_job_freep) struct auth_job *j = (struct auth_job *) w;
        struct daemon *d = j->d;

        throttle_done(d->throttle, &j->ticket, false, now_usec());
        d->conversations_ending--;
        log_touched_change(j);
        if (j->revoke_result == 0)
                d->stats.password_revoked_sessions += j->revoked;
}

/* Ends conversation job j, which the caller hands over, as a failure. */
static void conversation_end(struct auth_job *j, const char *why) {
        char uid[16], step[16];

        snprintf(uid, sizeof uid, "%u", (unsigned) j->peer_uid);
        snprintf(step, sizeof step, "%u", j->step);
        log_fields(LOG_NOTICE,
                   (const char *[]){ "LATCH_OP", j->opname, "LATCH_SERVICE", j->service,
                                     "LATCH_USER", j->user, "LATCH_RESULT", "denied", "LATCH_PEER_UID", uid,
                                     "LATCH_REMOTE", j->remote, "LATCH_CONVERSATION_STEP", step, NULL },
                   "%s conversation for user '%s' on service '%s' ended after %u step(s): %s",
                   j->opname, log_esc(j->user), log_esc(j->service), j->step, why);
        if (j->r) {
                request_unref(j->r);
                j->r = NULL;
        }
        j->result = LATCH_CONV_ERR;
        j->work.run = conversation_end_run;
        j->work.done = conversation_end_done;
        /* Past a full queue: a conversation that ended unreported would be
         * a free guess for faillock and the throttle. Their number is
         * bounded by the conversation table's. */
        j->d->conversations_ending++;
        if (j->d->pool && workqueue_submit_always(j->d->pool, &j->work) == 0)
                return;
        /* No pool any more (latchd is exiting with a pool thread stuck):
         * end it here; nothing else waits for this thread. */
        conversation_end_run(&j->work);
        conversation_end_done(&j->work);
}

void op_auth_conversation_end(void *payload, bool expired) {
        conversation_end(payload, expired ? "expired" : "latchd is stopping");
}

static const char *style_name(int style) {
        switch (style) {
        case LATCH_PROMPT_SECRET:
                return "secret";
        case LATCH_PROMPT_TEXT:
                return "text";
        case LATCH_PROMPT_ERROR:
                return "error";
        default:
                return "info";
        }
}

/* Loop thread: a line asked. Parks the job in the conversation table and
 * answers `challenge`; takes over j. */
static void auth_job_challenge(struct auth_job *j) {
        struct request *r = j->r;
        struct daemon *d = j->d;
        const char *opname = j->opname;
        int64_t timeout = d->config->conversation_timeout;
        char uid[16], step[16];
        json_t *prompts, *extra;
        int k;

        if (r->abandoned || r->conn->fd < 0 || conn_peer_gone(r->conn)) {
                request_drop(r);
                conversation_end(j, "the client went away");
                return;
        }
        if (d->stopping) {
                /* No answer could come in any more. */
                reply_error(r, "unavailable", "latchd is stopping; try again later");
                conversation_end(j, "latchd is stopping");
                return;
        }

        prompts = json_array();
        for (size_t i = 0; prompts && i < latch_req_n_prompts(j->lreq); i++) {
                const char *m = NULL;
                int style = latch_req_prompt(j->lreq, i, &m);
                json_array_append_new(prompts, json_pack("{s:s, s:s}", "style", style_name(style), "message", m));
        }
        k = prompts ? conversation_add(d->conversations, j->peer_uid, j->service, j->user,
                                       now_usec() + (uint64_t) timeout * 1000000, j, j->conversation)
                    : -ENOMEM;
        if (k < 0) {
                json_decref(prompts);
                log_msg(LOG_WARNING, "client %s: %s", r->conn->peer_desc,
                        k == -EBUSY ? "too many conversations waiting; refusing another" : "out of memory");
                reply_error(r, "unavailable", "too many conversations are waiting; try again later");
                conversation_end(j, "no room for another conversation");
                return;
        }
        j->step++;
        extra = json_pack("{s:s, s:o, s:I}", "conversation", j->conversation, "prompts", prompts, "expires_at",
                          (json_int_t) (daemon_now() + timeout));

        snprintf(uid, sizeof uid, "%u", (unsigned) j->peer_uid);
        snprintf(step, sizeof step, "%u", j->step);
        log_fields(LOG_INFO,
                   (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                     "LATCH_RESULT", "challenge", "LATCH_PEER_UID", uid, "LATCH_REMOTE", j->remote,
                                     "LATCH_CONVERSATION_STEP", step, NULL },
                   "%s for user '%s' on service '%s': challenge, step %u, %zu prompt(s)", opname, log_esc(j->user),
                   log_esc(j->service), j->step, json_array_size(prompts));
        reply_error_extra(r, "challenge", extra, "more input is needed: answer the prompts with 'respond'");

        /* The table owns the job now; the request is answered. */
        j->r = NULL;
        request_unref(r);
}

/* Loop thread: the password change counters of `stats`. Counted whether or
 * not the client stayed for the answer: the password changed (or did not)
 * all the same. A change left unanswered until its conversation ended is
 * neither (see conversation_end()). */
static void count_password_change(struct daemon *d, const struct auth_job *j) {
        /* Only a job that reached the password stack (passwd, or a login
         * whose account answered new_authtok_reqd) ends there. */
        if (j->revoke_result == 0)
                d->stats.password_revoked_sessions += j->revoked;
        if (j->state.type != STACK_PASSWORD || j->session_gone)
                return;
        if (j->result == LATCH_SUCCESS) {
                d->stats.password_changes_ok++;
                if (j->login)
                        d->stats.password_changes_expired++;
        } else if (!ops_result_is_unavailable(j->result))
                d->stats.password_changes_refused++;
}

/* Loop thread. */
static void auth_job_done(struct work *w) {
        _cleanup_(auth_job_freep) struct auth_job *j = (struct auth_job *) w;
        struct request *r = j->r;
        struct daemon *d = j->d;
        const char *opname = j->opname;
        char uid[16];

        if (j->result == LATCH_INCOMPLETE && j->lreq && latch_req_challenge(j->lreq)) {
                auth_job_challenge(TAKE_PTR(j));
                return;
        }

        snprintf(uid, sizeof uid, "%u", (unsigned) j->peer_uid);
        throttle_done(d->throttle, &j->ticket, j->result == LATCH_SUCCESS, now_usec());
        count_password_change(d, j);
        log_touched_change(j);

        /* A login whose client is gone made a session nobody will ever hold
         * the id of: undo it rather than leave it behind. */
        if (r->abandoned || r->conn->fd < 0 || (j->login && conn_peer_gone(r->conn))) {
                if (j->login && j->result == LATCH_SUCCESS && j->store_result == 0)
                        d->stats.logins_abandoned++;
                drop_orphan_session(j);
                request_drop(r);
                return;
        }

        if (j->session_gone) {
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "invalid_session", "LATCH_PEER_UID", uid,
                                             "LATCH_REMOTE", j->remote, NULL },
                           "%s for user '%s' on service '%s': the session it was made for ended during the "
                           "conversation; %s",
                           opname, log_esc(j->user), log_esc(j->service),
                           j->state.password_touched ? "the change stopped there" : "nothing changed");
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                return;
        }

        if (j->result != LATCH_SUCCESS) {
                bool unavailable = ops_result_is_unavailable(j->result);
                if (j->login)
                        d->stats.logins_denied++;
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", result_name(j->result), "LATCH_PEER_UID", uid,
                                             "LATCH_REMOTE", j->remote, NULL },
                           "%s %s for user '%s' on service '%s' (stack result %s)", opname,
                           unavailable ? "unavailable" : "denied", log_esc(j->user), log_esc(j->service),
                           stack_result_to_string(j->result) ?: "unknown");
                if (unavailable)
                        reply_error(r, "unavailable", "the credential backend is unavailable; try again later");
                else
                        reply_error(r, "denied", DENIED_MESSAGE);
                return;
        }

        if (j->store_result < 0 && !j->login) {
                log_errno(LOG_ERR, j->store_result, "%s for '%s' on '%s': cannot store the plugins' state", opname,
                          log_esc(j->user), log_esc(j->service));
                if (j->store_result == -EUCLEAN)
                        ops_reply_store_error(r, opname, j->store_result);
                else if (j->state.password_changed)
                        /* Not "try again": the old password no longer works. */
                        reply_error(r, "unavailable",
                                    "the password was changed, but the plugins' state could not be stored");
                else
                        reply_error(r, "unavailable", "cannot store the plugins' state; try again later");
                return;
        }

        if (j->followup) {
                log_fields(LOG_INFO,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid, "LATCH_REMOTE", j->remote,
                                             NULL },
                           "%s: user '%s' re-authenticated on service '%s'", opname, log_esc(j->user),
                           log_esc(j->service));
                j->followup->reply(j->followup, r);
                return;
        }

        if (j->revoke_result < 0) {
                /* The password did change: say so, and what is left to do. */
                log_errno(LOG_ERR, j->revoke_result,
                          "%s for '%s' on '%s': the password was changed, but the user's other sessions could not "
                          "be revoked; revoke them with 'latchctl sessions revoke --user'",
                          opname, log_esc(j->user), log_esc(j->service));
                if (j->revoke_result == -EUCLEAN)
                        ops_log_store_damaged(opname, j->revoke_result);
                reply_error(r, j->revoke_result == -EUCLEAN ? "internal" : "unavailable",
                            "the password was changed, but the user's other sessions could not be revoked");
                return;
        }

        if (j->op == AUTH_PASSWD) {
                char revoked[24];
                snprintf(revoked, sizeof revoked, "%zu", j->revoked);
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid, "LATCH_REMOTE", j->remote,
                                             "LATCH_REVOKED", revoked, NULL },
                           "passwd ok for user '%s' on service '%s': password changed, %zu other session(s) revoked",
                           log_esc(j->user), log_esc(j->service), j->revoked);
                reply_ok(r, json_pack("{s:s, s:s, s:I}", "user", j->user, "service", j->service, "revoked",
                                      (json_int_t) j->revoked));
                return;
        }

        if (!j->login) {
                json_t *claims = j->claims_json ? json_loads(j->claims_json, 0, NULL) : json_object();
                log_fields(LOG_INFO,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid, "LATCH_REMOTE", j->remote,
                                             NULL },
                           "authenticate ok for user '%s' on service '%s'", log_esc(j->user), log_esc(j->service));
                reply_ok(r, json_pack("{s:s, s:o}", "user", j->user, "claims", claims ? claims : json_object()));
                return;
        }

        if (j->store_result == -ESTALE) {
                /* What it checked may be what the revocation was for (the
                 * old password): as if it had been checked after. */
                d->stats.logins_denied++;
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "denied", "LATCH_PEER_UID", uid, "LATCH_REMOTE",
                                             j->remote, NULL },
                           "login denied for user '%s' on service '%s': the user's sessions were revoked (a "
                           "password change?) while it was checked; no session made%s",
                           log_esc(j->user), log_esc(j->service),
                           j->state.password_changed ? " (the expired password it changed stays changed)" : "");
                reply_error(r, "denied", DENIED_MESSAGE);
                return;
        }
        if (j->store_result < 0) {
                log_errno(LOG_ERR, j->store_result, "login for '%s' on '%s': cannot store the session",
                          log_esc(j->user), log_esc(j->service));
                if (j->store_result == -EUCLEAN)
                        ops_reply_store_error(r, "login", j->store_result);
                else
                        reply_error(r, "unavailable", "cannot store the session; try again later");
                return;
        }

        d->stats.logins_ok++;
        histogram_add(&d->stats.login_latency, now_usec() - r->start_usec);
        log_fields(LOG_INFO,
                   (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                     "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid, "LATCH_SESSION_HANDLE",
                                     j->info.handle, "LATCH_REMOTE", j->remote, NULL },
                   "login ok for user '%s' on service '%s', session %s", log_esc(j->user), log_esc(j->service),
                   j->info.handle);
        if (j->state.password_changed)
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", opname, "LATCH_SERVICE", j->service, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "password_changed", "LATCH_PEER_UID", uid,
                                             "LATCH_REMOTE", j->remote, NULL },
                           "login for user '%s' on service '%s' changed an expired password, %zu other session(s) "
                           "revoked", log_esc(j->user), log_esc(j->service), j->revoked);

        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "session", j->id, "handle", j->info.handle, "user",
                              j->user, "service", j->service, "expires_at", (json_int_t) j->info.expires_at,
                              "idle_expires_at", (json_int_t) session_idle_expires_at(&j->info));
        if (o && j->state.password_changed) {
                json_object_set_new(o, "password_changed", json_true());
                json_object_set_new(o, "revoked", json_integer((json_int_t) j->revoked));
        }
        if (o && j->want_token) {
                _cleanup_secret_ char *token = NULL;
                int64_t exp = 0;
                int k = token_issue(d, &j->info, j->audience, &token, &exp);
                if (k < 0) {
                        /* A login asked for a token gets one or fails whole:
                         * the session nobody will hear of goes again. */
                        log_errno(LOG_ERR, k, "login: cannot sign a token");
                        json_decref(o);
                        drop_orphan_session(j);
                        reply_error(r, "internal", "cannot sign a token");
                        return;
                }
                json_object_set_new(o, "token", json_string(token));
                json_object_set_new(o, "token_expires_at", json_integer(exp));
        }
        if (!o) {
                drop_orphan_session(j);
                reply_error(r, "internal", "out of memory");
        } else
                reply_ok(r, o);
}

struct keep_check {
        const char *user, *service;
        bool found, mine;
};

static int keep_found(void *userdata, const struct session_info *s) {
        struct keep_check *k = userdata;
        k->found = true;
        k->mine = streq(s->user, k->user) && streq(s->service, k->service);
        return 0;
}

/* passwd's `session`: the caller's own session, which the change keeps. It
 * must be live and `user`'s on `service` (a session of anyone else would
 * let a peer spare a session the change is meant to end). Puts its key in
 * ret_key and returns 0, or answers and returns a negative errno. */
static int keep_session_key(struct request *r, const char *session, const char *user, const char *service,
                            uint8_t ret_key[STORE_KEY_SIZE]) {
        struct keep_check k = { .user = user, .service = service };
        int e = ops_session_get(r->conn->d, session, ret_key, daemon_now(), keep_found, &k);

        if (e == -ENOENT || (e >= 0 && !k.found)) {
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                return -ENOENT;
        }
        if (e < 0) {
                ops_reply_store_error(r, "passwd", e);
                return e;
        }
        if (!k.mine) {
                reply_error(r, "forbidden", "'session' is not this user's session of this service");
                return -EPERM;
        }
        return 0;
}

static void start_auth(struct request *r, enum auth_op op) {
        struct daemon *d = r->conn->d;
        const char *service, *user, *password = NULL, *remote, *audience = NULL, *session = NULL;
        bool login = op == AUTH_LOGIN, want_token = false;
        uint8_t keep_key[STORE_KEY_SIZE];
        char msg[256];

        /* passwd takes no password: the stack asks for the current one. */
        if (arg_string(r->in.root, "service", true, OPS_MAX_NAME, &service, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "user", true, OPS_MAX_USER, &user, msg, sizeof msg) < 0 ||
            (op != AUTH_PASSWD &&
             arg_string(r->in.root, "password", false, OPS_MAX_PASSWORD, &password, msg, sizeof msg) < 0) ||
            arg_string(r->in.root, "remote", false, OPS_MAX_REMOTE, &remote, msg, sizeof msg) < 0 ||
            (login && arg_bool(r->in.root, "token", &want_token, msg, sizeof msg) < 0) ||
            (login && arg_string(r->in.root, "audience", false, OPS_MAX_NAME, &audience, msg, sizeof msg) < 0) ||
            (op == AUTH_PASSWD &&
             arg_string(r->in.root, "session", false, OPS_MAX_SESSION, &session, msg, sizeof msg) < 0)) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        if (!ops_printable(user) || !*user) {
                reply_error(r, "bad_request", "'user' must be 1 to %d printable characters", OPS_MAX_USER);
                return;
        }
        if (remote && !ops_printable(remote)) {
                reply_error(r, "bad_request", "'remote' must be printable");
                return;
        }
        if (password && !*password) {
                reply_error(r, "bad_request", "'password' must not be empty");
                return;
        }
        const struct stack *st = d->stacks->services ? services_find(d->stacks->services, service) : NULL;
        if (!st) {
                reply_error(r, "unknown_service", "no such service");
                return;
        }
        if (audience && !token_audience_allowed(d, service, audience)) {
                reply_error(r, "forbidden", "this service may not issue tokens for that audience");
                return;
        }
        if (session && keep_session_key(r, session, user, service, keep_key) < 0) {
                sodium_memzero(keep_key, sizeof keep_key);
                return;
        }

        _cleanup_(auth_job_freep) struct auth_job *j = calloc(1, sizeof(*j));
        if (!j) {
                sodium_memzero(keep_key, sizeof keep_key);
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->opname = auth_op_names[op];
        if (session) {
                j->keep = true;
                memcpy(j->keep_key, keep_key, sizeof keep_key);
                sodium_memzero(keep_key, sizeof keep_key);
        }
        const struct service_config *sc = config_service(d->config, service);
        j->work.run = auth_job_run;
        j->work.done = auth_job_done;
        j->result = -1; /* not run yet */
        j->d = d;
        j->op = op;
        j->login = login;
        j->want_token = want_token;
        j->revoke = config_revoke_on_password_change(sc);
        /* Before any credential is checked: see store_session_create_since(). */
        j->mark = store_revocation_mark(d->store);
        /* A login may change an expired password on the spot; authenticate
         * makes nothing that could carry on, so it is refused. */
        j->state.change_expired = login;
        j->stack = st;
        j->peer_uid = r->conn->peer.uid;
        j->idle_timeout = config_idle_timeout(d->config, sc);
        j->absolute_timeout = config_absolute_timeout(d->config, sc);
        j->user = strdup(user);
        j->service = strdup(service);
        j->remote = remote ? strdup(remote) : NULL;
        j->audience = audience ? strdup(audience) : NULL;
        if (!j->user || !j->service || (remote && !j->remote) || (audience && !j->audience) ||
            latch_req_new(auth_op_names[op], service, user, password, remote, &j->lreq) < 0) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        /* The request's copy of the password is not needed past here. */
        if (password)
                sodium_memzero((char *) password, strlen(password));

        j->r = request_ref(r);
        j->set = stackset_ref(d->stacks);
        struct auth_job *job = TAKE_PTR(j);
        ops_begin_throttled(r, &job->work, &job->ticket, user, remote);
}

void op_authenticate(struct request *r) { start_auth(r, AUTH_AUTHENTICATE); }

void op_auth_reauthenticate(struct request *r, const char *opname, const char *service, const char *user,
                            const char *password, const char *remote, struct auth_followup *followup) {
        struct daemon *d = r->conn->d;
        const struct stack *st = d->stacks->services ? services_find(d->stacks->services, service) : NULL;

        _cleanup_(auth_job_freep) struct auth_job *j = calloc(1, sizeof(*j));
        if (!j) {
                followup->free(followup);
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->followup = followup;
        if (!st) {
                reply_error(r, "unknown_service", "no such service");
                return;
        }
        j->work.run = auth_job_run;
        j->work.done = auth_job_done;
        j->result = -1; /* not run yet */
        j->d = d;
        j->opname = opname;
        j->stack = st;
        j->peer_uid = r->conn->peer.uid;
        j->user = strdup(user);
        j->service = strdup(service);
        j->remote = remote ? strdup(remote) : NULL;
        if (!j->user || !j->service || (remote && !j->remote) ||
            latch_req_new("authenticate", service, user, password, remote, &j->lreq) < 0) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->r = request_ref(r);
        j->set = stackset_ref(d->stacks);
        struct auth_job *job = TAKE_PTR(j);
        ops_begin_throttled(r, &job->work, &job->ticket, user, remote);
}

void op_respond(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *id, *a[LATCH_PROMPTS_MAX];
        struct auth_job *j;
        json_t *answers, *v;
        char msg[256];
        size_t i, n;
        int k;

        if (arg_string(r->in.root, "conversation", true, 128, &id, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        answers = json_object_get(r->in.root, "answers");
        if (!json_is_array(answers)) {
                reply_error(r, "bad_request", "'answers' must be an array of strings");
                return;
        }
        j = conversation_find(d->conversations, id, r->conn->peer.uid, now_usec());
        if (!j) {
                log_fields(LOG_NOTICE, (const char *[]){ "LATCH_OP", "respond", "LATCH_RESULT", "invalid_conversation", NULL },
                           "client %s: respond to an unknown, used, expired or foreign conversation",
                           r->conn->peer_desc);
                reply_error(r, "invalid_conversation", "no such conversation: unknown, used or expired");
                return;
        }
        /* A malformed answer does not use up the step: the owner may still
         * answer it. */
        n = json_array_size(answers);
        if (n != latch_req_n_answers_expected(j->lreq)) {
                reply_error(r, "bad_request", "expected %zu answer(s), one per secret or text prompt",
                            latch_req_n_answers_expected(j->lreq));
                return;
        }
        json_array_foreach(answers, i, v) {
                if (!json_is_string(v) || json_string_length(v) > LATCH_ANSWER_MAX ||
                    strlen(json_string_value(v)) != json_string_length(v)) {
                        reply_error(r, "bad_request", "each answer must be a string of at most %d bytes",
                                    LATCH_ANSWER_MAX);
                        return;
                }
                a[i] = json_string_value(v);
        }

        j = conversation_take(d->conversations, id, r->conn->peer.uid, now_usec());
        k = latch_req_set_answers(j->lreq, a, n);
        /* The request's copies of the answers are not needed past here. */
        json_array_foreach(answers, i, v)
                sodium_memzero((char *) json_string_value(v), json_string_length(v));
        if (k < 0) {
                reply_error(r, "internal", "out of memory");
                conversation_end(j, "out of memory");
                return;
        }

        j->r = request_ref(r);
        j->work.run = auth_job_run;
        j->work.done = auth_job_done;
        (void) request_set_deadline(r, ops_stack_deadline_usec(d));
        if (workqueue_submit(d->pool, &j->work) < 0) {
                reply_error(r, "unavailable", "latchd is busy; try again later");
                conversation_end(j, "latchd is busy");
        }
}
void op_login(struct request *r) { start_auth(r, AUTH_LOGIN); }
void op_passwd(struct request *r) { start_auth(r, AUTH_PASSWD); }
