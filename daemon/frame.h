/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * latchd's limits on request frames (docs/PROTOCOL.md, "Transport and
 * framing"): 1 <= N <= max_frame. The header itself is common/wire.h's.
 * Pure functions over a buffer: no I/O, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum frame_status {
        FRAME_NEED_MORE, /* the buffer does not hold a whole frame yet */
        FRAME_OK,        /* a frame of *ret_len payload bytes starts at buf + 4 */
        FRAME_EMPTY,     /* N == 0: refused, but the stream stays in sync */
        FRAME_TOO_LARGE, /* N > max_frame: refused before reading the payload */
};

/* Looks at the start of buf. On FRAME_OK and FRAME_NEED_MORE with a complete
 * header, *ret_len gets N (so the caller can size its buffer once). */
enum frame_status frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_len);

