/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service-stack engine: parses service files written in Linux-PAM's
 * pam.d syntax (pam.conf(5)) and evaluates them with exactly the decision
 * logic of Linux-PAM 1.5's libpam (_pam_dispatch_aux(), and pam_chauthtok()'s
 * two passes for the password stack), so that a stack decides what
 * Linux-PAM would decide given the same module results.
 *
 * File syntax, one logical line per module:
 *
 *     [-]TYPE  CONTROL  PLUGIN  [ARG...]
 *
 *   - '#' starts a comment anywhere on a line; a line ending in '\' continues
 *     on the next one (as libpam's line assembler). Words are separated by
 *     spaces, tabs and newlines only, as in libpam, which would keep a '\r'
 *     (CRLF file) in the last word of a line: here a '\r' is an error.
 *   - TYPE is "auth", "account" or "password" (case-insensitive).
 *     "session" lines are syntax-checked and then ignored: latch has no such
 *     stack, and accepting them lets a PAM file be reused as it is. Any other
 *     type is an error. A leading '-' means: if the plugin does not exist
 *     (ops->open() returns -ENOENT), keep the line as a module that cannot be
 *     loaded. Exactly like libpam, such a line is not skipped: it returns
 *     LATCH_MODULE_UNKNOWN each time it is reached, and its control decides
 *     (harmless for "optional"/"sufficient", a failure for "required").
 *   - CONTROL is required, requisite, sufficient, optional (case-insensitive),
 *     include FILE, substack FILE, or "[value=action ...]" where value is a
 *     return name ("success", "auth_err", ... "incomplete") or "default", and
 *     action is ignore, ok, done, bad, die, reset or a positive jump count.
 *   - Arguments are words; "[...]" makes one argument that may hold spaces
 *     ("\]" stands for ']').
 *   - include/substack name a file of the same directory (no '/'); only the
 *     lines of the including line's type are taken. An include inserts them in
 *     place; a substack runs them as a nested stack where die/done end only
 *     the substack, reset goes back to the state at its start, and a jump
 *     cannot leave it (jumping too far fails the stack, as in libpam).
 *   - A type with no lines at all (after includes) decides LATCH_PERM_DENIED;
 *     there is no fallback to an "other" service.
 *
 * Unlike libpam, which turns a malformed line into one that always fails at
 * run time, every problem is a load error: the whole load fails and each
 * problem is reported through the diag callback as (PATH, LINE, MESSAGE),
 * PATH being "DIR/NAME". Every problem of every file shows in one load: a
 * bad line is reported and skipped, and the good lines of a file with bad
 * ones are still expanded and their plugins opened (then closed again), so
 * that their problems are reported too. Like libpam, a control keyword may be bracketed
 * ("[required]") and a value=action list may be written without brackets
 * when it holds no space; unlike libpam, an unterminated '[' is an error.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <latch/plugin.h>

#include "stack-type.h"

/* Longest chain of include/substack (a service including a file is depth 1). */
#define STACK_DEPTH_MAX 8
/* Most entries (module lines and substack markers) one type's stack may hold
 * once its includes are expanded. */
#define STACK_ENTRIES_MAX 256

/*
 * How the engine reaches modules; the daemon glues this to the plugin host.
 * `plugin` is the PLUGIN word of the line (a name or an absolute path). open
 * returns 0 and a module handle, or a negative errno and a malloc()ed
 * one-line message in *ret_error (no file:line, the engine adds it; may be
 * left NULL). -ENOENT must mean "no such plugin": on a "-TYPE" line it is not
 * an error (see above). Each module line of each service opens its own
 * module, even when the line comes from a file included by several services.
 * call returns an enum latch_result; it may run on several threads at once.
 * Its `flags` are 0 for auth and account, and for the password stack those
 * of the pass (enum latch_password_flag: LATCH_PRELIM_CHECK or
 * LATCH_UPDATE_AUTHTOK, perhaps with LATCH_CHANGE_EXPIRED_AUTHTOK).
 * expired_change (may be NULL) is called once when a login's account stack
 * answered LATCH_NEW_AUTHTOK_REQD and the request goes on through the
 * password stack (see stack_authenticate_step()); the daemon makes the
 * login's password the current one there (latch_req_begin_expired_change()).
 */
struct stack_module_ops {
        int (*open)(void *userdata, const char *plugin, int argc, const char *const *argv,
                    void **ret_module, char **ret_error);
        void (*close)(void *userdata, void *module);
        int (*call)(void *userdata, void *module, enum stack_type type, int flags, struct latch_req *req);
        void (*outcome)(void *userdata, void *module, struct latch_req *req, int result);
        void (*expired_change)(void *userdata, struct latch_req *req);
};

/* Problems are reported as ("PATH", LINE, "message"); LINE 0 when not about a
 * line. Each distinct problem is reported once per load. */
typedef void (*stack_diag_fn)(void *userdata, const char *file, unsigned line, const char *message);

struct services;
struct stack;

/*
 * Loads every service file in `dir`: regular files (symlinks followed), except
 * names starting with '.' or ending in '~', ".swp", ".bak", or holding
 * ".dpkg-" or ".rpm" suffixes. include/substack name a file in the same dir
 * (a plain name, no '/'); cycles and chains deeper than STACK_DEPTH_MAX are
 * errors. Each module line is opened through ops (which the result keeps
 * using: ops must outlive it).
 *
 * Returns 0 and a new set in *ret (free with services_free()); -EINVAL after
 * reporting every problem through diag (then every module opened so far is
 * closed); -ENOENT if dir does not exist, -ENOTDIR if it is not a directory;
 * -ENOMEM; another negative errno if dir cannot be listed (a service file
 * that cannot be read is a reported problem: -EINVAL). *ret is untouched on failure. Not thread-safe
 * with respect to ops (it calls open/close from the calling thread only).
 */
int services_load(const char *dir, const struct stack_module_ops *ops, void *ops_userdata,
                  stack_diag_fn diag, void *diag_userdata, struct services **ret);

/*
 * Loads the single service `name` of `dir` (and the files it includes), with
 * the same rules; for tests and tools. -ENOENT if the file does not exist.
 */
int services_load_file(const char *dir, const char *name, const struct stack_module_ops *ops,
                       void *ops_userdata, stack_diag_fn diag, void *diag_userdata,
                       struct services **ret);

/* Closes every module (through ops->close) and frees the set. NULL is ok. No
 * stack of the set may be running. */
void services_free(struct services *s);

/* The stack of `service`, borrowed from s (valid until services_free()); NULL
 * when absent. */
const struct stack *services_find(const struct services *s, const char *service);

/* The number of services in s (0 for NULL). */
size_t services_count(const struct services *s);

/*
 * Runs one type's stack and returns its final result (enum latch_result), as
 * pam_authenticate()/pam_acct_mgmt() would: LATCH_PERM_DENIED when the type
 * has no lines or no module decided, LATCH_INCOMPLETE as soon as a module
 * returns it (stack_run() cannot resume; stack_run_resumable() can). Calls
 * no outcome(). Modules are called with flags 0 (for the password stack,
 * one pass of it: use stack_chauthtok_step()). Re-entrant: any number of
 * threads may run the same const stack at once; all per-request state lives
 * on the caller's stack.
 */
int stack_run(const struct stack *st, enum stack_type type, struct latch_req *req);

#define CALLED_WORDS (STACK_ENTRIES_MAX / 64)

struct stack_substate {
        int impression;
        int status;
};

/* libpam's pamh->former: where a stack stopped on LATCH_INCOMPLETE, and
 * what it had decided so far. Zero-initialise it before the first run. */
struct stack_former {
        bool waiting;     /* the last run returned LATCH_INCOMPLETE: the next one resumes */
        size_t depth;     /* the entry that returned it */
        int impression;
        int status;
        struct stack_substate substates[STACK_DEPTH_MAX + 1];
        /* Not libpam's: a line of a password stack's update pass answered
         * LATCH_SUCCESS in some run with this former (it changed what it
         * keeps, whatever the lines after it answer). */
        bool updated;
};

/* stack_run() with resumption, as libpam's _pam_dispatch() with
 * pamh->former: when the previous run with `former` returned
 * LATCH_INCOMPLETE, this one starts at the entry that returned it (calling
 * it again), with the impression, status and substates it had; the entries
 * before it are not called again. Returns like stack_run(). */
int stack_run_resumable(const struct stack *st, enum stack_type type, struct latch_req *req,
                        struct stack_former *former);

/* A stack_authenticate() or a password change that may stop for a
 * conversation. Zero it first. */
struct stack_auth_state {
        enum stack_type type; /* the stack running: auth, then account (then password) */
        struct stack_former former;
        uint64_t called[_STACK_TYPE_MAX][CALLED_WORDS];
        bool change_expired;   /* set by the caller (login) before the first step: an
                                * expired password is changed on the spot */
        bool password_changed; /* out: the password stack ran and succeeded */
        bool password_touched; /* out: a line of its update pass succeeded: the
                                * password may have changed even when the
                                * stack's result is a failure (a later line
                                * refused, or the conversation ended), as
                                * Linux-PAM leaves a partial change made */
        bool update;           /* libpam's former.update: the preliminary pass is done */
};

/*
 * Runs the auth stack and, only if it returned LATCH_SUCCESS, the account
 * stack; then calls ops->outcome(result) once for every module that was
 * called during this request (in the order they were first called), with the
 * final result. Returns the final result. Re-entrant like stack_run().
 */
int stack_authenticate(const struct stack *st, struct latch_req *req);

/*
 * stack_authenticate() in steps: returns LATCH_INCOMPLETE when a line asked
 * (the request's prompts are then up; nothing is reported yet), and the next
 * call with the same state (after latch_req_set_answers()) resumes at that
 * line, in the auth or the account stack. Any other result is final and has
 * been reported through ops->outcome() to every line called in any step.
 * stack_authenticate_end() ends a waiting state instead (the conversation
 * was abandoned or expired): it reports `result` to those lines.
 *
 * With state->change_expired, an account stack answering
 * LATCH_NEW_AUTHTOK_REQD does not end the request: ops->expired_change() is
 * called, then the password stack runs as stack_chauthtok_step() with
 * LATCH_CHANGE_EXPIRED_AUTHTOK (state->type becomes STACK_PASSWORD; each
 * pass may stop for a conversation and resumes the same way), and its
 * result is the final one: LATCH_SUCCESS (state->password_changed set)
 * completes the login. Without change_expired, LATCH_NEW_AUTHTOK_REQD is
 * final like any other result.
 */
int stack_authenticate_step(const struct stack *st, struct latch_req *req, struct stack_auth_state *state);
void stack_authenticate_end(const struct stack *st, struct latch_req *req, struct stack_auth_state *state,
                            int result);

/*
 * A password change in steps, as libpam's pam_chauthtok(pamh, flags): the
 * preliminary pass runs the whole password stack with
 * flags|LATCH_PRELIM_CHECK; only when it returns LATCH_SUCCESS, the update
 * pass runs it again with flags|LATCH_UPDATE_AUTHTOK, and its result is the
 * final one. `flags` may hold LATCH_CHANGE_EXPIRED_AUTHTOK, never the two
 * pass flags (LATCH_SYSTEM_ERR). A line returning LATCH_INCOMPLETE in either
 * pass stops the step as stack_authenticate_step() does; the next call with
 * the same state resumes at that line, in that pass (a resumed update pass
 * does not run the preliminary one again). Any other result is final,
 * reported through ops->outcome() to every line called in either pass
 * (once per line), and sets state->password_changed when LATCH_SUCCESS.
 * stack_authenticate_end() ends a waiting state. A password stack without
 * lines answers LATCH_PERM_DENIED. Zero the state first.
 */
int stack_chauthtok_step(const struct stack *st, struct latch_req *req, struct stack_auth_state *state,
                         int flags);

/* The number of entries of one type's stack once includes are expanded
 * (module lines, "-TYPE" lines whose plugin is missing, substack markers).
 * 0 means libpam would find no module for that type. 0 for NULL. */
size_t stack_size(const struct stack *st, enum stack_type type);

/* For listing (latchd's `stats`): the i-th stack in name order (NULL past
 * the end), its name, and the module of entry i of a type (NULL past the
 * end, or for a substack or missing entry). */
const struct stack *services_at(const struct services *s, size_t i);
const char *stack_name(const struct stack *st);
void *stack_module(const struct stack *st, enum stack_type type, size_t i);

/* The lowercase Linux-PAM name of a result ("success", "auth_err", ...), or
 * NULL when out of range. */
const char *stack_result_to_string(int result);

/* The result named `name` (as in a control or pam_debug argument), or
 * -EINVAL. */
int stack_result_from_string(const char *name);
