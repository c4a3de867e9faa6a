/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Counters and gauges for the `stats` op (and through it latchctl stats,
 * latchctl status and the OpenMetrics exposition). Loop thread only: every
 * update is a plain increment into fixed arrays, no allocation and no lock,
 * so that counting costs the request path next to nothing.
 */

#include <jansson.h>
#include <stdint.h>

/*
 * Latency histogram: bucket b counts samples of at most 2^b microseconds
 * (and more than 2^(b-1)); the last bucket also takes everything larger.
 * 1 µs .. 2^(HIST_BUCKETS-1) µs (about 9 minutes at 30).
 */
#define HIST_BUCKETS 30
struct histogram {
        uint64_t count;
        uint64_t sum_usec;
        uint64_t buckets[HIST_BUCKETS];
};

void histogram_add(struct histogram *h, uint64_t usec);
/* The smallest bucket bound (µs) at or below which fraction q of the
 * samples fall; 0 when empty. */
uint64_t histogram_quantile(const struct histogram *h, double q);
/* {"count", "sum_us", "buckets": [[le_us, cumulative count], ...]}: the
 * cumulative form Prometheus histograms take, up to the last bucket with
 * samples (the rest would repeat the count). NULL when out of memory. */
json_t *histogram_json(const struct histogram *h);

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
        STAT_ERR_CHALLENGE,
        STAT_ERR_INVALID_CONVERSATION,
        _STAT_ERR_MAX
};

#define STATS_MAX_OPS 32
/* "Recent errors": `unavailable` and `internal` answers in the last
 * STATS_RECENT_MINUTES minutes, one slot per minute. */
#define STATS_RECENT_MINUTES 15

struct stats {
        uint64_t connections_total;
        uint64_t connections_refused;  /* over max_connections */
        uint64_t connections_timed_out;
        uint64_t requests[STATS_MAX_OPS];
        uint64_t errors[_STAT_ERR_MAX];
        uint64_t op_errors[STATS_MAX_OPS][_STAT_ERR_MAX];
        struct histogram op_latency[STATS_MAX_OPS]; /* request read to reply ready */
        struct histogram validate_latency;
        uint64_t sweeps;
        uint64_t swept_sessions;
        uint64_t last_sweep_usec;
        uint64_t logins_ok;
        uint64_t logins_denied;
        uint64_t logins_abandoned;     /* the client left first: the session was undone */
        /* Password changes through the password stack: the passwd op's and
         * those of logins whose account answered new_authtok_reqd. */
        uint64_t password_changes_ok;
        uint64_t password_changes_refused;      /* the stack's answer was a refusal, not `unavailable` */
        uint64_t password_changes_expired;      /* of _ok: expired passwords changed inside a login */
        uint64_t password_revoked_sessions;     /* other sessions revoked after a change */
        uint64_t reloads_ok;
        uint64_t reloads_failed;
        uint64_t throttle_delayed;     /* attempts made to wait by [throttle] */
        uint64_t throttle_delay_usec;  /* the waits imposed, summed */
        struct histogram login_latency;
        uint64_t recent_minute[STATS_RECENT_MINUTES]; /* minute number of each slot */
        uint64_t recent_errors[STATS_RECENT_MINUTES];
};

/* Maps a wire error code to its STAT_ERR_ index, or -1. */
int stats_error_index(const char *code);
extern const char *const stats_error_names[_STAT_ERR_MAX];

/* Counts an error answer of op `op_index` (-1: before the op was known)
 * at monotonic time `now_usec`. */
void stats_count_error(struct stats *s, int op_index, int error_index, uint64_t now_usec);
/* `unavailable` and `internal` answers of the last STATS_RECENT_MINUTES
 * minutes before `now_usec`. */
uint64_t stats_recent_errors(const struct stats *s, uint64_t now_usec);

/* Refusals by the faillock plugin (a locked user). Any thread: the one
 * counter updated off the loop thread, an atomic. */
void stats_count_faillock_refusal(void);
uint64_t stats_faillock_refusals(void);
