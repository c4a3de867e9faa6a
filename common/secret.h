/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Helpers for secrets (passwords, session ids, private keys). Every copy of a
 * secret lives in memory that is wiped before it is released.
 */

#include <errno.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* Wipes and frees a NUL-terminated string; accepts NULL. */
static inline void secret_free(char *s) {
        if (!s)
                return;
        sodium_memzero(s, strlen(s));
        free(s);
}
static inline void secret_freep(char **s) { secret_free(*s); }
#define _cleanup_secret_ _cleanup_(secret_freep)

/* For json_set_alloc_funcs(malloc, secret_json_free): Jansson copies what it
 * parses and dumps (passwords, codes, enrollment keys) into blocks of its
 * own, its lexer's among them, and frees them unwiped; this wipes each block
 * (all of it) first. */
static inline void secret_json_free(void *p) {
        if (!p)
                return;
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
}

/* strndup() for a secret: the copy must be released with secret_free(). */
static inline char *secret_strndup(const char *s, size_t n) {
        char *r = malloc(n + 1);
        if (!r)
                return NULL;
        memcpy(r, s, n);
        r[n] = '\0';
        return r;
}

/* Makes room for `more` bytes past the `len` in use of a buffer that holds
 * secrets (*cap bytes at *buf, which may be NULL): a larger one (twice the
 * size, or what is needed and 256 more) takes the bytes in use, and the old
 * one is wiped and freed, where realloc() could leave a copy behind. Returns
 * 0, or -ENOMEM with the buffer unchanged. */
static inline int secret_buf_reserve(char **buf, size_t *cap, size_t len, size_t more) {
        if (*cap - len >= more)
                return 0;

        size_t m = MAX(*cap * 2, len + more + 256);
        char *d = malloc(m);
        if (!d)
                return -ENOMEM;
        if (*buf) {
                memcpy(d, *buf, len);
                sodium_memzero(*buf, *cap);
                free(*buf);
        }
        *buf = d;
        *cap = m;
        return 0;
}

/* Constant-time equality of two buffers of the same length. */
static inline bool secret_equal(const void *a, const void *b, size_t n) {
        return sodium_memcmp(a, b, n) == 0;
}
