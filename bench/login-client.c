/* SPDX-License-Identifier: MIT */
/*
 * latch-bench-login: the C client of bench/totp-login.py. For each line
 * "USER CODE" on stdin it logs USER in once on each of the three services
 * of that script, in turn, on one liblatch connection: bench-permit (one
 * request), bench-ask and bench-totp (login, the challenge, respond with
 * CODE), and times each from the call to its answer (the sessions are
 * left, as the script's Python client leaves its own). Exits 1 at the
 * first answer that is not the expected one.
 *
 * It also times the floor of one more request in the same rhythm: a
 * `hello` through latchd sent right after the bench-permit login's answer
 * and, with REDIS_SOCKET, a Redis PING over that Unix socket right after
 * the bench-ask login's (0 without). A step that asks the client costs at
 * least one such round trip. Each line: "PERMIT ASK TOTP HELLO PING" (µs).
 *
 *   latch-bench-login SOCKET [REDIS_SOCKET] < users
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "latch/latch.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int hello(latch_client *c, double *ret_us) {
        double t0 = now_us();

        if (latch_hello(c, NULL) != LATCH_OK) {
                fprintf(stderr, "hello: %s\n", latch_last_message(c));
                return -1;
        }
        *ret_us = now_us() - t0;
        return 0;
}

static int redis_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof sa.sun_path)
                return -1;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                close(fd);
                fd = -1;
        }
        return fd;
}

/* PING and its "+PONG\r\n", as redis-benchmark -c 1 sends it. */
static int redis_ping(int fd, double *ret_us) {
        char buf[16];
        size_t got = 0;
        double t0 = now_us();

        if (write(fd, "PING\r\n", 6) != 6)
                return -1;
        while (got < 7) {
                ssize_t k = read(fd, buf + got, sizeof buf - got);
                if (k <= 0)
                        return -1;
                got += (size_t) k;
        }
        *ret_us = now_us() - t0;
        return got == 7 && memcmp(buf, "+PONG\r\n", 7) == 0 ? 0 : -1;
}

/* One login; with `code`, the challenge it must answer is responded to. */
static int login(latch_client *c, const char *service, const char *user, const char *code, double *ret_us) {
        latch_reply *r = NULL;
        double t0 = now_us();
        int k = latch_login(c, service, user, "x", NULL, false, NULL, &r);

        if (code) {
                if (k != LATCH_ERR_CHALLENGE) {
                        fprintf(stderr, "%s %s: expected a challenge, got %s\n", service, user, latch_error_name(k));
                        return -1;
                }
                /* Copied: the challenge is the handle's until its next call. */
                const char *id = latch_reply_string(latch_last_challenge(c), "conversation");
                char conversation[128];
                if (!id || (size_t) snprintf(conversation, sizeof conversation, "%s", id) >= sizeof conversation) {
                        fprintf(stderr, "%s %s: a challenge without a conversation\n", service, user);
                        return -1;
                }
                k = latch_respond(c, conversation, &code, 1, &r);
        }
        *ret_us = now_us() - t0;
        if (k != LATCH_OK) {
                fprintf(stderr, "%s %s: %s (%s)\n", service, user, latch_error_name(k), latch_last_message(c));
                return -1;
        }
        latch_reply_free(r);
        return 0;
}

int main(int argc, char **argv) {
        latch_client *c = NULL;
        char user[256], code[64];
        int redis = -1, rc = 0;

        if (argc != 2 && argc != 3) {
                fprintf(stderr, "usage: %s SOCKET [REDIS_SOCKET] < lines of USER CODE\n", argv[0]);
                return 2;
        }
        if (latch_client_new(argv[1], &c) != LATCH_OK || latch_client_connect(c) != LATCH_OK) {
                fprintf(stderr, "cannot connect to %s\n", argv[1]);
                return 1;
        }
        if (argc == 3 && (redis = redis_connect(argv[2])) < 0) {
                fprintf(stderr, "cannot connect to Redis at %s\n", argv[2]);
                latch_client_free(c);
                return 1;
        }
        while (scanf("%255s %63s", user, code) == 2) {
                double permit, ask, totp, h, ping = 0;
                if (login(c, "bench-permit", user, NULL, &permit) < 0 || hello(c, &h) < 0 ||
                    login(c, "bench-ask", user, code, &ask) < 0) {
                        rc = 1;
                        break;
                }
                if (redis >= 0 && redis_ping(redis, &ping) < 0) {
                        fprintf(stderr, "Redis PING failed\n");
                        rc = 1;
                        break;
                }
                if (login(c, "bench-totp", user, code, &totp) < 0) {
                        rc = 1;
                        break;
                }
                printf("%.1f %.1f %.1f %.1f %.1f\n", permit, ask, totp, h, ping);
        }
        if (redis >= 0)
                close(redis);
        latch_client_free(c);
        return rc;
}
