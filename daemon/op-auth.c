/* SPDX-License-Identifier: MIT */
/*
 * authenticate and login: run the service's stack on the worker pool, then
 * (login) create the session in the same job, so that the answer `ok` means
 * the session is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "log.h"
#include "ops-common.h"
#include "plugin-host.h"
#include "secret.h"
#include "session.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "tokens.h"
#include "workqueue.h"

struct auth_job {
        struct work work;
        struct request *r;
        struct daemon *d;
        struct stackset *set;
        const struct stack *stack;
        struct latch_req *lreq;
        bool login;
        bool want_token;
        char *audience;
        char *user;
        char *service;
        char *remote;
        uint32_t peer_uid;
        int64_t idle_timeout;
        int64_t absolute_timeout;
        struct throttle_ticket ticket;

        /* Filled by the worker. */
        int result;
        int store_result;
        char *claims_json;
        char id[SESSION_ID_LEN + 1];
        uint8_t key[STORE_KEY_SIZE];
        struct session_info info;
};

static void auth_job_free(struct auth_job *j) {
        if (!j)
                return;
        latch_req_free(j->lreq);
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
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct auth_job *, auth_job_free);

/* Pool thread. */
static void auth_job_run(struct work *w) {
        struct auth_job *j = (struct auth_job *) w;

        j->result = stack_authenticate(j->stack, j->lreq);
        if (j->result == LATCH_SUCCESS) {
                json_t *claims = latch_req_claims(j->lreq);
                j->claims_json = json_dumps(claims ? claims : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
        }
        /* The password is no longer needed: wipe it now, not at reply time. */
        latch_req_free(j->lreq);
        j->lreq = NULL;

        if (j->result != LATCH_SUCCESS || !j->login)
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
        j->store_result = store_session_create(j->d->store, j->key, &j->info);
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
        if (!j->login || j->result != LATCH_SUCCESS || j->store_result != 0)
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

/* Loop thread. */
static void auth_job_done(struct work *w) {
        _cleanup_(auth_job_freep) struct auth_job *j = (struct auth_job *) w;
        struct request *r = j->r;
        struct daemon *d = j->d;
        const char *opname = j->login ? "login" : "authenticate";
        char uid[16];

        snprintf(uid, sizeof uid, "%u", (unsigned) j->peer_uid);
        throttle_done(d->throttle, &j->ticket, j->result == LATCH_SUCCESS, now_usec());

        /* A login whose client is gone made a session nobody will ever hold
         * the id of: undo it rather than leave it behind. */
        if (r->abandoned || r->conn->fd < 0 || (j->login && conn_peer_gone(r->conn))) {
                if (j->login && j->result == LATCH_SUCCESS && j->store_result == 0)
                        d->stats.logins_abandoned++;
                drop_orphan_session(j);
                request_drop(r);
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

        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "session", j->id, "handle", j->info.handle, "user",
                              j->user, "service", j->service, "expires_at", (json_int_t) j->info.expires_at,
                              "idle_expires_at", (json_int_t) session_idle_expires_at(&j->info));
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

static void start_auth(struct request *r, bool login) {
        struct daemon *d = r->conn->d;
        const char *service, *user, *password, *remote, *audience = NULL;
        bool want_token = false;
        char msg[256];

        if (arg_string(r->in.root, "service", true, OPS_MAX_NAME, &service, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "user", true, OPS_MAX_USER, &user, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "password", true, OPS_MAX_PASSWORD, &password, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "remote", false, OPS_MAX_REMOTE, &remote, msg, sizeof msg) < 0 ||
            (login && arg_bool(r->in.root, "token", &want_token, msg, sizeof msg) < 0) ||
            (login && arg_string(r->in.root, "audience", false, OPS_MAX_NAME, &audience, msg, sizeof msg) < 0)) {
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
        if (!*password) {
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

        _cleanup_(auth_job_freep) struct auth_job *j = calloc(1, sizeof(*j));
        if (!j) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        const struct service_config *sc = config_service(d->config, service);
        j->work.run = auth_job_run;
        j->work.done = auth_job_done;
        j->result = -1; /* not run yet */
        j->d = d;
        j->login = login;
        j->want_token = want_token;
        j->stack = st;
        j->peer_uid = r->conn->peer.uid;
        j->idle_timeout = config_idle_timeout(d->config, sc);
        j->absolute_timeout = config_absolute_timeout(d->config, sc);
        j->user = strdup(user);
        j->service = strdup(service);
        j->remote = remote ? strdup(remote) : NULL;
        j->audience = audience ? strdup(audience) : NULL;
        if (!j->user || !j->service || (remote && !j->remote) || (audience && !j->audience) ||
            latch_req_new(login ? "login" : "authenticate", service, user, password, remote, &j->lreq) < 0) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        /* The request's copy of the password is not needed past here. */
        sodium_memzero((char *) password, strlen(password));

        j->r = request_ref(r);
        j->set = stackset_ref(d->stacks);
        struct auth_job *job = TAKE_PTR(j);
        ops_begin_throttled(r, &job->work, &job->ticket, user, remote);
}

void op_authenticate(struct request *r) { start_auth(r, false); }
void op_login(struct request *r) { start_auth(r, true); }
