/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon as a whole (daemon.c): its lifecycle, reload, the stack sets
 * requests hold, and the published key set. The state itself is
 * daemon-state.h's.
 */

#include "conf.h"
#include "daemon-state.h"

/* Where latchd's invocation puts things (its command line). */
struct daemon_options {
        const char *config_file;        /* NULL: built-in defaults */
        const char *socket_override;    /* --socket */
        const char *state_dir_override; /* --state-dir */
        /* Where the configuration's problems go at start-up, one call per
         * FILE:LINE (NULL: the log). */
        config_diag_fn diag;
        void *diag_userdata;
};

/*
 * The daemon's lifecycle, as systemd's manager_new() / manager_startup() /
 * manager_free():
 *
 * daemon_new() loads the configuration, opens the state folder, the session
 * store and the signing keys, sets up the plugin host, loads every stack and
 * starts the thread pools. It blocks SIGTERM, SIGINT and SIGHUP first (they
 * are taken through the event loop), so call it before any other thread
 * exists. Each failure is logged once; returns 0 or a negative errno.
 *
 * daemon_start() listens (or takes the socket from systemd), publishes the
 * key set and arms the timers and signal handlers. daemon_run() tells
 * systemd it is ready and runs the loop until a stop signal has drained the
 * requests in flight.
 *
 * daemon_free() closes every connection, joins the threads and closes the
 * state; it copes with a daemon that daemon_new() or daemon_start() left
 * half-built, and accepts NULL.
 */
int daemon_new(const struct daemon_options *o, struct daemon **ret);
int daemon_start(struct daemon *d);
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);

struct stackset *stackset_ref(struct stackset *s);
void stackset_unref(struct stackset *s);

/* Builds the config, stacks and plugins anew and swaps them in only when all
 * loaded; otherwise logs every problem as FILE:LINE: message and keeps the
 * running ones. Returns 0 or a negative errno. */
int daemon_reload(struct daemon *d);

/* Loads the service stacks of config c (plugins through d->plugins). A
 * missing services_dir gives an empty set (every service unknown). */
int daemon_load_stacks(struct daemon *d, const struct config *c, struct stackset **ret);

/* Publishes the key set to jwks_file (atomic rewrite). */
int daemon_publish_jwks(struct daemon *d);
