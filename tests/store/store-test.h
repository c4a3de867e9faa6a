/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the tests of the LMDB session store (daemon/store.c) share:
 * test-store.c (sessions, consistency, crashes, sweeps, growth, kv, size,
 * slides) and test-store-files.c (permissions, a full disk, hostile files).
 *
 * Each test works in its own fresh directory under $TMPDIR (or /tmp).
 * STORE_TEST_SEED fixes the seed of the randomized tests; the seed in use is
 * printed so that a failure can be replayed.
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "macro.h"
#include "store.h"

static uint64_t seed;

/* ---- helpers ---- */

static inline uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

static inline uint64_t rnd_below(uint64_t *state, uint64_t n) {
        return splitmix64(state) % n;
}

/* A 32-byte key as the daemon would make it: a hash. */
static inline void make_key(uint8_t key[STORE_KEY_SIZE], uint64_t n) {
        crypto_generichash(key, STORE_KEY_SIZE, (const unsigned char *) &n, sizeof n, NULL, 0);
}

/* A 22-char base64url handle of 128 bits derived from n. */
static inline void make_handle(char handle[STORE_HANDLE_LEN + 1], uint64_t n) {
        uint8_t bin[16];
        char b64[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        uint64_t m = n ^ 0x5A5A5A5A5A5A5A5Aull;

        crypto_generichash(bin, sizeof bin, (const unsigned char *) &m, sizeof m, NULL, 0);
        sodium_bin2base64(b64, sizeof b64, bin, sizeof bin, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        assert_int_equal(strlen(b64), STORE_HANDLE_LEN);
        memcpy(handle, b64, STORE_HANDLE_LEN + 1);
}

static void make_info(struct session_info *info, uint64_t n, const char *user, const char *service,
                      const char *claims, int64_t created, int64_t expires, int64_t idle) {
        *info = (struct session_info) {
                .user = user,
                .service = service,
                .claims_json = claims,
                .created_at = created,
                .last_seen_at = created,
                .expires_at = expires,
                .idle_timeout = idle,
                .peer_uid = 1000,
        };
        make_handle(info->handle, n);
}

static inline char *make_dir(void) {
        const char *tmp = getenv("TMPDIR") ?: "/tmp";
        char *d;

        assert_true(asprintf(&d, "%s/latch-store-test-XXXXXX", tmp) > 0);
        assert_non_null(mkdtemp(d));
        assert_int_equal(chmod(d, 0700), 0);
        return d;
}

static inline void remove_dir(char *d) {
        char *p;

        if (!d)
                return;
        for (size_t i = 0; i < 2; i++) {
                assert_true(asprintf(&p, "%s/%s", d, i == 0 ? "sessions.mdb" : "sessions.mdb-lock") > 0);
                (void) unlink(p);
                free(p);
        }
        (void) rmdir(d);
        free(d);
}

static inline store *open_store(const char *dir, size_t map_size, bool no_sync) {
        struct store_options o = { .initial_map_size = map_size, .no_sync = no_sync };
        store *s = NULL;

        assert_int_equal(store_open_with_options(dir, &o, &s), 0);
        assert_non_null(s);
        return s;
}

/* A copy of a session, owned by the test. */
struct got {
        unsigned calls;
        char handle[STORE_HANDLE_LEN + 1];
        char user[300], service[300], claims[512];
        int64_t created_at, last_seen_at, expires_at, idle_timeout;
        uint32_t peer_uid;
};

static inline int got_fn(void *userdata, const struct session_info *s) {
        struct got *g = userdata;

        g->calls++;
        memcpy(g->handle, s->handle, sizeof g->handle);
        snprintf(g->user, sizeof g->user, "%s", s->user);
        snprintf(g->service, sizeof g->service, "%s", s->service);
        snprintf(g->claims, sizeof g->claims, "%s", s->claims_json);
        g->created_at = s->created_at;
        g->last_seen_at = s->last_seen_at;
        g->expires_at = s->expires_at;
        g->idle_timeout = s->idle_timeout;
        g->peer_uid = s->peer_uid;
        return 0;
}

static inline int count_fn(void *userdata, const struct session_info *s) {
        (*(size_t *) userdata)++;
        return 0;
}

static inline size_t list_count(store *s, const char *user, const char *service, int64_t now) {
        size_t n = 0;

        assert_int_equal(store_session_list(s, user, service, now, count_fn, &n), 0);
        return n;
}

static inline size_t list_count_nocmocka(store *s, const char *user) {
        size_t n = 0;

        if (store_session_list(s, user, NULL, 0, count_fn, &n) != 0)
                return SIZE_MAX;
        return n;
}

static inline int stop_fn(void *userdata, const struct session_info *s) {
        (*(size_t *) userdata)++;
        return 7;
}

static inline int noop_fn(void *userdata, const struct session_info *s) {
        return 0;
}

/* Runs the tests with the seed of STORE_TEST_SEED, or a fresh one it prints. */
static inline int store_test_main(const struct CMUnitTest *tests, size_t n, const char *name) {
        const char *e = getenv("STORE_TEST_SEED");

        if (sodium_init() < 0)
                return 1;
        seed = e ? strtoull(e, NULL, 0) : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        print_message("%s: STORE_TEST_SEED=%" PRIu64 "\n", name, seed);
        return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}
