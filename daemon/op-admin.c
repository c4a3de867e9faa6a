/* SPDX-License-Identifier: MIT */
/* hello, stats, reload. */
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"
#include "conn.h"
#include "conversation.h"
#include "daemon.h"
#include "dispatch.h"
#include "keys.h"
#include "log.h"
#include "plugin-host.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "workqueue.h"

void op_hello(struct request *r) {
        reply_ok(r, json_pack("{s:i, s:s}", "version", 1, "server", "latchd " LATCH_VERSION));
}

static json_t *latency_json(const struct histogram *h) {
        return json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t) h->count, "p50_us",
                         (json_int_t) histogram_quantile(h, 0.50), "p99_us", (json_int_t) histogram_quantile(h, 0.99),
                         "p999_us", (json_int_t) histogram_quantile(h, 0.999));
}

/* [{"name", "auth": [plugins], "account": [plugins], "password": [plugins]}] of
 * the loaded stacks. */
static json_t *services_json(const struct daemon *d) {
        json_t *list = json_array();
        const struct services *sv = d->stacks ? d->stacks->services : NULL;

        for (size_t i = 0; list && services_at(sv, i); i++) {
                const struct stack *st = services_at(sv, i);
                json_t *o = json_pack("{s:s}", "name", stack_name(st));
                for (int t = 0; o && t < _STACK_TYPE_MAX; t++) {
                        json_t *plugins = json_array();
                        for (size_t k = 0; plugins && k < stack_size(st, (enum stack_type) t); k++) {
                                const struct plugin_line *l = stack_module(st, (enum stack_type) t, k);
                                json_array_append_new(plugins, json_string(l ? plugin_line_name(l) : "(substack)"));
                        }
                        json_object_set_new(o, stack_type_to_string((enum stack_type) t),
                                            plugins ? plugins : json_null());
                }
                json_array_append_new(list, o ? o : json_null());
        }
        return list;
}

static json_t *keys_json(const struct daemon *d) {
        int64_t now = daemon_now(), created = keyring_current_created_at(d->keys);
        int64_t every = d->config->rotate_every;
        json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "current", keyring_current_kid(d->keys), "created_at",
                              (json_int_t) created, "age", (json_int_t) (now > created ? now - created : 0),
                              "rotate_every", (json_int_t) every);
        if (o)
                json_object_set_new(o, "next_rotation", every > 0 ? json_integer(created + every) : json_null());
        return o;
}

/* The size of sessions.mdb on disk (bytes), -1 when it cannot be read. */
static json_int_t store_file_bytes(const struct daemon *d) {
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/sessions.mdb", d->config->state_dir) >= (int) sizeof path ||
            stat(path, &st) < 0)
                return -1;
        return (json_int_t) st.st_size;
}

void op_stats(struct request *r) {
        struct daemon *d = r->conn->d;
        const struct stats *s = &d->stats;
        struct store_stats ss = { 0 };
        uint64_t now = now_usec();
        json_t *requests = json_object(), *errors = json_object(), *by_error = json_object(),
               *latency_ops = json_object();

        for (unsigned i = 0; i < n_ops && i < STATS_MAX_OPS; i++) {
                json_object_set_new(requests, ops[i].name, json_integer((json_int_t) s->requests[i]));
                json_t *codes = json_object();
                for (unsigned e = 0; codes && e < _STAT_ERR_MAX; e++)
                        if (s->op_errors[i][e])
                                json_object_set_new(codes, stats_error_names[e],
                                                    json_integer((json_int_t) s->op_errors[i][e]));
                json_object_set_new(by_error, ops[i].name, codes ? codes : json_object());
                json_object_set_new(latency_ops, ops[i].name, histogram_json(&s->op_latency[i]));
        }
        for (unsigned i = 0; i < _STAT_ERR_MAX; i++)
                json_object_set_new(errors, stats_error_names[i], json_integer((json_int_t) s->errors[i]));
        (void) store_get_stats(d->store, &ss);

        const char *socket = d->socket_activated ? "(socket-activated)"
                             : d->socket_override   ? d->socket_override
                                                    : d->config->socket;
        json_t *o = json_pack(
                "{s:I, s:s, s:s, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:{s:o, s:o}, s:o,"
                " s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
                " s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:o, s:{s:I, s:I}, s:{s:I, s:I, s:I},"
                " s:{s:I}, s:{s:I, s:I}, s:o, s:{s:I}, s:{s:I, s:I, s:I, s:I}}",
                "uptime", (json_int_t) ((now - d->started_usec) / 1000000),
                "version", LATCH_VERSION,
                "socket", socket,
                "started_at", (json_int_t) (daemon_now() - (json_int_t) ((now - d->started_usec) / 1000000)),
                "connections",
                        "current", (json_int_t) d->n_conns,
                        "total", (json_int_t) s->connections_total,
                        "refused", (json_int_t) s->connections_refused,
                        "timed_out", (json_int_t) s->connections_timed_out,
                "requests", requests,
                "errors", errors,
                "requests_by_error", by_error,
                "latency",
                        "validate", latency_json(&s->validate_latency),
                        "login", latency_json(&s->login_latency),
                "latency_histograms", latency_ops,
                "sessions",
                        "stored", (json_int_t) ss.sessions,
                        "map_bytes", (json_int_t) ss.map_size,
                        "used_bytes", (json_int_t) ss.used_bytes,
                        "readers_cleared", (json_int_t) ss.readers_cleared,
                        "file_bytes", store_file_bytes(d),
                "sweep",
                        "runs", (json_int_t) s->sweeps,
                        "removed", (json_int_t) s->swept_sessions,
                        "last_duration_us", (json_int_t) s->last_sweep_usec,
                "workers",
                        "threads", (json_int_t) workqueue_threads(d->pool),
                        "busy", (json_int_t) workqueue_pending(d->pool),
                        "writer_pending", (json_int_t) workqueue_pending(d->writer),
                "logins",
                        "ok", (json_int_t) s->logins_ok,
                        "denied", (json_int_t) s->logins_denied,
                        "abandoned", (json_int_t) s->logins_abandoned,
                "keys", keys_json(d),
                "reloads",
                        "ok", (json_int_t) s->reloads_ok,
                        "failed", (json_int_t) s->reloads_failed,
                "throttle",
                        "delayed", (json_int_t) s->throttle_delayed,
                        "delay_us", (json_int_t) s->throttle_delay_usec,
                        "keys", (json_int_t) throttle_size(d->throttle),
                "conversations",
                        "open", (json_int_t) conversations_count(d->conversations),
                "recent_errors",
                        "minutes", (json_int_t) STATS_RECENT_MINUTES,
                        "count", (json_int_t) stats_recent_errors(s, now),
                "services", services_json(d),
                "faillock",
                        "refusals", (json_int_t) stats_faillock_refusals(),
                "password_changes",
                        "ok", (json_int_t) s->password_changes_ok,
                        "refused", (json_int_t) s->password_changes_refused,
                        "expired", (json_int_t) s->password_changes_expired,
                        "revoked_sessions", (json_int_t) s->password_revoked_sessions);
        if (!o) {
                reply_error(r, "internal", "cannot build stats");
                return;
        }
        reply_ok(r, o);
}

void op_reload(struct request *r) {
        struct daemon *d = r->conn->d;

        log_fields(LOG_INFO, (const char *[]){ "LATCH_OP", "reload", NULL }, "reload requested by %s",
                   r->conn->peer_desc);
        if (daemon_reload(d) < 0) {
                reply_error(r, "internal", "the new configuration has errors and was not applied (see the log)");
                return;
        }
        reply_ok(r, NULL);
}
