/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A fixed pool of threads for slow work (plugin calls, password hashing,
 * synced LMDB writes), so that the event loop never blocks on them. latchd
 * has one, d->pool, of `[daemon] workers` threads: "pool threads" in code and
 * docs, never "workers", which are the latch-worker processes of isolated
 * plugin lines (plugin-isolation.c).
 *
 * work->run() runs on a pool thread; work->done() then runs on the event
 * loop thread, woken through an eventfd source. The caller owns `work`
 * (usually embedded in a larger struct) and must keep it alive until done()
 * has been called; done() is where it is normally freed.
 *
 * The queue is bounded: submit() answers -EBUSY when `max_queued` jobs are
 * already waiting, which the caller turns into an `unavailable` answer.
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

struct work {
        void (*run)(struct work *w);
        void (*done)(struct work *w);
        struct work *next;
};

struct workqueue;

/* `nice` (0: unchanged) lowers the scheduling priority of the threads, so
 * that their CPU-bound work gives way to the event loop. */
int workqueue_new(sd_event *event, const char *name, unsigned threads, unsigned max_queued, int nice,
                  struct workqueue **ret);

/* Queues a job. Returns 0, or -EBUSY when the queue is full, -ESHUTDOWN once
 * stopping. Loop thread only. */
int workqueue_submit(struct workqueue *q, struct work *w);

/* workqueue_submit() past `max_queued`: for the job that ends work already
 * started (a conversation's failure reported to the lines that took part),
 * which must not be lost to a full queue. The caller bounds how many such
 * jobs there can be. Returns 0, or -ESHUTDOWN once stopping. Loop thread
 * only. */
int workqueue_submit_always(struct workqueue *q, struct work *w);

/* Stops accepting work (submit then answers -ESHUTDOWN) without waiting for
 * the threads: for a pool that cannot be joined because a job never
 * returns. NULL is fine. */
void workqueue_close(struct workqueue *q);

/* Jobs waiting plus running. */
unsigned workqueue_pending(const struct workqueue *q);
unsigned workqueue_threads(const struct workqueue *q);

/* Stops accepting work, lets the threads finish what is queued, and joins
 * them; completions still pending run their done() before this returns.
 * Then frees. NULL is fine. */
void workqueue_free(struct workqueue *q);
