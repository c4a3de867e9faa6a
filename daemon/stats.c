/* SPDX-License-Identifier: MIT */
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
};

int stats_error_index(const char *code) {
        for (int i = 0; i < _STAT_ERR_MAX; i++)
                if (streq(code, stats_error_names[i]))
                        return i;
        return -1;
}

void histogram_add(struct histogram *h, uint64_t usec) {
        unsigned b = 0;
        while (b + 1 < HIST_BUCKETS && (UINT64_C(1) << b) < usec)
                b++;
        h->buckets[b]++;
        h->count++;
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
