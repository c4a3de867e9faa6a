/* SPDX-License-Identifier: MIT */
/* Fuzzes what latchd does with client bytes before any op runs: framing
 * (frame.c) and request decoding (decode.c), including argument access. */
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The input is a byte stream of frames, as a client would send. */
        while (size > 0) {
                uint32_t n = 0;
                enum frame_status st = frame_peek(data, size, 65536, &n);
                if (st == FRAME_NEED_MORE || st == FRAME_TOO_LARGE)
                        break;
                if (st == FRAME_EMPTY) {
                        data += WIRE_HEADER;
                        size -= WIRE_HEADER;
                        continue;
                }
                struct decoded d;
                char msg[256];
                const char *s;
                bool b;
                if (decode_request((const char *) data + WIRE_HEADER, n, &d, msg, sizeof msg) == 0) {
                        (void) arg_string(d.root, "session", false, 128, &s, msg, sizeof msg);
                        (void) arg_string(d.root, "user", true, 256, &s, msg, sizeof msg);
                        (void) arg_bool(d.root, "token", &b, msg, sizeof msg);
                }
                decoded_done(&d);
                data += WIRE_HEADER + n;
                size -= WIRE_HEADER + n;
        }
        return 0;
}
