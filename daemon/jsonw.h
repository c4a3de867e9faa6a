/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A JSON writer for replies and token claims built without Jansson
 * (fastpath.c, tokens.c): it writes what json_dumpb(JSON_COMPACT) of
 * Jansson 2.14 writes for the same values. Strings: '"', '\\' and control
 * characters escaped (\b \f \n \r \t, else \u00XX upper-case), everything
 * else as it is, DEL and UTF-8 included; integers as %lld.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

/* Writes into room reserved beforehand: the sizes are bounded before
 * anything is written, so no write is checked. */
struct out {
        uint8_t *p;
        size_t n;
};

static inline void put_mem(struct out *w, const void *s, size_t n) {
        memcpy(w->p + w->n, s, n);
        w->n += n;
}
#define put_lit(w, s) put_mem(w, s, sizeof(s) - 1)

#define I64_MAX_CHARS 20

static inline void put_i64(struct out *w, int64_t v) {
        char tmp[I64_MAX_CHARS];
        size_t i = sizeof tmp;
        uint64_t u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

        do {
                tmp[--i] = (char) ('0' + u % 10);
                u /= 10;
        } while (u > 0);
        if (v < 0)
                tmp[--i] = '-';
        put_mem(w, tmp + i, sizeof tmp - i);
}

#define JSTR_MAX(n) WIRE_JSON_STRING_MAX(n)

/* The reply's room was reserved with JSTR_MAX(). */
static inline void put_jstr(struct out *w, const char *s, size_t n) {
        w->n = (size_t) ((uint8_t *) wire_json_string((char *) w->p + w->n, s, n) - w->p);
}

