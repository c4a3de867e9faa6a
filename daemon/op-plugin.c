/* SPDX-License-Identifier: MIT */
/*
 * plugin: an administrator's action on a plugin ({"op": "plugin", "plugin":
 * NAME, "action": ACTION, ...arguments}), answered by the plugin's admin()
 * entry point (ABI 1.1) with the members it builds: `latchctl totp ...`,
 * `latchctl faillock ...`.
 *
 * The call goes to the state of a line naming the plugin, so that it sees
 * that line's arguments (faillock's deny=, totp's issuer=): with `service`,
 * the first line of that service's stacks (auth, then account, then
 * password); without, the first such line of any loaded service, in name
 * order; and when no service names the plugin, a line opened for this call
 * with no arguments. It runs on the worker pool: plugins touch the store.
 *
 * Self-service: with `session` (a user's own live session, from any peer
 * the session's service admits) the call acts for the session's user on the
 * first line naming the plugin in the session's service, with
 * latch_admin.self set; a `user` other than the session's is forbidden.
 * With `password` as well, the session's service's auth stack runs again
 * for that user first (op-auth.c: a conversation may ask for more factors,
 * a failure is `denied` and counts for the throttle and the plugins'
 * outcome like a failed login), and the call gets reauthenticated set.
 *
 * Answers carry what the plugin built, perhaps an enrollment's secret: the
 * JSON strings are wiped once the reply is serialised (whose buffers the
 * request and connection wipe).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "daemon-state.h"
#include "dispatch.h"
#include "log.h"
#include "op-auth.h"
#include "ops-common.h"
#include "plugin-host.h"
#include "secret.h"
#include "session.h"
#include "stack.h"
#include "workqueue.h"

#define PLUGIN_NAME_MAX 64
#define PLUGIN_ACTION_MAX 64

struct plugin_job {
        struct work work;
        struct auth_followup followup; /* with `password`: runs after the re-authentication */
        struct request *r;             /* NULL while a re-authentication holds the request */
        struct daemon *d;
        struct stackset *set;     /* keeps `line` alive when it is a stack's */
        struct plugin_line *line;
        bool own_line;            /* opened for this call: closed after it */
        bool self, reauthenticated;
        uint8_t session_key[STORE_KEY_SIZE]; /* self: the session's key, checked again before the call */
        bool session_gone;                   /* self: it ended before the call could run */
        int store_error;                     /* self: looking it up failed (a negative errno) */
        char *plugin, *action, *user;
        char *peer_desc;
        json_t *args;

        bool ran;
        int result;
        json_t *answer;
        char *message;
};

static void plugin_job_free(struct plugin_job *j) {
        if (!j)
                return;
        if (j->own_line)
                plugin_line_close(j->line);
        if (j->set)
                stackset_unref(j->set);
        request_unref(j->r);
        json_decref(j->args);
        /* The reply shared its strings; it is serialised by now. */
        plugin_admin_answer_free(j->answer);
        free(j->plugin);
        free(j->action);
        free(j->user);
        free(j->peer_desc);
        free(j->message);
        sodium_memzero(j->session_key, sizeof j->session_key);
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct plugin_job *, plugin_job_free);

static void wipe_key(uint8_t (*key)[STORE_KEY_SIZE]) {
        sodium_memzero(*key, sizeof *key);
}

static int session_live(void *userdata, const struct session_info *s) {
        return 0;
}

static bool bare_name(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '-'))
                        return false;
        return true;
}

/* The first line naming `plugin` in stack st, or NULL. */
static struct plugin_line *stack_find_line(const struct stack *st, const char *plugin) {
        for (int t = 0; t < _STACK_TYPE_MAX; t++)
                for (size_t k = 0; k < stack_size(st, (enum stack_type) t); k++) {
                        struct plugin_line *l = stack_module(st, (enum stack_type) t, k);
                        if (l && streq(plugin_line_name(l), plugin))
                                return l;
                }
        return NULL;
}

/* Pool thread. */
static void plugin_job_run(struct work *w) {
        struct plugin_job *j = (struct plugin_job *) w;

        /* A self call acts only while its session lives: a re-authentication
         * may have waited on a conversation, and a logout or a revocation
         * (a password change elsewhere) may have come meanwhile. */
        if (j->self) {
                int k = store_session_get(j->d->store, j->session_key, daemon_now(), session_live, NULL);
                if (k == -ENOENT) {
                        j->session_gone = true;
                        return;
                }
                if (k < 0) {
                        j->store_error = k;
                        return;
                }
        }
        j->ran = true;
        j->result = plugin_line_admin(j->line, j->action, j->args, j->self, j->reauthenticated, &j->answer,
                                      &j->message);
}

/* The answer for a plugin's errno (see struct latch_plugin's admin). */
static const char *error_for(int r) {
        switch (r) {
        case -EINVAL:
        case -EOPNOTSUPP:
        case -ENOENT:
        case -EEXIST:
                return "bad_request";
        case -EPERM:
                return "forbidden";
        case -EACCES:
                return "denied";
        default:
                return "unavailable";
        }
}

/* Loop thread: logs the call and answers r. */
static void plugin_job_answer(struct plugin_job *j, struct request *r) {
        const char *result = j->result == 0 ? "ok" : error_for(j->result);

        if (j->ran)
                log_fields(j->result == 0 ? LOG_NOTICE : LOG_WARNING,
                           (const char *[]){ "LATCH_OP", "plugin", "LATCH_PLUGIN", j->plugin, "LATCH_USER", j->user,
                                             "LATCH_RESULT", result, NULL },
                           "plugin %s %s%s%s%s by %s%s: %s%s%s", j->plugin, log_esc(j->action),
                           j->user ? " for user '" : "", j->user ? log_esc(j->user) : "", j->user ? "'" : "",
                           j->peer_desc,
                           !j->self                ? ""
                           : j->reauthenticated ? " (self-service, re-authenticated)"
                                                : " (self-service)",
                           result, j->message ? ": " : "", j->message ? log_esc_text(j->message) : "");

        if (j->session_gone)
                log_fields(LOG_NOTICE,
                           (const char *[]){ "LATCH_OP", "plugin", "LATCH_PLUGIN", j->plugin, "LATCH_USER", j->user,
                                             "LATCH_RESULT", "invalid_session", NULL },
                           "plugin %s %s for user '%s' by %s not run: the session ended before it could run",
                           j->plugin, log_esc(j->action), log_esc(j->user), j->peer_desc);

        if (r->abandoned || r->conn->fd < 0) {
                request_drop(r);
                return;
        }
        if (j->session_gone) {
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                return;
        }
        if (j->store_error < 0) {
                ops_reply_store_error(r, "plugin", j->store_error);
                return;
        }
        if (j->result == 0) {
                /* The reply shares the answer's strings: wiped once it is
                 * serialised, when the job is freed. */
                reply_ok(r, json_incref(j->answer));
                return;
        }
        reply_error(r, error_for(j->result), "%s", j->message ?: "the plugin failed");
}

/* Loop thread. */
static void plugin_job_done(struct work *w) {
        _cleanup_(plugin_job_freep) struct plugin_job *j = (struct plugin_job *) w;
        plugin_job_answer(j, j->r);
}

#define job_of(f) ((struct plugin_job *) ((char *) (f) - offsetof(struct plugin_job, followup)))

/* The follow-up of a re-authentication (op-auth.h). */
static void followup_run(struct auth_followup *f) {
        struct plugin_job *j = job_of(f);
        plugin_job_run(&j->work);
}

static void followup_reply(struct auth_followup *f, struct request *r) {
        plugin_job_answer(job_of(f), r);
}

static void followup_free(struct auth_followup *f) {
        plugin_job_free(job_of(f));
}

/* The session a self-service call names: its user and service (copies),
 * and whether the peer may use that service. */
struct self_session {
        struct daemon *d;
        struct request *r;
        char *user, *service;
        bool found, allowed;
};

static int self_session_found(void *userdata, const struct session_info *s) {
        struct self_session *c = userdata;

        c->found = true;
        c->allowed = access_service_allowed(c->d, &c->r->conn->peer, s->service);
        c->user = strdup(s->user);
        c->service = strdup(s->service);
        return 0;
}

/* Wipes the request's password (its copies went into the stack's request). */
static void wipe_password(struct request *r) {
        json_t *v = json_object_get(r->in.root, "password");
        if (json_is_string(v))
                sodium_memzero((char *) json_string_value(v), json_string_length(v));
}

void op_plugin(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *plugin, *action, *service, *key, *session = NULL, *password = NULL, *remote = NULL,
                                                      *user_arg = NULL;
        _cleanup_free_ char *self_user = NULL, *self_service = NULL;
        _cleanup_(wipe_key) uint8_t self_key[STORE_KEY_SIZE] = {};
        struct plugin_line *line = NULL;
        bool own_line = false, self;
        json_t *v;
        char msg[256];

        if (arg_string(r->in.root, "plugin", true, PLUGIN_NAME_MAX, &plugin, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "action", true, PLUGIN_ACTION_MAX, &action, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "service", false, OPS_MAX_NAME, &service, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "session", false, OPS_MAX_SESSION, &session, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "password", false, OPS_MAX_PASSWORD, &password, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "remote", false, OPS_MAX_REMOTE, &remote, msg, sizeof msg) < 0) {
                wipe_password(r);
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        self = session != NULL;
        /* Without a session the call is an administrator's, whatever let
         * it through dispatch. */
        if (!self && !access_is_admin(d, &r->conn->peer)) {
                wipe_password(r);
                reply_error(r, "forbidden", "'plugin' needs an admin peer (or a user's own session)");
                return;
        }
        if (password && (!self || !*password)) {
                wipe_password(r);
                reply_error(r, "bad_request", self ? "'password' must not be empty"
                                                   : "'password' re-authenticates a 'session': give one");
                return;
        }
        if (!bare_name(plugin)) {
                wipe_password(r);
                reply_error(r, "bad_request", "'plugin' must be a plugin's name ([A-Za-z0-9_-])");
                return;
        }
        if (!*action || !ops_printable(action)) {
                wipe_password(r);
                reply_error(r, "bad_request", "'action' must be 1 to %d printable characters", PLUGIN_ACTION_MAX);
                return;
        }
        /* Plugins log their arguments (user names): no control characters. */
        json_object_foreach(r->in.root, key, v)
                if (json_is_string(v) && !streq(key, "password") && !ops_printable(json_string_value(v))) {
                        wipe_password(r);
                        reply_error(r, "bad_request", "'%s' must be printable", key);
                        return;
                }
        v = json_object_get(r->in.root, "user");
        if (v && !json_is_string(v)) {
                wipe_password(r);
                reply_error(r, "bad_request", "'user' must be a string");
                return;
        }
        user_arg = json_string_value(v);

        if (self) {
                /* The peer first, as validate: one refused by the session's
                 * service learns nothing more. */
                struct self_session c = { .d = d, .r = r };
                int k = ops_session_get(d, session, self_key, daemon_now(), self_session_found, &c);
                self_user = c.user;
                self_service = c.service;
                const char *err = k == -ENOENT || (k >= 0 && !c.found) ? "invalid_session"
                                  : k < 0                              ? "store"
                                  : !c.allowed                         ? "forbidden"
                                  : !c.user || !c.service              ? "internal"
                                                                       : NULL;
                if (!err && ((user_arg && !streq(user_arg, c.user)) || (service && !streq(service, c.service))))
                        err = "other";
                if (err) {
                        wipe_password(r);
                        if (streq(err, "invalid_session"))
                                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
                        else if (streq(err, "store"))
                                ops_reply_store_error(r, "plugin", k);
                        else if (streq(err, "forbidden"))
                                reply_error(r, "forbidden", "this peer may not use this session's service");
                        else if (streq(err, "internal"))
                                reply_error(r, "internal", "out of memory");
                        else {
                                log_fields(LOG_NOTICE,
                                           (const char *[]){ "LATCH_OP", "plugin", "LATCH_PLUGIN", plugin,
                                                             "LATCH_USER", c.user, "LATCH_RESULT", "forbidden", NULL },
                                           "client %s: plugin %s %s refused: a session of user '%s' on '%s' acts "
                                           "only on its own user and service",
                                           r->conn->peer_desc, plugin, log_esc(action), log_esc(c.user),
                                           log_esc(c.service));
                                reply_error(r, "forbidden",
                                            "a session acts only on its own user and through its own service");
                        }
                        return;
                }
                service = self_service;
        }

        const struct services *sv = d->stacks ? d->stacks->services : NULL;
        if (service) {
                const struct stack *st = sv ? services_find(sv, service) : NULL;
                if (!st) {
                        wipe_password(r);
                        reply_error(r, "unknown_service", "no such service");
                        return;
                }
                line = stack_find_line(st, plugin);
                if (!line) {
                        wipe_password(r);
                        reply_error(r, "bad_request", "service '%s' has no line naming plugin '%s'", service, plugin);
                        return;
                }
        } else
                for (size_t i = 0; !line && services_at(sv, i); i++)
                        line = stack_find_line(services_at(sv, i), plugin);

        if (!line) {
                _cleanup_free_ char *err = NULL;
                int k = plugin_line_open(d->plugins, plugin, 0, NULL, &line, &err);
                if (k < 0) {
                        wipe_password(r);
                        reply_error(r, "bad_request", "%s", err ?: "cannot open the plugin");
                        return;
                }
                own_line = true;
        }
        if (!plugin_line_has_admin(line)) {
                wipe_password(r);
                reply_error(r, "bad_request", "plugin '%s' has no admin actions%s", plugin,
                            plugin_line_is_isolated(line) ? " when isolated" : "");
                if (own_line)
                        plugin_line_close(line);
                return;
        }

        _cleanup_(plugin_job_freep) struct plugin_job *j = calloc(1, sizeof(*j));
        if (!j) {
                wipe_password(r);
                if (own_line)
                        plugin_line_close(line);
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->line = line;
        j->own_line = own_line;
        j->work.run = plugin_job_run;
        j->work.done = plugin_job_done;
        j->followup = (struct auth_followup){ .run = followup_run, .reply = followup_reply, .free = followup_free };
        j->result = -ECANCELED; /* until it runs */
        j->d = d;
        j->self = self;
        j->reauthenticated = self && password;
        memcpy(j->session_key, self_key, sizeof self_key);
        j->plugin = strdup(plugin);
        j->action = strdup(action);
        j->peer_desc = strdup(r->conn->peer_desc);
        j->user = self ? strdup(self_user) : user_arg ? strdup(user_arg) : NULL;
        /* The plugin sees the request's arguments but never the password
         * nor the session id; a self call's `user` is the session's. */
        j->args = json_copy(r->in.root);
        if (j->args) {
                (void) json_object_del(j->args, "password");
                (void) json_object_del(j->args, "session");
        }
        if (!j->plugin || !j->action || !j->peer_desc || ((self || user_arg) && !j->user) || !j->args ||
            (self && json_object_set_new(j->args, "user", json_string(self_user)) < 0)) {
                wipe_password(r);
                reply_error(r, "internal", "out of memory");
                return;
        }
        if (!own_line)
                j->set = stackset_ref(d->stacks);

        if (password) {
                struct plugin_job *job = TAKE_PTR(j);
                op_auth_reauthenticate(r, "plugin", self_service, self_user, password, remote, &job->followup);
                wipe_password(r);
                return;
        }

        j->r = request_ref(r);
        (void) request_set_deadline(r, ops_stack_deadline_usec(d));
        struct plugin_job *job = TAKE_PTR(j);
        if (workqueue_submit(d->pool, &job->work) < 0) {
                reply_error(r, "unavailable", "latchd is busy; try again later");
                r->abandoned = true;
                job->work.done(&job->work);
        }
}
