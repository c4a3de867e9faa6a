/* SPDX-License-Identifier: MIT */
/* hello, stats, reload. */
#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "workqueue.h"

void op_hello(struct request *r) {
        reply_ok(r, json_pack("{s:i, s:s}", "version", 1, "server", "latchd " LATCH_VERSION));
}

static json_t *latency_json(const struct histogram *h) {
        return json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t) h->count, "p50_us",
                         (json_int_t) histogram_quantile(h, 0.50), "p99_us", (json_int_t) histogram_quantile(h, 0.99),
                         "p999_us", (json_int_t) histogram_quantile(h, 0.999));
}

void op_stats(struct request *r) {
        struct daemon *d = r->conn->d;
        const struct stats *s = &d->stats;
        struct store_stats ss = { 0 };
        json_t *requests = json_object(), *errors = json_object();

        for (unsigned i = 0; i < n_ops && i < STATS_MAX_OPS; i++)
                json_object_set_new(requests, ops[i].name, json_integer((json_int_t) s->requests[i]));
        for (unsigned i = 0; i < _STAT_ERR_MAX; i++)
                json_object_set_new(errors, stats_error_names[i], json_integer((json_int_t) s->errors[i]));
        (void) store_get_stats(d->store, &ss);

        json_t *o = json_pack(
                "{s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:{s:o, s:o},"
                " s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
                " s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:{s:s}}",
                "uptime", (json_int_t) ((now_usec() - d->started_usec) / 1000000),
                "connections",
                        "current", (json_int_t) d->n_conns,
                        "total", (json_int_t) s->connections_total,
                        "refused", (json_int_t) s->connections_refused,
                        "timed_out", (json_int_t) s->connections_timed_out,
                "requests", requests,
                "errors", errors,
                "latency",
                        "validate", latency_json(&s->validate_latency),
                        "login", latency_json(&s->login_latency),
                "sessions",
                        "stored", (json_int_t) ss.sessions,
                        "map_bytes", (json_int_t) ss.map_size,
                        "used_bytes", (json_int_t) ss.used_bytes,
                        "readers_cleared", (json_int_t) ss.readers_cleared,
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
                "keys",
                        "current", keyring_current_kid(d->keys));
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
