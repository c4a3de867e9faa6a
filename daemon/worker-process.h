/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * latch-worker processes of isolated lines (plugin-isolation.c, the only
 * user): one process per worker, started here (posix_spawn(), see
 * worker_spawn()) or reached through a worker_socket, where systemd starts
 * one per connection; ended at once or let go gently; and reaped, so that
 * no zombie stays behind.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One latch-worker process of an isolated line. Its list fields belong to
 * plugin-isolation.c, under the line's lock. */
struct worker {
        struct worker *next; /* in the line's idle list */
        pid_t pid;           /* our child; 0 when reached through a worker_socket */
        int fd;              /* the stream to it, non-blocking */
        uint32_t served;
        /* While its request's conversation waits: its place in the line's
         * waiting list, oldest first. */
        struct worker *older, *newer;
        bool evicted;        /* ended to make room: no longer in the list */
};

/* Workers let go that may not have exited yet (their pids), reaped later. */
struct reaper {
        pthread_mutex_t lock; /* guards pids */
        pid_t *pids;
        size_t n_pids;
};

void reaper_init(struct reaper *r);
/* Remembers a worker that was let go but may not have exited yet (or, out
 * of memory, kills and reaps it now). */
void reaper_add(struct reaper *r, pid_t pid);
/* Reaps those that have exited. */
void reaper_sweep(struct reaper *r);
/* Gives those left up to `grace_usec` to exit, kills the rest, reaps them
 * all and frees what r holds. */
void reaper_finish(struct reaper *r, uint64_t grace_usec);

/* Starts `worker_path` --plugin `plugin_path` on one end of a socket pair:
 * 0 and the worker, or a negative errno (and maybe a message in
 * *ret_error). */
int worker_spawn(const char *worker_path, const char *plugin_path, struct worker **ret, char **ret_error);
/* Connects to a worker_socket, where each connection gets a worker of its
 * own (a socket unit with Accept=yes), by `deadline` (wire_now_usec()). */
int worker_connect(const char *socket_path, uint64_t deadline, struct worker **ret, char **ret_error);
/* Ends a worker at once: killed (our child) or its connection dropped (a
 * worker_socket's), reaped, freed. Fills `why` (when not NULL) with how it
 * had ended when it was gone already. NULL does nothing. */
void worker_kill(struct worker *w, char *why, size_t size);
/* Lets a worker go gently: the end of its stream makes it run the plugin's
 * close() and exit; `r` reaps it later. NULL does nothing. */
void worker_retire(struct reaper *r, struct worker *w);
