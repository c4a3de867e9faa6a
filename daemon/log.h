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

/* A structured record: `fields` is a NULL-terminated list of
 * "NAME", "value" pairs (value may be NULL: the field is left out),
 * e.g. log_fields(LOG_INFO, (const char *[]){"LATCH_OP", "login", NULL}, "...").
 * On stderr the fields are appended as NAME=value. */
void log_fields(int priority, const char *const *fields, const char *fmt, ...) _printf_(3, 4);
