/* SPDX-License-Identifier: MIT */
/*
 * liblatch against a scripted fake latchd: framing, the generic call,
 * replies, error mapping, retries of idempotent requests only, timeouts and
 * malformed answers.
 */

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "fake-server.h"
#include "latch/latch.h"

#define HELLO_OK "{\"ok\":true,\"version\":1,\"server\":\"fake\"}"

static latch_client *client_for(struct fake_server *fs) {
        latch_client *c = NULL;
        assert_int_equal(latch_client_new(fake_server_path(fs), &c), LATCH_OK);
        assert_non_null(c);
        return c;
}

/* Parses request i as the fake server saw it. */
static json_t *request_json(struct fake_server *fs, unsigned i) {
        const char *text = fake_server_request(fs, i);
        assert_non_null(text);
        json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        assert_true(json_is_object(o));
        return o;
}

static void test_hello_and_reuse(void **state) {
        const struct fake_step steps[] = {
                { .reply = HELLO_OK },
                { .reply = "{\"ok\":true,\"version\":1,\"server\":\"again\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;
        int64_t v = 0;

        assert_int_equal(latch_hello(c, &r), LATCH_OK);
        assert_string_equal(latch_reply_string(r, "server"), "fake");
        assert_int_equal(latch_reply_int(r, "version", &v), LATCH_OK);
        assert_int_equal(v, 1);
        assert_string_equal(latch_reply_raw(r), HELLO_OK);
        assert_string_equal(latch_last_message(c), "success");
        assert_int_equal(latch_last_error(c), LATCH_OK);
        assert_null(latch_last_error_code(c));
        latch_reply_free(r);

        /* ret may be NULL; the connection is kept for the next call. */
        assert_int_equal(latch_hello(c, NULL), LATCH_OK);
        assert_int_equal(fake_server_connections(fs), 1);

        json_t *req = request_json(fs, 0);
        assert_string_equal(json_string_value(json_object_get(req, "op")), "hello");
        assert_int_equal(json_object_size(req), 1);
        json_decref(req);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_split_response(void **state) {
        const struct fake_step steps[] = { { .reply = HELLO_OK, .split = true } };
        struct fake_server *fs = fake_server_start(steps, 1);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;

        assert_int_equal(latch_hello(c, &r), LATCH_OK);
        assert_string_equal(latch_reply_raw(r), HELLO_OK);
        latch_reply_free(r);
        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_login_request_fields(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":true,\"session\":\"abc_DEF-123\",\"handle\":\"h1\",\"user\":\"alice\","
                           "\"service\":\"wiki\",\"expires_at\":2000000000,\"idle_expires_at\":1900000000,"
                           "\"token\":\"t.t.t\",\"token_expires_at\":1800000000}" },
        };
        struct fake_server *fs = fake_server_start(steps, 1);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;
        /* Quotes, backslashes, control characters and non-ASCII survive. */
        const char *password = "p\"a\\s\ns\x01w\xc3\xa9rd";
        int64_t t = 0;

        assert_int_equal(latch_login(c, "wiki", "alice", password, "192.0.2.1", true, "app", &r), LATCH_OK);
        assert_string_equal(latch_reply_string(r, "session"), "abc_DEF-123");
        assert_int_equal(latch_reply_int(r, "expires_at", &t), LATCH_OK);
        assert_int_equal(t, 2000000000);
        assert_int_equal(latch_reply_int(r, "user", &t), LATCH_ERR_INVALID_ARGUMENT); /* not an int */
        assert_int_equal(latch_reply_int(r, "nope", &t), LATCH_ERR_INVALID_ARGUMENT);
        assert_null(latch_reply_string(r, "nope"));

        json_t *req = request_json(fs, 0);
        assert_string_equal(json_string_value(json_object_get(req, "op")), "login");
        assert_string_equal(json_string_value(json_object_get(req, "service")), "wiki");
        assert_string_equal(json_string_value(json_object_get(req, "user")), "alice");
        assert_string_equal(json_string_value(json_object_get(req, "password")), password);
        assert_string_equal(json_string_value(json_object_get(req, "remote")), "192.0.2.1");
        assert_true(json_is_true(json_object_get(req, "token")));
        assert_string_equal(json_string_value(json_object_get(req, "audience")), "app");
        json_decref(req);

        latch_reply_free(r);
        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_typed_requests(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" },
                { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" },
                { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" },
                { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" }, { .reply = "{\"ok\":true}" },
                { .reply = "{\"ok\":true}" },
        };
        static const char *const expected[] = {
                "{\"op\":\"authenticate\",\"service\":\"s\",\"user\":\"u\",\"password\":\"p\"}",
                "{\"op\":\"validate\",\"session\":\"S\",\"service\":\"s\"}",
                "{\"op\":\"logout\",\"session\":\"S\"}",
                "{\"op\":\"token\",\"session\":\"S\",\"audience\":\"a\"}",
                "{\"op\":\"verify\",\"token\":\"T\"}",
                "{\"op\":\"jwks\"}",
                "{\"op\":\"sessions.list\",\"user\":\"u\"}",
                "{\"op\":\"sessions.revoke\",\"handle\":\"h\"}",
                "{\"op\":\"keys.rotate\"}",
                "{\"op\":\"stats\"}",
                "{\"op\":\"reload\"}",
                "{\"op\":\"passwd\",\"service\":\"s\",\"user\":\"u\"}",
                "{\"op\":\"passwd\",\"service\":\"s\",\"user\":\"u\",\"remote\":\"r\",\"session\":\"S\"}",
        };
        struct fake_server *fs = fake_server_start(steps, 13);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_authenticate(c, "s", "u", "p", NULL, NULL), LATCH_OK);
        assert_int_equal(latch_validate(c, "S", "s", NULL), LATCH_OK);
        assert_int_equal(latch_logout(c, "S", NULL), LATCH_OK);
        assert_int_equal(latch_token(c, "S", "a", NULL), LATCH_OK);
        assert_int_equal(latch_verify(c, "T", NULL, NULL), LATCH_OK);
        assert_int_equal(latch_jwks(c, NULL), LATCH_OK);
        assert_int_equal(latch_sessions_list(c, "u", NULL, NULL), LATCH_OK);
        assert_int_equal(latch_sessions_revoke(c, "h", NULL, NULL), LATCH_OK);
        assert_int_equal(latch_keys_rotate(c, NULL), LATCH_OK);
        assert_int_equal(latch_stats(c, NULL), LATCH_OK);
        assert_int_equal(latch_reload(c, NULL), LATCH_OK);
        assert_int_equal(latch_passwd(c, "s", "u", NULL, NULL, NULL), LATCH_OK);
        assert_int_equal(latch_passwd(c, "s", "u", "r", "S", NULL), LATCH_OK);
        assert_int_equal(latch_passwd(c, "s", NULL, NULL, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);

        for (unsigned i = 0; i < 13; i++)
                assert_string_equal(fake_server_request(fs, i), expected[i]);

        latch_client_free(c);
        fake_server_stop(fs);
}

/* latch_plugin: the fixed members, then the plugin's own, in order; a
 * password only with a session, and never one of the fixed names twice. */
static void test_plugin_request(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":true,\"enrolled\":false}" },
                { .reply = "{\"ok\":false,\"error\":\"challenge\",\"message\":\"m\",\"conversation\":\"C\","
                           "\"prompts\":[{\"style\":\"secret\",\"message\":\"Verification code:\"}],"
                           "\"expires_at\":1}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;
        bool b = true;

        assert_int_equal(latch_plugin(c, "totp", "status", NULL, NULL, (const char *const[]){ "user", "alice" }, 1, &r),
                         LATCH_OK);
        assert_int_equal(latch_reply_bool(r, "enrolled", &b), LATCH_OK);
        assert_false(b);
        latch_reply_free(r);
        assert_int_equal(latch_plugin(c, "totp", "remove", "S", "pw", NULL, 0, NULL), LATCH_ERR_CHALLENGE);
        assert_string_equal(latch_reply_string(latch_last_challenge(c), "conversation"), "C");
        assert_string_equal(fake_server_request(fs, 0),
                            "{\"op\":\"plugin\",\"plugin\":\"totp\",\"action\":\"status\",\"user\":\"alice\"}");
        assert_string_equal(fake_server_request(fs, 1),
                            "{\"op\":\"plugin\",\"plugin\":\"totp\",\"action\":\"remove\",\"session\":\"S\","
                            "\"password\":\"pw\"}");

        /* Nothing is sent for these. */
        assert_int_equal(latch_plugin(c, "totp", "enroll", NULL, "pw", NULL, 0, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_plugin(c, NULL, "enroll", "S", NULL, NULL, 0, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_plugin(c, "totp", "enroll", "S", NULL, (const char *const[]){ "session", "T" }, 1, NULL),
                         LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_plugin(c, "totp", "enroll", "S", NULL, (const char *const[]){ "user", NULL }, 1, NULL),
                         LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_plugin(c, "totp", "enroll", "S", NULL, NULL, 1, NULL), LATCH_ERR_INVALID_ARGUMENT);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_bad_arguments(void **state) {
        const struct fake_step steps[] = { { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 1);
        latch_client *c = client_for(fs);

        /* Nothing is sent for any of these. */
        assert_int_equal(latch_login(c, "wiki", "alice", "\xff\xfe", NULL, false, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_login(c, "wiki", "alice", "\xc0\xaf", NULL, false, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_login(c, "wiki", NULL, "pw", NULL, false, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_validate(c, NULL, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_sessions_revoke(c, NULL, NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_sessions_revoke(c, "h", "u", NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_last_error(c), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_call_json(c, "[1]", NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_call_json(c, "{\"op\":1}", NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_call_json(c, "{\"op\":\"a\",\"op\":\"b\"}", NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_hello(NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(fake_server_requests(fs), 0);
        /* The password never reaches the message. */
        assert_null(strstr(latch_last_message(c), "\xff"));

        assert_int_equal(latch_client_set_max_response(c, 0), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_client_set_timeout(NULL, 1), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_client_new(NULL, NULL), LATCH_ERR_INVALID_ARGUMENT);
        latch_client *c2 = NULL;
        assert_int_equal(latch_client_new("", &c2), LATCH_ERR_INVALID_ARGUMENT);
        char longpath[200];
        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[sizeof(longpath) - 1] = '\0';
        assert_int_equal(latch_client_new(longpath, &c2), LATCH_ERR_INVALID_ARGUMENT);
        assert_null(c2);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_generic_call(void **state) {
        const char *resp = "{\"id\":7,\"ok\":true,\"version\":1,\"server\":\"fake\"}";
        const struct fake_step steps[] = {
                { .reply = resp },
                { .reply = "{\"id\":8,\"ok\":false,\"error\":\"forbidden\",\"message\":\"no way\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);
        char *out = NULL;

        assert_int_equal(latch_call_json(c, "{\"op\":\"hello\",\"id\":7}", &out), LATCH_OK);
        assert_string_equal(out, resp);
        assert_string_equal(fake_server_request(fs, 0), "{\"op\":\"hello\",\"id\":7}");
        latch_secret_free(out);

        out = NULL;
        assert_int_equal(latch_call_json(c, "{\"op\":\"future.op\",\"id\":8}", &out), LATCH_ERR_FORBIDDEN);
        assert_null(out);
        assert_string_equal(latch_last_error_code(c), "forbidden");
        assert_string_equal(latch_last_message(c), "no way");

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_reply_getters(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"id\":1,\"ok\":true,\"sessions\":["
                           "{\"handle\":\"h1\",\"user\":\"alice\",\"created_at\":10},"
                           "{\"handle\":\"h2\",\"user\":\"bob\",\"created_at\":20}],\"flag\":true}" },
        };
        struct fake_server *fs = fake_server_start(steps, 1);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;
        int64_t t = 0;
        bool b = false;

        assert_int_equal(latch_sessions_list(c, NULL, NULL, &r), LATCH_OK);
        assert_int_equal(latch_reply_count(r, "sessions"), 2);
        assert_int_equal(latch_reply_count(r, "flag"), 0);
        assert_string_equal(latch_reply_item_string(r, "sessions", 1, "user"), "bob");
        assert_null(latch_reply_item_string(r, "sessions", 2, "user"));
        assert_null(latch_reply_item_string(r, "sessions", 0, "created_at"));
        assert_int_equal(latch_reply_item_int(r, "sessions", 0, "created_at", &t), LATCH_OK);
        assert_int_equal(t, 10);
        assert_int_equal(latch_reply_item_int(r, "sessions", 0, "user", &t), LATCH_ERR_INVALID_ARGUMENT);
        assert_int_equal(latch_reply_bool(r, "flag", &b), LATCH_OK);
        assert_true(b);

        /* The results: no "id", no "ok". */
        char *all = latch_reply_json(r, NULL);
        assert_non_null(all);
        json_t *o = json_loads(all, 0, NULL);
        assert_non_null(o);
        assert_null(json_object_get(o, "id"));
        assert_null(json_object_get(o, "ok"));
        assert_int_equal(json_array_size(json_object_get(o, "sessions")), 2);
        json_decref(o);
        latch_secret_free(all);
        /* ... and the reply itself is untouched by that. */
        assert_int_equal(latch_reply_bool(r, "ok", &b), LATCH_OK);

        char *sessions = latch_reply_json(r, "sessions");
        assert_non_null(sessions);
        assert_int_equal(sessions[0], '[');
        free(sessions);
        assert_null(latch_reply_json(r, "missing"));

        latch_reply_free(r);
        latch_reply_free(NULL);
        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_error_mapping(void **state) {
        static const struct {
                const char *code;
                int err;
        } codes[] = {
                { "bad_request", LATCH_ERR_BAD_REQUEST },
                { "unknown_op", LATCH_ERR_UNKNOWN_OP },
                { "too_large", LATCH_ERR_TOO_LARGE },
                { "denied", LATCH_ERR_DENIED },
                { "invalid_session", LATCH_ERR_INVALID_SESSION },
                { "invalid_token", LATCH_ERR_INVALID_TOKEN },
                { "forbidden", LATCH_ERR_FORBIDDEN },
                { "unknown_service", LATCH_ERR_UNKNOWN_SERVICE },
                { "unavailable", LATCH_ERR_UNAVAILABLE },
                { "internal", LATCH_ERR_INTERNAL },
                { "rate_limited", LATCH_ERR_UNKNOWN }, /* from a newer daemon */
        };
        enum { N = sizeof(codes) / sizeof(codes[0]) };
        struct fake_step steps[N];
        char replies[N][160];

        for (size_t i = 0; i < N; i++) {
                snprintf(replies[i], sizeof(replies[i]),
                         "{\"ok\":false,\"error\":\"%s\",\"message\":\"message for %s\\u001b[31m\\u009b0m\"}", codes[i].code,
                         codes[i].code);
                steps[i] = (struct fake_step) { .reply = replies[i] };
        }
        struct fake_server *fs = fake_server_start(steps, N);
        latch_client *c = client_for(fs);

        for (size_t i = 0; i < N; i++) {
                char expected[160];
                latch_reply *r = NULL;

                assert_int_equal(latch_hello(c, &r), codes[i].err);
                assert_null(r);
                assert_int_equal(latch_last_error(c), codes[i].err);
                assert_string_equal(latch_last_error_code(c), codes[i].code);
                /* latchd's message, with the escape character and the 8-bit
                 * CSI (U+009B, which a UTF-8 terminal obeys too) defused. */
                snprintf(expected, sizeof(expected), "message for %s [31m  0m", codes[i].code);
                assert_string_equal(latch_last_message(c), expected);
                assert_int_equal(latch_error_from_code(codes[i].code), codes[i].err);
                if (codes[i].err != LATCH_ERR_UNKNOWN)
                        assert_string_equal(latch_error_name(codes[i].err), codes[i].code);
        }
        /* An error answer keeps the connection. */
        assert_int_equal(fake_server_connections(fs), 1);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_error_strings(void **state) {
        for (int e = 0; e < _LATCH_ERR_MAX; e++) {
                assert_non_null(latch_strerror(e));
                assert_non_null(latch_error_name(e));
                for (int f = 0; f < e; f++)
                        assert_string_not_equal(latch_error_name(e), latch_error_name(f));
        }
        assert_string_equal(latch_error_name(LATCH_OK), "ok");
        assert_string_equal(latch_error_name(LATCH_ERR_UNREACHABLE), "unreachable");
        assert_string_equal(latch_strerror(-1), "unknown error");
        assert_string_equal(latch_strerror(_LATCH_ERR_MAX), "unknown error");
        assert_int_equal(latch_error_from_code(NULL), LATCH_ERR_UNKNOWN);
        assert_int_equal(latch_error_from_code("ok"), LATCH_ERR_UNKNOWN);
        assert_int_equal(latch_error_from_code("timeout"), LATCH_ERR_UNKNOWN);
}

/* The connection drops after the request, before any answer. */
static void test_retry_idempotent(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;

        assert_int_equal(latch_hello(c, &r), LATCH_OK);
        assert_string_equal(latch_reply_string(r, "server"), "fake");
        assert_int_equal(fake_server_connections(fs), 2);
        assert_int_equal(fake_server_requests(fs), 2);
        assert_string_equal(fake_server_request(fs, 0), fake_server_request(fs, 1));

        latch_reply_free(r);
        latch_client_free(c);
        fake_server_stop(fs);
}

/* The connection drops in the middle of the answer. */
static void test_retry_partial_answer(void **state) {
        static const char partial[] = "\0\0\0\x40{\"ok\":tr";
        const struct fake_step steps[] = {
                { .raw = partial, .raw_len = sizeof(partial) - 1, .close = true },
                { .reply = "{\"ok\":true,\"user\":\"alice\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);
        latch_reply *r = NULL;

        assert_int_equal(latch_validate(c, "S", NULL, &r), LATCH_OK);
        assert_string_equal(latch_reply_string(r, "user"), "alice");
        assert_int_equal(fake_server_connections(fs), 2);

        latch_reply_free(r);
        latch_client_free(c);
        fake_server_stop(fs);
}

/* Retried once only. */
static void test_retry_once_only(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .close = true }, { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 3);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_stats(c, NULL), LATCH_ERR_DISCONNECTED);
        assert_int_equal(fake_server_connections(fs), 2);
        assert_int_equal(fake_server_requests(fs), 2);
        assert_non_null(strstr(latch_last_message(c), "lost"));
        assert_null(latch_last_error_code(c));

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_no_retry_login(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_login(c, "wiki", "alice", "secret-pw", NULL, false, NULL, NULL), LATCH_ERR_DISCONNECTED);
        assert_int_equal(fake_server_connections(fs), 1);
        assert_int_equal(fake_server_requests(fs), 1);
        assert_null(strstr(latch_last_message(c), "secret-pw"));

        /* The handle recovers on the next call. */
        assert_int_equal(latch_hello(c, NULL), LATCH_OK);
        assert_int_equal(fake_server_connections(fs), 2);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_no_retry_generic(void **state) {
        const struct fake_step steps[] = { { .close = true }, { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_call_json(c, "{\"op\":\"sessions.revoke\",\"user\":\"bob\"}", NULL),
                         LATCH_ERR_DISCONNECTED);
        assert_int_equal(fake_server_requests(fs), 1);
        assert_int_equal(fake_server_connections(fs), 1);

        latch_client_free(c);
        fake_server_stop(fs);
}

/* Every op against a connection that drops before the answer: exactly the
 * idempotent ones are sent again. */
static int call_op(latch_client *c, int op) {
        switch (op) {
        case 0: return latch_hello(c, NULL);
        case 1: return latch_validate(c, "S", NULL, NULL);
        case 2: return latch_verify(c, "T", NULL, NULL);
        case 3: return latch_jwks(c, NULL);
        case 4: return latch_stats(c, NULL);
        case 5: return latch_authenticate(c, "s", "u", "p", NULL, NULL);
        case 6: return latch_login(c, "s", "u", "p", NULL, true, NULL, NULL);
        case 7: return latch_logout(c, "S", NULL);
        case 8: return latch_token(c, "S", NULL, NULL);
        case 9: return latch_sessions_list(c, NULL, NULL, NULL);
        case 10: return latch_sessions_revoke(c, NULL, "u", NULL);
        case 11: return latch_keys_rotate(c, NULL);
        case 12: return latch_reload(c, NULL);
        case 13: return latch_call_json(c, "{\"op\":\"validate\",\"session\":\"S\"}", NULL);
        case 14: return latch_call_json(c, "{\"op\":\"reload\"}", NULL);
        case 15: return latch_passwd(c, "s", "u", NULL, NULL, NULL);
        default: fail(); return -1;
        }
}

static void test_retry_policy_all_ops(void **state) {
        static const bool idempotent[] = { true, true, true, true, true, false, false, false,
                                           false, false, false, false, false, true, false, false };
        const struct fake_step steps[] = { { .close = true }, { .reply = "{\"ok\":true}" } };

        for (int op = 0; op < (int) (sizeof(idempotent) / sizeof(idempotent[0])); op++) {
                struct fake_server *fs = fake_server_start(steps, 2);
                latch_client *c = client_for(fs);

                int r = call_op(c, op);
                if (idempotent[op]) {
                        assert_int_equal(r, LATCH_OK);
                        assert_int_equal(fake_server_connections(fs), 2);
                        assert_int_equal(fake_server_requests(fs), 2);
                } else {
                        assert_int_equal(r, LATCH_ERR_DISCONNECTED);
                        assert_int_equal(fake_server_connections(fs), 1);
                        assert_int_equal(fake_server_requests(fs), 1);
                }

                latch_client_free(c);
                fake_server_stop(fs);
        }
}

/* latchd closed a kept idle connection between calls: the next call
 * reconnects before sending, which is not a retry, so it is fine for login. */
static void test_stale_connection(void **state) {
        const struct fake_step steps[] = {
                { .reply = HELLO_OK, .close = true },
                { .reply = "{\"ok\":true,\"session\":\"s\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_hello(c, NULL), LATCH_OK);
        fake_server_wait(fs, 1, 1);
        assert_int_equal(latch_login(c, "wiki", "alice", "pw", NULL, false, NULL, NULL), LATCH_OK);
        assert_int_equal(fake_server_connections(fs), 2);
        assert_int_equal(fake_server_requests(fs), 2);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_timeout(void **state) {
        const struct fake_step steps[] = { { .hang = true }, { .reply = HELLO_OK } };
        struct fake_server *fs = fake_server_start(steps, 2);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_client_set_timeout(c, 200), LATCH_OK);
        assert_int_equal(latch_hello(c, NULL), LATCH_ERR_TIMEOUT);
        assert_non_null(strstr(latch_last_message(c), "timed out"));
        /* The late connection is dropped; the next call starts afresh. */
        assert_int_equal(latch_client_set_timeout(c, 0), LATCH_OK);
        assert_int_equal(latch_hello(c, NULL), LATCH_OK);
        assert_int_equal(fake_server_connections(fs), 2);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_oversized(void **state) {
        static const char huge_header[] = "\x00\x20\x00\x00"; /* 2 MiB */
        const struct fake_step steps[] = {
                { .raw = huge_header, .raw_len = 4 },
                { .reply = "{\"ok\":true,\"pad\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}" },
                { .reply = HELLO_OK },
        };
        struct fake_server *fs = fake_server_start(steps, 3);
        latch_client *c = client_for(fs);

        assert_int_equal(latch_hello(c, NULL), LATCH_ERR_PROTOCOL);
        assert_non_null(strstr(latch_last_message(c), "exceeds"));

        assert_int_equal(latch_client_set_max_response(c, 64), LATCH_OK);
        assert_int_equal(latch_hello(c, NULL), LATCH_ERR_PROTOCOL);
        assert_int_equal(latch_hello(c, NULL), LATCH_OK); /* 41 bytes fit */
        assert_int_equal(fake_server_connections(fs), 3);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_garbage(void **state) {
        static const char not_json[] = "\0\0\0\x05hello";
        static const char empty[] = "\0\0\0\0";
        const struct fake_step steps[] = {
                { .raw = not_json, .raw_len = sizeof(not_json) - 1 },
                { .raw = empty, .raw_len = 4 },
                { .reply = "[1,2]" },
                { .reply = "{\"version\":1}" },                     /* no "ok" */
                { .reply = "{\"ok\":\"yes\"}" },                    /* not a boolean */
                { .reply = "{\"ok\":false,\"message\":\"x\"}" },   /* no error code */
                { .reply = "{\"ok\":true,\"ok\":true}" },           /* duplicate member */
                { .reply = HELLO_OK },
        };
        struct fake_server *fs = fake_server_start(steps, 8);
        latch_client *c = client_for(fs);

        for (int i = 0; i < 7; i++) {
                assert_int_equal(latch_hello(c, NULL), LATCH_ERR_PROTOCOL);
                assert_null(latch_last_error_code(c));
        }
        assert_int_equal(latch_hello(c, NULL), LATCH_OK);

        latch_client_free(c);
        fake_server_stop(fs);
}

static void test_unreachable(void **state) {
        latch_client *c = NULL;

        assert_int_equal(latch_client_new("/nonexistent/latch-test.sock", &c), LATCH_OK);
        assert_int_equal(latch_hello(c, NULL), LATCH_ERR_UNREACHABLE);
        assert_non_null(strstr(latch_last_message(c), "/nonexistent/latch-test.sock"));
        assert_int_equal(latch_client_connect(c), LATCH_ERR_UNREACHABLE);
        latch_client_free(c);
        latch_client_free(NULL);
}

static void test_socket_path_choice(void **state) {
        latch_client *c = NULL;

        assert_int_equal(setenv("LATCH_SOCKET", "/tmp/from-env.sock", 1), 0);
        assert_int_equal(latch_client_new(NULL, &c), LATCH_OK);
        assert_string_equal(latch_client_socket_path(c), "/tmp/from-env.sock");
        latch_client_free(c);

        assert_int_equal(latch_client_new("/tmp/explicit.sock", &c), LATCH_OK);
        assert_string_equal(latch_client_socket_path(c), "/tmp/explicit.sock");
        latch_client_free(c);

        assert_int_equal(unsetenv("LATCH_SOCKET"), 0);
        assert_int_equal(latch_client_new(NULL, &c), LATCH_OK);
        assert_string_equal(latch_client_socket_path(c), LATCH_SOCKET_PATH);
        latch_client_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hello_and_reuse),
                cmocka_unit_test(test_split_response),
                cmocka_unit_test(test_login_request_fields),
                cmocka_unit_test(test_typed_requests),
                cmocka_unit_test(test_plugin_request),
                cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_generic_call),
                cmocka_unit_test(test_reply_getters),
                cmocka_unit_test(test_error_mapping),
                cmocka_unit_test(test_error_strings),
                cmocka_unit_test(test_retry_idempotent),
                cmocka_unit_test(test_retry_partial_answer),
                cmocka_unit_test(test_retry_once_only),
                cmocka_unit_test(test_no_retry_login),
                cmocka_unit_test(test_no_retry_generic),
                cmocka_unit_test(test_retry_policy_all_ops),
                cmocka_unit_test(test_stale_connection),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_unreachable),
                cmocka_unit_test(test_socket_path_choice),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
