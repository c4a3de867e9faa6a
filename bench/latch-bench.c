/* SPDX-License-Identifier: MIT */
/*
 * latch-bench: the load generator and micro-benchmarks behind
 * docs/PERFORMANCE.md. bench/run drives it; every subcommand prints one JSON
 * object on stdout.
 *
 *   crypto     JWT issue/verify against the raw libsodium primitives, and the
 *              argon2id INTERACTIVE verify time (in process)
 *   argon2     argon2id INTERACTIVE alone: one thread, then nproc threads at once
 *   users      writes a `file` plugin user database (argon2id INTERACTIVE)
 *   populate   fills a state dir with sessions through the store library,
 *              before latchd starts (no argon2, no socket, no fsync)
 *   load       closed-loop load over a Unix socket: latch's protocol or Redis
 *              RESP, N connections, D requests in flight per connection, one
 *              thread, epoll. Latency is measured per request, from the
 *              moment it is handed to send() until its whole answer is read.
 *   sweep      `load` of validate while a mass expiry is swept: watches
 *              `stats` and reports the sweep time and the latency during it
 *   coldstart  connect + `hello` + answer, for socket activation
 *   wait       retries `hello` until the daemon answers
 *
 * The client is the same code for latch and for Redis, so that neither side
 * gains from a better client: answers are framed and checked for success
 * without a JSON parser (`"ok":true` in latch's compact output, `$200` bulk
 * strings in RESP); the first answer on each connection is parsed in full
 * with Jansson to make sure it is what the op promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <latch/latch.h>

#include "bench.h"
#include "jwt.h"
#include "macro.h"
#include "wire.h"
#include "session.h"
#include "store.h"

#define MAX_CONNS 1024
#define REDIS_VALUE_SIZE 200

/* ---- latency samples: every one kept, exact percentiles ---- */

struct samples {
        uint32_t *v; /* tenths of a microsecond: up to ~429 s */
        size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t ns) {
        uint64_t t = ns / 100;
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 65536;
                s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
        }
        s->v[s->n++] = t > UINT32_MAX ? UINT32_MAX : (uint32_t) t;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

/* Sorts in place; q in [0, 1]; microseconds. */
static double samples_quantile_us(struct samples *s, double q) {
        if (s->n == 0)
                return 0;
        size_t i = (size_t) (q * (double) (s->n - 1) + 0.5);
        return s->v[MIN(i, s->n - 1)] / 10.0;
}

static void samples_sort(struct samples *s) {
        qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
}

static void json_add_latency(json_t *o, struct samples *s) {
        samples_sort(s);
        json_object_set_new(o, "samples", json_integer((json_int_t) s->n));
        json_object_set_new(o, "p50_us", json_real(samples_quantile_us(s, 0.50)));
        json_object_set_new(o, "p90_us", json_real(samples_quantile_us(s, 0.90)));
        json_object_set_new(o, "p99_us", json_real(samples_quantile_us(s, 0.99)));
        json_object_set_new(o, "p999_us", json_real(samples_quantile_us(s, 0.999)));
        json_object_set_new(o, "max_us", json_real(s->n ? s->v[s->n - 1] / 10.0 : 0));
        /* The distribution, for the CDF plot: [fraction, µs] pairs. */
        static const double qs[] = { 0,    0.01, 0.05,  0.1,    0.2,  0.3,   0.4,    0.5,   0.6,  0.7,
                                     0.8,  0.85, 0.9,   0.93,   0.95, 0.97,  0.98,   0.99,  0.995, 0.998,
                                     0.999, 0.9995, 0.9999, 1 };
        json_t *cdf = json_array();
        for (size_t i = 0; i < ELEMENTSOF(qs); i++)
                json_array_append_new(cdf, json_pack("[f, f]", qs[i], samples_quantile_us(s, qs[i])));
        json_object_set_new(o, "cdf", cdf);
}

/* ---- ids file ---- */

struct idlist {
        char **v;
        size_t n;
};

static void idlist_load(const char *path, struct idlist *ret) {
        FILE *f = fopen(path, "re");
        char line[512];

        if (!f)
                die("%s: %m", path);
        *ret = (struct idlist){ 0 };
        size_t cap = 0;
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (!line[0])
                        continue;
                if (ret->n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        ret->v = xrealloc(ret->v, cap * sizeof(char *));
                }
                ret->v[ret->n] = strdup(line);
                if (!ret->v[ret->n])
                        die("out of memory");
                ret->n++;
        }
        fclose(f);
        if (ret->n == 0)
                die("%s: no ids", path);
}

/* ---- the load engine ---- */

enum proto { PROTO_LATCH, PROTO_REDIS };
enum op { OP_VALIDATE, OP_TOKEN, OP_LOGIN, OP_HELLO, OP_GET, OP_SET, OP_STATS, OP_VERIFY };

static const char *const op_names[] = {
        [OP_VALIDATE] = "validate", [OP_TOKEN] = "token", [OP_LOGIN] = "login", [OP_HELLO] = "hello",
        [OP_GET] = "get",           [OP_SET] = "set",     [OP_STATS] = "stats",  [OP_VERIFY] = "verify",
};

struct opts {
        enum proto proto;
        enum op op;
        const char *socket;
        unsigned clients;
        unsigned depth;
        double duration;
        double warmup;
        const char *ids_file;
        unsigned keys;
        const char *service;
        const char *password;
        const char *label;
        const char *token;      /* verify */
        /* sweep */
        double expire_at;
        uint64_t remaining;
        double timeout;
};

struct bconn {
        int fd;
        enum op op;
        unsigned idx;
        uint8_t *out;
        size_t out_len, out_off, out_cap;
        uint8_t *in;
        size_t in_len, in_cap;
        uint64_t *sent; /* ring of send times, capacity depth */
        unsigned ring_head, inflight, depth;
        bool checked;
        bool want_out;
        uint64_t counter;
        json_t *last; /* OP_STATS: the last answer */
};

struct engine {
        const struct opts *o;
        struct idlist ids;
        int ep;
        struct bconn *conns;
        unsigned n_conns;
        struct bconn *stats_conn;
        bool sending;
        bool recording;
        uint64_t done, errors, rec_done, rec_errors;
        uint64_t rec_start, rec_end;
        struct samples lat;
        uint64_t rng;
        char first_error[256];
};

static uint64_t rng_next(uint64_t *s) {
        /* splitmix64: picking ids, not secrets. */
        uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

static int unix_connect(const char *path, bool nonblock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                die("%s: socket path too long", path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket: %m");
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
        }
        if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                die("fcntl: %m");
        return fd;
}

static void out_reserve(struct bconn *c, size_t n) {
        if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + n > c->out_cap) {
                c->out_cap = MAX(c->out_cap * 2, c->out_len + n + 256);
                c->out = xrealloc(c->out, c->out_cap);
        }
}

static void out_frame(struct bconn *c, const char *json, size_t n) {
        out_reserve(c, 4 + n);
        uint8_t *p = c->out + c->out_len;
        wire_put_header(p, (uint32_t) n);
        memcpy(p + 4, json, n);
        c->out_len += 4 + n;
}

static void out_resp(struct bconn *c, const char *const *argv, unsigned argc, const size_t *lens) {
        char hdr[32];
        int k = snprintf(hdr, sizeof hdr, "*%u\r\n", argc);
        size_t total = (size_t) k;
        for (unsigned i = 0; i < argc; i++)
                total += 32 + lens[i];
        out_reserve(c, total);
        memcpy(c->out + c->out_len, hdr, (size_t) k);
        c->out_len += (size_t) k;
        for (unsigned i = 0; i < argc; i++) {
                k = snprintf(hdr, sizeof hdr, "$%zu\r\n", lens[i]);
                memcpy(c->out + c->out_len, hdr, (size_t) k);
                c->out_len += (size_t) k;
                memcpy(c->out + c->out_len, argv[i], lens[i]);
                c->out_len += lens[i];
                memcpy(c->out + c->out_len, "\r\n", 2);
                c->out_len += 2;
        }
}

static void enqueue_request(struct engine *e, struct bconn *c) {
        const struct opts *o = e->o;
        char buf[9000];
        int n = 0;

        switch (c->op) {
        case OP_VERIFY:
                n = snprintf(buf, sizeof buf, "{\"op\":\"verify\",\"token\":\"%s\"}", o->token);
                break;
        case OP_VALIDATE:
        case OP_TOKEN: {
                const char *id = e->ids.v[rng_next(&e->rng) % e->ids.n];
                n = snprintf(buf, sizeof buf, "{\"op\":\"%s\",\"session\":\"%s\"}", op_names[c->op], id);
                break;
        }
        case OP_LOGIN:
                /* One user and one remote per connection: the throttle
                 * counts concurrent attempts per key. */
                n = snprintf(buf, sizeof buf,
                             "{\"op\":\"login\",\"service\":\"%s\",\"user\":\"u%u\",\"password\":\"%s\","
                             "\"remote\":\"10.9.%u.%u\"}",
                             o->service, c->idx, o->password, c->idx / 250, c->idx % 250 + 1);
                break;
        case OP_HELLO:
                n = snprintf(buf, sizeof buf, "{\"op\":\"hello\"}");
                break;
        case OP_STATS:
                n = snprintf(buf, sizeof buf, "{\"op\":\"stats\"}");
                break;
        case OP_GET:
        case OP_SET: {
                char key[32];
                static char value[REDIS_VALUE_SIZE];
                unsigned k = c->op == OP_SET ? (unsigned) (c->counter * e->n_conns + c->idx)
                                             : (unsigned) (rng_next(&e->rng) % o->keys);
                if (!value[0])
                        memset(value, 'v', sizeof value);
                int kl = snprintf(key, sizeof key, "bench:%u", k);
                if (c->op == OP_GET)
                        out_resp(c, (const char *[]){ "GET", key }, 2, (size_t[]){ 3, (size_t) kl });
                else
                        out_resp(c, (const char *[]){ "SET", key, value }, 3,
                                 (size_t[]){ 3, (size_t) kl, sizeof value });
                break;
        }
        }
        if (c->op != OP_GET && c->op != OP_SET) {
                if (n <= 0 || (size_t) n >= sizeof buf)
                        die("request too long");
                out_frame(c, buf, (size_t) n);
        }
        c->counter++;
        c->sent[(c->ring_head + c->inflight) % c->depth] = mono_ns();
        c->inflight++;
}

static void conn_update(struct engine *e, struct bconn *c) {
        bool want = c->out_off < c->out_len;
        if (want == c->want_out)
                return;
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
        if (epoll_ctl(e->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                die("epoll_ctl: %m");
        c->want_out = want;
}

static void conn_flush(struct engine *e, struct bconn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        die("send: %m (the server closed the connection?)");
                }
                c->out_off += (size_t) n;
        }
        conn_update(e, c);
}

static void fill(struct engine *e, struct bconn *c) {
        if (c->op == OP_STATS)
                return; /* driven by the tick */
        while (e->sending && c->inflight < c->depth) {
                /* set: each key once, spread over the connections. */
                if (c->op == OP_SET && c->counter * e->n_conns + c->idx >= e->o->keys)
                        break;
                enqueue_request(e, c);
        }
        conn_flush(e, c);
}

/* The first successful answer of each connection is checked in full; an
 * error answer (e.g. `unavailable` from a login that waited past its
 * deadline) counts as a failed request, and the next answer is checked. */
static bool check_latch_answer(struct engine *e, struct bconn *c, const uint8_t *p, size_t n) {
        json_error_t err;
        json_t *o = json_loadb((const char *) p, n, 0, &err);
        if (!o || !json_is_boolean(json_object_get(o, "ok")))
                die("%s: not an answer: %.*s", op_names[c->op], (int) MIN(n, (size_t) 300), (const char *) p);
        if (!json_is_true(json_object_get(o, "ok"))) {
                if (c->op == OP_STATS)
                        die("stats: %.*s", (int) MIN(n, (size_t) 300), (const char *) p);
                json_decref(o);
                return false;
        }
        const char *need = c->op == OP_VALIDATE ? "user"
                         : c->op == OP_TOKEN    ? "token"
                         : c->op == OP_LOGIN    ? "session"
                         : c->op == OP_HELLO    ? "version"
                         : c->op == OP_VERIFY   ? "claims"
                                                : "sessions";
        if (!json_object_get(o, need))
                die("%s: answer without '%s': %.*s", op_names[c->op], need, (int) MIN(n, (size_t) 300),
                    (const char *) p);
        if (c->op == OP_STATS) {
                json_decref(c->last);
                c->last = o;
        } else
                json_decref(o);
        c->checked = true;
        return true;
}

static void answer(struct engine *e, struct bconn *c, bool ok, const uint8_t *p, size_t n) {
        uint64_t now = mono_ns();
        if (c->inflight == 0)
                die("an answer nobody asked for");
        uint64_t sent = c->sent[c->ring_head];
        c->ring_head = (c->ring_head + 1) % c->depth;
        c->inflight--;
        if (c->op == OP_STATS)
                return;
        e->done++;
        if (!ok) {
                e->errors++;
                if (!e->first_error[0])
                        snprintf(e->first_error, sizeof e->first_error, "%.*s", (int) MIN(n, (size_t) 200),
                                 (const char *) p);
        }
        if (e->recording) {
                e->rec_done++;
                if (!ok)
                        e->rec_errors++;
                samples_add(&e->lat, now - sent);
        }
}

/* Returns the bytes of complete answers consumed. */
static size_t parse_latch(struct engine *e, struct bconn *c) {
        size_t off = 0;
        while (c->in_len - off >= 4) {
                const uint8_t *h = c->in + off;
                size_t n = wire_get_header(h);
                if (c->in_len - off - 4 < n)
                        break;
                const uint8_t *p = h + 4;
                bool ok;
                if (!c->checked || c->op == OP_STATS)
                        ok = check_latch_answer(e, c, p, n);
                else
                        ok = memmem(p, MIN(n, (size_t) 64), "\"ok\":true", 9) != NULL;
                answer(e, c, ok, p, n);
                off += 4 + n;
        }
        return off;
}

static size_t parse_redis(struct engine *e, struct bconn *c) {
        size_t off = 0;
        for (;;) {
                const uint8_t *p = c->in + off;
                size_t avail = c->in_len - off;
                const uint8_t *crlf = avail ? memmem(p, avail, "\r\n", 2) : NULL;
                if (!crlf)
                        break;
                size_t line = (size_t) (crlf - p) + 2;
                if (p[0] == '$') {
                        long len = strtol((const char *) p + 1, NULL, 10);
                        if (len < 0) {
                                answer(e, c, false, p, line); /* nil: the key is missing */
                                off += line;
                                continue;
                        }
                        if (avail < line + (size_t) len + 2)
                                break;
                        bool ok = len == REDIS_VALUE_SIZE && c->op == OP_GET;
                        if (!c->checked) {
                                if (!ok)
                                        die("GET: unexpected answer: %.*s", (int) MIN(avail, (size_t) 100),
                                            (const char *) p);
                                c->checked = true;
                        }
                        answer(e, c, ok, p, line);
                        off += line + (size_t) len + 2;
                } else if (p[0] == '+') {
                        answer(e, c, c->op == OP_SET, p, line);
                        off += line;
                } else {
                        answer(e, c, false, p, line);
                        off += line;
                }
        }
        return off;
}

static void conn_read(struct engine *e, struct bconn *c) {
        for (;;) {
                if (c->in_cap - c->in_len < 65536) {
                        c->in_cap = MAX(c->in_cap * 2, c->in_len + 65536);
                        c->in = xrealloc(c->in, c->in_cap);
                }
                ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        die("recv: %m");
                }
                if (n == 0)
                        die("the server closed a connection (%s, %u in flight)", op_names[c->op], c->inflight);
                c->in_len += (size_t) n;
                size_t used = e->o->proto == PROTO_LATCH ? parse_latch(e, c) : parse_redis(e, c);
                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
                if ((size_t) n < c->in_cap - c->in_len)
                        break;
        }
        fill(e, c);
}

static void engine_add_conn(struct engine *e, struct bconn *c, enum op op, unsigned idx, unsigned depth) {
        *c = (struct bconn){ .op = op, .idx = idx, .depth = depth };
        c->fd = unix_connect(e->o->socket, true);
        if (c->fd < 0)
                die("%s: %m", e->o->socket);
        c->sent = xmalloc(depth * sizeof(uint64_t));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(e->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                die("epoll_ctl: %m");
}

static void engine_init(struct engine *e, const struct opts *o, bool with_stats) {
        *e = (struct engine){ .o = o };
        if ((o->op == OP_VALIDATE || o->op == OP_TOKEN) && !o->ids_file)
                die("--ids is needed for %s", op_names[o->op]);
        if (o->ids_file)
                idlist_load(o->ids_file, &e->ids);
        if (o->clients == 0 || o->clients > MAX_CONNS || o->depth == 0)
                die("bad --clients or --depth");
        e->rng = (uint64_t) getpid() * 7919 + mono_ns();
        e->ep = epoll_create1(EPOLL_CLOEXEC);
        if (e->ep < 0)
                die("epoll_create1: %m");
        e->n_conns = o->clients;
        e->conns = calloc(o->clients + 1, sizeof(struct bconn));
        if (!e->conns)
                die("out of memory");
        for (unsigned i = 0; i < o->clients; i++)
                engine_add_conn(e, &e->conns[i], o->op, i, o->depth);
        if (with_stats) {
                e->stats_conn = &e->conns[o->clients];
                engine_add_conn(e, e->stats_conn, OP_STATS, 0, 1);
        }
}

/* Runs the loop until tick() returns false (called at least every 20 ms),
 * then stops sending and drains what is in flight. */
static void engine_run(struct engine *e, bool (*tick)(struct engine *e, uint64_t now, void *u), void *u) {
        struct epoll_event evs[64];

        e->sending = true;
        for (unsigned i = 0; i < e->n_conns; i++)
                fill(e, &e->conns[i]);
        for (;;) {
                int n = epoll_wait(e->ep, evs, ELEMENTSOF(evs), 20);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait: %m");
                }
                for (int i = 0; i < n; i++) {
                        struct bconn *c = evs[i].data.ptr;
                        if (evs[i].events & EPOLLOUT)
                                conn_flush(e, c);
                        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                conn_read(e, c);
                }
                uint64_t now = mono_ns();
                if (e->sending && !tick(e, now, u)) {
                        e->sending = false;
                        e->recording = false;
                }
                if (!e->sending) {
                        unsigned busy = 0;
                        for (unsigned i = 0; i < e->n_conns; i++)
                                busy += e->conns[i].inflight;
                        if (e->stats_conn)
                                busy += e->stats_conn->inflight;
                        if (busy == 0)
                                break;
                }
        }
}

static void engine_stats_poll(struct engine *e) {
        struct bconn *c = e->stats_conn;
        if (c && c->inflight == 0) {
                enqueue_request(e, c);
                conn_flush(e, c);
        }
}

static void engine_free(struct engine *e) {
        for (unsigned i = 0; i < e->n_conns + (e->stats_conn ? 1 : 0); i++) {
                struct bconn *c = &e->conns[i];
                close(c->fd);
                free(c->in);
                free(c->out);
                free(c->sent);
                json_decref(c->last);
        }
        free(e->conns);
        for (size_t i = 0; i < e->ids.n; i++)
                free(e->ids.v[i]);
        free(e->ids.v);
        free(e->lat.v);
        close(e->ep);
}

struct timed {
        uint64_t start, warm_end, end;
};

static bool timed_tick(struct engine *e, uint64_t now, void *u) {
        struct timed *t = u;
        if (!e->recording && now >= t->warm_end && now < t->end) {
                e->recording = true;
                e->rec_start = now;
        }
        if (now >= t->end || (e->o->op == OP_SET && e->done >= e->o->keys)) {
                e->rec_end = now;
                return false;
        }
        return true;
}

static json_t *engine_result(struct engine *e, double seconds) {
        const struct opts *o = e->o;
        json_t *r = json_object();
        json_object_set_new(r, "label", json_string(o->label ? o->label : op_names[o->op]));
        json_object_set_new(r, "proto", json_string(o->proto == PROTO_LATCH ? "latch" : "redis"));
        json_object_set_new(r, "op", json_string(op_names[o->op]));
        json_object_set_new(r, "clients", json_integer(o->clients));
        json_object_set_new(r, "depth", json_integer(o->depth));
        json_object_set_new(r, "seconds", json_real(seconds));
        json_object_set_new(r, "requests", json_integer((json_int_t) e->rec_done));
        json_object_set_new(r, "errors", json_integer((json_int_t) e->rec_errors));
        json_object_set_new(r, "rps", json_real(seconds > 0 ? (double) e->rec_done / seconds : 0));
        if (e->first_error[0])
                json_object_set_new(r, "first_error", json_string(e->first_error));
        json_add_latency(r, &e->lat);
        return r;
}

static int cmd_load(const struct opts *o) {
        struct engine e;
        engine_init(&e, o, false);
        uint64_t now = mono_ns();
        struct timed t = { .start = now,
                           .warm_end = now + (uint64_t) (o->warmup * 1e9),
                           .end = now + (uint64_t) ((o->warmup + o->duration) * 1e9) };
        engine_run(&e, timed_tick, &t);
        double secs = (double) (e.rec_end - e.rec_start) / 1e9;
        print_json(engine_result(&e, secs));
        int rc = e.rec_errors > 0 ? 2 : 0;
        engine_free(&e);
        return rc;
}

/* ---- sweep: validate load while a mass expiry is swept ---- */

struct sweep_state {
        double expire_at;       /* wall clock */
        uint64_t deadline;      /* mono */
        uint64_t next_poll;
        uint64_t t_expire;      /* mono time of the expiry */
        uint64_t t_gone;        /* mono time the first stats showed them gone */
        int64_t removed_before, removed_after, stored_before, stored_after;
        int64_t last_sweep_us;
        bool expired, gone, timed_out;
        uint64_t before_done;
        struct samples before;
};

static int64_t stats_int(json_t *st, const char *a, const char *b) {
        return json_integer_value(json_object_get(json_object_get(st, a), b));
}

static bool sweep_tick(struct engine *e, uint64_t now, void *u) {
        struct sweep_state *s = u;
        json_t *st = e->stats_conn->last;

        if (now >= s->next_poll) {
                engine_stats_poll(e);
                s->next_poll = now + 100 * 1000000ull;
        }
        if (!s->expired) {
                if (st) {
                        s->removed_before = stats_int(st, "sweep", "removed");
                        s->stored_before = stats_int(st, "sessions", "stored");
                }
                if (real_s() >= s->expire_at) {
                        s->expired = true;
                        s->t_expire = now;
                        /* Keep the latency before the expiry apart. */
                        s->before = e->lat;
                        s->before_done = e->rec_done;
                        e->lat = (struct samples){ 0 };
                        e->rec_done = e->rec_errors = 0;
                        e->rec_start = now;
                        json_decref(e->stats_conn->last);
                        e->stats_conn->last = NULL;
                        /* Poll at once. */
                        s->next_poll = now;
                }
                return now < s->deadline;
        }
        if (!s->gone && st && stats_int(st, "sessions", "stored") <= (int64_t) e->o->remaining) {
                /* Gone from the store: the sweep's time, and the end of the
                 * latency window. */
                s->gone = true;
                s->t_gone = now;
                s->stored_after = stats_int(st, "sessions", "stored");
                e->recording = false;
                e->rec_end = now;
                s->deadline = MIN(s->deadline, now + 5 * 1000000000ull);
        }
        if (s->gone && st) {
                /* latchd counts the removed sessions when the sweep job
                 * ends, a little after its last transaction: wait for it. */
                s->removed_after = stats_int(st, "sweep", "removed");
                s->last_sweep_us = stats_int(st, "sweep", "last_duration_us");
                if (s->removed_after - s->removed_before >= s->stored_before - s->stored_after)
                        return false;
        }
        if (now >= s->deadline) {
                if (!s->gone) {
                        s->timed_out = true;
                        e->rec_end = now;
                }
                return false;
        }
        return true;
}

static int cmd_sweep(const struct opts *o) {
        struct engine e;
        struct sweep_state s = { .expire_at = o->expire_at };

        if (o->expire_at <= 0)
                die("--expire-at is needed");
        engine_init(&e, o, true);
        uint64_t now = mono_ns();
        s.deadline = now + (uint64_t) ((o->expire_at - real_s() + o->timeout) * 1e9);
        e.recording = true;
        e.rec_start = now;
        engine_run(&e, sweep_tick, &s);

        json_t *r = engine_result(&e, (double) (e.rec_end - e.rec_start) / 1e9);
        json_object_set_new(r, "swept", json_boolean(s.gone));
        json_object_set_new(r, "timed_out", json_boolean(s.timed_out || !s.expired));
        if (s.gone) {
                json_object_set_new(r, "sweep_seconds", json_real((double) (s.t_gone - s.t_expire) / 1e9));
                json_object_set_new(r, "removed", json_integer(s.removed_after - s.removed_before));
                json_object_set_new(r, "stored_before", json_integer(s.stored_before));
                json_object_set_new(r, "stored_after", json_integer(s.stored_after));
                json_object_set_new(r, "daemon_last_sweep_us", json_integer(s.last_sweep_us));
        }
        json_t *b = json_object();
        json_add_latency(b, &s.before);
        json_object_set_new(b, "requests", json_integer((json_int_t) s.before_done));
        json_object_set_new(r, "before_expiry", b);
        print_json(r);
        free(s.before.v);
        int rc = e.rec_errors > 0 || !s.gone ? 2 : 0;
        engine_free(&e);
        return rc;
}

/* ---- one blocking request (wait, coldstart) ---- */

static int hello_on(int fd) {
        static const char req[] = "{\"op\":\"hello\"}";
        uint8_t frame[4 + sizeof req - 1] = { 0, 0, 0, sizeof req - 1 };
        uint8_t hdr[4], body[4096];

        memcpy(frame + 4, req, sizeof req - 1);
        if (send(fd, frame, sizeof frame, MSG_NOSIGNAL) != (ssize_t) sizeof frame)
                return -1;
        if (wire_recv_all(fd, hdr, 4, WIRE_NO_DEADLINE) < 0)
                return -1;
        size_t n = wire_get_header(hdr);
        if (n == 0 || n > sizeof body || wire_recv_all(fd, body, n, WIRE_NO_DEADLINE) < 0)
                return -1;
        return memmem(body, n, "\"ok\":true", 9) ? 0 : -1;
}

static int cmd_wait(const struct opts *o) {
        uint64_t deadline = mono_ns() + (uint64_t) (o->timeout * 1e9);
        for (;;) {
                int fd = unix_connect(o->socket, false);
                if (fd >= 0) {
                        int r = hello_on(fd);
                        close(fd);
                        if (r == 0)
                                return 0;
                }
                if (mono_ns() > deadline)
                        die("%s: no answer to hello within %.0f s", o->socket, o->timeout);
                usleep(20000);
        }
}

static int cmd_coldstart(const struct opts *o) {
        struct stat st;
        /* systemd-socket-activate binds first; the daemon starts on our
         * connection. */
        uint64_t deadline = mono_ns() + (uint64_t) (o->timeout * 1e9);
        while (stat(o->socket, &st) < 0) {
                if (mono_ns() > deadline)
                        die("%s does not appear", o->socket);
                usleep(5000);
        }
        usleep(100000); /* let systemd-socket-activate reach its poll() */
        uint64_t t0 = mono_ns();
        int fd = unix_connect(o->socket, false);
        if (fd < 0)
                die("%s: %m", o->socket);
        uint64_t t1 = mono_ns();
        if (hello_on(fd) < 0)
                die("no answer to hello");
        uint64_t t2 = mono_ns();
        close(fd);
        json_t *r = json_pack("{s:f, s:f}", "cold_start_ms", (double) (t2 - t0) / 1e6, "connect_ms",
                              (double) (t1 - t0) / 1e6);
        print_json(r);
        return 0;
}

/* ---- command line ---- */

static void usage(void) {
        fputs("usage:\n"
              "  latch-bench load --socket PATH [--proto latch|redis]\n"
              "                   --op validate|token|verify|login|hello|get|set [--token JWT]\n"
              "                   [--clients N] [--depth D] [--duration S] [--warmup S] [--ids FILE]\n"
              "                   [--keys N] [--service S] [--password P] [--label L]\n"
              "  latch-bench sweep --socket PATH --ids FILE --expire-at UNIXTIME --remaining N [--clients N]\n"
              "                    [--timeout S]\n"
              "  latch-bench crypto [--duration S]\n"
              "  latch-bench ed25519 [--count N] [--bytes N]\n"
              "  latch-bench argon2 [--runs N]\n"
              "  latch-bench users FILE COUNT PASSWORD\n"
              "  latch-bench populate DIR COUNT --ids FILE [--sample N] [--service S] [--users N]\n"
              "                       --expire-at UNIXTIME [--idle-timeout S] [--last-seen-ahead S]\n"
              "  latch-bench coldstart --socket PATH [--timeout S]\n"
              "  latch-bench wait --socket PATH [--timeout S]\n",
              stderr);
        exit(2);
}

static unsigned parse_uint(const char *s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || v > UINT32_MAX)
                die("not a number: '%s'", s);
        return (unsigned) v;
}

static double parse_double(const char *s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || *end || v < 0)
                die("not a number: '%s'", s);
        return v;
}

int main(int argc, char **argv) {
        struct opts o = { .proto = PROTO_LATCH, .op = OP_VALIDATE, .clients = 16, .depth = 1, .duration = 5,
                          .warmup = 1, .keys = 1000, .service = "bench-login", .password = "bench-password",
                          .timeout = 20 };
        const char *ids = NULL;
        unsigned users = 100;
        uint64_t sample = 0;
        int64_t idle = 8 * 3600, ahead = 0;
        unsigned runs = 7, count = 1000, bytes = 300;
        enum { ARG_PROTO = 0x100, ARG_OP, ARG_SOCKET, ARG_CLIENTS, ARG_DEPTH, ARG_DURATION, ARG_WARMUP, ARG_IDS,
               ARG_KEYS, ARG_SERVICE, ARG_PASSWORD, ARG_LABEL, ARG_EXPIRE_AT, ARG_REMAINING, ARG_TIMEOUT, ARG_USERS,
               ARG_SAMPLE, ARG_IDLE, ARG_AHEAD, ARG_RUNS, ARG_TOKEN, ARG_COUNT, ARG_BYTES };
        static const struct option longopts[] = {
                { "proto", required_argument, NULL, ARG_PROTO },
                { "op", required_argument, NULL, ARG_OP },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "clients", required_argument, NULL, ARG_CLIENTS },
                { "depth", required_argument, NULL, ARG_DEPTH },
                { "duration", required_argument, NULL, ARG_DURATION },
                { "warmup", required_argument, NULL, ARG_WARMUP },
                { "ids", required_argument, NULL, ARG_IDS },
                { "keys", required_argument, NULL, ARG_KEYS },
                { "service", required_argument, NULL, ARG_SERVICE },
                { "password", required_argument, NULL, ARG_PASSWORD },
                { "label", required_argument, NULL, ARG_LABEL },
                { "expire-at", required_argument, NULL, ARG_EXPIRE_AT },
                { "remaining", required_argument, NULL, ARG_REMAINING },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "users", required_argument, NULL, ARG_USERS },
                { "sample", required_argument, NULL, ARG_SAMPLE },
                { "idle-timeout", required_argument, NULL, ARG_IDLE },
                { "last-seen-ahead", required_argument, NULL, ARG_AHEAD },
                { "runs", required_argument, NULL, ARG_RUNS },
                { "token", required_argument, NULL, ARG_TOKEN },
                { "count", required_argument, NULL, ARG_COUNT },
                { "bytes", required_argument, NULL, ARG_BYTES },
                {}
        };

        if (argc < 2)
                usage();
        const char *cmd = argv[1];
        optind = 2;
        int c;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case ARG_PROTO:
                        o.proto = streq(optarg, "redis") ? PROTO_REDIS : PROTO_LATCH;
                        break;
                case ARG_OP: {
                        bool found = false;
                        for (unsigned i = 0; i < ELEMENTSOF(op_names); i++)
                                if (streq(optarg, op_names[i])) {
                                        o.op = (enum op) i;
                                        found = true;
                                }
                        if (!found)
                                die("unknown op '%s'", optarg);
                        break;
                }
                case ARG_SOCKET:
                        o.socket = optarg;
                        break;
                case ARG_CLIENTS:
                        o.clients = parse_uint(optarg);
                        break;
                case ARG_DEPTH:
                        o.depth = parse_uint(optarg);
                        break;
                case ARG_DURATION:
                        o.duration = parse_double(optarg);
                        break;
                case ARG_WARMUP:
                        o.warmup = parse_double(optarg);
                        break;
                case ARG_IDS:
                        o.ids_file = ids = optarg;
                        break;
                case ARG_KEYS:
                        o.keys = parse_uint(optarg);
                        break;
                case ARG_SERVICE:
                        o.service = optarg;
                        break;
                case ARG_PASSWORD:
                        o.password = optarg;
                        break;
                case ARG_LABEL:
                        o.label = optarg;
                        break;
                case ARG_EXPIRE_AT:
                        o.expire_at = parse_double(optarg);
                        break;
                case ARG_REMAINING:
                        o.remaining = parse_uint(optarg);
                        break;
                case ARG_TIMEOUT:
                        o.timeout = parse_double(optarg);
                        break;
                case ARG_USERS:
                        users = parse_uint(optarg);
                        break;
                case ARG_SAMPLE:
                        sample = parse_uint(optarg);
                        break;
                case ARG_IDLE:
                        idle = parse_uint(optarg);
                        break;
                case ARG_AHEAD:
                        ahead = parse_uint(optarg);
                        break;
                case ARG_RUNS:
                        runs = parse_uint(optarg);
                        break;
                case ARG_TOKEN:
                        o.token = optarg;
                        if (strlen(o.token) > 8192 || strpbrk(o.token, "\"\\"))
                                die("--token: not a token");
                        break;
                case ARG_COUNT:
                        count = parse_uint(optarg);
                        break;
                case ARG_BYTES:
                        bytes = parse_uint(optarg);
                        break;
                default:
                        usage();
                }
        }
        if (sodium_init() < 0)
                die("sodium_init failed");
        if ((o.op == OP_GET || o.op == OP_SET) && o.proto != PROTO_REDIS)
                die("get and set are Redis ops: add --proto redis");
        if (o.proto == PROTO_REDIS && o.op != OP_GET && o.op != OP_SET)
                die("--proto redis takes --op get or set");

        if (streq(cmd, "load") || streq(cmd, "sweep") || streq(cmd, "wait") || streq(cmd, "coldstart")) {
                if (!o.socket || optind != argc)
                        usage();
                if (streq(cmd, "load"))
                        return cmd_load(&o);
                if (streq(cmd, "wait"))
                        return cmd_wait(&o);
                if (streq(cmd, "coldstart"))
                        return cmd_coldstart(&o);
                o.op = OP_VALIDATE;
                o.label = o.label ? o.label : "sweep";
                return cmd_sweep(&o);
        }
        if (o.op == OP_VERIFY && !o.token)
                die("--op verify needs --token");
        if (streq(cmd, "crypto"))
                return cmd_crypto(o.duration);
        if (streq(cmd, "ed25519"))
                return cmd_ed25519(count, bytes);
        if (streq(cmd, "argon2"))
                return cmd_argon2(MAX(runs, 1u));
        if (streq(cmd, "users")) {
                if (argc - optind != 3)
                        usage();
                return cmd_users(argv[optind], parse_uint(argv[optind + 1]), argv[optind + 2]);
        }
        if (streq(cmd, "populate")) {
                if (argc - optind != 2 || !ids || o.expire_at <= 0)
                        usage();
                return cmd_populate(argv[optind], parse_uint(argv[optind + 1]), o.service, MAX(users, 1u),
                                    o.expire_at, idle, ids, sample, ahead);
        }
        usage();
}
