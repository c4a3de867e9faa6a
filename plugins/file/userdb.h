/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * userdb: the user database of the `file` plugin, shared with `latchctl user`.
 *
 * Format: one user a line, `user:hash[:group,group...[:expires]]`. Lines
 * whose first non-blank character is `#` are comments; blank lines are
 * allowed. A line ends at '\n'; a final line without one is accepted.
 *
 * Expiry (the optional 4th field) is when the password expires: empty (or
 * absent) for never, `0` for "change it at the next login" (as `passwd -e`),
 * else Unix seconds (decimal digits, no sign) from which on it is expired.
 * An expired password still authenticates; the account is then due for a
 * change (the plugin's account() answers LATCH_NEW_AUTHTOK_REQD).
 *
 * Names (users and groups): 1..USERDB_NAME_MAX bytes, no ':' ',' whitespace,
 * control characters or NUL, not starting with '-' or '#'.
 *
 * Hashes: `$argon2id$...` (libsodium), or the crypt(3) formats yescrypt
 * (`$y$`), bcrypt (`$2b$`, `$2y$`) and sha512-crypt (`$6$`) (libxcrypt), kept
 * for migration. Any other text (DES, MD5 `$1$`, empty, `*`, `!...`) is a
 * valid line whose password never verifies: that is how an account is locked.
 *
 * Nothing here logs: problems in a file are handed to a diag callback, and
 * every function returns 0 or a negative errno. Library code: no globals, no
 * locks; a parsed `struct userdb` is immutable and may be read from any
 * number of threads at once.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest user or group name, in bytes. */
#define USERDB_NAME_MAX 64
/* The longest password accepted, in bytes. Longer ones are refused before
 * any hashing (no truncation ever happens). */
#define USERDB_PASSWORD_MAX 4096
/* The largest file userdb_parse_fd() and the editors read, in bytes. */
#define USERDB_FILE_MAX (16 * 1024 * 1024)

/* The `expires` of a password that never expires (an empty 4th field). */
#define USERDB_EXPIRES_NEVER INT64_C(-1)

/* One parsed user. Every pointer is owned by the `struct userdb` it came from
 * and lives as long as it. */
struct userdb_entry {
        const char *user;
        const char *hash;
        const char *const *groups; /* n_groups names, then NULL */
        size_t n_groups;
        int64_t expires; /* USERDB_EXPIRES_NEVER, or Unix seconds (0: at once) */
        unsigned line; /* 1-based line in the source */
};

/* A parsed database (opaque, immutable). */
struct userdb;

/*
 * Receives one problem found while parsing: `name` is the name given to the
 * parser (normally the file's path), `line` the 1-based line number, and
 * `message` a short text without secrets and without the line's raw bytes.
 * All three strings are borrowed for the duration of the call.
 */
typedef void (*userdb_diag_fn)(void *userdata, const char *name, unsigned line,
                               const char *message);

/*
 * Parses `len` bytes at `buf` (need not be NUL-terminated; may contain any
 * bytes). `name` labels diagnostics. Every problem is reported through `diag`
 * (may be NULL), not only the first. Strict: a single malformed line or a
 * duplicate user makes the whole parse fail, so a broken file never yields a
 * table (and never grants anything).
 *
 * Returns 0 and a new table in *ret_db (free with userdb_free()), -EBADMSG
 * when the content has problems (all reported), -EFBIG when len exceeds
 * USERDB_FILE_MAX, -EINVAL on bad arguments or -ENOMEM.
 */
int userdb_parse_buffer(const void *buf, size_t len, const char *name, userdb_diag_fn diag,
                        void *userdata, struct userdb **ret_db);

/*
 * Like userdb_parse_buffer(), reading an open file descriptor to its end from
 * its current offset (the fd stays open and owned by the caller). Also returns
 * the errors of read(2).
 */
int userdb_parse_fd(int fd, const char *name, userdb_diag_fn diag, void *userdata,
                    struct userdb **ret_db);

/*
 * Like userdb_parse_fd() on `path`, opened O_RDONLY|O_CLOEXEC; diagnostics
 * carry `path`. Also returns the errors of open(2) (-ENOENT, -EACCES, ...).
 */
int userdb_parse_file(const char *path, userdb_diag_fn diag, void *userdata,
                      struct userdb **ret_db);

/* Frees a table and wipes the hashes it held. Accepts NULL. */
void userdb_free(struct userdb *db);

/* Number of users in the table. */
size_t userdb_size(const struct userdb *db);

/*
 * The i-th user in the table's order (sorted by name, not by line), borrowed
 * from `db` and valid until userdb_free(db); NULL when i >= userdb_size(db).
 */
const struct userdb_entry *userdb_get(const struct userdb *db, size_t i);

/*
 * Finds `user` (exact, case-sensitive byte comparison). Returns the entry,
 * borrowed from `db` and valid until userdb_free(db), or NULL when absent or
 * when an argument is NULL.
 */
const struct userdb_entry *userdb_lookup(const struct userdb *db, const char *user);

/*
 * Checks `password` against `hash` (a hash as found in the file).
 * Returns 1 when it matches; 0 when it does not, when the hash's format is
 * not one that may verify (see the top of this file), or when the password
 * is empty or longer than USERDB_PASSWORD_MAX; -ENOMEM when memory runs out.
 * Comparisons run in constant time; the work area is wiped. Thread-safe.
 * Costs one full hash computation (argon2id or crypt) whenever the format
 * may verify and the password is acceptable.
 */
__attribute__((warn_unused_result)) int userdb_verify(const char *hash, const char *password);

/* Whether `hash` is in a format userdb_verify() may accept. */
bool userdb_hash_supported(const char *hash);

/*
 * Makes a new argon2id hash of `password` with libsodium's
 * OPSLIMIT_INTERACTIVE/MEMLIMIT_INTERACTIVE parameters.
 * Returns 0 and a malloc'd string in *ret_hash (caller frees), -EINVAL for an
 * empty or too long password, or -ENOMEM.
 */
int userdb_hash_password(const char *password, char **ret_hash);

/* Whether `name` is a valid user or group name (rules at the top). */
bool userdb_name_valid(const char *name);

/* Whether `groups` is a valid group list: "" (no groups) or names joined by
 * single commas. NULL is not valid. */
bool userdb_groups_valid(const char *groups);

/* Whether the password of `e` is expired at `now` (Unix seconds). */
bool userdb_expired(const struct userdb_entry *e, int64_t now);

/*
 * Parses an expiry as `latchctl user --expires` takes it: "never"
 * (USERDB_EXPIRES_NEVER), "now" (0: change at the next login), "YYYY-MM-DD"
 * (00:00 UTC that day, from 1970-01-01 on) or Unix seconds. Returns 0, or
 * -EINVAL / -ERANGE.
 */
int userdb_parse_expires(const char *s, int64_t *ret);

/*
 * What the editors return (a success, > 0) when the new file was renamed over
 * the old one but the fsync() of the folder after it failed: the change is in
 * effect (every reader opening `path` sees it) but may be lost in a crash or
 * a power loss. Callers treat it as done and warn.
 */
#define USERDB_EDIT_NOT_DURABLE 1

/*
 * Editors, used by `latchctl user` and the plugin's password changes. Each
 * rewrites the file at `path` atomically: the new content goes to a
 * temporary file `.NAME.XXXXXXXXXXXXXXXX` in the same folder
 * (O_CREAT|O_EXCL|O_CLOEXEC), which gets the old file's mode and owner, is
 * fsync()ed and rename()d over `path`, and the folder is fsync()ed. A reader
 * opening `path` sees the old file or the new one, never a mix. If anything
 * up to the rename fails the old file is untouched (and the temporary file
 * removed); if only the folder's fsync() after it fails, the new file stays
 * (USERDB_EDIT_NOT_DURABLE).
 * Editors of the same folder are serialised with flock(2) on the folder;
 * holding it, an editor first removes temporary files of `path` that a
 * crashed editor left behind.
 * Lines of other users, comments, blank lines and their order are kept byte
 * for byte (a missing final newline is added when a line is appended).
 * `path` must name a regular file or, for userdb_add() only, nothing (then
 * it is created with mode 0600, owned by the caller); a symbolic link is
 * refused with -ELOOP.
 *
 * Passwords: any bytes but NUL, 1..USERDB_PASSWORD_MAX of them; the new
 * hash is argon2id (userdb_hash_password()), made before the lock is taken.
 * `groups` is "a,b", "" for none, or NULL: none for userdb_add(), the
 * current ones for userdb_passwd(). `expires` is USERDB_EXPIRES_NEVER or
 * Unix seconds >= 0 (see the top); a line is written in its shortest form
 * (`user:hash` when there are neither groups nor an expiry).
 *
 * Returns 0, USERDB_EDIT_NOT_DURABLE (above), or:
 *   -EEXIST  userdb_add(): `user` already has a line;
 *   -ENOENT  no such user (all but userdb_add()), or no such file;
 *   -EINVAL  bad user name, bad groups, bad expiry, empty or too long password;
 *   -EKEYREJECTED userdb_change_password(): the old password does not verify;
 *   -EBADMSG userdb_change_password(): the file does not parse;
 *   -EAGAIN  userdb_change_password(): the lock stayed taken for the timeout;
 *   -EIO     the temporary file could not be written or synced; or another
 *            negative errno from the system (-EACCES, -EROFS, -ENOSPC, -ELOOP,
 *            -EFBIG, -EPERM from fchown(), -ENOMEM) naming why.
 * Every negative return leaves the old file in place.
 *
 * userdb_passwd() replaces the user's line (a duplicate line of the same user,
 * itself an error for the parser, is dropped), keeping the groups when
 * `groups` is NULL and writing `expires` (USERDB_EXPIRES_NEVER: a new password
 * is not expired unless asked); userdb_expire() sets only the expiry, keeping
 * hash and groups; userdb_del() removes every line of the user. Lines that
 * do not parse are kept as they are.
 */
int userdb_add(const char *path, const char *user, const char *password,
               const char *groups /* "a,b" or NULL */, int64_t expires);
int userdb_passwd(const char *path, const char *user, const char *password,
                  const char *groups /* NULL keeps them */, int64_t expires);
int userdb_expire(const char *path, const char *user, int64_t expires);
int userdb_del(const char *path, const char *user);

/*
 * A user's own password change (the plugin's password()): under the lock,
 * checks `old_password` against the user's hash in the file as it is now
 * (not a copy read earlier: of two changes racing with the same old
 * password, the second fails with -EKEYREJECTED), then writes an argon2id hash of
 * `new_password`, keeps the groups and clears the expiry. Waits at most
 * `lock_timeout_ms` for the lock (< 0: as long as it takes). Quality checks
 * are the caller's.
 */
int userdb_change_password(const char *path, const char *user, const char *old_password,
                           const char *new_password, int lock_timeout_ms);
