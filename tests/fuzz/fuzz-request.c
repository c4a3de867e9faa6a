/* SPDX-License-Identifier: MIT */
/* Fuzzes what latchd does with client bytes before any op runs: framing
 * (frame.c) and request decoding (decode.c), including argument access,
 * and respond's arguments and its lookup in the conversation table
 * (conversation.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

#include "conversation.h"
#include "decode.h"
#include "frame.h"

static void never_ends(void *payload, bool expired) {
        (void) payload;
        (void) expired;
}

/* One waiting conversation, as respond finds them. */
static struct conversations *table(void) {
        static struct conversations *t;
        static int payload;
        char id[CONVERSATION_ID_LEN + 1];

        if (!t) {
                if (sodium_init() < 0 || conversations_new(never_ends, &t) < 0 ||
                    conversation_add(t, 0, "fuzz", "fuzz", UINT64_MAX, &payload, id) < 0)
                        abort();
        }
        return t;
}

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
                        /* respond: the id is looked up (never found: the
                         * fuzzer cannot guess 256 bits), the answers
                         * walked as op_respond() does. */
                        if (arg_string(d.root, "conversation", true, 128, &s, msg, sizeof msg) == 0)
                                (void) conversation_find(table(), s, 0, 1);
                        json_t *answers = json_object_get(d.root, "answers"), *v;
                        size_t i;
                        json_array_foreach(answers, i, v)
                                if (json_is_string(v))
                                        (void) json_string_length(v);
                }
                decoded_done(&d);
                data += WIRE_HEADER + n;
                size -= WIRE_HEADER + n;
        }
        return 0;
}
