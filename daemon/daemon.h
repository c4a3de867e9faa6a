/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's state, shared by the request path. Everything here is owned
 * and touched by the event loop thread only, except where a field says
 * otherwise (the store and the keyring's verify are thread-safe; pool jobs
 * receive copies of what they need).
 *
 * The path of a request, file by file:
 *   server.c    accept, limits
 *   conn.c      read → frame.c (framing) → decode.c (JSON) → dispatch.c;
 *               replies written back in request order
 *   access.c    who the peer is (SO_PEERCRED) and what it may do
 *   dispatch.c  op table: finds the op, checks admin ops (access.c)
 *   op-*.c      the ops; slow work goes to workqueue.c, sessions to
 *               store.c, credentials to stack.c + plugin-host.c, tokens
 *               to keys.c + common/jwt.c
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "conf.h"
#include "stats.h"

struct conn;
struct request;
struct store;
struct keyring;
struct plugin_host;
struct services;
struct workqueue;
struct throttle;
struct touch_batch;

/* A loaded set of service stacks; requests in flight keep the set they
 * started with alive across a reload. Loop thread only. */
struct stackset {
        struct services *services;
        unsigned refs;
};

struct daemon {
        sd_event *event;
        struct config *config;
        const char *config_file;       /* NULL: built-in defaults */
        const char *socket_override;   /* --socket */
        const char *state_dir_override;/* --state-dir */

        struct store *store;
        struct keyring *keys;
        struct plugin_host *plugins;
        struct stackset *stacks;
        struct workqueue *pool;        /* pool threads ([daemon] workers): plugin stacks, hashing */
        struct workqueue *writer;      /* synced LMDB writes */
        struct throttle *throttle;

        int listen_fd;
        bool socket_activated;
        char *socket_path;             /* set when we bound it ourselves */
        ino_t socket_ino;              /* ...and its inode, to unlink only ours */
        sd_event_source *listen_source;
        sd_event_source *sweep_timer;
        sd_event_source *keys_timer;

        struct conn *conns;
        int conn_epoll;                /* the clients' sockets (conn.c); valid when conn_source is set */
        sd_event_source *conn_source;  /* ...watched by the loop as one source */
        unsigned n_conns;
        bool stopping;
        uint64_t stop_deadline;        /* CLOCK_MONOTONIC: stop waiting for requests in flight */

        struct stats stats;
        uint64_t started_usec;         /* CLOCK_MONOTONIC */

        struct touch_batch *touches;   /* idle-expiry slides waiting for the writer */
        bool touch_running;            /* a batch is being written */
        bool sweep_running;            /* a sweep's slices are queued or running */
};

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
