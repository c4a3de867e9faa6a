/* SPDX-License-Identifier: MIT */
#ifndef LATCH_PLUGIN_H
#define LATCH_PLUGIN_H

/*
 * <latch/plugin.h>: the ABI between latchd and its credential plugins.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * LATCH_PLUGIN_ENTRY_SYMBOL ("latch_plugin_entry"), a function returning a
 * pointer to a static `struct latch_plugin`. latchd dlopen()s the object,
 * calls the entry once, and refuses the plugin when its abi_major differs from
 * the host's (the error names the file). Both structs below begin with their
 * size and an ABI major/minor; minor versions only append fields, so a reader
 * checks `size` before touching a field added after 1.0.
 *
 * Lifecycle:
 *   entry(host)        once per load; may return NULL to refuse the host.
 *   open(ctx, args)    once per stack line that names the plugin, with that
 *                      line's arguments; returns the line's private state.
 *   auth / account /   once per request reaching that line, possibly from
 *   password           several threads at once (see "Threads"); password
 *                      (ABI 1.2) twice per change, see "Password changes".
 *   outcome            after the whole stack has decided, for every line
 *                      that took part in the request.
 *   close(state)       when the stack is dropped (reload, shutdown).
 *
 * Results mirror Linux-PAM's return codes, with the same numeric values, and
 * a stack decides exactly as Linux-PAM would given the same module results.
 *
 * Threads: auth, account and outcome may run concurrently on pool threads
 * for different requests against the same state. Treat the state returned by
 * open() as read-only afterwards, or protect it yourself. Never block for
 * long: a request has a deadline (the largest [plugin.NAME] timeout=, at
 * least 10 s) after which it answers `unavailable`. An in-process call is
 * not interrupted at its deadline (it keeps its pool thread until it
 * returns); a plugin whose backend may hang belongs in an isolated
 * latch-worker process ([plugin.NAME] isolate = yes), which is killed at the deadline.
 *
 * Plugins reach logging, time and storage only through `struct latch_host`.
 * A plugin never sees a session id or a signing key.
 *
 * Conversations (ABI 1.1), Linux-PAM's pam_conv(3) over latch's socket: in
 * auth() or account(), a plugin posts prompts with host->prompt() and
 * returns LATCH_INCOMPLETE. The client is shown the prompts and answers;
 * then the host calls the same entry point of the same line again, for the
 * same request, and the plugin reads the answers with host->answer(). The
 * stack resumes at that line with the state it had, as libpam resumes a
 * module that returned PAM_INCOMPLETE; the lines before it are not called
 * again. State a plugin keeps across the two calls goes in the request's
 * slot for its line (host->set_data()/get_data()). Between the calls no
 * thread waits: an in-process plugin is simply called again later, perhaps
 * on another pool thread; an isolated line's latch-worker process stays
 * reserved for the request (so a set_data() pointer stays valid) and is
 * killed when the conversation ends unanswered.
 *
 * The password the client sent, if any, is LATCH_ITEM_PASSWORD (PAM_AUTHTOK):
 * a plugin that needs a password reads it first and asks (a `secret` prompt)
 * only when it is NULL; the first answer to a `secret` prompt then becomes
 * LATCH_ITEM_PASSWORD for the rest of the request, as pam_get_authtok()
 * sets PAM_AUTHTOK. A plugin built against ABI 1.0 cannot ask: when the
 * request has no password yet, the host asks "Password:" on its behalf
 * before calling it, so it always sees a password, exactly as before 1.1.
 *
 * Password changes (ABI 1.2), Linux-PAM's pam_chauthtok(3): the `password`
 * stack runs twice over, as libpam runs it. First a preliminary pass calls
 * every line's password() with LATCH_PRELIM_CHECK: check that a change can
 * happen (the backend answers; the current password, LATCH_ITEM_OLDPASSWORD,
 * is right: ask for it with a `secret` prompt when it is NULL, then set it
 * with host->set_item()); change nothing. Only when that pass succeeds, an
 * update pass calls them again with LATCH_UPDATE_AUTHTOK: take the new
 * password from LATCH_ITEM_PASSWORD, or ask for it twice (new and repeated)
 * when it is NULL and set it with host->set_item() for the lines after you
 * (Linux-PAM's use_authtok), check its quality, and store it. Either pass
 * may converse (LATCH_INCOMPLETE) and resumes as auth() does. In the
 * password stack answers never become items by themselves: a plugin sets
 * LATCH_ITEM_OLDPASSWORD and LATCH_ITEM_PASSWORD explicitly.
 * LATCH_CHANGE_EXPIRED_AUTHTOK is added to both passes when the change
 * completes a login whose account stack answered LATCH_NEW_AUTHTOK_REQD;
 * the password that login used is then LATCH_ITEM_OLDPASSWORD (check it
 * still), and LATCH_ITEM_PASSWORD starts NULL. LATCH_ITEM_OP is "passwd"
 * for the `passwd` op and "login" for an expired password changed during a
 * login. A plugin without password() (or built against ABI 1.0 or 1.1)
 * makes its password lines return LATCH_MODULE_UNKNOWN, as a PAM module
 * lacking pam_sm_chauthtok does.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LATCH_PLUGIN_ABI_MAJOR 1
#define LATCH_PLUGIN_ABI_MINOR 2
#define LATCH_PLUGIN_ENTRY_SYMBOL "latch_plugin_entry"

#if defined(__GNUC__)
#define LATCH_PLUGIN_EXPORT __attribute__((visibility("default")))
#define LATCH_PLUGIN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LATCH_PLUGIN_EXPORT
#define LATCH_PLUGIN_PRINTF(a, b)
#endif

/* Module results: the same names and values as Linux-PAM's PAM_* codes. */
enum latch_result {
        LATCH_SUCCESS = 0,
        LATCH_OPEN_ERR = 1,
        LATCH_SYMBOL_ERR = 2,
        LATCH_SERVICE_ERR = 3,
        LATCH_SYSTEM_ERR = 4,
        LATCH_BUF_ERR = 5,
        LATCH_PERM_DENIED = 6,
        LATCH_AUTH_ERR = 7,
        LATCH_CRED_INSUFFICIENT = 8,
        LATCH_AUTHINFO_UNAVAIL = 9,
        LATCH_USER_UNKNOWN = 10,
        LATCH_MAXTRIES = 11,
        LATCH_NEW_AUTHTOK_REQD = 12,
        LATCH_ACCT_EXPIRED = 13,
        LATCH_SESSION_ERR = 14,
        LATCH_CRED_UNAVAIL = 15,
        LATCH_CRED_EXPIRED = 16,
        LATCH_CRED_ERR = 17,
        LATCH_NO_MODULE_DATA = 18,
        LATCH_CONV_ERR = 19,
        LATCH_AUTHTOK_ERR = 20,
        LATCH_AUTHTOK_RECOVERY_ERR = 21,
        LATCH_AUTHTOK_LOCK_BUSY = 22,
        LATCH_AUTHTOK_DISABLE_AGING = 23,
        LATCH_TRY_AGAIN = 24,
        LATCH_IGNORE = 25,
        LATCH_ABORT = 26,
        LATCH_AUTHTOK_EXPIRED = 27,
        LATCH_MODULE_UNKNOWN = 28,
        LATCH_BAD_ITEM = 29,
        LATCH_CONV_AGAIN = 30,
        LATCH_INCOMPLETE = 31,
        _LATCH_RESULT_MAX = 32
};

/* What a plugin may ask about the request it is called for. */
enum latch_item {
        LATCH_ITEM_SERVICE = 1, /* the service (stack) name */
        LATCH_ITEM_USER = 2,    /* the user name as the client sent it */
        LATCH_ITEM_PASSWORD = 3,/* the password (PAM_AUTHTOK), never log or keep it; since
                                 * 1.1 NULL until the client sent or answered one */
        LATCH_ITEM_REMOTE = 4,  /* the end user's address, or NULL */
        LATCH_ITEM_OP = 5,      /* "authenticate", "login" or (ABI 1.2) "passwd" */
        LATCH_ITEM_OLDPASSWORD = 6 /* ABI 1.2, the password stack only: the current
                                    * password (PAM_OLDAUTHTOK), NULL until a line set it */
};

/* Flags of password() (ABI 1.2): the values of Linux-PAM's PAM_* flags of
 * pam_sm_chauthtok(). Each call has exactly one of LATCH_PRELIM_CHECK and
 * LATCH_UPDATE_AUTHTOK, perhaps with LATCH_CHANGE_EXPIRED_AUTHTOK. */
enum latch_password_flag {
        LATCH_CHANGE_EXPIRED_AUTHTOK = 0x0020, /* the change completes a login whose
                                                * password expired */
        LATCH_UPDATE_AUTHTOK = 0x2000,         /* the update pass: store the new password */
        LATCH_PRELIM_CHECK = 0x4000            /* the preliminary pass: check, change nothing */
};

/* Prompt styles for host->prompt() (ABI 1.1): the values of Linux-PAM's
 * PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG and PAM_TEXT_INFO.
 * On the wire they are "secret", "text", "error" and "info". */
enum latch_prompt_style {
        LATCH_PROMPT_SECRET = 1, /* asks; the answer is not echoed (a password, a code) */
        LATCH_PROMPT_TEXT = 2,   /* asks; the answer is echoed */
        LATCH_PROMPT_ERROR = 3,  /* shows a message, expects no answer */
        LATCH_PROMPT_INFO = 4    /* shows a message, expects no answer */
};

/* At most this many prompts per call, each message at most this many bytes
 * (UTF-8; no control characters but '\n' and '\t', so no C1 controls
 * U+0080-U+009F either; no U+2028/U+2029, nor the bidirectional embeddings,
 * overrides and isolates U+202A-U+202E and U+2066-U+2069); an answer is at
 * most LATCH_ANSWER_MAX bytes. */
#define LATCH_PROMPTS_MAX 8
#define LATCH_PROMPT_MESSAGE_MAX 512
#define LATCH_ANSWER_MAX 4096

/* Priorities for host->log(), as syslog(3)'s LOG_*. */
enum latch_log_priority {
        LATCH_LOG_ERR = 3,
        LATCH_LOG_WARNING = 4,
        LATCH_LOG_NOTICE = 5,
        LATCH_LOG_INFO = 6,
        LATCH_LOG_DEBUG = 7
};

/* One stack line's context, owned by the host: valid from open() to close(). */
struct latch_ctx;
/* One request, owned by the host: valid only during the call it is given to. */
struct latch_req;

/*
 * Callback of kv_update(). `old` is the current value (NULL and 0 when the
 * key is absent; borrowed, valid during the call only). Write the new value
 * into `newbuf` (capacity *newlen on entry, LATCH_KV_VALUE_MAX) and set
 * *newlen; return 1 to store it, 0 to leave the value untouched, 2 to delete
 * the key, or a negative errno to abort.
 */
typedef int (*latch_kv_update_fn)(void *userdata, const void *old, size_t oldlen,
                                  void *newbuf, size_t *newlen);

#define LATCH_KV_KEY_MAX 256
#define LATCH_KV_VALUE_MAX 4096

/* Services the host offers to plugins. */
struct latch_host {
        uint32_t size; /* sizeof(struct latch_host) as the host knows it */
        uint16_t abi_major;
        uint16_t abi_minor;

        /* Logs a line attributed to the plugin (and the request, if req is
         * not NULL). Never pass a secret. Safe from any thread. */
        void (*log)(const struct latch_ctx *ctx, const struct latch_req *req, int priority,
                    const char *fmt, ...) LATCH_PLUGIN_PRINTF(4, 5);

        /* Wall clock in Unix seconds, as the host sees it (tests may pin it). */
        int64_t (*now)(const struct latch_ctx *ctx);

        /* A request item (enum latch_item), or NULL when absent. The string is
         * borrowed from the request and valid during the current call only. */
        const char *(*item)(const struct latch_req *req, int item);

        /* Adds a claim to the identity that the session and its tokens carry.
         * claim_set_string replaces `name`; claim_append_string appends to an
         * array claim (creating it), as for "groups". Registered JWT claims
         * (iss, sub, aud, exp, nbf, iat, jti, sid) are refused with -EPERM.
         * Returns 0 or a negative errno. */
        int (*claim_set_string)(struct latch_req *req, const char *name, const char *value);
        int (*claim_append_string)(struct latch_req *req, const char *name, const char *value);

        /* A private, persistent key-value store, namespaced per plugin, kept
         * in latchd's state. Keys are at most LATCH_KV_KEY_MAX bytes, values
         * at most LATCH_KV_VALUE_MAX.
         *
         * kv_get copies the value into buf (capacity *len on entry; the
         * value's size on return). Returns 0, -ENOENT, -ENOBUFS (buf too
         * small; *len holds the size needed), or -EIO.
         *
         * kv_update runs `fn` on the current value under the store's lock:
         * concurrent updates of the same key are serialised, each seeing
         * the one before, so no update is lost. The new value counts at
         * once; latchd makes it durable before any answer that depends on
         * it (see docs/PLUGINS.md). When that synced write fails:
         *   - during a request that runs a stack (authenticate, login,
         *     passwd, and an admin call that re-authenticates the user
         *     first; outcome() included, also when a conversation ends
         *     unanswered), the write happens at the request's end: kv_update
         *     returned 0, the value still counts and is written with the
         *     next write that succeeds, and the request fails;
         *   - elsewhere (open, other admin calls), kv_update returns the
         *     error and the update is taken back: kv_get and later updates
         *     see the value before it, and it is never written. Except
         *     when another request's update of the key saw the new value
         *     in between: that value then stays, and is written later,
         *     although kv_update returned the error.
         * `fn` may run more than once for one call (hosts may retry it):
         * only the last run counts, so keep it free of side effects.
         * Returns 0, fn's negative errno,
         * -EINVAL (bad key, a value over LATCH_KV_VALUE_MAX, or fn
         * returning something else than 0, 1, 2 or a negative errno),
         * -ENOSPC (disk full), -ENOMEM or -EIO.
         *
         * Both return -ENOTSUP for plugins running in an isolated worker
         * process. */
        int (*kv_get)(const struct latch_ctx *ctx, const void *key, size_t keylen, void *buf,
                      size_t *len);
        int (*kv_update)(const struct latch_ctx *ctx, const void *key, size_t keylen,
                         latch_kv_update_fn fn, void *userdata);

        /* ---- ABI 1.1: conversations (check host->size, or define the
         * plugin with LATCH_PLUGIN_DEFINE(plugin, get_data)) ---- */

        /* Posts a prompt (enum latch_prompt_style) for the client, during
         * auth(), account() or (ABI 1.2) password() only; `message` is copied. Returns the
         * prompt's index (0 for the first of this call, 1, ...) or
         * -EINVAL (bad style, NULL or bad message), -E2BIG (more than
         * LATCH_PROMPTS_MAX in one call) or -ENOTSUP (not inside auth(),
         * account() or password()). Return LATCH_INCOMPLETE afterwards: the prompts go to
         * the client only then (any other result drops them). */
        int (*prompt)(struct latch_req *req, int style, const char *message);

        /* In a call that continues one which returned LATCH_INCOMPLETE: the
         * client's answer to prompt `index` of that call. NULL for an `info`
         * or `error` prompt, an index out of range, or a call that continues
         * nothing. Borrowed: valid during the current call only, wiped after
         * it (never log or keep it). */
        const char *(*answer)(const struct latch_req *req, int index);

        /* The request's slot for the calling line: data that must live from
         * a call that returned LATCH_INCOMPLETE to the call that continues
         * it. set_data replaces the slot (calling the old cleanup first);
         * `cleanup` (may be NULL) runs when the request ends, whichever way
         * (result, expiry, shutdown), on any thread. Only valid inside
         * auth(), account() or password(): set_data returns 0 or -ENOTSUP/-ENOMEM;
         * get_data returns the slot or NULL. */
        int (*set_data)(struct latch_req *req, void *data, void (*cleanup)(void *data));
        void *(*get_data)(const struct latch_req *req);

        /* ---- ABI 1.2: password changes ---- */

        /* Sets LATCH_ITEM_PASSWORD or LATCH_ITEM_OLDPASSWORD (as
         * pam_set_item() sets PAM_AUTHTOK and PAM_OLDAUTHTOK) for the rest
         * of the request; `value` is copied (NULL clears the item) and the
         * copy wiped when replaced or when the request ends. Only inside
         * auth(), account() or password(). Returns 0, -EINVAL (another
         * item, or a value over LATCH_ANSWER_MAX bytes), -ENOTSUP (outside
         * those calls) or -ENOMEM. */
        int (*set_item)(struct latch_req *req, int item, const char *value);
};

/*
 * One call of the plugin admin op (ABI 1.1): owned by the host, valid during
 * the admin() call only. The host turns the request's JSON arguments into
 * strings and the answer built with the reply functions into the reply's
 * JSON members, so a plugin needs no JSON library. The answer is for an
 * administrator (the op is refused to other peers), but it is still a reply:
 * put a secret in it only when handing it over is the action's purpose
 * (an enrollment's secret), never in a->fail()'s message.
 */
struct latch_admin {
        uint32_t size;      /* sizeof(struct latch_admin) as the host knows it */
        const char *action; /* the `action` argument, e.g. "enroll"; never NULL */

        /* A string argument of the request by name ("user", "code", ...), or
         * NULL when absent or not a string. Borrowed: valid during the call. */
        const char *(*arg)(const struct latch_admin *a, const char *name);

        /* Set a member of the answer (replacing one of the same name);
         * append_* add to an array member, creating it. `name` may not be
         * "id", "ok", "error" or "message" (-EINVAL). Return 0, -EINVAL or
         * -ENOMEM. Strings are copied. */
        int (*reply_string)(struct latch_admin *a, const char *name, const char *value);
        int (*reply_int)(struct latch_admin *a, const char *name, int64_t value);
        int (*reply_bool)(struct latch_admin *a, const char *name, int value);
        int (*reply_append_string)(struct latch_admin *a, const char *name, const char *value);
        int (*reply_append_int)(struct latch_admin *a, const char *name, int64_t value);
        /* Sets `name` to an empty array (for an answer whose list may be
         * empty; append_* then add to it). */
        int (*reply_array)(struct latch_admin *a, const char *name);

        /* The message of a failed call (admin() returning < 0), one line for
         * a human; copied. Never put a secret in it. */
        void (*fail)(struct latch_admin *a, const char *fmt, ...) LATCH_PLUGIN_PRINTF(2, 3);

        /* ---- ABI 1.2 (check `size` before reading) ---- */

        /* 1 when the caller is not an administrator but the user named by
         * arg("user") acting on their own account through a signed-in
         * session (latch-http's account pages, `plugin` with `session`);
         * refuse (-EPERM, after a->fail()) what a user may not do to
         * themself. 0 for an administrator. latchd makes self calls only
         * to plugins built against ABI 1.2 or later: an older plugin, which
         * cannot see this field, is never called for a user's own account
         * (the caller is answered `forbidden`). */
        int self;
        /* With `self`: 1 when the user re-authenticated in this very request
         * (the service's auth stack succeeded again with the password they
         * gave). Changes to a factor (enroll, remove, new recovery codes)
         * should require it; looking (status) and confirming an enrollment
         * begun in a re-authenticated call need not. */
        int reauthenticated;
};

/* What a plugin provides. Unused entry points may be NULL (a NULL auth or
 * account makes that line return LATCH_MODULE_UNKNOWN, as a PAM module
 * lacking the function does). */
struct latch_plugin {
        uint32_t size; /* sizeof(struct latch_plugin) as the plugin knows it */
        uint16_t abi_major;
        uint16_t abi_minor;
        const char *name; /* the plugin's name, e.g. "file"; logs and the kv
                           * namespace use the file's basename (file.so → "file"),
                           * so keep the two equal */

        /* Prepares one stack line. argv holds the line's arguments (argc may
         * be 0), borrowed for the duration of the call. Store `ctx` if you
         * want to log or use the store later. Returns 0 and sets *ret_state
         * (may be NULL), or a negative errno after logging why through
         * host->log(). */
        int (*open)(const struct latch_host *host, struct latch_ctx *ctx, int argc,
                    const char *const *argv, void **ret_state);

        /* Releases what open() made. May be NULL. */
        void (*close)(void *state);

        /* Checks the request's credential. Returns an enum latch_result. */
        int (*auth)(void *state, struct latch_req *req);

        /* Decides whether the (already authenticated) account may log in
         * now. Returns an enum latch_result. */
        int (*account)(void *state, struct latch_req *req);

        /* Told the stack's final result (LATCH_SUCCESS or the failure the
         * caller sees) for a request this line took part in. May be NULL. */
        void (*outcome)(void *state, struct latch_req *req, int result);

        /* ---- ABI 1.1 (the host reads it only when `size` covers it) ---- */

        /* Runs an administrator's action (latchd's `plugin` op, `latchctl
         * totp ...`, `latchctl faillock ...`) on the state of a line naming
         * the plugin: see struct latch_admin. May be NULL (the op then
         * answers that the plugin has no actions). Called on a pool thread,
         * possibly concurrently with auth, account and outcome. Returns 0
         * (the answer is what a->reply_*() built) or a negative errno after
         * a->fail() said why: -EINVAL (a bad or missing argument),
         * -EOPNOTSUPP (an unknown action), -ENOENT (nothing to act on, e.g.
         * the user has no enrollment) and -EEXIST answer `bad_request`;
         * -EPERM (the caller may not do this, e.g. a self call: see
         * latch_admin.self) answers `forbidden`; -EACCES (a wrong code or
         * credential) answers `denied`; anything else answers
         * `unavailable`. */
        int (*admin)(void *state, struct latch_admin *a);

        /* ---- ABI 1.2 (the host reads it only when `size` covers it) ---- */

        /* One pass of a password change (see "Password changes" above):
         * `flags` holds LATCH_PRELIM_CHECK or LATCH_UPDATE_AUTHTOK, perhaps
         * with LATCH_CHANGE_EXPIRED_AUTHTOK. Returns an enum latch_result:
         * LATCH_SUCCESS, LATCH_IGNORE (this line has nothing to change, e.g.
         * the user is not in its database: return LATCH_USER_UNKNOWN then,
         * as pam_unix does), LATCH_AUTHTOK_ERR (the new password is refused:
         * too short, the user's name, the two entries differ),
         * LATCH_AUTH_ERR or LATCH_PERM_DENIED (the current password is
         * wrong), LATCH_AUTHTOK_LOCK_BUSY or LATCH_TRY_AGAIN (the database
         * is busy), LATCH_INCOMPLETE (a prompt is up), ... */
        int (*password)(void *state, struct latch_req *req, int flags);
};

/* Fills the size/ABI header of a struct latch_plugin initialiser. */
#define LATCH_PLUGIN_HEADER                                                   \
        .size = sizeof(struct latch_plugin), .abi_major = LATCH_PLUGIN_ABI_MAJOR, \
        .abi_minor = LATCH_PLUGIN_ABI_MINOR

/* The one symbol a plugin exports. Return NULL to refuse this host, e.g.
 * when host->abi_major differs from LATCH_PLUGIN_ABI_MAJOR. Most plugins
 * define it with LATCH_PLUGIN_DEFINE() below. */
typedef const struct latch_plugin *(*latch_plugin_entry_fn)(const struct latch_host *host);
LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *host);

/* The size a struct latch_host must have for its member `service` to
 * exist: a minor version only appends members, so a host of an older minor
 * is smaller and lacks the newer ones. */
#define LATCH_HOST_SIZE_FOR(service) \
        (offsetof(struct latch_host, service) + sizeof(((const struct latch_host *) 0)->service))

/* Whether a plugin built against this header may run in `host`: the same
 * ABI major, and a struct latch_host of at least `needed_size` bytes
 * (LATCH_HOST_SIZE_FOR() the last service the plugin calls, in the order
 * of struct latch_host). */
static inline int latch_host_compatible(const struct latch_host *host, size_t needed_size) {
        return host && host->abi_major == LATCH_PLUGIN_ABI_MAJOR && host->size >= needed_size;
}

/*
 * Defines latch_plugin_entry() for the plugin `plugin` (a static struct
 * latch_plugin): it returns &plugin when latch_host_compatible() accepts the
 * host for `last_service`, the last member of struct latch_host the plugin
 * calls, and NULL (refusing the host) otherwise. A plugin that calls no
 * service names `abi_minor`. For example:
 *
 *     static const struct latch_plugin allowlist_plugin = { LATCH_PLUGIN_HEADER, ... };
 *     LATCH_PLUGIN_DEFINE(allowlist_plugin, claim_append_string)
 */
#define LATCH_PLUGIN_DEFINE(plugin, last_service)                                               \
        LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *host) { \
                return latch_host_compatible(host, LATCH_HOST_SIZE_FOR(last_service)) ? &(plugin) : NULL; \
        }

#ifdef __cplusplus
}
#endif

#endif
