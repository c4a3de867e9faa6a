/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "wire.h"

uint64_t wire_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int wire_wait(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int timeout = -1;

                if (deadline != WIRE_NO_DEADLINE) {
                        uint64_t now = wire_now_usec();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        /* Rounded up: never wake just before the deadline. */
                        uint64_t ms = (deadline - now + 999) / 1000;
                        timeout = ms > INT_MAX ? INT_MAX : (int) ms;
                }
                int k = poll(&p, 1, timeout);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k > 0)
                        return 0;
        }
}

/* Moves all len bytes one way, waiting out EAGAIN until the deadline. */
static int io_all(int fd, uint8_t *p, size_t len, uint64_t deadline, bool sending) {
        while (len > 0) {
                ssize_t k = sending ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, p, len, MSG_DONTWAIT);
                if (k == 0 && !sending)
                        return -ECONNRESET;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        int r = wire_wait(fd, sending ? POLLOUT : POLLIN, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

int wire_send_all(int fd, const void *buf, size_t len, uint64_t deadline) {
        /* send() only reads the buffer. */
        return io_all(fd, (uint8_t *) buf, len, deadline, true);
}

int wire_recv_all(int fd, void *buf, size_t len, uint64_t deadline) {
        return io_all(fd, buf, len, deadline, false);
}

/* What each byte below 0x80 becomes inside a JSON string: 0 for itself, a
 * letter for a two-character escape, 'u' for \u00XX. */
static char escape_of(unsigned char c) {
        switch (c) {
        case '"':
                return '"';
        case '\\':
                return '\\';
        case '\b':
                return 'b';
        case '\f':
                return 'f';
        case '\n':
                return 'n';
        case '\r':
                return 'r';
        case '\t':
                return 't';
        default:
                return c < 0x20 ? 'u' : 0;
        }
}

size_t wire_json_string_len(const char *s, size_t n) {
        size_t m = 2;

        for (size_t i = 0; i < n; i++) {
                char e = escape_of((unsigned char) s[i]);
                m += e == 0 ? 1 : e == 'u' ? 6 : 2;
        }
        return m;
}

char *wire_json_string(char *out, const char *s, size_t n) {
        static const char hex[] = "0123456789ABCDEF";

        *out++ = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c >= 0x20 && c != '"' && c != '\\') {
                        *out++ = (char) c;
                        continue;
                }
                char e = escape_of(c);
                *out++ = '\\';
                if (e != 'u') {
                        *out++ = e;
                        continue;
                }
                memcpy(out, "u00", 3);
                out[3] = hex[c >> 4];
                out[4] = hex[c & 15];
                out += 5;
        }
        *out++ = '"';
        return out;
}

bool wire_utf8_valid(const void *buf, size_t n) {
        const unsigned char *s = buf;
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                size_t k;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        k = 2, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        k = 3, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        k = 4, cp = c & 0x07;
                else
                        return false;
                if (n - i < k)
                        return false;
                for (size_t j = 1; j < k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (k == 3 && cp < 0x800) ||
                    (k == 4 && cp < 0x10000))
                        return false;
                i += k;
        }
        return true;
}
