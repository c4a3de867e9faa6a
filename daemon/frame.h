/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Wire framing (docs/PROTOCOL.md, "Transport and framing"): a 4-byte unsigned
 * big-endian length N, 1 <= N <= max_frame, then N bytes of JSON.
 * Pure functions over a buffer: no I/O, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 4

enum frame_status {
        FRAME_NEED_MORE, /* the buffer does not hold a whole frame yet */
        FRAME_OK,        /* a frame of *ret_len payload bytes starts at buf + 4 */
        FRAME_EMPTY,     /* N == 0: refused, but the stream stays in sync */
        FRAME_TOO_LARGE, /* N > max_frame: refused before reading the payload */
};

/* Looks at the start of buf. On FRAME_OK and FRAME_NEED_MORE with a complete
 * header, *ret_len gets N (so the caller can size its buffer once). */
enum frame_status frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_len);

/* Writes the 4-byte header for a payload of len bytes. */
static inline void frame_put_header(uint8_t out[FRAME_HEADER], uint32_t len) {
        out[0] = (uint8_t) (len >> 24);
        out[1] = (uint8_t) (len >> 16);
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
}
