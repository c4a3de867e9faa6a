/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "workqueue.h"

struct workqueue {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct work *head, *tail;     /* waiting */
        struct work *done_head, *done_tail;
        unsigned queued;              /* waiting */
        unsigned running;
        unsigned max_queued;
        int nice;
        bool stopping;
        int efd;
        sd_event_source *source;
        pthread_t *threads;
        unsigned n_threads;
        char name[16];
};

static void *pool_thread_main(void *userdata) {
        struct workqueue *q = userdata;

        /* Slow work yields the CPU to the event loop: a login storm must not
         * make fast requests wait for scheduler slices. */
        if (q->nice != 0)
                (void) setpriority(PRIO_PROCESS, (id_t) gettid(), q->nice);

        pthread_mutex_lock(&q->lock);
        for (;;) {
                while (!q->head && !q->stopping)
                        pthread_cond_wait(&q->cond, &q->lock);
                struct work *w = q->head;
                if (!w)
                        break;
                q->head = w->next;
                if (!q->head)
                        q->tail = NULL;
                q->queued--;
                q->running++;
                pthread_mutex_unlock(&q->lock);

                w->run(w);

                pthread_mutex_lock(&q->lock);
                q->running--;
                w->next = NULL;
                bool wake = !q->done_head;
                if (q->done_tail)
                        q->done_tail->next = w;
                else
                        q->done_head = w;
                q->done_tail = w;
                if (wake) {
                        uint64_t one = 1;
                        (void) !write(q->efd, &one, sizeof one);
                }
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

static void drain_done(struct workqueue *q) {
        pthread_mutex_lock(&q->lock);
        struct work *w = q->done_head;
        q->done_head = q->done_tail = NULL;
        pthread_mutex_unlock(&q->lock);

        while (w) {
                struct work *next = w->next;
                w->done(w);
                w = next;
        }
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void) !read(fd, &v, sizeof v);
        drain_done(userdata);
        return 0;
}

int workqueue_new(sd_event *event, const char *name, unsigned threads, unsigned max_queued, int nice,
                  struct workqueue **ret) {
        struct workqueue *q = calloc(1, sizeof(*q));
        int r;

        if (!q)
                return -ENOMEM;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
        snprintf(q->name, sizeof q->name, "%s", name);
        q->max_queued = max_queued;
        q->nice = nice;
        q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &q->source, q->efd, EPOLLIN, on_eventfd, q);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(q->source, q->name);
        q->threads = calloc(threads, sizeof(pthread_t));
        if (!q->threads) {
                r = -ENOMEM;
                goto fail;
        }

        /* Pool threads must not take the signals sd-event handles through
         * signalfd: block everything in them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (unsigned i = 0; i < threads; i++) {
                r = -pthread_create(&q->threads[i], NULL, pool_thread_main, q);
                if (r < 0)
                        break;
                char tname[16];
                snprintf(tname, sizeof tname, "%.8s-%u", q->name, (unsigned) (uint16_t) i);
                (void) pthread_setname_np(q->threads[i], tname);
                q->n_threads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        *ret = q;
        return 0;
fail:
        workqueue_free(q);
        return r;
}

static int submit(struct workqueue *q, struct work *w, bool always) {
        pthread_mutex_lock(&q->lock);
        if (q->stopping) {
                pthread_mutex_unlock(&q->lock);
                return -ESHUTDOWN;
        }
        if (!always && q->queued >= q->max_queued) {
                pthread_mutex_unlock(&q->lock);
                return -EBUSY;
        }
        w->next = NULL;
        if (q->tail)
                q->tail->next = w;
        else
                q->head = w;
        q->tail = w;
        q->queued++;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

int workqueue_submit(struct workqueue *q, struct work *w) { return submit(q, w, false); }

int workqueue_submit_always(struct workqueue *q, struct work *w) { return submit(q, w, true); }

void workqueue_close(struct workqueue *q) {
        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        q->stopping = true;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

unsigned workqueue_pending(const struct workqueue *q) {
        struct workqueue *m = (struct workqueue *) q;
        pthread_mutex_lock(&m->lock);
        unsigned n = q->queued + q->running;
        pthread_mutex_unlock(&m->lock);
        return n;
}

unsigned workqueue_threads(const struct workqueue *q) { return q->n_threads; }

void workqueue_free(struct workqueue *q) {
        if (!q)
                return;
        workqueue_close(q);
        for (unsigned i = 0; i < q->n_threads; i++)
                pthread_join(q->threads[i], NULL);
        if (q->efd >= 0)
                drain_done(q);
        sd_event_source_disable_unref(q->source);
        safe_close(q->efd);
        free(q->threads);
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        free(q);
}
