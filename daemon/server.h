/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The listening socket: taken from systemd (LISTEN_FDS: exactly one
 * AF_UNIX stream listener) or bound by us at config's `socket` (mode 0660,
 * replacing a stale socket file, refusing when another daemon answers on
 * it). Accepts connections up to max_connections.
 */

struct daemon;

/* Sets d->listen_fd. Errors are logged with their reason; returns a
 * negative errno. */
int server_listen(struct daemon *d);

/* Starts (or stops) accepting on the loop. */
int server_start(struct daemon *d);
void server_stop(struct daemon *d);

/* Closes the socket; unlinks the socket file only if we created it and it is
 * still ours. */
void server_close(struct daemon *d);
