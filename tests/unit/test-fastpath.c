/* SPDX-License-Identifier: MIT */
/*
 * The fast path (daemon/fastpath.c) against the general path (decode.c,
 * Jansson, dispatch.c, the op), byte for byte.
 *
 * Every request frame of the fuzz corpus (argv[1]) and several thousand
 * generated ones (every op/id/session/service shape the scanner takes or
 * must refuse, in every member order, with and without white space) go to
 * the fast path; each one it answers goes to the general path too, on the
 * same connection and store, and the two replies must be the same bytes
 * and count the same in the stats. Each one it declines must leave the
 * connection and the stats untouched. The store holds sessions whose
 * replies need escaping, UTF-8, invalid UTF-8, claims stored canonical and
 * claims stored the old way (re-parsed), expired ones, and one of a
 * service this peer may not use.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "conf.h"
#include "conn.h"
#include "daemon-state.h"
#include "decode.h"
#include "dispatch.h"
#include "fastpath.h"
#include "frame.h"
#include "jwt.h"
#include "keys.h"
#include "request.h"
#include "session.h"
#include "store.h"
#include "tokens.h"

static const char *corpus_dir;
static char tmpdir[64];
static struct daemon d;
static struct conn *conn;

#define N_SESSIONS 12
static char ids[N_SESSIONS + 1][SESSION_ID_LEN + 1]; /* and one for test_verify */

static unsigned answered, declined;

struct capture {
        uint8_t bytes[65536];
        size_t n;
        struct stats stats;
};

static void stats_delta(const struct stats *before, struct stats *ret) {
        for (size_t i = 0; i < STATS_MAX_OPS; i++)
                ret->requests[i] = d.stats.requests[i] - before->requests[i];
        for (size_t i = 0; i < _STAT_ERR_MAX; i++)
                ret->errors[i] = d.stats.errors[i] - before->errors[i];
        ret->validate_latency.count = d.stats.validate_latency.count - before->validate_latency.count;
}

static void take_output(struct capture *cap) {
        size_t n = conn->out_len - conn->out_off;
        assert_true(n <= sizeof cap->bytes);
        memcpy(cap->bytes, conn->out + conn->out_off, n);
        cap->n = n;
        conn->out_len = conn->out_off = 0;
}

/* 1 when the fast path answered (cap holds its reply), 0 when it declined. */
static int run_fast(const char *buf, size_t n, struct capture *cap) {
        struct stats before = d.stats;

        conn->out_len = conn->out_off = 0;
        int r = fastpath_request(conn, buf, n);
        assert_true(r == 0 || r == 1);
        assert_false(conn->closing);
        if (r == 0) {
                /* Declined: nothing written, nothing counted. */
                assert_int_equal(conn->out_len, 0);
                assert_memory_equal(&before, &d.stats, sizeof before);
                return 0;
        }
        take_output(cap);
        stats_delta(&before, &cap->stats);
        return 1;
}

static void run_general(const char *buf, size_t n, struct capture *cap) {
        struct stats before = d.stats;
        struct decoded in;
        char msg[256];

        conn->out_len = conn->out_off = 0;
        int r = decode_request(buf, n, &in, msg, sizeof msg);
        if (r < 0)
                fail_msg("the fast path answered a request the general path cannot decode (%s): %.*s", msg,
                         (int) n, buf);
        struct request *req = request_new(conn);
        assert_non_null(req);
        req->in = in;
        /* As inside conn_process(): the reply stays in the buffer. */
        conn->processing = true;
        dispatch_request(req);
        conn->processing = false;
        assert_null(conn->head);
        take_output(cap);
        stats_delta(&before, &cap->stats);
}

/* A token differs between two issues only by its jti (random) and so its
 * signature: the reply is compared with the token replaced by its header
 * and its claims' text with the jti blanked, once its signature checks. */
static void normalise_token(struct capture *cap) {
        static const char mark[] = "\"token\":\"";
        uint8_t *t = memmem(cap->bytes, cap->n, mark, strlen(mark));
        if (!t)
                return;
        t += strlen(mark);
        uint8_t *end = memchr(t, '"', cap->bytes + cap->n - t);
        assert_non_null(end);
        size_t len = (size_t) (end - t);
        char token[8192], out[8192];
        assert_true(len < sizeof token);
        memcpy(token, t, len);
        token[len] = '\0';

        struct jwt_verify_options opts = { .now = time(NULL), .leeway = 60, .issuer = d.config->issuer };
        json_t *claims = NULL;
        if (keyring_verify(d.keys, token, len, &opts, &claims) != JWT_OK)
                fail_msg("a token that does not verify: %s", token);
        json_decref(claims);

        char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        assert_non_null(dot2);
        uint8_t payload[8192];
        size_t plen = 0;
        assert_int_equal(sodium_base642bin(payload, sizeof payload - 1, dot1 + 1, (size_t) (dot2 - dot1 - 1), NULL,
                                           &plen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                         0);
        payload[plen] = '\0';
        char *jti = strstr((char *) payload, "\"jti\":\"");
        assert_non_null(jti);
        for (char *p = jti + 7; *p && *p != '"'; p++)
                *p = '*';
        int n = snprintf(out, sizeof out, "%.*s|%s", (int) (dot1 - token), token, (char *) payload);
        assert_true(n > 0 && (size_t) n < sizeof out);
        /* Splice: head, normalised token, tail. */
        size_t head = (size_t) (t - cap->bytes), tail = cap->n - (size_t) (end - cap->bytes);
        assert_true(head + (size_t) n + tail <= sizeof cap->bytes);
        memmove(cap->bytes + head + n, end, tail);
        memcpy(cap->bytes + head, out, (size_t) n);
        cap->n = head + (size_t) n + tail;
}

static bool same(struct capture *a, struct capture *b) {
        normalise_token(a);
        normalise_token(b);
        return a->n == b->n && memcmp(a->bytes, b->bytes, a->n) == 0 &&
               memcmp(a->stats.requests, b->stats.requests, sizeof a->stats.requests) == 0 &&
               memcmp(a->stats.errors, b->stats.errors, sizeof a->stats.errors) == 0 &&
               a->stats.validate_latency.count == b->stats.validate_latency.count;
}

static void check(const char *buf, size_t n) {
        static struct capture fast, general;

        for (int attempt = 0;; attempt++) {
                time_t t0 = time(NULL);
                if (!run_fast(buf, n, &fast)) {
                        declined++;
                        return;
                }
                run_general(buf, n, &general);
                if (same(&fast, &general)) {
                        answered++;
                        return;
                }
                /* The idle expiry is reported in whole seconds of now: a
                 * second that turned between the two runs is no finding. */
                if (time(NULL) != t0 && attempt == 0)
                        continue;
                fail_msg("request %.*s\n  fast:    %.*s\n  general: %.*s", (int) n, buf,
                         (int) (fast.n > 4 ? fast.n - 4 : 0), (const char *) fast.bytes + 4,
                         (int) (general.n > 4 ? general.n - 4 : 0), (const char *) general.bytes + 4);
        }
}

static void check_str(const char *s) {
        check(s, strlen(s));
}

/* ---- the store ---- */

static void add_session(unsigned i, const char *user, const char *service, const char *claims, bool canonical,
                        int64_t last_seen_ago, int64_t expires_in) {
        uint8_t key[STORE_KEY_SIZE];
        int64_t now = time(NULL);
        struct session_info info = {
                .user = user,
                .service = service,
                .claims_json = claims,
                .claims_canonical = canonical,
                .created_at = now - 1000,
                .last_seen_at = now - last_seen_ago,
                .expires_at = now + expires_in,
                .idle_timeout = 3600,
                .peer_uid = 0,
        };
        session_id_new(ids[i], key);
        session_handle_new(info.handle);
        assert_int_equal(store_session_create(d.store, key, &info), 0);
}

static int setup(void **state) {
        struct config *cfg = NULL;
        char path[128];
        int sv[2];

        assert_true(sodium_init() >= 0);
        snprintf(tmpdir, sizeof tmpdir, "/tmp/latch-fastpath.XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        snprintf(path, sizeof path, "%s/latchd.conf", tmpdir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        /* Only root may use `locked`; the test's peer is made uid 4242. */
        fputs("[service.locked]\nallow_users = root\n[service.svc]\naudiences = nosuch\n", f);
        fclose(f);
        assert_int_equal(config_load(path, NULL, NULL, &cfg), 0);
        d.config = cfg;
        snprintf(path, sizeof path, "%s/state", tmpdir);
        assert_int_equal(mkdir(path, 0700), 0);
        struct store_options so = { .no_sync = true };
        assert_int_equal(store_open_with_options(path, &so, &d.store), 0);
        assert_int_equal(keyring_open(path, time(NULL), &d.keys), 0);
        assert_true(sd_event_new(&d.event) >= 0);
        /* Idle-expiry slides pile up in d.touches and are never written:
         * both paths see the same stored last_seen. */
        d.touch_running = true;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(conn_new(&d, sv[0], &conn), 0);
        close(sv[1]);
        free(conn->peer.groups);
        conn->peer = (struct peer){ .pid = 1, .uid = 4242, .gid = 4242 };

        const char *c1 = "{\"groups\":[\"a\",\"b\"],\"level\":3}";
        add_session(0, "alice", "svc", c1, session_claims_canonical(c1), 10, 86400);
        /* Needs escaping; UTF-8 and DEL go as they are. */
        const char *c2 = "{\"name\":\"J\\u00e9r\\u00f4me \\\"q\\\" \\\\ \\n\\u0001\",\"pi\":3.1415926535897931,"
                         "\"nested\":{\"z\":[true,false,null,-12,1e300]}}";
        json_t *parsed = json_loads(c2, 0, NULL);
        assert_non_null(parsed);
        char *canon = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(parsed);
        assert_true(session_claims_canonical(canon));
        add_session(1, "b\"o\\b\x01\x1f\t\n\x7f caf\xc3\xa9 \xf0\x9f\x94\x91", "svc", canon, true, 10, 86400);
        free(canon);
        /* Stored before claims were kept canonical: spaces, unsorted. */
        add_session(2, "carol", "svc", "{ \"b\" : 1, \"a\": [1.5, \"x\"] }", false, 10, 86400);
        add_session(3, "dave", "svc", "not json at all", false, 10, 86400);
        /* Jansson reads no NUL in a string: such claims read as {}. */
        assert_false(session_claims_canonical("{\"a\":\"\\u0000\"}"));
        add_session(4, "erin", "svc", "{\"a\":\"\\u0000\"}", false, 10, 86400);
        add_session(5, "frank", "locked", "{}", true, 10, 86400);
        add_session(6, "gil\xc3\x28", "svc", "{}", true, 10, 86400); /* invalid UTF-8 */
        add_session(7, "hana", "svc", NULL, false, 10, 86400);       /* NULL claims: {} */
        add_session(8, "ivan", "svc", "{}", true, 3000, 86400);      /* old last_seen: a touch */
        add_session(9, "judy", "svc", "{}", true, 10, -5);           /* expired */
        add_session(10, "kim", "other", "[1,2]", false, 10, 86400);  /* not an object */
        add_session(11, "leo", "svc", "{\"k\":\"v\"}", true, 10, 200); /* expiry caps the slide */
        return 0;
}

static int teardown(void **state) {
        char cmd[128];

        conn_close(conn);
        conn_set_close(&d);
        free(d.touches);
        store_close(d.store);
        keyring_free(d.keys);
        sd_event_unref(d.event);
        config_free(d.config);
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        (void) system(cmd);
        return 0;
}

/* ---- the fuzz corpus ---- */

static void test_corpus(void **state) {
        DIR *dir = opendir(corpus_dir);
        struct dirent *e;
        unsigned files = 0, frames = 0;

        assert_non_null(dir);
        while ((e = readdir(dir))) {
                char path[512];
                static uint8_t data[1 << 20];
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s", corpus_dir, e->d_name);
                FILE *f = fopen(path, "re");
                assert_non_null(f);
                size_t size = fread(data, 1, sizeof data, f);
                fclose(f);
                files++;
                /* A byte stream of frames, as a client would send. */
                const uint8_t *p = data;
                while (size > 0) {
                        uint32_t n = 0;
                        enum frame_status st = frame_peek(p, size, 65536, &n);
                        if (st == FRAME_NEED_MORE || st == FRAME_TOO_LARGE)
                                break;
                        if (st == FRAME_OK) {
                                check((const char *) p + WIRE_HEADER, n);
                                frames++;
                        }
                        p += WIRE_HEADER + (st == FRAME_OK ? n : 0);
                        size -= WIRE_HEADER + (st == FRAME_OK ? n : 0);
                }
        }
        closedir(dir);
        assert_true(files > 0);
        printf("corpus: %u files, %u frames\n", files, frames);
}

/* ---- generated requests ---- */

static const char *const id_values[] = {
        NULL, "null", "0", "7", "-5", "123456789012345678", "-123456789012345678", "\"abc\"", "\"\"",
        "\"with space / and ~\"", "true", "false",
        /* Declined: each reads back differently or needs Jansson. */
        "-0", "007", "1.5", "1e2", "1234567890123456789", "\"\\u0041\"", "\"caf\xc3\xa9\"", "[1]", "{}", "tru",
        "\"tab\tin\"", "--1", "-",
};

static const char *session_values[N_SESSIONS + 10];

static const char *const service_values[] = {
        NULL, "null", "\"svc\"", "\"locked\"", "\"other\"", "\"nosuch\"", "\"\"",
        /* Declined. */
        "1", "true", "\"s\\u0076c\"",
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", /* 129 bytes */
};

static const char *const op_values[] = { "\"validate\"", "\"token\"", "\"Validate\"", "\"validate \"", "1", NULL };

struct member {
        const char *name;
        const char *value;
};

static void build(const struct member *m, size_t n, const unsigned *order, const char *ws, char *out, size_t cap) {
        size_t len = 0;

        len += (size_t) snprintf(out + len, cap - len, "%s{%s", ws, ws);
        bool first = true;
        for (size_t i = 0; i < n; i++) {
                const struct member *x = &m[order[i]];
                if (!x->value)
                        continue;
                len += (size_t) snprintf(out + len, cap - len, "%s\"%s\"%s:%s%s%s", first ? "" : ",", x->name, ws,
                                         ws, x->value, ws);
                first = false;
        }
        snprintf(out + len, cap - len, "}%s", ws);
}

static void test_generated(void **state) {
        static char bufs[N_SESSIONS + 10][640];
        char req[4096];
        size_t ns = 0;
        static const unsigned orders[][4] = { { 0, 1, 2, 3 }, { 3, 2, 1, 0 }, { 1, 3, 0, 2 }, { 2, 0, 3, 1 } };
        static const char *const spaces[] = { "", " ", "\n\t\r " };

        for (unsigned i = 0; i < N_SESSIONS; i++) {
                snprintf(bufs[ns], sizeof bufs[ns], "\"%s\"", ids[i]);
                session_values[ns] = bufs[ns];
                ns++;
        }
        session_values[ns++] = "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""; /* well shaped, unknown */
        session_values[ns++] = "\"short\"";
        session_values[ns++] = "\"\"";
        session_values[ns++] = "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!\""; /* 44, bad character */
        session_values[ns++] = "null"; /* declined: missing 'session' */
        session_values[ns++] = "5";
        session_values[ns++] = NULL;
        snprintf(bufs[ns], sizeof bufs[ns], "\"%.*s\\u0041\"", SESSION_ID_LEN - 1, ids[0]);
        session_values[ns] = bufs[ns];
        ns++;

        for (size_t o = 0; o < sizeof op_values / sizeof op_values[0]; o++)
                for (size_t s = 0; s < ns; s++)
                        for (size_t v = 0; v < sizeof service_values / sizeof service_values[0]; v++)
                                for (size_t i = 0; i < sizeof id_values / sizeof id_values[0]; i++) {
                                        /* The full product for validate; a slice for the rest. */
                                        if (o > 1 && (s + v + i) % 7 != 0)
                                                continue;
                                        /* token takes `audience` where validate takes `service`
                                         * (the same values); each refuses the other's. */
                                        bool swap = o == 1 ? (s + i) % 5 != 0 : (s + i) % 9 == 0;
                                        struct member m[] = { { "op", op_values[o] },
                                                              { "session", session_values[s] },
                                                              { swap ? "audience" : "service", service_values[v] },
                                                              { "id", id_values[i] } };
                                        size_t k = (s + v + i) % 4;
                                        build(m, 4, orders[k], spaces[(s + i) % 3], req, sizeof req);
                                        check_str(req);
                                }

        /* Shapes the scanner must leave alone. */
        static const char *const odd[] = {
                "{}", "[]", "", " ", "{\"op\":\"validate\"}", "{\"op\":\"validate\",\"session\":\"x\",}",
                "{\"op\":\"validate\",\"session\":\"x\"} x", "{\"op\":\"validate\",\"session\":\"x\"}}",
                "{\"op\":\"validate\" \"session\":\"x\"}", "{\"op\":\"validate\",\"op\":\"validate\",\"session\":\"x\"}",
                "{\"op\":\"validate\",\"session\":\"x\",\"extra\":1}", "{\"op\":\"validate\",\"session\":\"x\",\"Id\":1}",
                "{\"op\":\"validate\",\"session\":\"x\",\"id\":1,\"id\":2}", "{\"op\":\"validate\",\"session\":\"x\"",
                "{\"op\":\"validate\",\"session\":\"x", "{\"op\":\"validate\",\"session\":\"x\",\"id\":",
                "{\"op\":\"validate\",\"session\":\"x\",\"id\":nul}", "{\"op\":\"validate\",\"session\":\"x\",\"id\":nullx}",
                "{\"op\":\"validate\",\"session\":\"x\",\"id\":12a}", "{'op':'validate'}", "{op:\"validate\"}",
                "{\"o\\u0070\":\"validate\",\"session\":\"x\"}", "{\"op\":\"validate\",\"session\":\"x\"}\0",
                "\xef\xbb\xbf{\"op\":\"validate\",\"session\":\"x\"}", "{\"op\":\"validate\",\"session\":\"x\"}\n\n",
                "{\"op\":\"validate\",\"session\":\"x\",\"id\":-}", "{\"op\":\"validate\",\"session\":\"x\",\"id\":[]}",
        };
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
                check_str(odd[i]);
        /* With a NUL inside the frame. */
        check("{\"op\":\"validate\",\"session\":\"x\"}\0", 35);
        check("{\"op\":\"validate\",\"session\":\"x\0\"}", 34);

        /* Every kind of reply was made, by both paths. */
        printf("generated and corpus: %u answered by the fast path (and compared), %u declined\n", answered,
               declined);
        /* Requests naming a service the peer may not use ("locked") are
         * declined: dispatch refuses them before any op runs. */
        assert_true(answered > 2100);
        assert_true(declined > 5000);
}

/* What the fast path makes of the sessions above, read back: each kind of
 * answer came up (a comparison of nothing against nothing proves
 * nothing). */
static void test_kinds(void **state) {
        static const char *const want[] = {
                "\"ok\":true", "\"error\":\"invalid_session\"", "\"error\":\"forbidden\"", "\"error\":\"internal\"",
                "\"user\":\"b\\\"o\\\\b\\u0001\\u001F\\t\\n\x7f caf\xc3\xa9",
                "\"claims\":{\"b\":1,\"a\":[1.5,\"x\"]}",
                "\"claims\":{}",
                "\"token\":\"", "this service may not issue tokens for that audience",
        };
        static bool seen[sizeof want / sizeof want[0]];
        char req[1024];
        static struct capture cap;

        for (unsigned i = 0; i < N_SESSIONS; i++) {
                for (int op = 0; op < 3; op++) {
                        snprintf(req, sizeof req, "{\"op\":\"%s\",\"session\":\"%s\",\"id\":%u%s}",
                                 op ? "token" : "validate", ids[i], i, op == 2 ? ",\"audience\":\"other\"" : "");
                        assert_int_equal(run_fast(req, strlen(req), &cap), 1);
                        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
                                if (memmem(cap.bytes + 4, cap.n - 4, want[k], strlen(want[k])))
                                        seen[k] = true;
                }
        }
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
                if (!seen[k])
                        fail_msg("no reply held %s", want[k]);
}

/* ---- token claims written directly against Jansson's ---- */

struct copied {
        struct session_info s;
        char *buf;
};

static int copy_session(void *userdata, const struct session_info *s) {
        struct copied *c = userdata;
        assert_int_equal(session_info_copy(s, &c->s, &c->buf), 0);
        return 1;
}

/* The claims of a token as a capture holding {"token":"..."}, normalised. */
static void token_claims(const struct session_info *s, const char *audience, struct capture *cap) {
        char *token = NULL;
        int64_t exp = 0;

        assert_int_equal(token_issue(&d, s, audience, &token, &exp), 0);
        cap->n = (size_t) snprintf((char *) cap->bytes, sizeof cap->bytes, "{\"token\":\"%s\",\"exp\":%lld}", token,
                                   (long long) exp);
        free(token);
        normalise_token(cap);
}

static void test_token_claims(void **state) {
        static struct capture direct, jansson;
        static const unsigned which[] = { 0, 1, 5, 7, 8, 11 };
        static const char *const audiences[] = { NULL, "nosuch", "caf\xc3\xa9 \"q\"" };

        for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
                for (size_t a = 0; a < sizeof audiences / sizeof audiences[0]; a++) {
                        uint8_t key[STORE_KEY_SIZE];
                        struct copied c = { 0 };
                        assert_true(session_id_key(ids[which[i]], key));
                        assert_int_equal(store_session_get(d.store, key, time(NULL), copy_session, &c), 1);
                        for (int attempt = 0;; attempt++) {
                                time_t t0 = time(NULL);
                                c.s.claims_canonical = true;
                                token_claims(&c.s, audiences[a], &direct);
                                c.s.claims_canonical = false; /* Jansson's way */
                                token_claims(&c.s, audiences[a], &jansson);
                                if (direct.n == jansson.n && memcmp(direct.bytes, jansson.bytes, direct.n) == 0)
                                        break;
                                if (time(NULL) != t0 && attempt == 0)
                                        continue;
                                fail_msg("token claims differ:\n  direct:  %.*s\n  jansson: %.*s", (int) direct.n,
                                         direct.bytes, (int) jansson.n, jansson.bytes);
                        }
                        free(c.buf);
                }
}

/* ---- verify: tokens good, expired, forged, of ended sessions ---- */

static char *issue_for(unsigned i, const char *audience) {
        uint8_t key[STORE_KEY_SIZE];
        struct copied c = { 0 };
        char *token = NULL;
        int64_t exp;

        assert_true(session_id_key(ids[i], key));
        /* Expired sessions are not found: read at a time they were live. */
        assert_int_equal(store_session_get(d.store, key, 0, copy_session, &c), 1);
        assert_int_equal(token_issue(&d, &c.s, audience, &token, &exp), 0);
        free(c.buf);
        return token;
}

static void test_verify(void **state) {
        char *tokens[20];
        size_t nt = 0;
        unsigned before = answered;
        char req[10000];

        tokens[nt++] = issue_for(0, NULL);
        tokens[nt++] = issue_for(1, "nosuch");
        tokens[nt++] = issue_for(10, NULL);
        tokens[nt++] = issue_for(9, NULL); /* its session expired: so did the token */
        tokens[nt] = strdup(tokens[0]);
        tokens[nt][strlen(tokens[nt]) - 2] ^= 1; /* a forged signature */
        nt++;
        tokens[nt++] = strdup("abc");
        tokens[nt++] = strdup("a.b.c");
        tokens[nt++] = strdup("");
        /* A token whose session then ended. */
        {
                uint8_t key[STORE_KEY_SIZE];
                add_session(N_SESSIONS, "gone", "svc", "{}", true, 10, 86400);
                tokens[nt++] = issue_for(N_SESSIONS, NULL);
                assert_true(session_id_key(ids[N_SESSIONS], key));
                assert_int_equal(store_session_delete(d.store, key), 0);
        }
        /* Tokens of our key whose claims are not written as Jansson writes
         * them: the reply must still be Jansson's. */
        {
                uint8_t key[STORE_KEY_SIZE];
                struct copied c = { 0 };
                /* Each after the registered claims; the first has a space. */
                static const char *const odd[] = {
                        " ",
                        ",\"a\":-0",
                        ",\"a\":1.50,\"b\":1E2",
                        ",\"a\":\"\\u00e9\\/\\u001f\"",
                        ",\"a\":\"\\u000a\\u001F\\u0041\"",
                        ",\"a\":[true ,false,null]",
                        ",\"a\":\"\\u001F\\n\\\"\",\"n\":-12", /* canonical: copied */
                };
                assert_true(session_id_key(ids[0], key));
                assert_int_equal(store_session_get(d.store, key, 0, copy_session, &c), 1);
                for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
                        char payload[512];
                        int n = snprintf(payload, sizeof payload, "{\"iss\":\"%s\",\"exp\":%lld,\"sid\":\"%s\"%s}",
                                         d.config->issuer, (long long) time(NULL) + 3600, c.s.handle, odd[i]);
                        assert_int_equal(keyring_sign_payload(d.keys, d.config->algorithm, payload, (size_t) n,
                                                              &tokens[nt]),
                                         0);
                        nt++;
                }
                free(c.buf);
        }
        static const char *const auds[] = { NULL, "null", "\"svc\"", "\"other\"", "\"nosuch\"", "7",
                                             "\"a\\u0062\"" };
        static const unsigned orders[][4] = { { 0, 1, 2, 3 }, { 3, 2, 1, 0 }, { 2, 0, 3, 1 } };
        for (size_t t = 0; t < nt; t++)
                for (size_t a = 0; a < sizeof auds / sizeof auds[0]; a++)
                        for (size_t i = 0; i < sizeof id_values / sizeof id_values[0]; i += 2) {
                                char tok[8300];
                                snprintf(tok, sizeof tok, "\"%s\"", tokens[t]);
                                struct member m[] = { { "op", "\"verify\"" }, { "token", tok }, { "audience", auds[a] },
                                                      { "id", id_values[i] } };
                                build(m, 4, orders[(t + a + i) % 3], (t + i) % 2 ? " " : "", req, sizeof req);
                                check_str(req);
                        }
        /* And the shapes it must leave alone. */
        check_str("{\"op\":\"verify\"}");
        check_str("{\"op\":\"verify\",\"token\":null}");
        check_str("{\"op\":\"verify\",\"token\":\"abc\",\"session\":\"x\"}");
        check_str("{\"op\":\"verify\",\"token\":\"a\\u002eb\"}");
        check_str("{\"op\":\"token\",\"token\":\"abc\",\"session\":\"x\"}");
        check_str("{\"op\":\"validate\",\"token\":\"abc\",\"session\":\"x\"}");
        printf("verify: %u answered by the fast path (and compared)\n", answered - before);
        assert_true(answered - before > 250);
        for (size_t t = 0; t < nt; t++)
                free(tokens[t]);
}

/* ---- a store written before claims were flagged canonical ---- */

static const char *fixture_dir;

static int note_canonical(void *userdata, const struct session_info *s) {
        *(int *) userdata = s->claims_canonical;
        return 1;
}

static void test_upgrade(void **state) {
        static const struct {
                const char *id;
                const char *reply;
        } cases[] = {
                { "fixtureAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
                  "{\"id\":1,\"ok\":true,\"handle\":\"handleAAAAAAAAAAAAAAA1\",\"user\":\"alice\",\"service\":\"svc\","
                  "\"created_at\":1700000000,\"expires_at\":4102444800,\"idle_expires_at\":4102444800,"
                  "\"claims\":{\"groups\":[\"admins\",\"users\"],\"mail\":\"alice@example.org\"}}" },
                { "fixtureAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA2",
                  "{\"id\":1,\"ok\":true,\"handle\":\"handleAAAAAAAAAAAAAAA2\",\"user\":\"b\\\"ob\\\\\",\"service\":\"svc\","
                  "\"created_at\":1700000000,\"expires_at\":4102444800,\"idle_expires_at\":4102444800,"
                  "\"claims\":{\"z\":1.5,\"a\":[true,null]}}" },
                { "fixtureAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA3",
                  "{\"id\":1,\"ok\":true,\"handle\":\"handleAAAAAAAAAAAAAAA3\",\"user\":\"carol\",\"service\":\"svc\","
                  "\"created_at\":1700000000,\"expires_at\":4102444800,\"idle_expires_at\":4102444800,"
                  "\"claims\":{}}" },
        };
        char dir[128], cmd[512], req[256];
        static struct capture cap;
        store *fresh = d.store, *old = NULL;

        /* A copy: the store must be ours and private, and stays unchanged. */
        snprintf(dir, sizeof dir, "%s/v1", tmpdir);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(cmd, sizeof cmd, "cp %s/sessions.mdb %s/ && chmod 600 %s/sessions.mdb", fixture_dir, dir, dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(store_open(dir, &old), 0);
        assert_int_equal(store_check_consistency(old), 0);
        d.store = old;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                uint8_t key[STORE_KEY_SIZE];
                int canonical = -1;
                assert_true(session_id_key(cases[i].id, key));
                assert_int_equal(store_session_get(old, key, time(NULL), note_canonical, &canonical), 1);
                assert_int_equal(canonical, 0); /* written before the flag */
                snprintf(req, sizeof req, "{\"op\":\"validate\",\"session\":\"%s\",\"id\":1}", cases[i].id);
                assert_int_equal(run_fast(req, strlen(req), &cap), 1);
                if (cap.n - 4 != strlen(cases[i].reply) || memcmp(cap.bytes + 4, cases[i].reply, cap.n - 4) != 0)
                        fail_msg("%s:\n  got  %.*s\n  want %s", cases[i].id, (int) cap.n - 4, cap.bytes + 4,
                                 cases[i].reply);
                check_str(req); /* and the general path agrees */
        }
        /* A session written now, into the old store, is flagged. */
        uint8_t key[STORE_KEY_SIZE];
        char id[SESSION_ID_LEN + 1];
        int canonical = -1;
        struct session_info info = { .user = "new", .service = "svc", .claims_json = "{\"a\":1}",
                                     .claims_canonical = session_claims_canonical("{\"a\":1}"),
                                     .created_at = time(NULL), .last_seen_at = time(NULL),
                                     .expires_at = time(NULL) + 100, .idle_timeout = 100 };
        session_id_new(id, key);
        session_handle_new(info.handle);
        assert_int_equal(store_session_create(old, key, &info), 0);
        assert_int_equal(store_session_get(old, key, time(NULL), note_canonical, &canonical), 1);
        assert_int_equal(canonical, 1);
        snprintf(req, sizeof req, "{\"op\":\"validate\",\"session\":\"%s\"}", id);
        check_str(req);
        assert_int_equal(store_check_consistency(old), 0);
        d.store = fresh;
        store_close(old);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_corpus),
                cmocka_unit_test(test_generated),
                cmocka_unit_test(test_kinds),
                cmocka_unit_test(test_upgrade),
                cmocka_unit_test(test_token_claims),
                cmocka_unit_test(test_verify),
        };
        if (argc != 3) {
                fprintf(stderr, "usage: %s CORPUS_DIR STORE_FIXTURE_DIR\n", argv[0]);
                return 2;
        }
        corpus_dir = argv[1];
        fixture_dir = argv[2];
        return cmocka_run_group_tests(tests, setup, teardown);
}
