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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "daemon-state.h"
#include "dispatch.h"
#include "log.h"
#include "ops-common.h"
#include "plugin-host.h"
#include "stack.h"
#include "workqueue.h"

#define PLUGIN_NAME_MAX 64
#define PLUGIN_ACTION_MAX 64

struct plugin_job {
        struct work work;
        struct request *r;
        struct daemon *d;
        struct stackset *set;     /* keeps `line` alive when it is a stack's */
        struct plugin_line *line;
        bool own_line;            /* opened for this call: closed after it */
        char *plugin, *action, *user;
        json_t *args;

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
        json_decref(j->answer);
        free(j->plugin);
        free(j->action);
        free(j->user);
        free(j->message);
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct plugin_job *, plugin_job_free);

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
        j->result = plugin_line_admin(j->line, j->action, j->args, &j->answer, &j->message);
}

static bool is_refusal(int r) {
        return r == -EINVAL || r == -EOPNOTSUPP || r == -ENOENT || r == -EEXIST;
}

/* Loop thread. */
static void plugin_job_done(struct work *w) {
        _cleanup_(plugin_job_freep) struct plugin_job *j = (struct plugin_job *) w;
        struct request *r = j->r;
        const char *result = j->result == 0 ? "ok" : is_refusal(j->result) ? "bad_request" : "unavailable";

        if (j->result != -1)
                log_fields(j->result == 0 ? LOG_NOTICE : LOG_WARNING,
                           (const char *[]){ "LATCH_OP", "plugin", "LATCH_PLUGIN", j->plugin, "LATCH_USER", j->user,
                                             "LATCH_RESULT", result, NULL },
                           "plugin %s %s%s%s%s by %s: %s%s%s", j->plugin, log_esc(j->action),
                           j->user ? " for user '" : "", j->user ? log_esc(j->user) : "", j->user ? "'" : "",
                           r->conn->peer_desc, result, j->message ? ": " : "",
                           j->message ? log_esc_text(j->message) : "");

        if (r->abandoned || r->conn->fd < 0) {
                request_drop(r);
                return;
        }
        if (j->result == 0) {
                reply_ok(r, TAKE_PTR(j->answer));
                return;
        }
        reply_error(r, is_refusal(j->result) ? "bad_request" : "unavailable", "%s",
                    j->message ?: "the plugin failed");
}

void op_plugin(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *plugin, *action, *service, *key;
        struct plugin_line *line = NULL;
        bool own_line = false;
        json_t *v;
        char msg[256];

        if (arg_string(r->in.root, "plugin", true, PLUGIN_NAME_MAX, &plugin, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "action", true, PLUGIN_ACTION_MAX, &action, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "service", false, OPS_MAX_NAME, &service, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        if (!bare_name(plugin)) {
                reply_error(r, "bad_request", "'plugin' must be a plugin's name ([A-Za-z0-9_-])");
                return;
        }
        if (!*action || !ops_printable(action)) {
                reply_error(r, "bad_request", "'action' must be 1 to %d printable characters", PLUGIN_ACTION_MAX);
                return;
        }
        /* Plugins log their arguments (user names): no control characters. */
        json_object_foreach(r->in.root, key, v)
                if (json_is_string(v) && !ops_printable(json_string_value(v))) {
                        reply_error(r, "bad_request", "'%s' must be printable", key);
                        return;
                }

        const struct services *sv = d->stacks ? d->stacks->services : NULL;
        if (service) {
                const struct stack *st = sv ? services_find(sv, service) : NULL;
                if (!st) {
                        reply_error(r, "unknown_service", "no such service");
                        return;
                }
                line = stack_find_line(st, plugin);
                if (!line) {
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
                        reply_error(r, "bad_request", "%s", err ?: "cannot open the plugin");
                        return;
                }
                own_line = true;
        }
        if (!plugin_line_has_admin(line)) {
                reply_error(r, "bad_request", "plugin '%s' has no admin actions%s", plugin,
                            plugin_line_is_isolated(line) ? " when isolated" : "");
                if (own_line)
                        plugin_line_close(line);
                return;
        }

        _cleanup_(plugin_job_freep) struct plugin_job *j = calloc(1, sizeof(*j));
        if (!j) {
                if (own_line)
                        plugin_line_close(line);
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->line = line;
        j->own_line = own_line;
        j->work.run = plugin_job_run;
        j->work.done = plugin_job_done;
        j->result = -1; /* not run */
        j->d = d;
        j->plugin = strdup(plugin);
        j->action = strdup(action);
        v = json_object_get(r->in.root, "user");
        j->user = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
        j->args = json_incref(r->in.root);
        if (!j->plugin || !j->action || (json_is_string(v) && !j->user)) {
                reply_error(r, "internal", "out of memory");
                return;
        }
        j->r = request_ref(r);
        if (!own_line)
                j->set = stackset_ref(d->stacks);

        (void) request_set_deadline(r, ops_stack_deadline_usec(d));
        struct plugin_job *job = TAKE_PTR(j);
        if (workqueue_submit(d->pool, &job->work) < 0) {
                reply_error(r, "unavailable", "latchd is busy; try again later");
                r->abandoned = true;
                job->work.done(&job->work);
        }
}
