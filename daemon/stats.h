/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Counters and gauges for the `stats` op. Loop thread only.
 */

#include <jansson.h>
#include <stdint.h>

/* Latency histogram: log2 buckets of microseconds, for percentiles. */
#define HIST_BUCKETS 40
struct histogram {
        uint64_t count;
        uint64_t buckets[HIST_BUCKETS];
};

void histogram_add(struct histogram *h, uint64_t usec);
/* The smallest bucket bound (µs) at or below which fraction q of the
 * samples fall; 0 when empty. */
uint64_t histogram_quantile(const struct histogram *h, double q);

enum {
        STAT_ERR_BAD_REQUEST,
        STAT_ERR_UNKNOWN_OP,
        STAT_ERR_TOO_LARGE,
        STAT_ERR_DENIED,
        STAT_ERR_INVALID_SESSION,
        STAT_ERR_INVALID_TOKEN,
        STAT_ERR_FORBIDDEN,
        STAT_ERR_UNKNOWN_SERVICE,
        STAT_ERR_UNAVAILABLE,
        STAT_ERR_INTERNAL,
        _STAT_ERR_MAX
};

#define STATS_MAX_OPS 32

struct stats {
        uint64_t connections_total;
        uint64_t connections_refused;  /* over max_connections */
        uint64_t connections_timed_out;
        uint64_t requests[STATS_MAX_OPS];
        uint64_t errors[_STAT_ERR_MAX];
        struct histogram validate_latency;
        uint64_t sweeps;
        uint64_t swept_sessions;
        uint64_t last_sweep_usec;
        uint64_t logins_ok;
        uint64_t logins_denied;
        uint64_t logins_abandoned;     /* the client left first: the session was undone */
        uint64_t reloads_ok;
        uint64_t reloads_failed;
        struct histogram login_latency;
};

/* Maps a contract error code to its STAT_ERR_ index, or -1. */
int stats_error_index(const char *code);
extern const char *const stats_error_names[_STAT_ERR_MAX];
