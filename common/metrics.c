/* SPDX-License-Identifier: MIT */
/* latchd's stats as a metrics exposition (see metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define HIST_MAX_BUCKETS 64

struct out {
        FILE *f;
        enum metrics_format format;
};

static bool om(const struct out *o) {
        return o->format == METRICS_OPENMETRICS;
}

/* Label values come from latchd (op names, error codes, a version):
 * escaped as both formats ask all the same. */
static void label_value(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*
 * The header of a family. `name` is the sample name without _total for
 * counters and without _info for info metrics: OpenMetrics names the
 * family so, the Prometheus text format names it after its samples.
 */
static void family(struct out *o, const char *name, const char *type, const char *help) {
        const char *suffix = "";
        const char *t = type;

        if (!om(o)) {
                if (strcmp(type, "counter") == 0)
                        suffix = "_total";
                else if (strcmp(type, "info") == 0) {
                        suffix = "_info";
                        t = "gauge";
                }
        }
        fprintf(o->f, "# TYPE %s%s %s\n", name, suffix, t);
        if (om(o)) {
                /* A unit, when the name ends in one. */
                if (ends_with(name, "_seconds"))
                        fprintf(o->f, "# UNIT %s seconds\n", name);
                else if (ends_with(name, "_bytes"))
                        fprintf(o->f, "# UNIT %s bytes\n", name);
        }
        fprintf(o->f, "# HELP %s%s %s\n", name, suffix, help);
}

static const json_t *member(const json_t *o, const char *path) {
        char key[64];
        for (;;) {
                const char *dot = strchr(path, '.');
                if (!dot)
                        return json_object_get(o, path);
                size_t n = (size_t) (dot - path);
                if (n >= sizeof key)
                        return NULL;
                memcpy(key, path, n);
                key[n] = '\0';
                o = json_object_get(o, key);
                path = dot + 1;
        }
}

static bool get_int(const json_t *stats, const char *path, json_int_t *ret) {
        const json_t *v = member(stats, path);
        if (!json_is_integer(v))
                return false;
        *ret = json_integer_value(v);
        return true;
}

static void value(FILE *f, json_int_t v, double scale) {
        if (scale == 1)
                fprintf(f, " %" PRId64 "\n", (int64_t) v);
        else
                fprintf(f, " %.9g\n", (double) v * scale);
}

/* A family of one sample, when the answer has the member at `path`. */
static void single(struct out *o, const json_t *stats, const char *path, const char *name, const char *type,
                   const char *help, double scale) {
        json_int_t v;
        if (!get_int(stats, path, &v))
                return;
        family(o, name, type, help);
        fprintf(o->f, "%s%s", name, strcmp(type, "counter") == 0 ? "_total" : "");
        value(o->f, v, scale);
}

/* A counter family with one label, from an object of integers
 * {label value: count} (or from the listed members of `obj`). */
static void labelled(struct out *o, const json_t *obj, const char *name, const char *label, const char *type,
                     const char *help, const char *const *only) {
        const char *k;
        json_t *v;
        bool any = false;

        if (!json_is_object(obj))
                return;
        json_object_foreach((json_t *) obj, k, v) {
                if (!json_is_integer(v))
                        continue;
                if (only) {
                        bool listed = false;
                        for (const char *const *p = only; *p; p++)
                                listed |= strcmp(*p, k) == 0;
                        if (!listed)
                                continue;
                }
                if (!any)
                        family(o, name, type, help);
                any = true;
                fprintf(o->f, "%s%s{%s=\"", name, strcmp(type, "counter") == 0 ? "_total" : "", label);
                label_value(o->f, k);
                fputs("\"}", o->f);
                value(o->f, json_integer_value(v), 1);
        }
}

/* requests_by_error: {op: {code: n}}. */
static void request_errors(struct out *o, const json_t *stats) {
        const json_t *by = member(stats, "requests_by_error");
        const char *op, *code;
        json_t *codes, *v;

        if (!json_is_object(by))
                return;
        family(o, "latch_request_errors", "counter", "Error answers, by op and error code.");
        json_object_foreach((json_t *) by, op, codes)
                json_object_foreach(codes, code, v) {
                        if (!json_is_integer(v))
                                continue;
                        fputs("latch_request_errors_total{op=\"", o->f);
                        label_value(o->f, op);
                        fputs("\",code=\"", o->f);
                        label_value(o->f, code);
                        fputs("\"}", o->f);
                        value(o->f, json_integer_value(v), 1);
                }
}

/* latency_histograms: {op: {count, sum_us, buckets: [[le_us, cumulative], ...]}}. */
static void latency(struct out *o, const json_t *stats) {
        const json_t *all = member(stats, "latency_histograms");
        const char *op;
        json_t *h;

        if (!json_is_object(all))
                return;
        family(o, "latch_request_duration_seconds", "histogram",
               "Time from a request read to its answer ready, by op.");
        json_object_foreach((json_t *) all, op, h) {
                json_int_t count, sum;
                const json_t *buckets = json_object_get(h, "buckets");
                if (!get_int(h, "count", &count) || !get_int(h, "sum_us", &sum) || !json_is_array(buckets))
                        continue;
                size_t i;
                json_t *b;
                json_array_foreach(buckets, i, b) {
                        json_int_t le = json_integer_value(json_array_get(b, 0));
                        json_int_t n = json_integer_value(json_array_get(b, 1));
                        fputs("latch_request_duration_seconds_bucket{op=\"", o->f);
                        label_value(o->f, op);
                        fprintf(o->f, "\",le=\"%.9g\"} %" PRId64 "\n", (double) le / 1e6, (int64_t) n);
                }
                fputs("latch_request_duration_seconds_bucket{op=\"", o->f);
                label_value(o->f, op);
                fprintf(o->f, "\",le=\"+Inf\"} %" PRId64 "\n", (int64_t) count);
                fputs("latch_request_duration_seconds_sum{op=\"", o->f);
                label_value(o->f, op);
                fprintf(o->f, "\"} %.9g\n", (double) sum / 1e6);
                fputs("latch_request_duration_seconds_count{op=\"", o->f);
                label_value(o->f, op);
                fprintf(o->f, "\"} %" PRId64 "\n", (int64_t) count);
        }
}

int metrics_render(const json_t *stats, enum metrics_format format, char **ret) {
        char *text = NULL;
        size_t len = 0;
        struct out o = { .format = format };
        static const char *const login_outcomes[] = { "ok", "denied", "abandoned", NULL };
        static const char *const reload_outcomes[] = { "ok", "failed", NULL };
        static const char *const change_outcomes[] = { "ok", "refused", NULL };

        o.f = open_memstream(&text, &len);
        if (!o.f)
                return -ENOMEM;

        family(&o, "latch_up", "gauge", "Whether latchd answered the stats request (1) or not (0).");
        fprintf(o.f, "latch_up %d\n", stats ? 1 : 0);
        if (stats) {
                const char *version = json_string_value(member(stats, "version"));
                if (version) {
                        family(&o, "latch_build", "info", "latchd's version.");
                        fputs("latch_build_info{version=\"", o.f);
                        label_value(o.f, version);
                        fputs("\"} 1\n", o.f);
                }
                single(&o, stats, "started_at", "latch_start_time_seconds", "gauge",
                       "When latchd started, Unix time.", 1);
                single(&o, stats, "connections.current", "latch_connections_open", "gauge",
                       "Client connections open now.", 1);
                single(&o, stats, "connections.total", "latch_connections_accepted", "counter",
                       "Client connections accepted.", 1);
                single(&o, stats, "connections.refused", "latch_connections_refused", "counter",
                       "Client connections refused over max_connections.", 1);
                single(&o, stats, "connections.timed_out", "latch_connections_timed_out", "counter",
                       "Client connections dropped by client_timeout.", 1);
                labelled(&o, member(stats, "requests"), "latch_requests", "op", "counter", "Requests answered, by op.",
                         NULL);
                request_errors(&o, stats);
                latency(&o, stats);
                labelled(&o, member(stats, "logins"), "latch_logins", "outcome", "counter",
                         "Logins by outcome (abandoned: the client left before the answer).", login_outcomes);
                labelled(&o, member(stats, "password_changes"), "latch_password_changes", "outcome", "counter",
                         "Password changes (passwd, and expired passwords in logins) by outcome.", change_outcomes);
                single(&o, stats, "password_changes.expired", "latch_expired_password_changes", "counter",
                       "Expired passwords changed inside a login (also in latch_password_changes ok).", 1);
                single(&o, stats, "password_changes.revoked_sessions", "latch_password_change_revoked_sessions",
                       "counter", "Sessions revoked because their user's password changed.", 1);
                labelled(&o, member(stats, "reloads"), "latch_reloads", "outcome", "counter",
                         "Configuration reloads by outcome.", reload_outcomes);
                single(&o, stats, "sessions.stored", "latch_sessions_stored", "gauge",
                       "Session records in the store (expired ones until swept).", 1);
                single(&o, stats, "sessions.map_bytes", "latch_store_map_bytes", "gauge",
                       "Size of the store's memory map.", 1);
                single(&o, stats, "sessions.used_bytes", "latch_store_used_bytes", "gauge",
                       "Bytes of the store's map in use.", 1);
                single(&o, stats, "sessions.file_bytes", "latch_store_file_bytes", "gauge",
                       "Size of sessions.mdb on disk.", 1);
                single(&o, stats, "sessions.readers_cleared", "latch_store_readers_cleared", "counter",
                       "Stale reader slots of the store cleared.", 1);
                single(&o, stats, "sweep.runs", "latch_sweeps", "counter", "Sweeps of expired sessions.", 1);
                single(&o, stats, "sweep.removed", "latch_swept_sessions", "counter",
                       "Expired sessions removed by sweeps.", 1);
                single(&o, stats, "sweep.last_duration_us", "latch_sweep_last_duration_seconds", "gauge",
                       "How long the last sweep took.", 1e-6);
                single(&o, stats, "workers.threads", "latch_worker_threads", "gauge",
                       "Threads for slow work (plugin stacks, hashing).", 1);
                single(&o, stats, "workers.busy", "latch_worker_jobs", "gauge",
                       "Slow jobs queued or running.", 1);
                single(&o, stats, "workers.writer_pending", "latch_writer_jobs", "gauge",
                       "Store writes queued or running.", 1);
                single(&o, stats, "throttle.delayed", "latch_throttle_delayed", "counter",
                       "Attempts made to wait by the failure backoff.", 1);
                single(&o, stats, "throttle.delay_us", "latch_throttle_delay_seconds", "counter",
                       "Waits imposed by the failure backoff, summed.", 1e-6);
                single(&o, stats, "throttle.keys", "latch_throttle_keys", "gauge",
                       "Addresses and users the failure backoff tracks.", 1);
                single(&o, stats, "faillock.refusals", "latch_faillock_refusals", "counter",
                       "Attempts the faillock plugin refused (user locked out).", 1);
                single(&o, stats, "conversations.open", "latch_conversations_open", "gauge",
                       "Conversations (multi-step logins) waiting for an answer.", 1);
                single(&o, stats, "keys.age", "latch_signing_key_age_seconds", "gauge",
                       "Age of the current signing key.", 1);
                single(&o, stats, "keys.created_at", "latch_signing_key_created_timestamp_seconds", "gauge",
                       "When the current signing key was made, Unix time.", 1);
                single(&o, stats, "keys.next_rotation", "latch_signing_key_next_rotation_timestamp_seconds", "gauge",
                       "When the signing key is next rotated (rotate_every), Unix time.", 1);
                json_int_t n = (json_int_t) json_array_size(member(stats, "services"));
                if (json_is_array(member(stats, "services"))) {
                        family(&o, "latch_services", "gauge", "Service stacks loaded.");
                        fprintf(o.f, "latch_services %" PRId64 "\n", (int64_t) n);
                }
        }
        if (om(&o))
                fputs("# EOF\n", o.f);
        if (fclose(o.f) != 0 || !text) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
