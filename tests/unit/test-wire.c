/* SPDX-License-Identifier: MIT */
/* common/wire.c: the frame header, whole-buffer I/O under a deadline, and
 * the JSON string writer (byte for byte what Jansson writes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "wire.h"

static void test_header(void **state) {
        uint8_t h[WIRE_HEADER];
        static const uint32_t values[] = { 0, 1, 255, 256, 65536, 0x01020304, UINT32_MAX };

        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                wire_put_header(h, values[i]);
                assert_int_equal(wire_get_header(h), values[i]);
        }
        wire_put_header(h, 0x01020304);
        assert_memory_equal(h, "\x01\x02\x03\x04", 4);
}

/* Compares wire_json_string() with Jansson's compact dump of the same
 * string. */
static void check_json_string(const char *s, size_t n) {
        json_t *j = json_stringn(s, n);
        assert_non_null(j);
        char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(want);
        char *got = malloc(WIRE_JSON_STRING_MAX(n));
        assert_non_null(got);

        size_t len = (size_t) (wire_json_string(got, s, n) - got);
        assert_int_equal(len, strlen(want));
        assert_int_equal(len, wire_json_string_len(s, n));
        assert_true(len <= WIRE_JSON_STRING_MAX(n));
        assert_memory_equal(got, want, len);
        free(got);
        free(want);
        json_decref(j);
}

static void test_json_string(void **state) {
        char all[127];

        /* Every ASCII byte, NUL included, alone and together. */
        for (int c = 0; c < 128; c++) {
                char one = (char) c;
                check_json_string(&one, 1);
        }
        for (int c = 1; c < 128; c++)
                all[c - 1] = (char) c;
        check_json_string(all, sizeof all);
        check_json_string("", 0);
        check_json_string("correct horse \"battery\" \\ staple", 32);
        check_json_string("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", 15);
        check_json_string("\x1f\x7f\n\r\t\b\f/", 8);
}

/* wire_utf8_valid() agrees with Jansson on what a JSON string may hold. */
static void test_utf8(void **state) {
        static const char *const cases[] = {
                "", "plain", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91", "\xf4\x8f\xbf\xbf",
                "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",   /* overlong */
                "\xed\xa0\x80", "\xed\xbf\xbf",                       /* surrogates */
                "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",   /* past U+10FFFF, never valid */
                "\xc3", "\xe2\x82", "\x80", "a\xc3(",                 /* cut short, stray */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                json_t *j = json_stringn(cases[i], strlen(cases[i]));
                assert_int_equal(wire_utf8_valid(cases[i], strlen(cases[i])), j != NULL);
                json_decref(j);
        }
}

static void test_io(void **state) {
        int sv[2];
        uint8_t buf[64 * 1024], got[sizeof buf];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (uint8_t) (i * 7);

        /* Fits in the socket buffer: sent whole, read whole. */
        assert_int_equal(wire_send_all(sv[0], buf, 1000, WIRE_NO_DEADLINE), 0);
        assert_int_equal(wire_recv_all(sv[1], got, 1000, wire_now_usec() + 5000000), 0);
        assert_memory_equal(got, buf, 1000);

        /* Nothing to read: the deadline ends the wait. */
        assert_int_equal(wire_recv_all(sv[1], got, 1, wire_now_usec() + 50000), -ETIMEDOUT);

        /* A peer that never reads: sending more than the socket holds
         * times out instead of blocking. */
        int r = 0;
        for (int i = 0; i < 1000 && r == 0; i++)
                r = wire_send_all(sv[0], buf, sizeof buf, wire_now_usec() + 50000);
        assert_int_equal(r, -ETIMEDOUT);

        /* The end of the stream in the middle of what is wanted. */
        close(sv[0]);
        for (;;) {
                r = wire_recv_all(sv[1], got, sizeof got, wire_now_usec() + 5000000);
                if (r != 0)
                        break;
        }
        assert_int_equal(r, -ECONNRESET);
        close(sv[1]);

        /* Sending to a peer that has gone. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        close(sv[1]);
        r = wire_send_all(sv[0], buf, 10, WIRE_NO_DEADLINE);
        assert_true(r == -EPIPE || r == -ECONNRESET);
        close(sv[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header),
                cmocka_unit_test(test_json_string),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_io),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
