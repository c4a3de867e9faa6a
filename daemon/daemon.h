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

        struct stats stats;
        uint64_t started_usec;         /* CLOCK_MONOTONIC */

        struct touch_batch *touches;   /* idle-expiry slides waiting for the writer */
        bool touch_running;            /* a batch is being written */
        bool sweep_running;            /* a sweep's slices are queued or running */
};

/* Wall clock in seconds. Tests may pin it with LATCH_TEST_TIME_OFFSET. */
int64_t daemon_now(void);
uint64_t now_usec(void);              /* CLOCK_MONOTONIC */

struct stackset *stackset_ref(struct stackset *s);
void stackset_unref(struct stackset *s);

/* Builds the config, stacks and plugins anew and swaps them in only when all
 * loaded; otherwise logs every problem as FILE:LINE: message and keeps the
 * running ones. Returns 0 or a negative errno. */
int daemon_reload(struct daemon *d);

/* Loads the service stacks of config c (plugins through d->plugins). A
 * missing services_dir gives an empty set (every service unknown). */
int daemon_load_stacks(struct daemon *d, const struct config *c, struct stackset **ret);

/* Arms the sweep and key-maintenance timers. */
int daemon_start_timers(struct daemon *d);

/* Publishes the key set to jwks_file (atomic rewrite). */
int daemon_publish_jwks(struct daemon *d);
