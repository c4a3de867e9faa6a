/* SPDX-License-Identifier: MIT */
/*
 * latchctl as a subprocess against the fake daemon: exit codes, --json
 * output, secrets from stdin, usage errors, offline token verification and
 * the user database commands. Run with latchctl's path.
 */

#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-server.h"
#include "jwt.h"

extern char **environ;

static const char *latchctl_path;
static const char *fail_dir_fsync_path; /* NULL: not built (a sanitized build) */
static char tmpdir[] = "/tmp/latchctl-test-XXXXXX";

struct run {
        int status;   /* exit code */
        char out[65536];
        char err[8192];
};

static void slurp(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, buf, size - 1);
        assert_true(n >= 0);
        buf[n] = '\0';
        close(fd);
}

/* Runs latchctl with `args` (NULL-terminated) and `len` bytes of `input`
 * (which may hold NUL bytes) on stdin. */
static void run_bytes(struct run *r, const char *input, size_t len, const char *const *args) {
        char in[256], out[256], err[256];
        const char *argv[32] = { latchctl_path };
        size_t n = 1;

        for (const char *const *a = args; *a; a++)
                argv[n++] = *a;
        argv[n] = NULL;

        snprintf(in, sizeof(in), "%s/stdin", tmpdir);
        snprintf(out, sizeof(out), "%s/stdout", tmpdir);
        snprintf(err, sizeof(err), "%s/stderr", tmpdir);
        FILE *f = fopen(in, "we");
        assert_non_null(f);
        if (input)
                assert_int_equal(fwrite(input, 1, len, f), len);
        fclose(f);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid_t pid;
        assert_int_equal(posix_spawn(&pid, latchctl_path, &fa, NULL, (char *const *) argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);

        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        r->status = WEXITSTATUS(status);
        slurp(out, r->out, sizeof(r->out));
        slurp(err, r->err, sizeof(r->err));
}

/* Runs latchctl with `input` (a string, or NULL for nothing) on stdin. */
static void run(struct run *r, const char *input, const char *const *args) {
        run_bytes(r, input, input ? strlen(input) : 0, args);
}

#define RUN(r, input, ...) run((r), (input), (const char *const[]) { __VA_ARGS__, NULL })
/* `input` a string literal, with its NUL bytes but not the final one */
#define RUN_BYTES(r, input, ...)                                                   \
        run_bytes((r), (input), sizeof(input) - 1, (const char *const[]) { __VA_ARGS__, NULL })

/* stdout must be exactly one JSON object (and a newline). */
static json_t *one_object(const struct run *r) {
        json_error_t e;
        json_t *o = json_loads(r->out, 0, &e);
        if (!json_is_object(o))
                fail_msg("not one JSON object: '%s' (%s)", r->out, e.text);
        return o;
}

static void check_json_error(const struct run *r, int status, const char *code) {
        assert_int_equal(r->status, status);
        json_t *o = one_object(r);
        assert_string_equal(json_string_value(json_object_get(o, "error")), code);
        assert_true(json_is_string(json_object_get(o, "message")));
        json_decref(o);
}

static void test_hello(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"id\":null,\"ok\":true,\"version\":1,\"server\":\"fake 1.0\"}" },
                { .reply = "{\"ok\":true,\"version\":1,\"server\":\"fake 1.0\"}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        struct run *r = malloc(sizeof(*r));

        RUN(r, NULL, "--socket", fake_server_path(fs), "--json", "hello");
        assert_int_equal(r->status, 0);
        json_t *o = one_object(r);
        /* The daemon's results: no "ok", no "id". */
        assert_int_equal(json_object_size(o), 2);
        assert_int_equal(json_integer_value(json_object_get(o, "version")), 1);
        assert_string_equal(json_string_value(json_object_get(o, "server")), "fake 1.0");
        json_decref(o);

        /* Options may follow the command; human output is key: value. */
        RUN(r, NULL, "hello", "--socket", fake_server_path(fs));
        assert_int_equal(r->status, 0);
        assert_string_equal(r->out, "version: 1\nserver: fake 1.0\n");

        free(r);
        fake_server_stop(fs);
}

static void test_login_password_from_stdin(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":false,\"error\":\"denied\",\"message\":\"authentication failed\"}" },
                { .reply = "{\"ok\":true,\"session\":\"S3cr3t\",\"handle\":\"h\",\"expires_at\":2000000000}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        struct run *r = malloc(sizeof(*r));

        RUN(r, "hunter2\nextra line\n", "--socket", fake_server_path(fs), "--json", "login", "wiki", "alice");
        check_json_error(r, 1, "denied");
        json_t *req = json_loads(fake_server_request(fs, 0), 0, NULL);
        assert_string_equal(json_string_value(json_object_get(req, "password")), "hunter2");
        assert_string_equal(json_string_value(json_object_get(req, "service")), "wiki");
        assert_string_equal(json_string_value(json_object_get(req, "user")), "alice");
        assert_null(json_object_get(req, "token"));
        json_decref(req);

        /* No newline at the end is fine too. */
        RUN(r, "pw", "--socket", fake_server_path(fs), "login", "wiki", "alice", "--token", "--audience", "app");
        assert_int_equal(r->status, 0);
        assert_non_null(strstr(r->out, "session: S3cr3t\n"));
        assert_non_null(strstr(r->out, "expires_at: 2000000000 (2033-05-18T03:33:20Z)\n"));
        req = json_loads(fake_server_request(fs, 1), 0, NULL);
        assert_string_equal(json_string_value(json_object_get(req, "password")), "pw");
        assert_true(json_is_true(json_object_get(req, "token")));
        assert_string_equal(json_string_value(json_object_get(req, "audience")), "app");
        json_decref(req);

        free(r);
        fake_server_stop(fs);
}

static void test_session_from_stdin(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":false,\"error\":\"invalid_session\",\"message\":\"no such session\"}" },
                { .reply = "{\"ok\":true}" },
        };
        struct fake_server *fs = fake_server_start(steps, 2);
        struct run *r = malloc(sizeof(*r));

        RUN(r, "SESSION-from-stdin\n", "--socket", fake_server_path(fs), "--json", "validate", "-");
        check_json_error(r, 1, "invalid_session");
        assert_string_equal(fake_server_request(fs, 0), "{\"op\":\"validate\",\"session\":\"SESSION-from-stdin\"}");

        RUN(r, NULL, "--socket", fake_server_path(fs), "--json", "logout", "abc");
        assert_int_equal(r->status, 0);
        assert_string_equal(r->out, "{}\n");
        assert_string_equal(fake_server_request(fs, 1), "{\"op\":\"logout\",\"session\":\"abc\"}");

        free(r);
        fake_server_stop(fs);
}

static void test_exit_codes(void **state) {
        const struct fake_step steps[] = {
                { .reply = "{\"ok\":false,\"error\":\"forbidden\",\"message\":\"admin only\"}" },
                { .reply = "{\"ok\":false,\"error\":\"unknown_service\",\"message\":\"no such service\"}" },
                { .reply = "{\"ok\":false,\"error\":\"invalid_token\",\"message\":\"bad token\"}" },
                { .reply = "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"busy\"}" },
                { .reply = "{\"ok\":false,\"error\":\"internal\",\"message\":\"oops\"}" },
                { .reply = "{\"ok\":false,\"error\":\"brand_new\",\"message\":\"from the future\"}" },
                { .reply = "{\"ok\":true,\"revoked\":3}" },
        };
        struct fake_server *fs = fake_server_start(steps, 7);
        struct run *r = malloc(sizeof(*r));
        const char *sock = fake_server_path(fs);

        RUN(r, NULL, "--socket", sock, "--json", "stats");
        check_json_error(r, 1, "forbidden");
        RUN(r, "pw\n", "--socket", sock, "--json", "authenticate", "nope", "alice");
        check_json_error(r, 1, "unknown_service");
        RUN(r, NULL, "--socket", sock, "--json", "token", "verify", "a.b.c");
        check_json_error(r, 1, "invalid_token");
        RUN(r, NULL, "--socket", sock, "--json", "keys", "rotate");
        check_json_error(r, 3, "unavailable");
        RUN(r, NULL, "--socket", sock, "--json", "reload");
        check_json_error(r, 3, "internal");
        RUN(r, NULL, "--socket", sock, "--json", "jwks");
        check_json_error(r, 3, "brand_new");
        RUN(r, NULL, "--socket", sock, "--json", "sessions", "revoke", "--user", "bob");
        assert_int_equal(r->status, 0);
        assert_string_equal(r->out, "{\"revoked\":3}\n");
        assert_string_equal(fake_server_request(fs, 6), "{\"op\":\"sessions.revoke\",\"user\":\"bob\"}");

        /* Human errors go to stderr, nothing to stdout. */
        RUN(r, NULL, "--socket", "/nonexistent/latchd.sock", "hello");
        assert_int_equal(r->status, 3);
        assert_string_equal(r->out, "");
        assert_non_null(strstr(r->err, "/nonexistent/latchd.sock"));
        RUN(r, NULL, "--socket", "/nonexistent/latchd.sock", "--json", "hello");
        check_json_error(r, 3, "unreachable");

        free(r);
        fake_server_stop(fs);
}

static void test_socket_from_env(void **state) {
        const struct fake_step steps[] = { { .reply = "{\"ok\":true,\"version\":1,\"server\":\"env\"}" } };
        struct fake_server *fs = fake_server_start(steps, 1);
        struct run *r = malloc(sizeof(*r));

        assert_int_equal(setenv("LATCH_SOCKET", fake_server_path(fs), 1), 0);
        RUN(r, NULL, "--json", "hello");
        assert_int_equal(unsetenv("LATCH_SOCKET"), 0);
        assert_int_equal(r->status, 0);
        assert_non_null(strstr(r->out, "\"env\""));

        free(r);
        fake_server_stop(fs);
}

static void test_sessions_table(void **state) {
        static const char *list = "{\"ok\":true,\"sessions\":[{\"handle\":\"hAAA\",\"user\":\"alice\",\"service\":\"wiki\","
                                  "\"created_at\":0,\"last_seen_at\":60,\"expires_at\":120,\"idle_expires_at\":90}]}";
        const struct fake_step steps[] = { { .reply = list }, { .reply = list } };
        struct fake_server *fs = fake_server_start(steps, 2);
        struct run *r = malloc(sizeof(*r));

        RUN(r, NULL, "--socket", fake_server_path(fs), "sessions", "list", "--user", "alice");
        assert_int_equal(r->status, 0);
        assert_string_equal(r->out,
                            "HANDLE  USER   SERVICE  CREATED               LAST SEEN             EXPIRES               IDLE EXPIRES\n"
                            "hAAA    alice  wiki     1970-01-01T00:00:00Z  1970-01-01T00:01:00Z  1970-01-01T00:02:00Z  1970-01-01T00:01:30Z\n"
                            "\n1 session\n");
        assert_string_equal(fake_server_request(fs, 0), "{\"op\":\"sessions.list\",\"user\":\"alice\"}");

        RUN(r, NULL, "--socket", fake_server_path(fs), "--json", "sessions", "list");
        assert_int_equal(r->status, 0);
        json_t *o = one_object(r);
        assert_int_equal(json_array_size(json_object_get(o, "sessions")), 1);
        json_decref(o);

        free(r);
        fake_server_stop(fs);
}

static void test_usage_errors(void **state) {
        struct run *r = malloc(sizeof(*r));
        /* Never reached: usage is checked before connecting. */
        const char *sock = "/nonexistent/latchd.sock";

        RUN(r, NULL, "--socket", sock);
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "frobnicate");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "login", "wiki");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "hello", "extra");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "hello", "--token");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "--bogus", "hello");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "token", "mint", "x");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "sessions", "revoke");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "sessions", "revoke", "h1", "--user", "bob");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "hello", "--socket");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "--json", "frobnicate");
        check_json_error(r, 2, "usage");
        RUN(r, NULL, "--json", "--socket", sock, "validate");
        check_json_error(r, 2, "usage");
        /* The metrics formats: one at a time, only for stats, never JSON. */
        RUN(r, NULL, "--socket", sock, "stats", "--openmetrics", "--prometheus");
        assert_int_equal(r->status, 2);
        assert_non_null(strstr(r->err, "exclude each other"));
        RUN(r, NULL, "--json", "--socket", sock, "stats", "--openmetrics");
        check_json_error(r, 2, "usage");
        RUN(r, NULL, "--socket", sock, "status", "--prometheus");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "hello", "--openmetrics");
        assert_int_equal(r->status, 2);
        RUN(r, NULL, "--socket", sock, "status", "extra");
        assert_int_equal(r->status, 2);

        free(r);
}

static void test_unreadable_input(void **state) {
        const struct fake_step steps[] = { { .reply = "{\"ok\":true}" } };
        struct fake_server *fs = fake_server_start(steps, 1);
        struct run *r = malloc(sizeof(*r));

        /* Empty stdin: no password, no session. Nothing is sent. */
        RUN(r, "", "--socket", fake_server_path(fs), "--json", "login", "wiki", "alice");
        check_json_error(r, 2, "usage");
        RUN(r, "", "--socket", fake_server_path(fs), "validate", "-");
        assert_int_equal(r->status, 2);
        assert_int_equal(fake_server_requests(fs), 0);

        free(r);
        fake_server_stop(fs);
}

/* A NUL byte in a line of stdin would cut the string there: a password
 * stored as its first bytes, an answer sent short. It is a usage error
 * (exit 2) that does not show the line, and nothing is written or sent. */
static void assert_no_secret(const struct run *r) {
        static const char *const bits[] = { "abc", "longsecretpart", "ab", "cd" };

        for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
                assert_null(strstr(r->out, bits[i]));
                assert_null(strstr(r->err, bits[i]));
        }
}

static void test_nul_in_input(void **state) {
        struct run *r = malloc(sizeof(*r));
        char db[256], content[4096], before[4096];
        struct stat st;

        snprintf(db, sizeof(db), "%s/users-nul", tmpdir);
        RUN_BYTES(r, "abc\0longsecretpart\n", "user", "add", db, "bob");
        assert_int_equal(r->status, 2);
        assert_non_null(strstr(r->err, "NUL"));
        assert_no_secret(r);
        assert_int_equal(stat(db, &st), -1);

        RUN(r, "good pw\n", "user", "add", db, "bob");
        assert_int_equal(r->status, 0);
        slurp(db, before, sizeof(before));
        RUN_BYTES(r, "abc\0longsecretpart\n", "--json", "user", "passwd", db, "bob");
        check_json_error(r, 2, "usage");
        assert_non_null(strstr(r->out, "NUL"));
        assert_no_secret(r);
        RUN_BYTES(r, "\0\n", "user", "passwd", db, "bob");
        assert_int_equal(r->status, 2);
        slurp(db, content, sizeof(content));
        assert_string_equal(content, before);
        unlink(db);

        /* respond: the second answer has a NUL; nothing is sent */
        const struct fake_step none[] = { { .reply = "{\"ok\":true}" } };
        struct fake_server *fs = fake_server_start(none, 1);
        RUN_BYTES(r, "first\nab\0cd\n", "--socket", fake_server_path(fs), "respond", "C");
        assert_int_equal(r->status, 2);
        assert_non_null(strstr(r->err, "NUL"));
        assert_no_secret(r);
        assert_int_equal(fake_server_requests(fs), 0);
        fake_server_stop(fs);

        /* passwd: an answer to the stack's prompt has one; no respond */
        const struct fake_step challenge[] = {
                { .reply = "{\"ok\":false,\"error\":\"challenge\",\"message\":\"m\","
                           "\"conversation\":\"C\",\"prompts\":[{\"style\":\"secret\","
                           "\"message\":\"Current password:\"}],\"expires_at\":1}" },
                { .reply = "{\"ok\":true}" },
        };
        fs = fake_server_start(challenge, 2);
        RUN_BYTES(r, "ab\0cd\n", "--socket", fake_server_path(fs), "passwd", "wiki", "bob");
        assert_int_equal(r->status, 2);
        assert_non_null(strstr(r->err, "NUL"));
        assert_int_equal(fake_server_requests(fs), 1);
        assert_no_secret(r);
        fake_server_stop(fs);

        free(r);
}

/* The offset latchctl leaves in a stdin it shares with the caller, as a
 * terminal's line queue is shared with the shell that runs it next. */
static off_t stdin_left_at(const char *input, size_t len, const char *const *args) {
        char in[256];
        const char *argv[32] = { latchctl_path };
        size_t n = 1;

        for (const char *const *a = args; *a; a++)
                argv[n++] = *a;
        argv[n] = NULL;
        snprintf(in, sizeof(in), "%s/stdin-shared", tmpdir);
        FILE *f = fopen(in, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(input, 1, len, f), len);
        fclose(f);
        int fd = open(in, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int status;
        assert_int_equal(posix_spawn(&pid, latchctl_path, &fa, NULL, (char *const *) argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
        off_t at = lseek(fd, 0, SEEK_CUR);
        close(fd);
        unlink(in);
        return at;
}

/* A refused line (a NUL, too long) is read to its end: what follows the
 * NUL on a terminal (the rest of a password typed without echo) is not
 * left for the shell to run as a command. Nothing after the line is read. */
static void test_refused_line_read_to_its_end(void **state) {
        char db[256], longline[8192 + 16];

        snprintf(db, sizeof(db), "%s/users-rest", tmpdir);
        static const char nul[] = "abc\0rest-of-the-secret\nls -l\n";
        assert_int_equal(stdin_left_at(nul, sizeof(nul) - 1, (const char *const[]){ "user", "add", db, "bob", NULL }),
                         (off_t) strlen("abc") + 1 + strlen("rest-of-the-secret") + 1);
        memset(longline, 'x', sizeof(longline));
        longline[sizeof(longline) - 8] = '\n';
        memcpy(longline + sizeof(longline) - 7, "ls -l\n", 7);
        assert_int_equal(stdin_left_at(longline, sizeof(longline), (const char *const[]){ "user", "add", db, "bob", NULL }),
                         (off_t) sizeof(longline) - 7);
        unlink(db);
}

static void test_help_version(void **state) {
        struct run *r = malloc(sizeof(*r));

        RUN(r, NULL, "--help");
        assert_int_equal(r->status, 0);
        assert_non_null(strstr(r->out, "Usage: latchctl"));
        assert_non_null(strstr(r->out, "sessions revoke"));
        RUN(r, NULL, "--version");
        assert_int_equal(r->status, 0);
        assert_int_equal(strncmp(r->out, "latchctl ", 9), 0);

        free(r);
}

static void test_token_verify_offline(void **state) {
        struct run *r = malloc(sizeof(*r));
        uint8_t pk[32], sk[64];
        char kid[JWT_KID_LEN + 1], x[64], jwks_path[256], token_arg[JWT_MAX_TOKEN];
        char *token = NULL;

        assert_true(sodium_init() >= 0);
        crypto_sign_keypair(pk, sk);
        jwt_thumbprint(pk, kid);
        assert_int_equal(b64url_encode(pk, 32, x, sizeof(x)), 0);
        snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", tmpdir);
        FILE *f = fopen(jwks_path, "we");
        assert_non_null(f);
        fprintf(f, "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"EdDSA\"}]}",
                x, kid);
        fclose(f);

        json_int_t now = (json_int_t) time(NULL);
        json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "iss", "latch", "sub", "alice", "aud", "wiki", "iat",
                                   now, "nbf", now, "exp", now + 300);
        assert_int_equal(jwt_sign(sk, kid, "EdDSA", claims, &token), 0);
        json_decref(claims);
        snprintf(token_arg, sizeof(token_arg), "%s", token);

        RUN(r, NULL, "--json", "token", "verify", token_arg, "--jwks", jwks_path, "--audience", "wiki", "--issuer", "latch");
        assert_int_equal(r->status, 0);
        json_t *o = one_object(r);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "claims"), "sub")), "alice");
        json_decref(o);

        RUN(r, NULL, "token", "verify", token_arg, "--jwks", jwks_path);
        assert_int_equal(r->status, 0);
        assert_non_null(strstr(r->out, "claims.sub: alice\n"));

        /* The token from stdin. */
        char input[JWT_MAX_TOKEN + 2];
        snprintf(input, sizeof(input), "%s\n", token);
        RUN(r, input, "--json", "token", "verify", "-", "--jwks", jwks_path);
        assert_int_equal(r->status, 0);

        RUN(r, NULL, "--json", "token", "verify", token_arg, "--jwks", jwks_path, "--audience", "other");
        check_json_error(r, 1, "invalid_token");
        assert_non_null(strstr(r->out, jwt_strerror(JWT_ERR_AUDIENCE)));

        /* A flipped signature character. */
        size_t n = strlen(token_arg);
        token_arg[n - 2] = token_arg[n - 2] == 'A' ? 'B' : 'A';
        RUN(r, NULL, "--json", "token", "verify", token_arg, "--jwks", jwks_path);
        check_json_error(r, 1, "invalid_token");

        RUN(r, NULL, "--json", "token", "verify", token_arg, "--jwks", "/nonexistent/jwks.json");
        check_json_error(r, 2, "io");

        free(token);
        unlink(jwks_path);
        free(r);
}

static void test_user_db(void **state) {
        struct run *r = malloc(sizeof(*r));
        char db[256], content[4096];

        snprintf(db, sizeof(db), "%s/users", tmpdir);

        RUN(r, "correct horse\n", "--json", "user", "add", db, "alice", "--groups", "admins,staff");
        assert_int_equal(r->status, 0);
        json_t *o = one_object(r);
        assert_string_equal(json_string_value(json_object_get(o, "user")), "alice");
        json_decref(o);
        slurp(db, content, sizeof(content));
        assert_int_equal(strncmp(content, "alice:$argon2id$", 16), 0);
        assert_non_null(strstr(content, ":admins,staff\n"));
        assert_null(strstr(content, "correct horse"));
        struct stat st;
        assert_int_equal(stat(db, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        RUN(r, "x\n", "--json", "user", "add", db, "alice");
        check_json_error(r, 1, "exists");
        RUN(r, "new pw\n", "user", "passwd", db, "alice");
        assert_int_equal(r->status, 0);
        RUN(r, "x\n", "--json", "user", "passwd", db, "nobody");
        check_json_error(r, 1, "not_found");
        RUN(r, "x\n", "--json", "user", "add", db, "bad:name");
        check_json_error(r, 2, "usage");
        RUN(r, NULL, "user", "del", db, "alice");
        assert_int_equal(r->status, 0);
        RUN(r, NULL, "user", "del", db, "alice");
        assert_int_equal(r->status, 1);
        slurp(db, content, sizeof(content));
        assert_null(strstr(content, "alice"));

        /* --expires: written as the 4th field, groups kept */
        RUN(r, "pw one\n", "user", "add", db, "bob", "--expires", "now");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_int_equal(strncmp(content, "bob:$argon2id$", 14), 0);
        assert_non_null(strstr(content, "::0\n"));
        RUN(r, "pw two\n", "user", "passwd", db, "bob", "--groups", "g", "--expires", "2027-01-31");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_non_null(strstr(content, ":g:1801353600\n"));
        /* passwd without --expires: a new password is not expired */
        RUN(r, "pw three\n", "user", "passwd", db, "bob");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_non_null(strstr(content, ":g\n"));
        assert_null(strstr(content, ":g:"));
        /* expire: only the expiry (default now), the hash stays */
        char before[4096];
        memcpy(before, content, sizeof before);
        RUN(r, NULL, "--json", "user", "expire", db, "bob");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_int_equal(strlen(content), strlen(before) + 2);
        assert_int_equal(strncmp(content, before, strlen(before) - 1), 0);
        assert_non_null(strstr(content, ":g:0\n"));
        RUN(r, NULL, "user", "expire", db, "bob", "--expires", "1700000000");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_non_null(strstr(content, ":g:1700000000\n"));
        RUN(r, NULL, "user", "expire", db, "bob", "--expires", "never");
        assert_int_equal(r->status, 0);
        slurp(db, content, sizeof(content));
        assert_string_equal(content, before);
        RUN(r, NULL, "--json", "user", "expire", db, "nobody");
        check_json_error(r, 1, "not_found");
        /* bad values and misplaced options are usage errors; nothing changes */
        static const char *const bad[] = { "tomorrow", "2027-02-30", "-1", "" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                RUN(r, NULL, "--json", "user", "expire", db, "bob", "--expires", bad[i]);
                check_json_error(r, 2, "usage");
        }
        RUN(r, NULL, "--json", "user", "del", db, "bob", "--expires", "now");
        check_json_error(r, 2, "usage");
        slurp(db, content, sizeof(content));
        assert_string_equal(content, before);

        unlink(db);
        free(r);
}

/* The folder's sync fails after the rename (fail-dir-fsync.so preloaded):
 * the new password is in force, so latchctl says it was done and exits 0,
 * warning on stderr that it may not survive a crash. */
static void test_user_unsynced(void **state) {
        struct run *r = malloc(sizeof(*r));
        char db[256], content[4096], before[4096];

        if (!fail_dir_fsync_path) {
                free(r);
                skip();
        }
        snprintf(db, sizeof(db), "%s/users", tmpdir);
        RUN(r, "first pw\n", "user", "add", db, "carol");
        assert_int_equal(r->status, 0);
        slurp(db, before, sizeof(before));

        assert_int_equal(setenv("LD_PRELOAD", fail_dir_fsync_path, 1), 0);
        RUN(r, "second pw\n", "user", "passwd", db, "carol");
        int status = r->status;
        char out[sizeof r->out], err[sizeof r->err];
        memcpy(out, r->out, sizeof out);
        memcpy(err, r->err, sizeof err);
        RUN(r, "third pw\n", "--json", "user", "passwd", db, "carol");
        assert_int_equal(unsetenv("LD_PRELOAD"), 0);

        assert_int_equal(status, 0);
        assert_non_null(strstr(out, "user carol updated"));
        assert_non_null(strstr(err, "warning"));
        assert_non_null(strstr(err, "could not be synced"));
        assert_null(strstr(err, "second pw"));
        /* --json: stdout stays one object, the warning goes to stderr */
        assert_int_equal(r->status, 0);
        json_t *o = one_object(r);
        assert_string_equal(json_string_value(json_object_get(o, "user")), "carol");
        json_decref(o);
        assert_non_null(strstr(r->err, "could not be synced"));

        /* and the change took effect */
        slurp(db, content, sizeof(content));
        assert_int_equal(strncmp(content, "carol:$argon2id$", 16), 0);
        assert_string_not_equal(content, before);

        unlink(db);
        free(r);
}

int main(int argc, char *argv[]) {
        if (argc != 2 && argc != 3) {
                fprintf(stderr, "usage: %s LATCHCTL [FAIL-DIR-FSYNC.so]\n", argv[0]);
                return 2;
        }
        latchctl_path = argv[1];
        fail_dir_fsync_path = argc == 3 ? argv[2] : NULL;
        unsetenv("LATCH_SOCKET");
        if (!mkdtemp(tmpdir))
                return 1;

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hello),
                cmocka_unit_test(test_login_password_from_stdin),
                cmocka_unit_test(test_session_from_stdin),
                cmocka_unit_test(test_exit_codes),
                cmocka_unit_test(test_socket_from_env),
                cmocka_unit_test(test_sessions_table),
                cmocka_unit_test(test_usage_errors),
                cmocka_unit_test(test_unreadable_input),
                cmocka_unit_test(test_nul_in_input),
                cmocka_unit_test(test_refused_line_read_to_its_end),
                cmocka_unit_test(test_help_version),
                cmocka_unit_test(test_token_verify_offline),
                cmocka_unit_test(test_user_db),
                cmocka_unit_test(test_user_unsynced),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);

        char path[256];
        snprintf(path, sizeof(path), "%s/stdin", tmpdir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/stdout", tmpdir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/stderr", tmpdir);
        unlink(path);
        rmdir(tmpdir);
        return r;
}
