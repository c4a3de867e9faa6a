/* SPDX-License-Identifier: MIT */
/*
 * validate-loop SOCKET PROGRESS_FILE < sessions
 *
 * Loops `validate` through liblatch over the sessions read from stdin (one a
 * line) until SIGTERM, on one connection that liblatch re-opens as needed.
 * After every call it writes "OK FAILED\n" at the start of PROGRESS_FILE, so
 * that the test can see progress while latchd restarts. Every failed call is
 * described on stderr (error name and message; never the session). Exits 0
 * when no call failed, 1 otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <latch/latch.h>

#define MAX_SESSIONS 64

static volatile sig_atomic_t stop;

static void on_term(int sig) {
        (void) sig;
        stop = 1;
}

int main(int argc, char *argv[]) {
        char *sessions[MAX_SESSIONS];
        size_t n = 0;
        char line[512];
        unsigned long ok = 0, failed = 0;
        latch_client *c = NULL;

        if (argc != 3) {
                fprintf(stderr, "usage: validate-loop SOCKET PROGRESS_FILE < sessions\n");
                return 2;
        }
        while (n < MAX_SESSIONS && fgets(line, sizeof line, stdin)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (line[0] && !(sessions[n++] = strdup(line)))
                        return 2;
        }
        if (n == 0) {
                fprintf(stderr, "validate-loop: no session on stdin\n");
                return 2;
        }
        int pfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (pfd < 0) {
                fprintf(stderr, "validate-loop: %s: %s\n", argv[2], strerror(errno));
                return 2;
        }
        struct sigaction sa = { .sa_handler = on_term };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (latch_client_new(argv[1], &c) != LATCH_OK)
                return 2;
        /* A restart takes latchd's start-up time; on a loaded machine that
         * can be seconds. The call waits in the socket's backlog meanwhile. */
        latch_client_set_timeout(c, 30000);

        for (size_t i = 0; !stop; i = (i + 1) % n) {
                latch_reply *reply = NULL;
                int r = latch_validate(c, sessions[i], NULL, &reply);
                if (r == LATCH_OK && latch_reply_string(reply, "user"))
                        ok++;
                else {
                        failed++;
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        fprintf(stderr, "validate-loop[%d]: %lld.%06ld: call %lu failed: %s: %s\n", (int) getpid(),
                                (long long) ts.tv_sec, ts.tv_nsec / 1000, ok + failed, latch_error_name(r),
                                latch_last_message(c));
                }
                latch_reply_free(reply);

                char buf[64];
                int len = snprintf(buf, sizeof buf, "%lu %lu\n", ok, failed);
                if (pwrite(pfd, buf, (size_t) len, 0) != len)
                        return 2;
        }
        printf("ok=%lu failed=%lu\n", ok, failed);
        latch_client_free(c);
        for (size_t i = 0; i < n; i++)
                free(sessions[i]);
        close(pfd);
        return failed == 0 ? 0 : 1;
}
