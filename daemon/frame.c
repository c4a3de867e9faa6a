/* SPDX-License-Identifier: MIT */
#include "frame.h"

enum frame_status frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_len) {
        if (len < WIRE_HEADER)
                return FRAME_NEED_MORE;
        uint32_t n = wire_get_header(buf);
        if (n == 0)
                return FRAME_EMPTY;
        if (n > max_frame)
                return FRAME_TOO_LARGE;
        *ret_len = n;
        if (len - WIRE_HEADER < n)
                return FRAME_NEED_MORE;
        return FRAME_OK;
}
