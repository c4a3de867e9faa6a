/* SPDX-License-Identifier: MIT */
/* latch-bench: clocks, allocation that dies on failure, JSON output. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


#include "bench.h"

uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

double real_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("latch-bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

void *xmalloc(size_t n) {
        void *p = malloc(n ? n : 1);
        if (!p)
                die("out of memory");
        return p;
}

void *xrealloc(void *p, size_t n) {
        p = realloc(p, n ? n : 1);
        if (!p)
                die("out of memory");
        return p;
}

void print_json(json_t *o) {
        char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (!t)
                die("out of memory");
        puts(t);
        fflush(stdout);
        free(t);
        json_decref(o);
}
