/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Daemon logging: to stderr, or to the journal with structured fields when
 * started by systemd (JOURNAL_STREAM or INVOCATION_ID set and the journal
 * socket reachable). Safe from any thread. Never pass a secret.
 *
 * Priorities are syslog(3)'s LOG_*.
 */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Picks the sink once, at start-up. `force_stderr` keeps stderr. */
void log_open(bool force_stderr);
void log_set_max_priority(int priority);

void log_msg(int priority, const char *fmt, ...) _printf_(2, 3);
void log_msgv(int priority, const char *fmt, va_list ap) _printf_(2, 0);

/* Logs the message followed by ": " and the text of errno r (negative or
 * not), and returns r, so that a failure is logged and passed on in one
 * statement: return log_errno(LOG_ERR, r, "cannot bind %s", path); */
int log_errno(int priority, int r, const char *fmt, ...) _printf_(3, 4);

/* A structured record: `fields` is a NULL-terminated list of
 * "NAME", "value" pairs (value may be NULL: the field is left out),
 * e.g. log_fields(LOG_INFO, (const char *[]){"LATCH_OP", "login", NULL}, "...").
 * On stderr the fields are appended as NAME=value. */
void log_fields(int priority, const char *const *fields, const char *fmt, ...) _printf_(3, 4);

/*
 * Client-supplied strings (user, service, remote, audience, a plugin's
 * message) must not be able to forge a field or a line of the log. Every
 * field value passed to log_fields() is escaped here, and on stderr quoted
 * when it is not a plain word; in the human text, wrap each such string in
 * log_esc() inside single quotes: "user '%s'", log_esc(user).
 *
 * The escapes: backslash and both quotes get a backslash; \n \r \t; other
 * C0 controls, DEL (so every ANSI escape sequence) and each byte of invalid
 * UTF-8 (overlong, surrogate, beyond U+10FFFF, cut short) become \xNN; C1
 * controls, the line and paragraph separators U+2028/U+2029 and the
 * invisible format characters that reorder or hide text (U+200B..U+200F,
 * U+202A..U+202E, U+2060..U+206F, U+FEFF) become \uXXXX. Everything else,
 * valid UTF-8 included, is kept.
 */

/* Writes the escape of `s` (NULL: "(null)") into `buf` of `size` >= 4 bytes,
 * always NUL-terminated; one that does not fit is cut at a whole escape and
 * ends in "...". `quotes` false keeps quotes as they are (text that is not
 * inside quotes, such as a plugin's message). Returns buf. */
char *log_escape(const char *s, bool quotes, char *buf, size_t size);

/* log_escape() into one of LOG_ESC_SLOTS per-thread buffers used in turn,
 * LOG_ESC_SIZE bytes each: the result stays valid for the next
 * LOG_ESC_SLOTS - 1 calls of the same thread, enough for one log line. */
#define LOG_ESC_SLOTS 8
#define LOG_ESC_SIZE 1024
const char *log_esc(const char *s);
const char *log_esc_text(const char *s);
