/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * latchd's `stats` answer as a metrics text exposition, for latch-http's
 * /metrics and `latchctl stats --openmetrics` / `--prometheus`.
 *
 * Two formats: OpenMetrics 1.0 (application/openmetrics-text; counter
 * families named without _total, # UNIT lines, an info metric, "# EOF")
 * and the Prometheus text format 0.0.4 (text/plain; version=0.0.4), which
 * node_exporter's textfile collector and promtool read. The samples are
 * the same. Names follow the Prometheus conventions: the latch_ prefix,
 * base units (seconds, bytes), _total on counters, labels for the op, the
 * error code and the outcome. Members the answer lacks (an older latchd)
 * are left out, never made up.
 */

#include <jansson.h>
#include <stdbool.h>

enum metrics_format {
        METRICS_OPENMETRICS,
        METRICS_PROMETHEUS,
};

#define METRICS_CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define METRICS_CONTENT_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

/* The exposition as a new NUL-terminated string in *ret (free(3)).
 * `stats` is latchd's `stats` reply; NULL when latchd could not be asked,
 * which gives latch_up 0 alone. Returns 0 or -ENOMEM. */
int metrics_render(const json_t *stats, enum metrics_format format, char **ret);
