/* SPDX-License-Identifier: MIT */
#ifndef LATCH_LATCH_H
#define LATCH_LATCH_H

/*
 * <latch/latch.h>: the client library of latch (liblatch.so.1, pkg-config
 * `latch`).
 *
 * Three families:
 *   latch_client_* and the typed calls (latch_hello, latch_login, ...)
 *       talk to latchd over its Unix socket (wire protocol v1);
 *   latch_cookie_*  build and parse the session cookie (pure, no I/O);
 *   latch_jwks_*, latch_keyset_*, latch_token_verify
 *       verify latchd's tokens offline against a JWKS.
 *
 * Errors: every function that can fail returns an int that is LATCH_OK (0)
 * or one value of enum latch_error (always positive). Output parameters are
 * named ret_*, come last, and are left untouched on failure unless the
 * comment says otherwise. After a failed call on a client handle,
 * latch_last_message() says why in words; it never holds a password or a
 * session id.
 *
 * Memory: strings documented as "new" are malloc()ed and belong to the
 * caller: free them with free(3), or with latch_secret_free() when they may
 * hold a secret (a session id, a cookie value, a raw response). Strings
 * documented as "borrowed" belong to the object they came from and stay valid
 * until that object is freed or, for a client, until its next call.
 *
 * Threads: a latch_client has no lock. Every function taking a client
 * (blocking calls, latch_submit_*(), latch_client_process(), the getters)
 * must be called by one thread at a time for that client; different clients
 * are independent, so one per thread needs no locking (they are cheap: one
 * socket each), and one shared client needs the caller's mutex around every
 * call. Callbacks run in the thread that called latch_client_process() (or
 * latch_client_abort()/latch_client_free()). A latch_reply is immutable: any
 * number of threads may read it at once, but none while one frees it. A
 * latch_keyset is read-only once loaded and may be shared by any number of
 * threads for latch_token_verify(). The cookie functions, latch_strerror(),
 * latch_error_name() and latch_error_from_code() touch no shared state and
 * are thread-safe.
 *
 * Signals: the library never raises SIGPIPE (it sends with MSG_NOSIGNAL) and
 * restarts calls interrupted by signals.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors */

/*
 * Results of liblatch calls. The values from LATCH_ERR_BAD_REQUEST to
 * LATCH_ERR_INTERNAL are the error codes of the wire protocol, answered by
 * latchd; LATCH_ERR_UNKNOWN is a code this library does not know (from a
 * newer latchd: latch_last_error_code() keeps its text); the rest arise in
 * the client itself. New values may be appended in later versions.
 */
enum latch_error {
        LATCH_OK = 0,
        LATCH_ERR_BAD_REQUEST,       /* "bad_request": malformed request */
        LATCH_ERR_UNKNOWN_OP,        /* "unknown_op": latchd does not know the op */
        LATCH_ERR_TOO_LARGE,         /* "too_large": request over latchd's max_frame */
        LATCH_ERR_DENIED,            /* "denied": credentials refused */
        LATCH_ERR_INVALID_SESSION,   /* "invalid_session": unknown, expired or revoked */
        LATCH_ERR_INVALID_TOKEN,     /* "invalid_token": token refused */
        LATCH_ERR_FORBIDDEN,         /* "forbidden": this peer may not do this */
        LATCH_ERR_UNKNOWN_SERVICE,   /* "unknown_service": no such service stack */
        LATCH_ERR_UNAVAILABLE,       /* "unavailable": a backend failed or is busy: try later */
        LATCH_ERR_INTERNAL,          /* "internal": latchd failed */
        LATCH_ERR_UNKNOWN,           /* an error code this version does not know */
        LATCH_ERR_UNREACHABLE,       /* cannot connect to the socket */
        LATCH_ERR_DISCONNECTED,      /* the connection dropped before the answer */
        LATCH_ERR_TIMEOUT,           /* no complete answer within the timeout */
        LATCH_ERR_PROTOCOL,          /* the answer broke the wire protocol */
        LATCH_ERR_INVALID_ARGUMENT,  /* a bad argument (usage error) */
        LATCH_ERR_NO_MEMORY,         /* out of memory */
        LATCH_ERR_IO,                /* a file could not be read (errno says why) */
        LATCH_ERR_CHALLENGE,         /* "challenge": more input is needed (see Conversations) */
        LATCH_ERR_INVALID_CONVERSATION, /* "invalid_conversation": unknown, used, expired or another peer's */
        _LATCH_ERR_MAX
};

/* A one-line description of `err` for humans, e.g. "credentials refused".
 * Static storage; never NULL ("unknown error" for values out of range).
 * Thread-safe. */
const char *latch_strerror(int err);

/* The short machine name of `err`: the wire code for latchd's errors
 * ("denied", "invalid_session", ...), and "ok", "unknown", "unreachable",
 * "disconnected", "timeout", "protocol", "invalid_argument", "no_memory",
 * "io" for the others. Static storage; never NULL ("unknown" for values out
 * of range). Thread-safe. */
const char *latch_error_name(int err);

/* Maps a wire error code ("denied", ...) to its enum value; NULL or a code
 * this version does not know gives LATCH_ERR_UNKNOWN. Thread-safe. */
int latch_error_from_code(const char *code);

/* ------------------------------------------------------------------------ */
/* Connections */

/* A connection to latchd. Opaque; one thread at a time (see "Threads"). */
typedef struct latch_client latch_client;

/*
 * Creates a client for the socket at `socket_path`; NULL means
 * $LATCH_SOCKET when set and non-empty, else the default
 * "/run/latch/latchd.sock". A path starting with '@' names an abstract
 * socket. Nothing is connected yet: the first call connects (or call
 * latch_client_connect() to find out early). The timeout starts at
 * LATCH_DEFAULT_TIMEOUT_MS, the response limit at 1 MiB.
 *
 * Returns LATCH_OK and a new handle in *ret (free with latch_client_free()),
 * LATCH_ERR_INVALID_ARGUMENT (ret NULL, or the path is empty or too long for
 * a Unix socket address) or LATCH_ERR_NO_MEMORY.
 */
int latch_client_new(const char *socket_path, latch_client **ret);

/* Closes the connection and frees the handle. NULL is fine. */
void latch_client_free(latch_client *client);

/* The socket path the handle uses. Borrowed: valid until
 * latch_client_free(). NULL if client is NULL. */
const char *latch_client_socket_path(const latch_client *client);

/*
 * The time a call may take unless latch_client_set_timeout() says otherwise.
 *
 * The rule: a client must wait longer than latchd may take to answer, or it
 * sees LATCH_ERR_TIMEOUT where latchd meant "denied". latchd answers an
 * authenticate or login within its failure backoff ([throttle] max_delay,
 * default 15 s) plus the stack's deadline (the largest [plugin.NAME] timeout,
 * at least 10 s): 25 s with latchd's defaults, so the library waits 30 s.
 * Every other op answers at once. A deployment that raises max_delay or a
 * plugin timeout, or a client that lowers its timeout, keeps
 * timeout > max_delay + stack deadline.
 */
#define LATCH_DEFAULT_TIMEOUT_MS 30000u

/*
 * Sets the time one call may take, from connecting to the last byte of the
 * answer (a retry included), in milliseconds; 0 waits forever. A call that
 * runs out of time fails with LATCH_ERR_TIMEOUT and drops the connection
 * (the next call reconnects). Keep it above what latchd may take (see
 * LATCH_DEFAULT_TIMEOUT_MS). Returns LATCH_OK or LATCH_ERR_INVALID_ARGUMENT
 * (client NULL, or more than INT32_MAX ms).
 */
int latch_client_set_timeout(latch_client *client, uint32_t timeout_ms);

/*
 * Sets the largest response accepted, in bytes (default 1 MiB). A larger
 * frame fails the call with LATCH_ERR_PROTOCOL and drops the connection.
 * Returns LATCH_OK or LATCH_ERR_INVALID_ARGUMENT (client NULL, or max 0 or
 * over 4 GiB - 1).
 */
int latch_client_set_max_response(latch_client *client, size_t max);

/*
 * Connects now if not connected yet (or if latchd closed an idle
 * connection). Calls connect on their own, so this only reports early.
 * Returns LATCH_OK, LATCH_ERR_UNREACHABLE, LATCH_ERR_TIMEOUT or
 * LATCH_ERR_NO_MEMORY; latch_last_message() names the socket and the
 * reason.
 */
int latch_client_connect(latch_client *client);

/* The result of the last call on this handle: LATCH_OK or an error.
 * LATCH_ERR_INVALID_ARGUMENT if client is NULL. */
int latch_last_error(const latch_client *client);

/*
 * Why the last call on this handle failed, for humans: latchd's message for
 * its errors, the library's otherwise ("cannot connect to PATH: ...").
 * "success" after a successful call. Borrowed: valid until the next call on
 * the handle or latch_client_free(). Never NULL (a static string when client
 * is NULL). Never holds a password or a session id. latchd's message comes
 * with its control characters (C0, DEL, and C1 U+0080-U+009F) blanked, so
 * that it cannot drive a terminal it is printed to.
 */
const char *latch_last_message(const latch_client *client);

/*
 * The error code string exactly as latchd sent it, when the last call failed
 * with an error from latchd (useful for LATCH_ERR_UNKNOWN); NULL after a
 * success or a client-side failure. Borrowed, as latch_last_message().
 */
const char *latch_last_error_code(const latch_client *client);

/* ------------------------------------------------------------------------ */
/* Replies */

/*
 * The results of a successful call: latchd's response object. Opaque,
 * immutable; free with latch_reply_free(). Strings from the getters are
 * borrowed from the reply and live until latch_reply_free().
 *
 * The members each op returns are listed op by op in latch's
 * docs/PROTOCOL.md; nested values (claims, keys, stats) are available as JSON
 * text with latch_reply_json(), arrays (sessions) through the item getters.
 */
typedef struct latch_reply latch_reply;

/* Wipes and frees the reply (it may hold a session id or a token). NULL is
 * fine. */
void latch_reply_free(latch_reply *reply);

/* The string member `key`, borrowed; NULL when absent, not a string, or an
 * argument is NULL. */
const char *latch_reply_string(const latch_reply *reply, const char *key);

/* Stores the integer member `key` in *ret. Returns LATCH_OK, or
 * LATCH_ERR_INVALID_ARGUMENT when an argument is NULL or there is no integer
 * member `key` (*ret untouched). */
int latch_reply_int(const latch_reply *reply, const char *key, int64_t *ret);

/* The boolean member `key` in *ret; errors as latch_reply_int(). */
int latch_reply_bool(const latch_reply *reply, const char *key, bool *ret);

/*
 * Member `key` (any JSON type) as new compact JSON text, or with key NULL
 * the whole result object: the response without "id" and "ok", which is
 * what `latchctl --json` prints. NULL when absent or out of memory. The text
 * may hold a secret (login's session): release it with latch_secret_free().
 */
char *latch_reply_json(const latch_reply *reply, const char *key);

/* The response frame's JSON text exactly as received. Borrowed. */
const char *latch_reply_raw(const latch_reply *reply);

/* Number of elements of the array member `key` (e.g. "sessions"); 0 when
 * absent or not an array. */
size_t latch_reply_count(const latch_reply *reply, const char *key);

/* The string member `member` of element `index` of the array `key`,
 * borrowed; NULL when any of these is absent or of another type. */
const char *latch_reply_item_string(const latch_reply *reply, const char *key, size_t index, const char *member);

/* The integer member `member` of element `index` of the array `key` in
 * *ret. Returns LATCH_OK or LATCH_ERR_INVALID_ARGUMENT (absent, other type,
 * NULL argument; *ret untouched). */
int latch_reply_item_int(const latch_reply *reply, const char *key, size_t index, const char *member, int64_t *ret);

/* ------------------------------------------------------------------------ */
/* Calls
 *
 * Every call below sends one request and waits for its answer, within the
 * handle's timeout. It returns LATCH_OK and, when ret is not NULL, a new
 * reply in *ret (free with latch_reply_free()); or latchd's error
 * (LATCH_ERR_DENIED, ...), or a client-side one: LATCH_ERR_UNREACHABLE,
 * LATCH_ERR_DISCONNECTED, LATCH_ERR_TIMEOUT, LATCH_ERR_PROTOCOL,
 * LATCH_ERR_INVALID_ARGUMENT (a required argument NULL, or a string that is
 * not UTF-8), LATCH_ERR_NO_MEMORY. latch_last_message() says why.
 *
 * Retries: hello, validate, verify, jwks and stats are idempotent; when the
 * connection drops before their answer is complete they are sent once more,
 * on a fresh connection. Every other op (login, authenticate, passwd, logout,
 * token, sessions.*, keys.rotate, reload) is never resent: LATCH_ERR_DISCONNECTED
 * means it may or may not have taken effect.
 *
 * Secrets: the request buffer holding a password or session id is wiped
 * once sent. Optional arguments are NULL to leave them out. `remote` is the
 * end user's address as the application saw it.
 */

/* op "hello": results `version`, `server`. */
int latch_hello(latch_client *client, latch_reply **ret);

/* op "authenticate": checks `user`/`password` against `service`'s stack
 * without making a session; results `user`, `claims`. */
int latch_authenticate(latch_client *client, const char *service, const char *user,
                       const char *password, const char *remote, latch_reply **ret);

/* op "login": results `session` (secret), `handle`, `user`, `service`,
 * `expires_at`, `idle_expires_at`, and with want_token: `token`,
 * `token_expires_at` (for `audience`, default the service). */
int latch_login(latch_client *client, const char *service, const char *user,
                const char *password, const char *remote, bool want_token,
                const char *audience, latch_reply **ret);

/*
 * Conversations. authenticate and login (password NULL: the stack asks for
 * it), and passwd, may fail with LATCH_ERR_CHALLENGE: the stack needs more
 * input. The challenge is then latch_last_challenge(): its members `conversation` (the
 * id to respond to), `expires_at`, `message`, and the array `prompts`, whose
 * items have `style` ("secret": ask without echo, "text": ask with echo,
 * "info"/"error": show only) and `message` (read them with
 * latch_reply_count() and latch_reply_item_string()). Show the prompts,
 * then call latch_respond() with one answer per secret/text prompt, in
 * order. Its result is the original op's: its results, a refusal, or
 * another LATCH_ERR_CHALLENGE (each step has a new id; an id is good for
 * one latch_respond() only). A program that does not know conversations
 * sees a failure: it fails closed.
 */

/* The challenge of the last call on this handle when it failed with
 * LATCH_ERR_CHALLENGE, else NULL. Borrowed from the handle: valid until
 * the next call on it or latch_client_free(). Synchronous calls only (the
 * latch_submit_*() callbacks get their reply through latch_call_json()
 * style JSON instead). */
const latch_reply *latch_last_challenge(const latch_client *client);

/* op "respond": continues conversation `conversation` with `n_answers`
 * answers (secrets: the request buffer holding them is wiped once sent; the
 * caller wipes its own copies). Returns what the op that started it
 * returns (LATCH_OK and its reply, LATCH_ERR_DENIED, LATCH_ERR_CHALLENGE,
 * ...), or LATCH_ERR_INVALID_CONVERSATION (unknown, used, expired, or
 * started by another uid), LATCH_ERR_BAD_REQUEST (wrong number of answers:
 * the conversation is still there). Never resent. */
int latch_respond(latch_client *client, const char *conversation, const char *const *answers, size_t n_answers,
                  latch_reply **ret);

/*
 * op "plugin": a plugin's `action` (latchd's admin() entry point of the
 * plugin named `plugin`), with `n_args` more string arguments in `args`
 * as name/value pairs (args[2i] the name, args[2i+1] the value; e.g.
 * "user", "alice", "code", "123456"; not "op", "id" or the ones below).
 * Results: what the action answers (it may hold a secret: an enrollment's;
 * release the reply promptly, latch_reply_free() wipes it).
 *
 * Without `session`: an administrator's call (admin peers only).
 * With `session` (self-service): for the session's user only, through the
 * session's service (peers it admits); with `password` as well, the
 * service's auth stack runs again first: LATCH_ERR_CHALLENGE when it asks
 * for more (answer with latch_respond(), whose result is this call's),
 * LATCH_ERR_DENIED when it fails. `password` without `session` is
 * LATCH_ERR_INVALID_ARGUMENT. The request buffer, holding the password, is
 * wiped once sent. Other errors: LATCH_ERR_FORBIDDEN (not allowed, e.g. an
 * action a user may not do to themself, or without re-authentication),
 * LATCH_ERR_INVALID_SESSION, LATCH_ERR_BAD_REQUEST (the plugin's message),
 * LATCH_ERR_DENIED (also a wrong code). Never resent.
 */
int latch_plugin(latch_client *client, const char *plugin, const char *action, const char *session,
                 const char *password, const char *const *args, size_t n_args, latch_reply **ret);

/* op "passwd": changes `user`'s password through `service`'s password
 * stack: a conversation, whose first answer is LATCH_ERR_CHALLENGE when a
 * line asks (as a rule the current password, then the new one twice),
 * continued with latch_respond(); a refused new password shows its reason
 * as an `error` prompt of the next challenge. On success the results are `user`,
 * `service` and `revoked`: how many of the user's other sessions were
 * revoked (0 when the service keeps them). `session` (optional, a secret)
 * is the caller's own session of that user and service: it is kept. A
 * wrong current password is LATCH_ERR_DENIED. Never resent. */
int latch_passwd(latch_client *client, const char *service, const char *user, const char *remote,
                 const char *session, latch_reply **ret);

/* op "validate": `service` (optional) must match the session's; results
 * `user`, `service`, `handle`, `created_at`, `expires_at`,
 * `idle_expires_at`, `claims`. Slides the idle expiry. */
int latch_validate(latch_client *client, const char *session, const char *service, latch_reply **ret);

/* op "logout": ends the session. */
int latch_logout(latch_client *client, const char *session, latch_reply **ret);

/* op "token": a token for the session; results `token`, `expires_at`. */
int latch_token(latch_client *client, const char *session, const char *audience, latch_reply **ret);

/* op "verify": latchd checks the token and that its session is live;
 * results `claims`. */
int latch_verify(latch_client *client, const char *token, const char *audience, latch_reply **ret);

/* op "jwks": results `keys` (latch_reply_json(reply, NULL) is the JWKS). */
int latch_jwks(latch_client *client, latch_reply **ret);

/* op "sessions.list" (admin): optional filters; results `sessions`, an
 * array of objects with `handle`, `user`, `service`, `created_at`,
 * `last_seen_at`, `expires_at`, `idle_expires_at`. */
int latch_sessions_list(latch_client *client, const char *user, const char *service, latch_reply **ret);

/* op "sessions.revoke" (admin): exactly one of `handle` and `user` (else
 * LATCH_ERR_INVALID_ARGUMENT); results `revoked` (count). */
int latch_sessions_revoke(latch_client *client, const char *handle, const char *user, latch_reply **ret);

/* op "keys.rotate" (admin): results `kid`. */
int latch_keys_rotate(latch_client *client, latch_reply **ret);

/* op "stats" (admin): counters and gauges. */
int latch_stats(latch_client *client, latch_reply **ret);

/* op "reload" (admin): reloads latchd's config and stacks. */
int latch_reload(latch_client *client, latch_reply **ret);

/*
 * Sends `request_json`, a JSON object with a string "op" (any op, also ones
 * this library does not know), as is. On LATCH_OK, *ret_response_json gets
 * the new response text exactly as received (with "ok" and "id"); it may
 * hold a secret: release it with latch_secret_free(). On latchd's errors
 * *ret_response_json is untouched and latch_last_error_code() /
 * latch_last_message() hold "error" and "message". Retried as the typed
 * calls, by the op's name. LATCH_ERR_INVALID_ARGUMENT when the request is
 * not a JSON object with a string "op".
 */
int latch_call_json(latch_client *client, const char *request_json, char **ret_response_json);

/* Wipes and frees a string this library returned that may hold a secret.
 * NULL is fine. */
void latch_secret_free(char *s);

/* ------------------------------------------------------------------------ */
/* Event loops
 *
 * A client can also be driven by the application's event loop (sd-event,
 * libuv, libevent, glib, epoll) with many requests in flight, none of these
 * functions blocking (but for connecting, which on a Unix socket waits only
 * while latchd's listen backlog is full):
 *
 *   latch_submit_validate() and latch_submit_json() queue requests, each
 *   with a callback; latch_client_fd() gives the descriptor to watch for
 *   latch_client_events(); when it is ready, latch_client_process(); then
 *   watch the (maybe new) latch_client_fd() for the (maybe new)
 *   latch_client_events(). examples/sd-event/validate.c does it with
 *   sd-event.
 *
 * A new connection may get the number of the old descriptor (closed, and so
 * gone from any epoll set): compare latch_client_connection_id(), not the
 * number, to know when to register the descriptor again.
 *
 * Requests go out in submission order and are answered in that order (one
 * connection, pipelined). Each callback runs exactly once, from
 * latch_client_process() (or latch_client_abort() / latch_client_free()),
 * with LATCH_OK and a reply that is the callback's to free with
 * latch_reply_free(), or an error and NULL; latch_last_message() says why
 * while the callback runs. A callback may submit more requests; it must not
 * call latch_client_process() or free the client.
 *
 * Retries as for the blocking calls: when the connection drops, requests
 * not yet written wait for the next connection, idempotent ones that were
 * sent are sent once more, and the others fail with LATCH_ERR_DISCONNECTED.
 * There is no timeout here: use the loop's timer and latch_client_abort().
 * The blocking calls fail with LATCH_ERR_INVALID_ARGUMENT while submitted
 * requests are in flight on the same client.
 */

/* The answer to a submitted request. */
typedef void (*latch_callback_t)(latch_client *client, int err, latch_reply *reply, void *userdata);

/*
 * The connection's descriptor in *ret_fd, connecting first when there is
 * none (or, with nothing in flight, when latchd closed the idle one). It
 * changes when a connection is replaced: ask again after every
 * latch_client_process(). Returns LATCH_OK, LATCH_ERR_UNREACHABLE,
 * LATCH_ERR_TIMEOUT, LATCH_ERR_NO_MEMORY or LATCH_ERR_INVALID_ARGUMENT.
 */
int latch_client_fd(latch_client *client, int *ret_fd);

/* The poll(2) events to wait for on the descriptor: POLLIN, plus POLLOUT
 * while submitted requests are not completely written; 0 when there is no
 * connection (or client is NULL). */
int latch_client_events(const latch_client *client);

/* A number that changes whenever the client opens a new connection; 0
 * while it has none (or client is NULL). */
uint64_t latch_client_connection_id(const latch_client *client);

/* Requests submitted and not yet answered (0 for NULL). */
size_t latch_client_pending(const latch_client *client);

/*
 * Queues a request (a JSON object with a string "op", sent as is) and
 * returns at once; `callback` (may be NULL) gets the answer. Connects when
 * nothing was in flight. Returns LATCH_OK, LATCH_ERR_INVALID_ARGUMENT (not a
 * JSON object with an "op"), LATCH_ERR_UNREACHABLE, LATCH_ERR_NO_MEMORY; on
 * error the callback is never called.
 */
int latch_submit_json(latch_client *client, const char *request_json, latch_callback_t callback, void *userdata);

/* As latch_submit_json() for op "validate" (`service` optional), with the
 * answer as latch_validate()'s. */
int latch_submit_validate(latch_client *client, const char *session, const char *service,
                          latch_callback_t callback, void *userdata);

/*
 * Writes what the socket takes, reads what has arrived and runs the
 * callbacks of the complete answers; never blocks. Call it when the
 * descriptor is ready for latch_client_events() (calling it otherwise does
 * no harm). A dropped connection is handled as described above (a new one
 * is opened for what is left). Returns LATCH_OK (failures go to the
 * callbacks) or LATCH_ERR_INVALID_ARGUMENT (NULL, or called from a
 * callback).
 */
int latch_client_process(latch_client *client);

/* Drops the connection and fails every submitted request with `err` (e.g.
 * LATCH_ERR_TIMEOUT from the loop's timer; LATCH_OK means
 * LATCH_ERR_DISCONNECTED), running their callbacks now. */
void latch_client_abort(latch_client *client, int err);

/* ------------------------------------------------------------------------ */
/* Cookies: pure functions, no I/O, thread-safe.
 *
 * `name` NULL means "__Host-latch". A name must be an RFC 6265 token; a
 * "__Host-" name implies Path=/ and no Domain (the browser enforces it).
 * `same_site` NULL means "Lax"; otherwise "Strict", "Lax" or "None" (any
 * case). `domain` (NULL: none) is refused with a "__Host-" name. Secure and
 * HttpOnly are always set.
 */

/*
 * Builds a Set-Cookie header value carrying `session`:
 *   NAME=SESSION; Max-Age=N; Path=/; Secure; HttpOnly; SameSite=Lax[; Domain=D]
 * with N = expires_at - now (0 when already expired); now 0 means the
 * current time. Returns LATCH_OK and a new string in *ret_value (holds the
 * session: free with latch_secret_free()), LATCH_ERR_INVALID_ARGUMENT (a
 * session that is empty or not base64url, a bad name, same_site or domain,
 * a domain with a __Host- name) or LATCH_ERR_NO_MEMORY.
 */
int latch_cookie_build(const char *session, int64_t expires_at, int64_t now, const char *name,
                       const char *same_site, const char *domain, char **ret_value);

/* Builds the Set-Cookie value that removes the cookie (empty value,
 * Max-Age=0, the same attributes). Errors as latch_cookie_build(); the
 * result is a new string (no secret: free(3)). */
int latch_cookie_build_clear(const char *name, const char *same_site, const char *domain, char **ret_value);

/*
 * Finds the session id in a Cookie request header value ("a=1; NAME=ID"):
 * pairs are split at ';', blanks around names and values are ignored, a
 * value in double quotes is unquoted, names compare exactly. The first pair
 * with the name whose value is a well-formed session id (1 to 512
 * base64url characters) wins; malformed values are skipped.
 *
 * Returns LATCH_OK and a new string in *ret_session (free with
 * latch_secret_free()); LATCH_ERR_INVALID_SESSION when no such cookie is
 * there (also for a NULL header: no Cookie header at all);
 * LATCH_ERR_INVALID_ARGUMENT (ret_session NULL, bad name) or
 * LATCH_ERR_NO_MEMORY.
 */
int latch_cookie_parse(const char *cookie_header, const char *name, char **ret_session);

/* ------------------------------------------------------------------------ */
/* Offline token verification */

/* A set of Ed25519 public keys from a JWKS. Read-only once loaded: share it
 * freely between threads. */
typedef struct latch_keyset latch_keyset;

/*
 * Loads the JWKS document at `path` (e.g. /run/latch/jwks.json). Keys that
 * are not OKP/Ed25519 are skipped. Returns LATCH_OK and a new keyset in *ret
 * (free with latch_keyset_free()), LATCH_ERR_IO (unreadable or over 1 MiB;
 * errno says why), LATCH_ERR_INVALID_ARGUMENT (NULL argument, or not a
 * valid JWKS) or LATCH_ERR_NO_MEMORY.
 */
int latch_jwks_load_file(const char *path, latch_keyset **ret);

/* As latch_jwks_load_file(), from `len` bytes of JSON text at `json` (no
 * NUL needed). Never LATCH_ERR_IO. */
int latch_jwks_parse(const char *json, size_t len, latch_keyset **ret);

/* Number of usable keys in the set (0 for NULL). */
size_t latch_keyset_size(const latch_keyset *keyset);

/* Frees the keyset. NULL is fine. */
void latch_keyset_free(latch_keyset *keyset);

/*
 * Verifies the compact JWS `token` against `keyset`: signature by a key of
 * the set (never one named or embedded by the token), alg EdDSA or Ed25519,
 * exp required, nbf/iat/exp within `leeway` seconds (latchd's default is
 * 30), `aud` holding `audience` and `iss` equal to `issuer` when those are
 * not NULL. `now` is Unix seconds, 0 for the current time. Thread-safe.
 *
 * Returns LATCH_OK and, when not NULL, the claims as new compact JSON text
 * in *ret_claims_json and the `sub` claim in *ret_sub (new; NULL when the
 * token has none), both for free(3); LATCH_ERR_INVALID_TOKEN (refused);
 * LATCH_ERR_INVALID_ARGUMENT (NULL keyset or token, negative leeway) or
 * LATCH_ERR_NO_MEMORY. Unlike other outputs, *ret_reason (when not NULL) is
 * always set: NULL on success, else a static one-line reason ("token
 * expired", "signature does not verify", ...).
 */
int latch_token_verify(const latch_keyset *keyset, const char *token, const char *audience,
                       const char *issuer, int64_t leeway, int64_t now,
                       char **ret_claims_json, char **ret_sub, const char **ret_reason);

#ifdef __cplusplus
}
#endif

#endif
