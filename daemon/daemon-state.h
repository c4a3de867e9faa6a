/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's state (struct daemon), shared by the request path; its
 * lifecycle and reload are daemon.h's. This header has no code of its own,
 * so that the modules that read the state do not depend on daemon.c, which
 * depends on them. Everything here is owned and touched by the event loop
 * thread only, except where a field says otherwise (the store and the
 * keyring's verify are thread-safe; pool jobs receive copies of what they
 * need).
 *
 * The path of a request, file by file:
 *   server.c    accept, limits
 *   conn.c      read → frame.c (framing) → decode.c (JSON) → dispatch.c;
 *               replies written back in request order
 *   access.c    who the peer is (SO_PEERCRED) and what it may do
 *   fastpath.c  plain validate and token frames, answered in place
 *   dispatch.c  op table: finds the op, checks admin ops (access.c)
 *   op-*.c      the ops; slow work goes to workqueue.c, sessions to
 *               store.c, credentials to stack.c + plugin-host.c, tokens
 *               to tokens.c + keys.c + common/jwt.c
 *   request.c   the reply of each request, back to conn.c in order
 *
 * docs/ARCHITECTURE.md maps every file.
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
        struct conversations *conversations; /* challenges waiting for `respond` (conversation.c) */
        unsigned conversations_ending;       /* their endings queued on the pool, not yet done (op-auth.c) */
        sd_event_source *conversation_timer;

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

        struct touch_batch *touches;   /* the job that flushes idle-expiry slides */
        bool touch_running;            /* a batch is being written */
        bool sweep_running;            /* a sweep's slices are queued or running */
};
