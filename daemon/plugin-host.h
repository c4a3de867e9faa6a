/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The plugin host: loads plugins (shared objects speaking <latch/plugin.h>),
 * opens the stack lines that name them, offers them the host services
 * (logging, clock, request items, claims, the per-plugin key-value store) and
 * owns the request object they are called with.
 *
 * Each plugin file is dlopen()ed once per host (RTLD_NOW | RTLD_LOCAL), its
 * entry called once, and kept loaded until plugin_host_free(), however many
 * lines name it.
 *
 * Threads: plugin_line_open()/plugin_host_load() may run on any thread,
 * concurrently with calls on lines already open. plugin_line_call() and
 * plugin_line_outcome() may run concurrently on the same line (the plugin ABI
 * asks plugins to cope). Closing a line or freeing the host must not race
 * with calls on it.
 *
 * Errors are negative errno values; functions that can fail for a reason a
 * human must read also return a malloc()ed one-line message (never holding a
 * secret) which the caller logs once.
 */

#include <jansson.h>
#include <stdint.h>

#include <latch/plugin.h>

#include "store.h"

/* Loaded plugins, the store and the clock. */
struct plugin_host;
/* One opened stack line: a plugin and the state its open() returned. */
struct plugin_line;

enum plugin_call_type {
        PLUGIN_CALL_AUTH = 0,
        PLUGIN_CALL_ACCOUNT = 1,
};

/* Makes a host. `plugin_dir` (copied) is where bare names are looked up as
 * plugin_dir/NAME.so. `st` (borrowed; may be NULL, in which case kv_get and
 * kv_update answer -ENOTSUP) must outlive the host. Returns 0, -EINVAL or
 * -ENOMEM. */
int plugin_host_new(const char *plugin_dir, store *st, struct plugin_host **ret);

/* Frees the host and dlclose()s every plugin. Every line must have been
 * closed before. NULL is fine. */
void plugin_host_free(struct plugin_host *h);

/* For tests: replaces time(NULL) as the clock plugins see through
 * host->now(). `now` NULL restores the wall clock. Not thread-safe against
 * calls in flight: set it before opening lines. */
void plugin_host_set_clock(struct plugin_host *h, int64_t (*now)(void *userdata), void *userdata);

/* Resolves `plugin` (a bare name of [A-Za-z0-9_-] → plugin_dir/NAME.so, or an
 * absolute path; relative paths and ".." are refused), loads it unless loaded
 * already, and checks its entry symbol, struct size, name and ABI (the major
 * must equal LATCH_PLUGIN_ABI_MAJOR; a newer minor is fine).
 *
 * Returns 0, or a negative errno and a malloc()ed message in *ret_error (may
 * be NULL when the caller does not want one):
 *   -EINVAL           a bad name
 *   -ENOENT           no such file
 *   -ELIBBAD          dlopen() failed otherwise
 *   -ENOEXEC          no entry symbol, or a malformed struct latch_plugin
 *   -EPROTONOSUPPORT  another ABI major, or the entry refused this host
 *   -ENOMEM
 * (An addition to the task's API: --check-config and the tests use it to load
 * a plugin without opening a line.) */
int plugin_host_load(struct plugin_host *h, const char *plugin, char **ret_error);

/* Loads `plugin` as plugin_host_load() does, then calls its open() with the
 * line's arguments (borrowed during the call). On success *ret is the new
 * line. On failure returns a negative errno (the plugin's own from open(),
 * or one listed above) and, when ret_error is not NULL, a malloc()ed one-line
 * message naming the plugin; error lines the plugin logs during open() become
 * that message instead of being logged, so the caller logs the reason once. */
int plugin_line_open(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                     struct plugin_line **ret, char **ret_error);

/* Calls the plugin's close() and frees the line. NULL is fine. */
void plugin_line_close(struct plugin_line *l);

/* The plugin's short name: the file's basename without ".so". It names the
 * plugin in logs and is its key-value namespace. Borrowed from the line. */
const char *plugin_line_name(const struct plugin_line *l);

/* Calls auth (type PLUGIN_CALL_AUTH, 0) or account (PLUGIN_CALL_ACCOUNT, 1).
 * Returns an enum latch_result: LATCH_MODULE_UNKNOWN when the plugin lacks
 * that entry point, LATCH_SYSTEM_ERR (logged) when it returns a value outside
 * 0.._LATCH_RESULT_MAX-1, or a bad type or NULL argument is given. */
int plugin_line_call(struct plugin_line *l, int type, struct latch_req *req);

/* Tells the plugin the stack's final result for a request this line took
 * part in (a no-op when it has no outcome()). */
void plugin_line_outcome(struct plugin_line *l, struct latch_req *req, int result);

/* Makes a request. Every string is copied; the password copy is wiped when
 * the request is freed. `remote` may be NULL; the others must not be.
 * Returns 0, -EINVAL or -ENOMEM. */
int latch_req_new(const char *op, const char *service, const char *user, const char *password,
                  const char *remote, struct latch_req **ret);

/* Frees a request, wiping the password. NULL is fine. */
void latch_req_free(struct latch_req *r);

/* The claims plugins added, as a JSON object (never NULL for a request).
 * Borrowed: lives as long as the request. Plugins may add claims concurrently
 * through the host services (they lock the request), but read the object
 * only once the plugins are done with the request. */
json_t *latch_req_claims(struct latch_req *r);
