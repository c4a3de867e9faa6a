/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The wire: what latchd, liblatch, latch-worker and latch-bench share about
 * moving frames over a stream socket.
 *
 *   - A frame is a 4-byte unsigned big-endian length N, then N bytes
 *     (docs/PROTOCOL.md, "Transport and framing"; latch-worker's protocol in
 *     daemon/worker/proto.h uses the same header).
 *   - wire_send_all() / wire_recv_all() move a whole buffer under a
 *     deadline, on blocking and non-blocking sockets alike.
 *   - wire_json_string() writes a JSON string straight into a caller's
 *     buffer, so that a secret (a password in a request, a session id in a
 *     reply) is written once, into memory the caller wipes, and never passes
 *     through an allocator it does not control. The escaping is Jansson's
 *     (JSON_COMPACT), byte for byte.
 *
 * Library code: never logs, thread-safe, no global state.
 */

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER 4

static inline void wire_put_header(uint8_t out[WIRE_HEADER], uint32_t len) {
        out[0] = (uint8_t) (len >> 24);
        out[1] = (uint8_t) (len >> 16);
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
}

static inline uint32_t wire_get_header(const uint8_t in[WIRE_HEADER]) {
        return (uint32_t) in[0] << 24 | (uint32_t) in[1] << 16 | (uint32_t) in[2] << 8 | (uint32_t) in[3];
}

/* Deadlines are CLOCK_MONOTONIC microseconds (wire_now_usec()). */
#define WIRE_NO_DEADLINE UINT64_MAX
uint64_t wire_now_usec(void);

/* Waits until fd is ready for `events` (or has an error or a hang-up, which
 * the next read or write reports). Returns 0, -ETIMEDOUT or -errno. */
int wire_wait(int fd, short events, uint64_t deadline);

/* Writes all len bytes of buf. Returns 0, -ETIMEDOUT, -EPIPE or
 * -ECONNRESET (the peer went away) or another -errno. Never raises
 * SIGPIPE. */
int wire_send_all(int fd, const void *buf, size_t len, uint64_t deadline);

/* Reads exactly len bytes into buf. Returns 0, -ECONNRESET at the end of
 * the stream (also in the middle), -ETIMEDOUT or another -errno. */
int wire_recv_all(int fd, void *buf, size_t len, uint64_t deadline);

/* Whether n bytes are strict UTF-8 (RFC 3629), as Jansson checks it: no
 * overlong forms, no surrogates, nothing past U+10FFFF. What
 * wire_json_string() writes must pass. */
bool wire_utf8_valid(const void *s, size_t n);

/* The most a JSON string of n bytes can take, quotes included. */
#define WIRE_JSON_STRING_MAX(n) (6 * (size_t) (n) + 2)

/* The exact size of s (n bytes of valid UTF-8) as a JSON string, quotes
 * included. */
size_t wire_json_string_len(const char *s, size_t n);

/* Writes s (n bytes of valid UTF-8: the caller checks) as a JSON string,
 * quotes included, into out, which holds at least wire_json_string_len(s,
 * n) bytes. Returns the end of what it wrote. */
char *wire_json_string(char *out, const char *s, size_t n);
