/* SPDX-License-Identifier: MIT */
#include "frame.h"

enum frame_status frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_len) {
        if (len < FRAME_HEADER)
                return FRAME_NEED_MORE;
        uint32_t n = (uint32_t) buf[0] << 24 | (uint32_t) buf[1] << 16 | (uint32_t) buf[2] << 8 | buf[3];
        if (n == 0)
                return FRAME_EMPTY;
        if (n > max_frame)
                return FRAME_TOO_LARGE;
        *ret_len = n;
        if (len - FRAME_HEADER < n)
                return FRAME_NEED_MORE;
        return FRAME_OK;
}
