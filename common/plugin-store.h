/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * For plugins whose state must live in latchd's store (shared by every
 * worker, kept across restarts). Header-only: a plugin links against nothing
 * of the host's.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <latch/plugin.h>

/* Returns 0 when the host offers its key-value store, or -ENOTSUP after
 * logging why the plugin cannot open (an isolated worker has no store). Only
 * whether the store answers matters, not what the probe reads. */
static inline int plugin_require_store(const struct latch_host *host, struct latch_ctx *ctx) {
        uint8_t probe[1];
        size_t probe_len = sizeof probe;

        if (host->kv_get(ctx, "", 1, probe, &probe_len) != -ENOTSUP)
                return 0;
        host->log(ctx, NULL, LATCH_LOG_ERR,
                  "needs latchd's state store, which this host does not offer (isolated plugin?)");
        return -ENOTSUP;
}
