/* SPDX-License-Identifier: MIT */
#pragma once

/* latchctl internals: exit codes, output (output.c) and secret input
 * (input.c). */

#include <stdbool.h>
#include <stddef.h>

#include "latch/latch.h"
#include "macro.h"
#include "metrics.h"

/* Exit codes, as latchctl(1) documents them (EXIT STATUS). */
enum {
        EXIT_DONE = 0,
        EXIT_REFUSED = 1,     /* denied, invalid_session, invalid_token, forbidden, unknown_service */
        EXIT_USAGE = 2,       /* usage error or unreadable input */
        EXIT_UNAVAILABLE = 3, /* unreachable, unavailable, internal, other failures */
};

/* Set once from --json: every command then prints exactly one JSON object. */
extern bool arg_json;

/* The exit code for a liblatch result. */
int exit_code_for(int err);

/* Prints a failure (stderr for humans, one JSON object on stdout with
 * --json) and returns `exit_code`. `code` is the machine code ("denied",
 * "usage", ...). */
int print_error(int exit_code, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints a usage error and returns EXIT_USAGE. */
int print_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the failure of a call on `client` and returns its exit code. */
int print_client_error(latch_client *client, int err);

/*
 * Text that came from latchd (a prompt, an error message, a claim, a name),
 * escaped for a terminal: a control character (C0, DEL, C1), a byte of
 * invalid UTF-8, U+2028/U+2029, and the invisible and bidirectional format
 * characters (U+200B-U+200F, U+202A-U+202E, U+2060-U+206F, U+FEFF) become
 * \xNN or \uXXXX, so neither latchd nor a plugin can drive the terminal or
 * make one line read as another. '\n' and '\t' stay when `multiline`, else
 * become \n and \t. text_escape() returns a malloc()ed copy (NULL when out
 * of memory); term_text() one that stays valid for the next seven calls
 * (NULL for NULL).
 */
char *text_escape(const char *s, bool multiline);
const char *term_text(const char *s);

/* output_init(), first thing: stdout gets a buffer latchctl owns, Jansson a
 * free() that wipes. output_forget(), once a secret was printed (an
 * enrollment's key, recovery codes): flushes stdout and wipes its buffer and
 * term_text()'s copies, so that nothing of it stays in latchctl's memory
 * while it waits on the terminal. */
void output_init(void);
void output_forget(void);

/* Prints a successful reply: its results as one JSON object with --json,
 * else readable `key: value` lines (nested objects flattened with dots). */
int print_reply(const latch_reply *reply);

/* Prints a JSON object given as text: as is with --json, else as lines. */
int print_json_text(const char *json);

/* Prints `sessions` of a sessions.list reply as a table (or JSON). */
int print_sessions(const latch_reply *reply);

/* Prints a stats reply as metrics text (status.c). */
int print_stats_metrics(const latch_reply *reply, enum metrics_format format);

/* Prints a stats reply as the one-screen status (or, with --json, the
 * status object) (status.c). */
int print_status(const latch_reply *reply);

/* Prints a JWKS reply: the document, indented for humans. */
int print_jwks(const latch_reply *reply);

/*
 * Reads one secret line from stdin into a new buffer, without its newline.
 * On a terminal, prompts on stderr with `prompt` and turns echo off; with
 * `confirm` asks twice and requires the same answer. Returns 0 and the
 * secret (free with latch_secret_free()), or prints why and returns
 * EXIT_USAGE (no input, too long, a NUL byte, mismatch, read error).
 */
int read_secret(const char *prompt, bool confirm, char **ret);

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_client *, latch_client_free);
static inline void latch_secret_freep(char **p) {
        latch_secret_free(*p);
}

/* totp enroll|confirm|recovery|remove|status USER and faillock show|reset
 * USER: latchd's `plugin` op on a new client for `socket` (NULL: the
 * default), on the line of `service` when not NULL (plugin-admin.c).
 * argv holds USER (and for totp confirm, maybe a CODE). Return an exit
 * code. */
int cmd_totp(const char *socket, const char *service, const char *action, char **argv);
int cmd_faillock(const char *socket, const char *service, const char *action, char **argv);

/* One answer to a conversation's prompt: on a terminal shows `prompt` and
 * reads a line, echoed only when `echo`; otherwise reads one line of stdin.
 * *ret is released with latch_secret_free(). Returns 0 or an exit code
 * (printed). */
int read_answer(const char *prompt, bool echo, char **ret);
/* One line of stdin, no prompt, nothing printed: 0, -ENODATA at the end,
 * -E2BIG, -EILSEQ (a NUL byte in the line), -ENOMEM or another negative
 * errno. */
int read_answer_line(char **ret);
