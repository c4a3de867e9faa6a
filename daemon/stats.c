/* SPDX-License-Identifier: MIT */
#include <stdatomic.h>
#include <string.h>

#include "macro.h"
#include "stats.h"

const char *const stats_error_names[_STAT_ERR_MAX] = {
        [STAT_ERR_BAD_REQUEST] = "bad_request",
        [STAT_ERR_UNKNOWN_OP] = "unknown_op",
        [STAT_ERR_TOO_LARGE] = "too_large",
        [STAT_ERR_DENIED] = "denied",
        [STAT_ERR_INVALID_SESSION] = "invalid_session",
        [STAT_ERR_INVALID_TOKEN] = "invalid_token",
        [STAT_ERR_FORBIDDEN] = "forbidden",
        [STAT_ERR_UNKNOWN_SERVICE] = "unknown_service",
        [STAT_ERR_UNAVAILABLE] = "unavailable",
        [STAT_ERR_INTERNAL] = "internal",
        [STAT_ERR_CHALLENGE] = "challenge",
        [STAT_ERR_INVALID_CONVERSATION] = "invalid_conversation",
};

int stats_error_index(const char *code) {
        for (int i = 0; i < _STAT_ERR_MAX; i++)
                if (streq(code, stats_error_names[i]))
                        return i;
        return -1;
}

void histogram_add(struct histogram *h, uint64_t usec) {
        /* The bucket of usec is ceil(log2(usec)): the bit length of usec - 1. */
        unsigned b = usec <= 1 ? 0 : 64 - (unsigned) __builtin_clzll(usec - 1);
        if (b >= HIST_BUCKETS)
                b = HIST_BUCKETS - 1;
        h->buckets[b]++;
        h->count++;
        h->sum_usec += usec;
}

uint64_t histogram_quantile(const struct histogram *h, double q) {
        if (h->count == 0)
                return 0;
        uint64_t want = (uint64_t) ((double) h->count * q);
        if (want >= h->count)
                want = h->count - 1;
        uint64_t seen = 0;
        for (unsigned b = 0; b < HIST_BUCKETS; b++) {
                seen += h->buckets[b];
                if (seen > want)
                        return UINT64_C(1) << b;
        }
        return UINT64_C(1) << (HIST_BUCKETS - 1);
}

json_t *histogram_json(const struct histogram *h) {
        json_t *buckets = json_array();
        uint64_t seen = 0;

        if (!buckets)
                return NULL;
        for (unsigned b = 0; b < HIST_BUCKETS - 1 && seen < h->count; b++) {
                seen += h->buckets[b];
                if (json_array_append_new(buckets, json_pack("[I, I]", (json_int_t) (UINT64_C(1) << b),
                                                             (json_int_t) seen)) < 0) {
                        json_decref(buckets);
                        return NULL;
                }
        }
        return json_pack("{s:I, s:I, s:o}", "count", (json_int_t) h->count, "sum_us", (json_int_t) h->sum_usec,
                         "buckets", buckets);
}

void stats_count_error(struct stats *s, int op_index, int error_index, uint64_t now_usec) {
        if (error_index < 0 || error_index >= _STAT_ERR_MAX)
                return;
        s->errors[error_index]++;
        if (op_index >= 0 && op_index < STATS_MAX_OPS)
                s->op_errors[op_index][error_index]++;
        if (error_index == STAT_ERR_UNAVAILABLE || error_index == STAT_ERR_INTERNAL) {
                uint64_t minute = now_usec / 60000000 + 1; /* 0 marks an unused slot */
                unsigned slot = minute % STATS_RECENT_MINUTES;
                if (s->recent_minute[slot] != minute) {
                        s->recent_minute[slot] = minute;
                        s->recent_errors[slot] = 0;
                }
                s->recent_errors[slot]++;
        }
}

uint64_t stats_recent_errors(const struct stats *s, uint64_t now_usec) {
        uint64_t minute = now_usec / 60000000 + 1, n = 0;
        for (unsigned i = 0; i < STATS_RECENT_MINUTES; i++)
                if (s->recent_minute[i] && s->recent_minute[i] + STATS_RECENT_MINUTES > minute)
                        n += s->recent_errors[i];
        return n;
}

static _Atomic uint64_t faillock_refusals;

void stats_count_faillock_refusal(void) {
        atomic_fetch_add_explicit(&faillock_refusals, 1, memory_order_relaxed);
}

uint64_t stats_faillock_refusals(void) {
        return atomic_load_explicit(&faillock_refusals, memory_order_relaxed);
}
