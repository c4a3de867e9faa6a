/* SPDX-License-Identifier: MIT */
/*
 * bindings-liblatch: liblatch's side of bench/bindings.py. N threads, one
 * latch_client each, call latch_validate() in a loop for a while; prints
 * {"ops_per_s": X} counted after a warm-up of a tenth of the duration.
 *
 *   bindings-liblatch SOCKET SESSION THREADS SECONDS
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "latch/latch.h"

static const char *socket_path, *session;
static atomic_bool stop;
static atomic_ulong total;
static atomic_int failed;

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *worker(void *arg) {
        latch_client *c = NULL;

        (void) arg;
        if (latch_client_new(socket_path, &c) != LATCH_OK) {
                atomic_store(&failed, 1);
                return NULL;
        }
        while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
                if (latch_validate(c, session, NULL, NULL) != LATCH_OK) {
                        fprintf(stderr, "validate: %s\n", latch_last_message(c));
                        atomic_store(&failed, 1);
                        break;
                }
                atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
        }
        latch_client_free(c);
        return NULL;
}

int main(int argc, char **argv) {
        if (argc != 5) {
                fprintf(stderr, "usage: %s SOCKET SESSION THREADS SECONDS\n", argv[0]);
                return 2;
        }
        socket_path = argv[1];
        session = argv[2];
        int n = atoi(argv[3]);
        double seconds = atof(argv[4]);
        if (n < 1 || n > 1024 || seconds <= 0) {
                fprintf(stderr, "bad THREADS or SECONDS\n");
                return 2;
        }

        pthread_t *t = calloc((size_t) n, sizeof(*t));
        if (!t)
                return 1;
        for (int i = 0; i < n; i++)
                if (pthread_create(&t[i], NULL, worker, NULL) != 0)
                        return 1;

        usleep((useconds_t) (seconds * 100000)); /* a tenth: warm-up */
        unsigned long base = atomic_load(&total);
        double t0 = mono();
        usleep((useconds_t) (seconds * 1000000));
        unsigned long done = atomic_load(&total);
        double t1 = mono();
        atomic_store(&stop, true);
        for (int i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        free(t);
        if (atomic_load(&failed))
                return 1;
        printf("{\"ops_per_s\": %.0f}\n", (double) (done - base) / (t1 - t0));
        return 0;
}
