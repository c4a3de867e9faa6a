/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's two clocks. Wall-clock seconds are what the wire and the
 * store speak (times in replies, session expiry); the monotonic clock, in
 * microseconds, measures deadlines, latencies and timers, and is the one
 * sd-event's CLOCK_MONOTONIC timers use.
 */

#include <stdint.h>
#include <time.h>

#include "wire.h"

static inline int64_t daemon_now(void) { return (int64_t) time(NULL); }

static inline uint64_t now_usec(void) { return wire_now_usec(); }
