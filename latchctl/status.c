/* SPDX-License-Identifier: MIT */
/*
 * `latchctl status` and `latchctl stats --openmetrics/--prometheus`: both
 * read latchd's `stats` answer; status picks what an admin checks first and
 * fits it on one screen, the metrics text is common/metrics.c's.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "latchctl.h"
#include "macro.h"

static json_t *reply_object(const latch_reply *reply) {
        char *text = latch_reply_json(reply, NULL);
        json_t *o = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        return o;
}

int print_stats_metrics(const latch_reply *reply, enum metrics_format format) {
        json_t *o = reply_object(reply);
        char *text = NULL;
        if (!o || metrics_render(o, format, &text) < 0) {
                json_decref(o);
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        }
        json_decref(o);
        fputs(text, stdout);
        free(text);
        return fflush(stdout) == 0 ? EXIT_DONE : EXIT_UNAVAILABLE;
}

static json_int_t int_at(const json_t *o, const char *a, const char *b) {
        const json_t *v = json_object_get(o, a);
        if (b)
                v = json_object_get(v, b);
        return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* "3d 4h", "2h 5min", "4min 10s", "12s". */
static const char *duration(json_int_t s, char *buf, size_t size) {
        if (s < 0)
                snprintf(buf, size, "?");
        else if (s >= 86400)
                snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", (int64_t) s / 86400, (int64_t) s % 86400 / 3600);
        else if (s >= 3600)
                snprintf(buf, size, "%" PRId64 "h %" PRId64 "min", (int64_t) s / 3600, (int64_t) s % 3600 / 60);
        else if (s >= 60)
                snprintf(buf, size, "%" PRId64 "min %" PRId64 "s", (int64_t) s / 60, (int64_t) s % 60);
        else
                snprintf(buf, size, "%" PRId64 "s", (int64_t) s);
        return buf;
}

static const char *utc(json_int_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;
        if (t < 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

static const char *bytes(json_int_t n, char *buf, size_t size) {
        if (n < 0)
                snprintf(buf, size, "?");
        else if (n >= 1 << 30)
                snprintf(buf, size, "%.1f GiB", (double) n / (1 << 30));
        else if (n >= 1 << 20)
                snprintf(buf, size, "%.1f MiB", (double) n / (1 << 20));
        else
                snprintf(buf, size, "%.1f KiB", (double) n / 1024);
        return buf;
}

/* The status object: what the screen shows, from the stats answer. */
static json_t *status_json(const json_t *st) {
        json_int_t map = int_at(st, "sessions", "map_bytes"), used = int_at(st, "sessions", "used_bytes");
        json_t *o = json_pack("{s:O?, s:I, s:O?, s:O?, s:O?, s:{s:I, s:I, s:I, s:I, s:f}, s:{s:I, s:I}}",
                              "version", json_object_get(st, "version"),
                              "uptime", int_at(st, "uptime", NULL),
                              "socket", json_object_get(st, "socket"),
                              "services", json_object_get(st, "services"),
                              "keys", json_object_get(st, "keys"),
                              "store",
                                "sessions", int_at(st, "sessions", "stored"),
                                "file_bytes", int_at(st, "sessions", "file_bytes"),
                                "map_bytes", map,
                                "used_bytes", used,
                                "map_used", map > 0 ? (double) used / (double) map : 0.0,
                              "recent_errors",
                                "minutes", int_at(st, "recent_errors", "minutes"),
                                "count", int_at(st, "recent_errors", "count"));
        return o;
}

static void print_plugins(const json_t *list) {
        size_t i;
        json_t *p;
        if (json_array_size(list) == 0) {
                fputs("(none)", stdout);
                return;
        }
        json_array_foreach(list, i, p)
                printf("%s%s", i ? " " : "", json_string_value(p) ? term_text(json_string_value(p)) : "?");
}

int print_status(const latch_reply *reply) {
        json_t *st = reply_object(reply);
        json_t *o = st ? status_json(st) : NULL;
        char a[64], b[64];

        json_decref(st);
        if (!o)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        if (arg_json) {
                json_dumpf(o, stdout, JSON_COMPACT);
                fputc('\n', stdout);
                json_decref(o);
                return fflush(stdout) == 0 ? EXIT_DONE : EXIT_UNAVAILABLE;
        }

        const char *version = json_string_value(json_object_get(o, "version"));
        printf("latchd %s, up %s\n", version ? term_text(version) : "(version unknown)",
               duration(int_at(o, "uptime", NULL), a, sizeof a));
        const char *socket = json_string_value(json_object_get(o, "socket"));
        printf("Socket:    %s\n", socket ? term_text(socket) : "?");

        const json_t *services = json_object_get(o, "services");
        printf("Services:  %zu\n", json_array_size(services));
        size_t i;
        json_t *s;
        json_array_foreach(services, i, s) {
                const char *name = json_string_value(json_object_get(s, "name"));
                printf("  %-16s auth: ", name ? term_text(name) : "?");
                print_plugins(json_object_get(s, "auth"));
                fputs("; account: ", stdout);
                print_plugins(json_object_get(s, "account"));
                /* Most services change no password: say so only for those that do. */
                if (json_array_size(json_object_get(s, "password")) > 0) {
                        fputs("; password: ", stdout);
                        print_plugins(json_object_get(s, "password"));
                }
                fputc('\n', stdout);
        }

        const json_t *keys = json_object_get(o, "keys");
        const char *kid = json_string_value(json_object_get(keys, "current"));
        printf("Keys:      current %s, age %s\n", kid ? term_text(kid) : "?", duration(int_at(o, "keys", "age"), a, sizeof a));
        json_int_t next = int_at(o, "keys", "next_rotation");
        if (next >= 0)
                printf("           next rotation %s\n", utc(next, b, sizeof b));
        else
                printf("           rotated only on 'latchctl keys rotate' (rotate_every = 0)\n");

        json_int_t map = int_at(o, "store", "map_bytes"), used = int_at(o, "store", "used_bytes");
        printf("Sessions:  %" PRId64 " stored\n", (int64_t) int_at(o, "store", "sessions"));
        printf("Store:     %s on disk, map %s used of %s (%.0f%%)\n",
               bytes(int_at(o, "store", "file_bytes"), a, sizeof a), bytes(used, b, sizeof b),
               bytes(map, (char[64]){}, 64), map > 0 ? 100.0 * (double) used / (double) map : 0.0);
        printf("Errors:    %" PRId64 " unavailable/internal in the last %" PRId64 " min\n",
               (int64_t) int_at(o, "recent_errors", "count"), (int64_t) int_at(o, "recent_errors", "minutes"));
        json_decref(o);
        return fflush(stdout) == 0 ? EXIT_DONE : EXIT_UNAVAILABLE;
}
