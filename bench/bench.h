/* SPDX-License-Identifier: MIT */
#pragma once

/* What latch-bench's files share: latch-bench.c (the command line, the load
 * engine, sweep, wait, coldstart), bench-crypto.c, bench-state.c and
 * bench-util.c. Every subcommand prints one JSON object on stdout. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

uint64_t mono_ns(void);  /* CLOCK_MONOTONIC */
double real_s(void);     /* CLOCK_REALTIME, seconds */
void die(const char *fmt, ...) _printf_(1, 2) __attribute__((noreturn));
void *xmalloc(size_t n); /* never NULL: dies instead */
void *xrealloc(void *p, size_t n);
/* Prints o compactly on one line and drops the reference. */
void print_json(json_t *o);

/* crypto: JWT issue/verify beside raw libsodium, argon2id verify time. */
int cmd_crypto(double seconds);
/* ed25519: n raw signatures of a `bytes`-byte message then n
 * verifications, for callgrind to count. */
int cmd_ed25519(unsigned n, unsigned bytes);
/* argon2: argon2id INTERACTIVE, one thread then nproc at once. */
int cmd_argon2(unsigned runs);
/* users: a `file` plugin user database of `count` users. */
int cmd_users(const char *path, unsigned count, const char *password);
/* populate: `count` sessions in the store at `dir`, their ids to ids_path. */
int cmd_populate(const char *dir, uint64_t count, const char *service, unsigned users, double expire_at,
                 int64_t idle_timeout, const char *ids_path, uint64_t sample, int64_t last_seen_ahead);
