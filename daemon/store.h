/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The session store: one LMDB environment in state_dir.
 *
 * Sessions are keyed by a 32-byte hash of the session id (the id itself never
 * reaches the store). Each has a non-secret `handle` (22 base64url chars of
 * 128 random bits) used to list, revoke, and as the JWT `sid` claim.
 *
 * Threads: every function is safe to call from any thread. Reads use short
 * read-only transactions (the environment is opened MDB_NOTLS) and never wait
 * for a writer. Writes are serialised by LMDB's single writer lock and are
 * durable (synced) when the function returns 0, except store_session_touch(),
 * whose write may be lazily synced (it only slides the idle expiry), and a
 * key-value update in a batch (store_kv_batch_begin()), written with the
 * batch's session or at store_kv_batch_end().
 *
 * Errors are negative errno values:
 *   -ENOENT   no such session / key (also: expired)
 *   -EEXIST   key or handle already present
 *   -ENOSPC   the disk is full (the map grows by itself; this is the disk)
 *   -EUCLEAN  the store is damaged: a page or record is not what it should
 *             be (LMDB's MDB_CORRUPTED, MDB_PAGE_NOTFOUND, a malformed
 *             record, ...). Callers answer `internal` and log "store damaged".
 *   -EIO      LMDB failed otherwise (logged once by the caller)
 *   -EINVAL   a bad argument
 *   -ENOMEM
 * Nothing is half-written: every write is one transaction.
 *
 * No store handle may cross a fork(): open it after any fork, in the process
 * that uses it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <latch/plugin.h>

#define STORE_KEY_SIZE 32
#define STORE_HANDLE_LEN 22

typedef struct store store;

/* A session as the store keeps it. In callbacks, every pointer is borrowed
 * from the read transaction and valid only during the callback. */
struct session_info {
        char handle[STORE_HANDLE_LEN + 1];
        const char *user;
        const char *service;
        const char *claims_json; /* a JSON object's text, e.g. "{\"groups\":[\"a\"]}" */
        int64_t created_at;
        int64_t last_seen_at;   /* persisted; may lag the last validate by the touch granularity */
        int64_t expires_at;     /* absolute expiry */
        int64_t idle_timeout;   /* seconds; idle expiry = min(last_seen_at + idle_timeout, expires_at) */
        uint32_t peer_uid;      /* the peer that created it */
        /* claims_json is exactly the text Jansson writes (JSON_COMPACT) for
         * the object it parses from it, so a reply may copy it as it is.
         * Set by the writer that checked it; records written before the
         * flag existed read false and are re-parsed. A NULL claims_json is
         * stored as "{}", which is canonical. */
        bool claims_canonical;
};

/* Idle expiry of a session as stored. */
static inline int64_t session_idle_expires_at(const struct session_info *s) {
        int64_t t = s->last_seen_at + s->idle_timeout;
        return t < s->expires_at ? t : s->expires_at;
}

/* Called with a borrowed session; return 0 to go on, non-zero to stop (that
 * value is returned by the caller). */
typedef int (*session_fn)(void *userdata, const struct session_info *s);

struct store_stats {
        uint64_t sessions;      /* records, live or expired-but-not-yet-swept */
        uint64_t map_size;      /* bytes */
        uint64_t used_bytes;    /* pages in use × page size */
        uint64_t readers_cleared; /* stale reader slots cleared since open */
};

/* Opens (creating when absent) the environment in `dir`, which must exist,
 * be owned by the current uid, and, like every entry in it, give group and
 * others no access (-EPERM otherwise); the store's files may not be links
 * (-ELOOP). A file that is not an LMDB environment of this layout version
 * gives -EINVAL. Clears stale reader slots. */
int store_open(const char *dir, store **ret);
void store_close(store *s); /* NULL is fine */

/* Creates a session. info->handle, user, service, claims_json (NULL means
 * "{}") and all times must be set. Returns 0, -EEXIST, -ENOSPC, -EIO. */
int store_session_create(store *s, const uint8_t key[STORE_KEY_SIZE], const struct session_info *info);

/* Revocations of every session of a user (store_session_revoke_user*)
 * are numbered from 1. A login takes the number of the last one as its
 * mark before it checks credentials, and makes its session with
 * store_session_create_since(): if the user's sessions were revoked after
 * the mark (a password change, say), the credentials it checked may be the
 * ones the revocation was for, and it gets -ESTALE, with nothing written,
 * rather than a session the revocation missed. `own` (0: none) is the
 * number of a revocation the login made itself (after changing an expired
 * password), which does not count. The check and the revocation are
 * ordered by the store's write transactions. The last 1024 revocations are
 * remembered: a login that saw more go by gets -ESTALE. */
#define STORE_NO_MARK UINT64_MAX
uint64_t store_revocation_mark(store *s);
int store_session_create_since(store *s, const uint8_t key[STORE_KEY_SIZE], const struct session_info *info,
                               uint64_t mark, uint64_t own);

/* Looks a session up by key; a session whose absolute or idle expiry is
 * <= now counts as absent (-ENOENT). Calls fn once; returns fn's value, or a
 * negative errno. */
int store_session_get(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now, session_fn fn, void *userdata);

/* The same by handle (for token `sid` checks and admin ops). */
int store_session_get_by_handle(store *s, const char *handle, int64_t now, session_fn fn, void *userdata);

/* Records that a live session was seen at `now`, to be written later by
 * store_session_flush_slides(). Slides are merged by key (the latest
 * wins), so memory is bounded by the number of sessions slid, and none is
 * dropped. Until it is written, a slide counts everywhere: the get, list
 * and by-handle functions report last_seen_at including it and judge
 * expiry by it, and store_sweep() writes it instead of removing the
 * session. 0 or -ENOMEM (the slide is then not recorded). */
int store_session_slide(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now);

/* Writes every slide recorded so far, in transactions of a bounded size
 * (one sync each). Slides recorded meanwhile wait for the next flush. On
 * failure the slides not written stay recorded. *ret_written (may be NULL)
 * gets how many were written. store_close() flushes what is left. */
int store_session_flush_slides(store *s, size_t *ret_written);

/* How many slides are recorded and not yet being written. */
size_t store_session_slides_pending(store *s);

/* Persists last_seen_at = now for a live session (slides the idle expiry;
 * never past expires_at). -ENOENT if it is gone or expired. */
int store_session_touch(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now);

/* store_session_touch() for n sessions in one transaction (one sync):
 * sessions gone or expired are skipped. 0 or a negative errno. */
int store_session_touch_many(store *s, const uint8_t (*keys)[STORE_KEY_SIZE], const int64_t *nows, size_t n);

/* Deletes a session with all its index entries (logout). -ENOENT if absent. */
int store_session_delete(store *s, const uint8_t key[STORE_KEY_SIZE]);

/* Deletes by handle, or every session of a user; *ret_count (may be NULL)
 * gets how many were deleted (0 is not an error). */
int store_session_revoke_handle(store *s, const char *handle, size_t *ret_count);
int store_session_revoke_user(store *s, const char *user, size_t *ret_count);
/* store_session_revoke_user() leaving the session of key `keep` (NULL:
 * none left), in one transaction: after a password change, every session
 * of the user but the one that made the change. *ret_mark (may be NULL)
 * gets the revocation's number (0 when no user was revoked: an empty or
 * too long name), the `own` of the session the changer makes next
 * (store_session_create_since()). */
int store_session_revoke_user_except(store *s, const char *user, const uint8_t keep[STORE_KEY_SIZE],
                                     size_t *ret_count, uint64_t *ret_mark);

/* Calls fn for each live session, filtered by user and/or service when not
 * NULL, in one read transaction. Uses the user index when user is set. */
int store_session_list(store *s, const char *user, const char *service, int64_t now, session_fn fn,
                       void *userdata);

/* Deletes up to `batch` sessions whose expiry is <= now, in one short write
 * transaction, using the expiry index. *ret_removed gets the count; a count
 * below `batch` means nothing expired is left. */
int store_sweep(store *s, int64_t now, size_t batch, size_t *ret_removed);

int store_get_stats(store *s, struct store_stats *ret);

/* Plugin key-value store, namespaced by `ns` (the plugin's name). See
 * struct latch_host in <latch/plugin.h> for the semantics.
 *
 * store_kv_update() runs fn on the current value under a lock that every
 * update takes (so concurrent updates of a key are serialised: each sees
 * the one before) and records the result, which every get and update, of
 * any thread, sees at once. fn runs exactly once. It is then written:
 *   - without a batch open on the calling thread, by a synced write before
 *     store_kv_update() returns, as every other write;
 *   - with one (store_kv_batch_begin()), by the next of the thread's synced
 *     writes that carries it: store_session_create() (the same commit as
 *     the session) or store_kv_batch_end().
 * A write that carries updates carries every update recorded so far (of
 * any thread): group commit. When it fails (-ENOSPC, -EIO, -EUCLEAN):
 *   - without a batch, store_kv_update() returns the error and takes its
 *     update back: get sees the value before it again, and no later write
 *     writes it. Unless a write of another thread carried it meanwhile
 *     (then it returns 0), or a later update of the key by another
 *     thread (in a batch, or one whose write failed too) saw its value
 *     already: then that value stays, and the next write carries it,
 *     though the error was returned;
 *   - in a batch, store_kv_update() returned 0 and its updates still count
 *     (a used code stays used): they were not made durable, the next write
 *     that carries updates tries them again, and store_kv_batch_end() (or
 *     the session's creation) returns the error. The caller must not
 *     report success. */
int store_kv_get(store *s, const char *ns, const void *key, size_t keylen, void *buf, size_t *len);
int store_kv_update(store *s, const char *ns, const void *key, size_t keylen, latch_kv_update_fn fn,
                    void *userdata);

/* A request's key-value updates, written together with its session or once
 * at its end instead of one synced commit each. Zero-initialise it; it may
 * be begun and ended more than once (one job run each, e.g. the steps of a
 * conversation): `seq` remembers what is still to be made durable. */
struct store_kv_batch {
        store *store;
        uint64_t seq; /* the batch's last update (0: none) */
};

/* Opens b on the calling thread (at most one at a time): until
 * store_kv_batch_end(), store_kv_update() on s from this thread defers its
 * write to the batch. */
void store_kv_batch_begin(store *s, struct store_kv_batch *b);

/* Closes b and makes its updates durable: nothing to do when a write since
 * (its session's, or anyone's that carried updates) did; else one synced
 * commit. 0 or a negative errno (see store_kv_update()). Must run before
 * any answer that depends on the updates (a login or authentication that
 * succeeded). */
int store_kv_batch_end(struct store_kv_batch *b);

/* ---- Options, statistics and maintenance ---- */

/* Options of store_open_with_options(); a zero field means the default. */
struct store_options {
        size_t initial_map_size; /* bytes; default 64 MiB. The map doubles whenever it fills. */
        bool no_sync;            /* MDB_NOSYNC: commits are not synced. Tests and benchmarks
                                  * only, never the daemon: a crash may lose acknowledged writes. */
};

/* store_open() with options (opts may be NULL: the same as store_open()).
 * Same errors as store_open(). */
int store_open_with_options(const char *dir, const struct store_options *opts, store **ret);

/* store_open_with_options(), which also refuses, before LMDB reads a page:
 *   -EPERM    the state folder or any entry in it is not the caller's, or
 *             group or others have any access to it;
 *   -ELOOP    sessions.mdb or sessions.mdb-lock is a symbolic link;
 *   -EUCLEAN  sessions.mdb is shorter than its meta pages say (cut short:
 *             reading it would fault with SIGBUS).
 * On failure, when ret_problem is not NULL, *ret_problem gets one line that
 * names the file and what to do (malloc'd; the caller frees it), or NULL
 * when there is nothing to add to the errno. */
int store_open_checked(const char *dir, const struct store_options *opts, store **ret, char **ret_problem);

/* The exit status of a process whose store failed under a read: see
 * store_catch_faults(). */
#define STORE_EXIT_FAULT 74

/* Makes a SIGBUS on this store's map (its file was cut short while mapped,
 * or the disk failed) write one line to stderr, naming the file, and end
 * the process with _exit(STORE_EXIT_FAULT) rather than die silently by the
 * signal: a service manager then logs the status and restarts it, and the
 * restart's store_open_checked() says what is wrong. Process-wide, for one
 * store at a time (the last one given); store_close() undoes it. A SIGBUS
 * outside the store keeps its default action. 0 or a negative errno. */
int store_catch_faults(store *s);

/* Walks every database in one read transaction and checks that each session
 * record decodes and has exactly its handle, user and expiry index entries,
 * and that the indexes hold nothing else. Returns 0, -EUCLEAN if they
 * disagree, or -EIO/-ENOMEM. For tests and diagnostics: it reads everything. */
int store_check_consistency(store *s);

/* Callbacks (session_fn, latch_kv_update_fn) run inside a transaction and
 * must not call back into the same store: they would take its map lock
 * (or, for store_kv_update()'s fn, its key-value lock) recursively and could
 * deadlock. */
