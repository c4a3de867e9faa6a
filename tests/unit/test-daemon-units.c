/* SPDX-License-Identifier: MIT */
/* Unit tests for latchd's own modules: conf.c, decode.c, frame.c, log.c (the escaper), throttle.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "conversation.h"
#include "decode.h"
#include "frame.h"
#include "log.h"
#include "throttle.h"

static void test_durations(void **state) {
        static const struct {
                const char *in;
                int r;
                int64_t v;
        } cases[] = {
                { "90s", 0, 90 },      { "30min", 0, 1800 }, { "8h", 0, 28800 },  { "2d", 0, 172800 },
                { "45", 0, 45 },       { "0", 0, 0 },        { "1m", 0, 60 },     { "", -EINVAL, 0 },
                { "-1s", -EINVAL, 0 }, { "5 min", -EINVAL, 0 }, { "5parsecs", -EINVAL, 0 }, { "s", -EINVAL, 0 },
                { "+5", -EINVAL, 0 },  { "99999999999999999999d", -ERANGE, 0 }, { "36600000d", -ERANGE, 0 },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int64_t v = -1;
                int r = parse_duration(cases[i].in, &v);
                if (r != cases[i].r)
                        fail_msg("'%s': %d, expected %d", cases[i].in, r, cases[i].r);
                if (r == 0)
                        assert_int_equal(v, cases[i].v);
        }
}

struct diags {
        char text[4096];
        unsigned n;
};

static void collect(void *userdata, const char *file, unsigned line, const char *message) {
        struct diags *d = userdata;
        size_t len = strlen(d->text);
        const char *base = strrchr(file, '/');
        snprintf(d->text + len, sizeof d->text - len, "%s:%u: %s\n", base ? base + 1 : file, line, message);
        d->n++;
}

static char tmpdir[64];

static const char *write_conf(const char *name, const char *text) {
        static char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return path;
}

static void test_config_defaults_and_values(void **state) {
        struct config *c = NULL;
        struct diags d = { 0 };
        const char *p = write_conf("a.conf", "[daemon]\nstate_dir = st\nworkers = 3\nmax_frame = 1024\n"
                                             "[session]\nidle_timeout = 10min\n"
                                             "[token]\nalgorithm = Ed25519\nleeway = 0\n"
                                             "[service.wiki]\nidle_timeout = 1min\naudience = wiki-api\n"
                                             "[service.kiosk]\nrevoke_on_password_change = no\n"
                                             "[plugin.pam]\ntimeout = 3s\nisolate = no\n"
                                             "[plugin.debug]\nmax_waiting = 64\n");
        assert_int_equal(config_load(p, collect, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_int_equal(c->workers, 3);
        assert_int_equal(c->max_frame, 1024);
        assert_int_equal(c->idle_timeout, 600);
        assert_int_equal(c->absolute_timeout, 8 * 3600); /* default */
        assert_int_equal(c->token_leeway, 0);
        assert_string_equal(c->algorithm, "Ed25519");
        /* Relative paths resolve against the config file's folder. */
        char want[160];
        snprintf(want, sizeof want, "%s/st", tmpdir);
        assert_string_equal(c->state_dir, want);
        const struct service_config *s = config_service(c, "wiki");
        assert_non_null(s);
        assert_int_equal(config_idle_timeout(c, s), 60);
        assert_int_equal(config_absolute_timeout(c, s), 8 * 3600);
        assert_string_equal(s->audience, "wiki-api");
        assert_null(config_service(c, "other"));
        /* A password change revokes the user's other sessions unless the
         * service says no. */
        assert_true(config_revoke_on_password_change(s));
        assert_true(config_revoke_on_password_change(NULL));
        assert_false(config_revoke_on_password_change(config_service(c, "kiosk")));
        const struct plugin_config *pc = config_plugin(c, "pam");
        assert_non_null(pc);
        assert_int_equal(pc->timeout_ms, 3000);
        assert_int_equal(pc->isolate, 0);
        assert_int_equal(pc->max_waiting, 16); /* default */
        pc = config_plugin(c, "debug");
        assert_non_null(pc);
        assert_int_equal(pc->max_waiting, 64);
        config_free(c);
}

static void test_config_errors_name_file_and_line(void **state) {
        struct config *c = NULL;
        struct diags d = { 0 };
        const char *p = write_conf("b.conf", "[daemon]\n"               /* 1 */
                                             "workers = many\n"         /* 2 */
                                             "nonsense = 1\n"           /* 3 */
                                             "# fine\n"                 /* 4 */
                                             "[token]\n"                /* 5 */
                                             "algorithm = HS256\n"      /* 6 */
                                             "just words\n"             /* 7 */
                                             "[service.bad/name]\n"     /* 8 */
                                             "idle_timeout = 1s\n"      /* 9 */
                                             "[access]\n"               /* 10 */
                                             "admin_groups = no-such-group-latch\n" /* 11 */
                                             "[unclosed\n"             /* 12 */
                                             "[plugin.pam]\n"          /* 13 */
                                             "max_waiting = 0\n"       /* 14 */
                                             "max_waiting = 1025\n");  /* 15 */
        assert_int_equal(config_load(p, collect, &d, &c), -EINVAL);
        assert_null(c);
        assert_non_null(strstr(d.text, "b.conf:2: workers"));
        assert_non_null(strstr(d.text, "b.conf:3: unknown key 'nonsense' in [daemon]"));
        assert_non_null(strstr(d.text, "b.conf:6: algorithm"));
        assert_non_null(strstr(d.text, "b.conf:7: syntax error"));
        assert_non_null(strstr(d.text, "b.conf:9: invalid service name"));
        assert_non_null(strstr(d.text, "b.conf:11: admin_groups: unknown group 'no-such-group-latch'"));
        assert_non_null(strstr(d.text, "b.conf:12: syntax error"));
        assert_non_null(strstr(d.text, "b.conf:14: max_waiting: expected a number from 1 to 1024: '0'"));
        assert_non_null(strstr(d.text, "b.conf:15: max_waiting: expected a number from 1 to 1024: '1025'"));
        assert_int_equal(d.n, 9);
}

static void test_config_revoke_on_password_change_is_a_bool(void **state) {
        struct config *c = NULL;
        struct diags d = { 0 };
        const char *p = write_conf("r.conf", "[service.wiki]\nrevoke_on_password_change = sometimes\n");
        assert_int_equal(config_load(p, collect, &d, &c), -EINVAL);
        assert_non_null(strstr(d.text, "r.conf:2: revoke_on_password_change: expected yes or no"));
        assert_int_equal(d.n, 1);
}

static void test_config_dropins(void **state) {
        struct config *c = NULL;
        struct diags d = { 0 };
        char dir[128];
        char p[128];
        snprintf(p, sizeof p, "%s", write_conf("c.conf", "[token]\nissuer = main\nlifetime = 1min\n"));
        snprintf(dir, sizeof dir, "%s/c.conf.d", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        write_conf("c.conf.d/20-b.conf", "[token]\nissuer = second\n");
        write_conf("c.conf.d/10-a.conf", "[token]\nissuer = first\nlifetime = 2min\n");
        write_conf("c.conf.d/30-c.conf.disabled", "[token]\nissuer = ignored\n");
        assert_int_equal(config_load(p, collect, &d, &c), 0);
        assert_string_equal(c->issuer, "second");
        assert_int_equal(c->token_lifetime, 120);
        config_free(c);
}

static void test_config_missing_file(void **state) {
        struct config *c = NULL;
        struct diags d = { 0 };
        char p[128];
        snprintf(p, sizeof p, "%s/none.conf", tmpdir);
        assert_int_equal(config_load(p, collect, &d, &c), -ENOENT);
        assert_int_equal(d.n, 1);
}

static int decode(const char *s, struct decoded *d, char *msg) {
        return decode_request(s, strlen(s), d, msg, 256);
}

static void test_decode(void **state) {
        struct decoded d;
        char msg[256];
        const char *v;
        bool b;

        assert_int_equal(decode("{\"op\":\"hello\",\"id\":[1]}", &d, msg), 0);
        assert_string_equal(d.op, "hello");
        assert_true(json_is_array(d.id));
        decoded_done(&d);

        static const char *const bad[] = {
                "", "[]", "\"op\"", "{\"op\":1}", "{\"id\":1}", "{\"op\":\"a\",\"op\":\"b\"}",
                "{\"op\":\"a\"} {}", "{\"op\":\"\xff\"}", "{\"op\":\"a\",\"x\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_int_equal(decode(bad[i], &d, msg), -EBADMSG);
                assert_true(strlen(msg) > 0);
                decoded_done(&d);
        }
        /* The id of an object without a usable op is kept for the error. */
        assert_int_equal(decode("{\"id\":7}", &d, msg), -EBADMSG);
        assert_int_equal(json_integer_value(d.id), 7);
        decoded_done(&d);

        assert_int_equal(decode("{\"op\":\"x\",\"s\":\"abc\",\"n\":5,\"t\":true}", &d, msg), 0);
        assert_int_equal(arg_string(d.root, "s", true, 3, &v, msg, sizeof msg), 0);
        assert_string_equal(v, "abc");
        assert_int_equal(arg_string(d.root, "s", true, 2, &v, msg, sizeof msg), -EBADMSG);
        assert_int_equal(arg_string(d.root, "n", true, 10, &v, msg, sizeof msg), -EBADMSG);
        assert_non_null(strstr(msg, "'n' must be a string"));
        assert_int_equal(arg_string(d.root, "missing", false, 10, &v, msg, sizeof msg), 0);
        assert_null(v);
        assert_int_equal(arg_string(d.root, "missing", true, 10, &v, msg, sizeof msg), -EBADMSG);
        assert_int_equal(arg_bool(d.root, "t", &b, msg, sizeof msg), 0);
        assert_true(b);
        assert_int_equal(arg_bool(d.root, "n", &b, msg, sizeof msg), -EBADMSG);
        decoded_done(&d);
}

static void test_frame(void **state) {
        uint8_t buf[16] = { 0 };
        uint32_t n = 0;

        assert_int_equal(frame_peek(buf, 3, 100, &n), FRAME_NEED_MORE);
        assert_int_equal(frame_peek(buf, 4, 100, &n), FRAME_EMPTY);
        wire_put_header(buf, 101);
        assert_int_equal(frame_peek(buf, 4, 100, &n), FRAME_TOO_LARGE);
        wire_put_header(buf, 0xFFFFFFFFu);
        assert_int_equal(frame_peek(buf, 4, 100, &n), FRAME_TOO_LARGE);
        wire_put_header(buf, 10);
        assert_int_equal(frame_peek(buf, 8, 100, &n), FRAME_NEED_MORE);
        assert_int_equal(n, 10); /* known before the payload is in */
        assert_int_equal(frame_peek(buf, 14, 100, &n), FRAME_OK);
}

static void test_throttle(void **state) {
        struct throttle *t = NULL;
        struct throttle_ticket tk;
        uint64_t now = 1000000000;

        assert_int_equal(throttle_new(true, 15, &t), 0);
        /* No failures: no delay. */
        assert_int_equal(throttle_begin(t, "alice", "10.0.0.1", now, &tk), 0);
        throttle_done(t, &tk, false, now);
        uint64_t last = 0;
        for (int i = 0; i < 6; i++) {
                uint64_t d = throttle_begin(t, "alice", "10.0.0.1", now, &tk);
                assert_true(d >= last);
                last = d;
                throttle_done(t, &tk, false, now);
        }
        assert_true(last > 1000000);
        assert_true(last <= 15000000);
        /* Another user behind the same remote is barely touched. */
        uint64_t other = throttle_begin(t, "bob", "10.0.0.1", now, &tk);
        throttle_cancel(t, &tk);
        assert_true(other < last);
        /* Success clears (remote, user). */
        throttle_begin(t, "alice", "10.0.0.1", now, &tk);
        throttle_done(t, &tk, true, now);
        uint64_t after = throttle_begin(t, "alice", "10.0.0.1", now, &tk);
        throttle_cancel(t, &tk);
        assert_true(after < last);

        /* Parallel attempts count before any of them failed. */
        struct throttle_ticket many[8];
        uint64_t max = 0;
        for (int i = 0; i < 8; i++) {
                uint64_t d = throttle_begin(t, "carol", "10.0.0.9", now, &many[i]);
                max = d > max ? d : max;
        }
        assert_true(max > 0);
        for (int i = 0; i < 8; i++)
                throttle_cancel(t, &many[i]);
        /* Decay: an hour later the slate is clean, and gc drops entries. */
        throttle_gc(t, now + 3600ULL * 1000000);
        assert_int_equal(throttle_begin(t, "carol", "10.0.0.9", now + 3600ULL * 1000000, &tk), 0);
        throttle_cancel(t, &tk);
        /* Disabled: never a delay. */
        throttle_configure(t, false, 15);
        assert_int_equal(throttle_begin(t, "alice", "10.0.0.1", now, &tk), 0);
        throttle_free(t);
}

static int setup(void **state) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/latch-unit-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

/* The escaper keeps a client string on one line and inside its quotes. */
/* log_errno() logs the message with the errno text and returns r. */
static void test_log_errno(void **state) {
        char path[] = "/tmp/test-log-errno-XXXXXX", buf[512] = "";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);

        assert_true(fd >= 0 && saved >= 0);
        unlink(path);
        log_open(true);
        fflush(stderr);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        assert_int_equal(log_errno(LOG_ERR, -ENOENT, "cannot open %s", "x.conf"), -ENOENT);
        assert_int_equal(log_errno(LOG_DEBUG, -EIO, "below the level"), -EIO);
        fflush(stderr);
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
        assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
        close(fd);
        assert_non_null(strstr(buf, "cannot open x.conf: No such file or directory"));
        assert_null(strstr(buf, "below the level"));
}

static void test_log_escape(void **state) {
        char b[256];
        static const struct {
                const char *in, *quoted, *text;
        } cases[] = {
                { "alice", "alice", "alice" },
                { "josé 日本 😀", "josé 日本 😀", "josé 日本 😀" },
                /* A quote cannot end the quoted string and forge fields. */
                { "eve' on service 'admin", "eve\\' on service \\'admin", "eve' on service 'admin" },
                { "a\"b\\c", "a\\\"b\\\\c", "a\"b\\\\c" },
                /* Line breaks of every kind. */
                { "x\nlogin ok for user 'root'", "x\\nlogin ok for user \\'root\\'", "x\\nlogin ok for user 'root'" },
                { "a\rb\tc", "a\\rb\\tc", "a\\rb\\tc" },
                { "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\\u2028b\\u2029c", "a\\u2028b\\u2029c" },
                { "nel\xc2\x85" "c1\xc2\x9b", "nel\\u0085c1\\u009b", "nel\\u0085c1\\u009b" },
                /* ANSI escapes, DEL and the other C0 controls. */
                { "\x1b[31mred\x1b[0m\x7f\x01", "\\x1b[31mred\\x1b[0m\\x7f\\x01", "\\x1b[31mred\\x1b[0m\\x7f\\x01" },
                /* Text reordered or hidden. */
                { "a\xe2\x80\xae" "b\xef\xbb\xbf" "c\xe2\x80\x8b", "a\\u202eb\\ufeffc\\u200b", "a\\u202eb\\ufeffc\\u200b" },
                /* Invalid UTF-8: stray continuation, overlong, surrogate,
                 * beyond U+10FFFF, cut short, 0xff; each byte as \xNN. */
                { "\x80", "\\x80", "\\x80" },
                { "\xc0\xaf", "\\xc0\\xaf", "\\xc0\\xaf" },
                { "\xe0\x80\xaf", "\\xe0\\x80\\xaf", "\\xe0\\x80\\xaf" },
                { "\xed\xa0\x80", "\\xed\\xa0\\x80", "\\xed\\xa0\\x80" },
                { "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "\\xf4\\x90\\x80\\x80" },
                { "ab\xe2\x80", "ab\\xe2\\x80", "ab\\xe2\\x80" },
                { "\xff" "a", "\\xffa", "\\xffa" },
                { "", "", "" },
        };

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                assert_string_equal(log_escape(cases[i].in, true, b, sizeof b), cases[i].quoted);
                assert_string_equal(log_escape(cases[i].in, false, b, sizeof b), cases[i].text);
        }
        assert_string_equal(log_escape(NULL, true, b, sizeof b), "(null)");

        /* Too long: cut at a whole escape, marked, never overrun. */
        char small[12];
        memset(small, 'Z', sizeof small);
        assert_string_equal(log_escape("abcdefghijklmnop", true, small, 12), "abcdefgh...");
        assert_string_equal(log_escape("abcdefgh\x1b", true, small, 12), "abcdefgh...");
        assert_string_equal(log_escape("abcdefg\x1b", true, small, 12), "abcdefg\\x1b");
        assert_string_equal(log_escape("abcdefghijk", true, small, 12), "abcdefghijk");
        assert_string_equal(log_escape("\xe2\x80\xa8\xe2\x80\xa8", true, small, 12), "\\u2028...");

        /* The per-thread buffers: eight in one line stay distinct. */
        const char *p[LOG_ESC_SLOTS];
        char name[LOG_ESC_SLOTS][8];
        for (int i = 0; i < LOG_ESC_SLOTS; i++) {
                snprintf(name[i], sizeof name[i], "u'%d", i);
                p[i] = log_esc(name[i]);
        }
        for (int i = 0; i < LOG_ESC_SLOTS; i++) {
                char want[16];
                snprintf(want, sizeof want, "u\\'%d", i);
                assert_string_equal(p[i], want);
        }
        assert_string_equal(log_esc_text("it's\n"), "it's\\n");
}

static void end_nothing(void *payload, bool expired) {}

/* A conversation id is a command-line argument (`latchctl respond ID`):
 * like session ids it never begins with '-', which getopt would take for an
 * option. 4000 ids: were one in 64 such, all passing would be a 1e-27 chance. */
static void test_conversation_ids_are_not_options(void **state) {
        struct conversations *t;
        char id[CONVERSATION_ID_LEN + 1], user[32];
        int payload;

        assert_int_equal(conversations_new(end_nothing, &t), 0);
        for (int i = 0; i < 4000; i++) {
                snprintf(user, sizeof user, "u%d", i);
                assert_int_equal(conversation_add(t, (uid_t) (i / 1000), "svc", user, UINT64_MAX, &payload, id), 0);
                assert_int_equal(strlen(id), CONVERSATION_ID_LEN);
                assert_int_not_equal(id[0], '-');
        }
        conversations_free(t);
}

static int teardown(void **state) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_config_defaults_and_values),
                cmocka_unit_test(test_config_errors_name_file_and_line),
                cmocka_unit_test(test_config_revoke_on_password_change_is_a_bool),
                cmocka_unit_test(test_config_dropins),
                cmocka_unit_test(test_config_missing_file),
                cmocka_unit_test(test_decode),
                cmocka_unit_test(test_frame),
                cmocka_unit_test(test_throttle),
                cmocka_unit_test(test_log_escape),
                cmocka_unit_test(test_log_errno),
                cmocka_unit_test(test_conversation_ids_are_not_options),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
