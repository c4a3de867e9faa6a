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
 * Isolation: after plugin_host_configure(), a line may instead be "isolated":
 * its plugin then runs in latch-worker processes (up to four per line for
 * calls, plus up to max_waiting kept for conversations waiting on their
 * client; spawned by latchd, or reached through a worker_socket), never in
 * latchd.
 * Each call on such a line has a deadline; a worker that misses it, crashes
 * or breaks the protocol is killed (or its connection dropped), the call
 * answers LATCH_AUTHINFO_UNAVAIL, and the next call gets a fresh worker.
 * In-process lines have no such guard: a thread cannot be killed, so a
 * plugin that hangs keeps its pool thread, and only the request-level
 * deadline answers the client. Isolate any plugin whose backend can hang.
 * (plugin-host.c is the host and its in-process lines; isolated lines are
 * plugin-isolation.c's, and plugin_host_configure() is defined there.)
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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <latch/plugin.h>

#include "stack-type.h"
#include "store.h"

struct plugin_config;

/* Loaded plugins, the store and the clock. */
struct plugin_host;
/* One opened stack line: a plugin and the state its open() returned. */
struct plugin_line;

/* Where the host services kv_get and kv_update keep a plugin's entries:
 * `ns` is the plugin's short name, the other arguments are the plugin's,
 * checked already. Either may be called from any thread. */
struct plugin_kv {
        int (*get)(void *userdata, const char *ns, const void *key, size_t keylen, void *buf, size_t *len);
        int (*update)(void *userdata, const char *ns, const void *key, size_t keylen, latch_kv_update_fn fn,
                      void *fn_userdata);
        void *userdata;
};

/* Makes a host. `plugin_dir` (copied) is where bare names are looked up as
 * plugin_dir/NAME.so. The key-value services go to `kv` (copied; NULL, or
 * NULL entries, make kv_get and kv_update answer -ENOTSUP); its userdata
 * must outlive the host. Returns 0, -EINVAL or -ENOMEM. latch-worker makes
 * its host this way, without a store: it links no LMDB. */
int plugin_host_new_kv(const char *plugin_dir, const struct plugin_kv *kv, struct plugin_host **ret);

/* plugin_host_new_kv() with latchd's store as the key-value store (in
 * plugin-kv.c). `st` (borrowed; may be NULL, in which case kv_get and
 * kv_update answer -ENOTSUP) must outlive the host. */
int plugin_host_new(const char *plugin_dir, store *st, struct plugin_host **ret);

/* Frees the host and dlclose()s every plugin. Every line must have been
 * closed before. Reaps worker processes of closed lines, giving each a
 * moment to exit before killing it. NULL is fine. */
void plugin_host_free(struct plugin_host *h);

/* Where each plugin runs, for lines opened from now on (lines open already
 * keep what they were opened with). `plugins` (n entries, from latchd.conf's
 * [plugin.NAME] sections; copied) sets per plugin name: timeout_ms (the
 * deadline of one isolated call; <= 0 means the default, 10 s), isolate (-1:
 * the default, which is yes for the plugin named "pam" and no for any other;
 * 0; 1), max_requests (an isolated worker is replaced after serving this
 * many calls, auth, account and outcome each counting one; 0 means the
 * default, 10000) and worker_socket (when not NULL:
 * the line is isolated and its workers are reached by connecting to this
 * Unix socket, one connection per worker, instead of being spawned).
 * `worker_path` (copied) is the latch-worker program to spawn; NULL means
 * $LATCH_WORKER when set, else the installed one (LATCH_WORKER_PATH).
 *
 * Until this is called, every line runs in-process (as tools and tests that
 * only load plugins want). Call it before loading stacks, and again with the
 * new config on reload. Not thread-safe against plugin_line_open() (both run
 * on latchd's loop thread). Returns 0, -EINVAL or -ENOMEM (then the previous
 * settings stay). */
int plugin_host_configure(struct plugin_host *h, const struct plugin_config *plugins, size_t n,
                          const char *worker_path);

/* Where the plugin host's own log lines and the plugins' host->log() lines
 * go: by default to log_fields() (log.h), formatted as "NAME: message" or
 * "NAME (service S, user U): message" with journal fields. latch-worker
 * installs a hook to forward the plugin's lines to latchd instead; tests use
 * it to look at them. `plugin` is the plugin's short name, `req` the
 * request or NULL, `message` the bare text (borrowed for the call). Set it
 * before opening lines; NULL restores the default. */
typedef void (*plugin_log_fn)(void *userdata, int priority, const char *plugin, const struct latch_req *req,
                              const char *message);
void plugin_host_set_log(struct plugin_host *h, plugin_log_fn fn, void *userdata);

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
 * --check-config and the tests use it to load a plugin without opening a
 * line. */
int plugin_host_load(struct plugin_host *h, const char *plugin, char **ret_error);

/* Loads `plugin` as plugin_host_load() does, then calls its open() with the
 * line's arguments (borrowed during the call). On success *ret is the new
 * line. On failure returns a negative errno (the plugin's own from open(),
 * or one listed above) and, when ret_error is not NULL, a malloc()ed one-line
 * message naming the plugin; error lines the plugin logs during open() become
 * that message instead of being logged, so the caller logs the reason once. */
int plugin_line_open(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                     struct plugin_line **ret, char **ret_error);

/* Calls the plugin's close() and frees the line. NULL is fine. An isolated
 * line closes its workers' connections (they run close() and exit) without
 * waiting for them: they are reaped later, and killed by plugin_host_free()
 * if still there. */
void plugin_line_close(struct plugin_line *l);

/* The plugin's short name: the file's basename without ".so". It names the
 * plugin in logs and is its key-value namespace. Borrowed from the line. */
const char *plugin_line_name(const struct plugin_line *l);

/* Whether the line's plugin runs in isolated worker processes. */
bool plugin_line_is_isolated(const struct plugin_line *l);

/* Whether the plugin has an outcome() entry point (latch-worker tells latchd,
 * so that lines without one cost no round trip). */
bool plugin_line_has_outcome(const struct plugin_line *l);

/* Calls the plugin's auth (STACK_AUTH), account (STACK_ACCOUNT) or, with
 * `flags` (enum latch_password_flag: one pass of a password change),
 * password (STACK_PASSWORD); `flags` is 0 for auth and account. Returns an
 * enum latch_result: LATCH_MODULE_UNKNOWN when the plugin lacks that entry
 * point (password() also when the plugin's struct predates ABI 1.2),
 * LATCH_SYSTEM_ERR (logged) when it returns a value outside
 * 0.._LATCH_RESULT_MAX-1, or a bad type, bad flags (a password call has
 * exactly one of LATCH_PRELIM_CHECK and LATCH_UPDATE_AUTHTOK, perhaps with
 * LATCH_CHANGE_EXPIRED_AUTHTOK) or NULL argument is given.
 *
 * On an isolated line: waits (up to the line's deadline) for an idle worker
 * of the line or starts one, sends the request and waits for the
 * answer until the deadline. Returns LATCH_AUTHINFO_UNAVAIL, after logging
 * why with the plugin's name, when no worker could be had, or the worker did
 * not answer in time (it is killed), crashed or broke the protocol (it is
 * replaced). Log lines and claims the plugin made in the worker come back to
 * this request. A worker that has served max_requests calls is retired
 * after its answer. */
int plugin_line_call(struct plugin_line *l, enum stack_type type, struct latch_req *req, int flags);

/* Tells the plugin the stack's final result for a request this line took
 * part in (a no-op when it has no outcome()). On an isolated line, a worker
 * that fails this call is replaced as for plugin_line_call(). */
void plugin_line_outcome(struct plugin_line *l, struct latch_req *req, int result);

/* The plugin admin op (ABI 1.1; plugin-admin.c). plugin_line_has_admin()
 * tells whether the line's plugin has an admin() entry point it can be
 * called with (never on an isolated line: admin calls run in latchd).
 * plugin_line_admin() calls it with `action` and the request's arguments
 * `args` (a JSON object, borrowed), on any thread, with latch_admin's
 * `self` and `reauthenticated` (ABI 1.2) as given. Returns 0 and the
 * answer's members in *ret_answer (a new JSON object), or the plugin's
 * negative errno (-EOPNOTSUPP also when the plugin has no admin()) and a
 * malloc()ed one-line message in *ret_message (may be NULL when out of
 * memory). */
bool plugin_line_has_admin(const struct plugin_line *l);
int plugin_line_admin(struct plugin_line *l, const char *action, json_t *args, bool self, bool reauthenticated,
                      json_t **ret_answer, char **ret_message);
/* Releases an answer of plugin_line_admin() (NULL: nothing), wiping its
 * strings first: an answer may carry a secret (an enrollment's). Only the
 * last reference: strings shared with another object are wiped too. */
void plugin_admin_answer_free(json_t *answer);

/* Makes a request. `op` is what plugins read as LATCH_ITEM_OP
 * ("authenticate", "login", "passwd"). Every string is copied; the password
 * copy is wiped when the request is freed. `remote` and `password` may be
 * NULL (a password is then asked for through the conversation); the others
 * must not be. Returns 0, -EINVAL or -ENOMEM. */
int latch_req_new(const char *op, const char *service, const char *user, const char *password,
                  const char *remote, struct latch_req **ret);

/* The request items a plugin sets with host->set_item() (ABI 1.2):
 * LATCH_ITEM_PASSWORD or LATCH_ITEM_OLDPASSWORD, copied into wiped memory
 * (NULL clears it). The host's own way in, for latch-worker replaying what
 * its plugin set and for tests. Returns 0, -EINVAL (another item, a value
 * over LATCH_ANSWER_MAX bytes) or -ENOMEM (the item unchanged). */
int latch_req_set_item(struct latch_req *r, int item, const char *value);

/* A login whose password expired goes on as a password change (the account
 * stack answered LATCH_NEW_AUTHTOK_REQD): the password the login used
 * becomes LATCH_ITEM_OLDPASSWORD and LATCH_ITEM_PASSWORD is cleared, for the
 * password stack to ask the new one. The stack engine calls it (through
 * stack_module_ops.expired_change) before the first password pass. */
void latch_req_begin_expired_change(struct latch_req *r);

/*
 * The conversation (see <latch/plugin.h>). After a call that returned
 * LATCH_INCOMPLETE, latch_req_challenge() tells whether the request can be
 * continued (a plugin of ABI 1.1 asked, or the host asked for a 1.0 plugin's
 * password): then latch_req_prompt() gives the prompts it posted (index
 * 0..n-1; borrowed until the next call). A 1.0 plugin that returns
 * LATCH_INCOMPLETE on its own cannot be continued: the stack's result stands.
 *
 * latch_req_set_answers() hands the client's answers to the next call: one
 * per `secret`/`text` prompt, in order (n must be their count: -EINVAL
 * otherwise, nothing changed). The strings are copied into wiped memory;
 * the first `secret` answer becomes the password when there is none yet.
 * The next call of the stack must be the line that asked (the stack resumes
 * there). Returns 0, -EINVAL or -ENOMEM.
 */
bool latch_req_challenge(const struct latch_req *r);
size_t latch_req_n_prompts(const struct latch_req *r);
int latch_req_prompt(const struct latch_req *r, size_t i, const char **ret_message);
size_t latch_req_n_answers_expected(const struct latch_req *r);
int latch_req_set_answers(struct latch_req *r, const char *const *answers, size_t n);

/* Whether the request carries a password (sent or answered). */
bool latch_req_has_password(const struct latch_req *r);

/* Whether a call of the password stack's update pass reached an isolated
 * worker (the whole request was sent) and its answer was lost or unusable
 * (the worker died, hung past its deadline or answered nonsense): the line
 * failed, but the plugin may have changed the password before. */
bool latch_req_password_unsure(const struct latch_req *r);

/* Whether a call of this request set LATCH_ITEM_PASSWORD or
 * LATCH_ITEM_OLDPASSWORD since the last latch_req_take_items_changed(), and
 * forgets it: latch-worker sends those items back to latchd after each
 * call. Returns a mask of (1 << LATCH_ITEM_PASSWORD) and
 * (1 << LATCH_ITEM_OLDPASSWORD). */
unsigned latch_req_take_items_changed(struct latch_req *r);
/* The current value of a secret item (LATCH_ITEM_PASSWORD or
 * LATCH_ITEM_OLDPASSWORD), NULL when unset. Borrowed: valid until the item
 * changes or the request is freed. */
const char *latch_req_item(const struct latch_req *r, int item);

/* Frees a request, wiping the password and answers, running the plugins'
 * set_data() cleanups and killing workers kept for it. NULL is fine. */
void latch_req_free(struct latch_req *r);

/* The claims plugins added, as a JSON object (never NULL for a request).
 * Borrowed: lives as long as the request. Plugins may add claims concurrently
 * through the host services (they lock the request), but read the object
 * only once the plugins are done with the request. */
json_t *latch_req_claims(struct latch_req *r);
