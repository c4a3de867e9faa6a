/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A stand-in for latchd's plugin host, for plugin tests: logs go to stderr
 * and into a buffer the test can search, the clock is pinned, request items
 * come from a struct, claims go into a Jansson object and the key-value store
 * answers -ENOTSUP. Nothing here depends on the daemon.
 *
 * A conversation is driven by hand: the plugin's call returns
 * LATCH_INCOMPLETE with its prompts in req.prompts; test_req_answer() hands
 * the answers to the next call (and drops those prompts, as the real host
 * does); the test calls the same entry point again. A password change calls
 * test_password() once per pass, as the host's password stack would.
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
        /* LATCH_ITEM_PASSWORD and LATCH_ITEM_OLDPASSWORD: a test may point
         * them at its own strings; host->set_item() points them at copies it
         * owns (password_copy, oldpassword_copy), wiped when replaced and by
         * test_req_done(). */
        const char *password;
        const char *oldpassword;
        char *password_copy;
        char *oldpassword_copy;
        unsigned n_set_items; /* how many times host->set_item() succeeded */
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

/* A request for `user` with `password` on service "test" (op "authenticate"). */
struct latch_req test_req(const char *user, const char *password);
/* A password change for `user` on service "test": op "passwd", no
 * LATCH_ITEM_PASSWORD nor LATCH_ITEM_OLDPASSWORD yet. */
struct latch_req test_req_passwd(const char *user);
/* Frees what the request owns (claims, prompts, item copies, the set_data
 * slot through its cleanup). */
void test_req_done(struct latch_req *req);

/* Continues a conversation: drops the prompts the last call posted and
 * makes answers[0..n-1] (borrowed; n at most LATCH_PROMPTS_MAX, 0 for none)
 * what host->answer() returns in the next call. */
void test_req_answer(struct latch_req *req, int n, const char *const *answers);

/* Calls plugin->password(state, req, flags) as the host would: returns
 * LATCH_MODULE_UNKNOWN when the plugin's struct (its `size`) predates
 * password() or the entry point is NULL. */
int test_password(const struct latch_plugin *plugin, void *state, struct latch_req *req,
                  int flags);

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
