/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A stand-in for latchd's plugin host, for plugin tests: logs go to stderr
 * and into a buffer the test can search, the clock is pinned, request items
 * come from a struct, claims go into a Jansson object and the key-value store
 * answers -ENOTSUP. Nothing here depends on the daemon.
 */

#include <jansson.h>
#include <stdbool.h>

#include <latch/plugin.h>

#define TEST_HOST_NOW INT64_C(1700000000)

struct latch_ctx {
        const char *name;
};

/* One request. Claims are collected in `claims` (owned; see test_req_done()). */
struct latch_req {
        const char *service;
        const char *user;
        const char *password;
        const char *remote;
        const char *op;
        json_t *claims;

        /* The conversation (ABI 1.1): what the plugin posted, and the answers
         * a test hands to the call that continues it. */
        int styles[LATCH_PROMPTS_MAX];
        char *prompts[LATCH_PROMPTS_MAX];
        int n_prompts;
        const char *answers[LATCH_PROMPTS_MAX];
        int n_answers;
        void *data;
        void (*cleanup)(void *data);
};

extern const struct latch_host test_host;

/* A request for `user` with `password` on service "test". */
struct latch_req test_req(const char *user, const char *password);
void test_req_done(struct latch_req *req);

/* dlopen()s `path` (RTLD_NOW|RTLD_LOCAL), calls its entry with test_host and
 * checks the returned struct's size and ABI. Returns 0, or -1 after printing
 * why. *ret_dl is the handle to dlclose(). */
int test_host_load(const char *path, void **ret_dl, const struct latch_plugin **ret_plugin);

/* Runs `nm -D --defined-only` on `path`: returns the number of defined dynamic
 * symbols other than latch_plugin_entry (and the version node LATCH_PLUGIN_1),
 * printing each, and sets *ret_has_entry; -1 if nm cannot run. */
int test_host_foreign_exports(const char *path, bool *ret_has_entry);

/* The captured log: empties it, or counts lines containing `needle`. */
void test_host_log_reset(void);
unsigned test_host_log_count(const char *needle);
