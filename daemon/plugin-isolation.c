/* SPDX-License-Identifier: MIT */

/*
 * The plugin host's isolated lines (see plugin-host-internal.h for how this half
 * meets plugin-host.c, and plugin-host.h for what isolation promises): a
 * line whose plugin runs in latch-worker processes, up to four of them per
 * line for calls, started here (or reached through a worker_socket), spoken
 * to with the protocol of worker/proto.h, killed when they miss a deadline,
 * and reaped.
 *
 * A worker whose plugin asked the client something stays with that request
 * until the client answers (it holds the plugin's state). Those waiting
 * workers are counted apart from the four, up to max_waiting per line: a
 * client that never answers costs one waiting worker until its conversation
 * times out, never a worker that calls need. When one more conversation
 * would pass max_waiting, the line ends the one that has waited longest (its
 * worker is killed; its answer, if it comes, gets authinfo_unavail).
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "config.h"
#include "macro.h"
#include "plugin-host-internal.h"
#include "worker-process.h"
#include "worker/proto.h"

#ifndef LATCH_WORKER_PATH
#define LATCH_WORKER_PATH "/usr/libexec/latch/latch-worker"
#endif

/* Defaults of [plugin.NAME] for isolated lines. */
#define ISOLATED_TIMEOUT_MS_DEFAULT 10000
#define ISOLATED_MAX_REQUESTS_DEFAULT 10000
/* Workers per isolated line for calls: enough to overlap a few slow backend
 * calls, few enough that a stack of isolated lines stays a handful of
 * processes. Workers kept for waiting conversations come on top, up to
 * [plugin.NAME] max_waiting. */
#define ISOLATED_WORKERS_MAX 4
#define ISOLATED_MAX_WAITING_DEFAULT 16
/* How long plugin_host_free() lets retired workers run close() and exit. */
#define REAP_GRACE_USEC (2ULL * 1000000)

/* One [plugin.NAME] section as plugin_host_configure() was given it. */
struct plugin_policy {
        char *name;
        int64_t timeout_ms;
        int isolate;
        uint32_t max_requests;
        uint32_t max_waiting;
        char *worker_socket;
};

/* The host's side of isolation: where lines run, and the workers let go. */
struct plugin_isolation {
        char *worker_path;
        struct plugin_policy *policies;
        size_t n_policies;

        /* Workers let go (retired, or of closed lines) that have not
         * exited yet: reaped by later sweeps, killed at plugin_host_free(). */
        struct reaper reaper;
};

/* An isolated line: where its workers come from, and the workers. */
struct isolated_line {
        char *worker_socket; /* NULL: spawn worker_path */
        char *worker_path;
        char *plugin_path;   /* what a spawned worker loads */
        char *open_frame;    /* the {"open": ...} message, made once */
        int64_t timeout_ms;
        uint32_t max_requests;

        pthread_mutex_t lock;
        pthread_cond_t idle_cond; /* a worker went idle, or a slot freed */
        struct worker *idle;
        unsigned n_workers;  /* idle, busy, or being started: at most ISOLATED_WORKERS_MAX, but see iso_unwait() */
        /* Workers kept for conversations waiting on their client. */
        struct worker *waiting_oldest, *waiting_newest;
        unsigned n_waiting;  /* at most max_waiting */
        uint32_t max_waiting;
};

static const struct plugin_isolation_ops isolation_ops;

/* ---- isolated lines: talking to workers ---- */

/* One message from a worker: -EBADMSG when it is not a frame of a JSON
 * object within WORKER_ANSWER_MAX. */
static int worker_recv(int fd, uint64_t deadline, json_t **ret) {
        uint8_t hdr[WIRE_HEADER];
        int r;

        r = wire_recv_all(fd, hdr, sizeof(hdr), deadline);
        if (r < 0)
                return r;
        return worker_recv_payload(fd, hdr, WORKER_ANSWER_MAX, deadline, ret);
}

/* Sends `frame` (header included) and reads the answer, logging the log
 * lines that come before it as the plugin's (for `req`, when not NULL), at
 * no more than `max_priority` (numerically: at least that verbose). */
static int worker_exchange(const struct plugin_line *l, struct worker *w, const struct latch_req *req,
                           int max_priority, const uint8_t *frame, size_t n, uint64_t deadline, json_t **ret,
                           bool *ret_sent) {
        int r;

        r = wire_send_all(w->fd, frame, n, deadline);
        if (r < 0)
                return r;
        /* The whole request is the worker's: from here on, it may act. */
        if (ret_sent)
                *ret_sent = true;
        for (;;) {
                json_t *a = NULL, *log;

                r = worker_recv(w->fd, deadline, &a);
                if (r < 0)
                        return r;
                log = json_object_get(a, "log");
                if (!log) {
                        *ret = a;
                        return 0;
                }
                json_t *prio = json_object_get(log, "priority");
                const char *msg = json_string_value(json_object_get(log, "message"));
                if (!json_is_integer(prio) || !msg) {
                        json_decref(a);
                        return -EBADMSG;
                }
                /* As for in-process plugins: no alerts, no facility. */
                plugin_host_emit(l->ctx.host,
                                 (int) MAX((json_int_t) max_priority, json_integer_value(prio) & LOG_PRIMASK),
                                 l->name, req, false, msg);
                json_decref(a);
        }
}

/* json_dumps() memory comes from Jansson's allocator, which need not be
 * malloc() (latch-worker's wipes what it frees). */
static void json_dump_free(char *s) {
        json_free_t f;

        if (!s)
                return;
        json_get_alloc_funcs(NULL, &f);
        f(s);
}
static void json_dump_freep(char **s) { json_dump_free(*s); }

/* The request frame for `call`. The password is escaped straight into the
 * frame rather than through a json_t, whose copy could not be wiped: the
 * caller wipes the frame (its whole *ret_len) before freeing it. */
static int request_frame(const struct plugin_line *l, const char *call, const struct latch_req *req, int result,
                         int flags, uint8_t **ret, size_t *ret_len) {
        _cleanup_(json_dump_freep) char *head = NULL;
        json_t *o;
        uint8_t *f;
        char *p;
        size_t hn, pn, n;

        (void) pn;

        o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "call", call, "op", req->op, "service", req->service, "user",
                      req->user, "now", (json_int_t) plugin_host_now(l->ctx.host));
        if (!o)
                return -EINVAL; /* not UTF-8: the request's strings came from JSON, so never */
        if ((req->remote && json_object_set_new(o, "remote", json_string(req->remote)) < 0) ||
            (streq(call, "outcome") && json_object_set_new(o, "result", json_integer(result)) < 0) ||
            (streq(call, "password") && json_object_set_new(o, "flags", json_integer(flags)) < 0)) {
                json_decref(o);
                return -EINVAL;
        }
        head = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!head)
                return -ENOMEM;

        /* head is "{...}": take off the '}' and append the passwords and
         * the answers, the secrets of the frame. */
        hn = strlen(head) - 1;
        n = hn + strlen("}");
        if (req->password) {
                pn = strlen(req->password);
                n += strlen(",\"password\":") + wire_json_string_len(req->password, pn);
        }
        if (req->oldpassword)
                n += strlen(",\"oldpassword\":") + wire_json_string_len(req->oldpassword, strlen(req->oldpassword));
        if (req->n_answers > 0) {
                n += strlen(",\"answers\":[]");
                for (size_t i = 0; i < req->n_answers; i++)
                        n += 1 + (req->answers[i] ? wire_json_string_len(req->answers[i], strlen(req->answers[i]))
                                                  : strlen("null"));
        }
        if (n > WORKER_REQUEST_MAX)
                return -E2BIG;
        f = malloc(WIRE_HEADER + n);
        if (!f)
                return -ENOMEM;
        p = (char *) f + WIRE_HEADER;
        memcpy(p, head, hn);
        p += hn;
        if (req->password) {
                p = stpcpy(p, ",\"password\":");
                p = wire_json_string(p, req->password, strlen(req->password));
        }
        if (req->oldpassword) {
                p = stpcpy(p, ",\"oldpassword\":");
                p = wire_json_string(p, req->oldpassword, strlen(req->oldpassword));
        }
        if (req->n_answers > 0) {
                p = stpcpy(p, ",\"answers\":[");
                for (size_t i = 0; i < req->n_answers; i++) {
                        if (i > 0)
                                *p++ = ',';
                        if (req->answers[i])
                                p = wire_json_string(p, req->answers[i], strlen(req->answers[i]));
                        else
                                p = stpcpy(p, "null");
                }
                *p++ = ']';
        }
        *p++ = '}';
        n = (size_t) (p - (char *) f) - WIRE_HEADER;
        wire_put_header(f, (uint32_t) n);

        *ret = f;
        *ret_len = WIRE_HEADER + n;
        return 0;
}

static void secret_frame_free(uint8_t *f, size_t n) {
        if (!f)
                return;
        sodium_memzero(f, n);
        free(f);
}

/* ---- isolated lines: worker processes ---- */

/* Starts (or connects to) one worker and has it open the line: it answers
 * "ready" once the plugin's open() succeeded. On failure the message names
 * the plugin. A failure to reach a worker is never -ENOENT, which would mean
 * "no such plugin" to the stack engine. */
static int worker_start(struct plugin_line *l, uint64_t deadline, bool first, struct worker **ret,
                        char **ret_error) {
        struct isolated_line *iso = l->iso;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        struct worker *w = NULL;
        json_t *a = NULL, *ready;
        char why[64];
        size_t n;
        int r;

        if (iso->worker_socket)
                r = worker_connect(iso->worker_socket, deadline, &w, &err);
        else
                r = worker_spawn(iso->worker_path, iso->plugin_path, &w, &err);
        if (r < 0) {
                plugin_set_error(ret_error, "plugin '%s': %s", l->name, err ?: strerror(-r));
                return r == -ENOENT ? -ECHILD : r;
        }

        n = strlen(iso->open_frame);
        frame = malloc(WIRE_HEADER + n);
        if (!frame) {
                worker_kill(w, NULL, 0);
                return -ENOMEM;
        }
        wire_put_header(frame, (uint32_t) n);
        memcpy(frame + WIRE_HEADER, iso->open_frame, n);

        /* What open() logs was worth seeing when the line was opened; for
         * each replacement worker it is noise. */
        r = worker_exchange(l, w, NULL, first ? LOG_ERR : LOG_DEBUG, frame, WIRE_HEADER + n, deadline, &a, NULL);
        if (r < 0) {
                worker_kill(w, why, sizeof(why));
                if (r == -ETIMEDOUT)
                        plugin_set_error(ret_error, "plugin '%s': worker did not start within %llds", l->name,
                                  (long long) (iso->timeout_ms + 999) / 1000);
                else if (r == -EBADMSG)
                        plugin_set_error(ret_error, "plugin '%s': worker sent a malformed message", l->name);
                else
                        plugin_set_error(ret_error, "plugin '%s': worker %s before it was ready", l->name, why);
                return r == -ENOENT ? -ECHILD : r;
        }

        ready = json_object_get(a, "ready");
        if (!ready) {
                const char *msg = json_string_value(json_object_get(a, "error"));
                json_int_t e = json_integer_value(json_object_get(a, "errno"));

                plugin_set_error(ret_error, "%s", msg ?: "worker refused to open the line");
                if (!msg || e <= 0 || e >= 4096)
                        e = EIO;
                json_decref(a);
                worker_kill(w, NULL, 0);
                return (int) -e;
        }
        if (!streq_ptr(json_string_value(json_object_get(ready, "name")), l->name)) {
                plugin_set_error(ret_error, "plugin '%s': the worker serves plugin '%s'", l->name,
                          json_string_value(json_object_get(ready, "name")) ?: "?");
                json_decref(a);
                worker_kill(w, NULL, 0);
                return -EPROTO;
        }
        if (first)
                l->has_outcome = json_is_true(json_object_get(ready, "outcome"));
        json_decref(a);

        *ret = w;
        return 0;
}

/* An idle worker has nothing to say: anything readable on its stream (the
 * end of it, above all) means it is gone. */
static bool worker_is_sound(const struct worker *w) {
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        return poll(&p, 1, 0) == 0;
}

/* Takes an idle worker of the line, or starts one while the line has room,
 * or waits for one until the deadline (-ETIMEDOUT). */
static int iso_acquire(struct plugin_line *l, uint64_t deadline, struct worker **ret, char **ret_error) {
        struct isolated_line *iso = l->iso;
        int r;

        reaper_sweep(&l->ctx.host->isolation->reaper);

        pthread_mutex_lock(&iso->lock);
        for (;;) {
                if (iso->idle) {
                        struct worker *w = iso->idle;
                        iso->idle = w->next;
                        w->next = NULL;
                        pthread_mutex_unlock(&iso->lock);
                        if (worker_is_sound(w)) {
                                *ret = w;
                                return 0;
                        }
                        /* It died (or spoke) while idle: no request is lost,
                         * but say so, and take another. */
                        char why[64];
                        worker_kill(w, why, sizeof(why));
                        plugin_host_emitf(l->ctx.host, LOG_WARNING, l->name, NULL, true,
                                   "plugin '%s': idle worker %s; replaced", l->name, why);
                        pthread_mutex_lock(&iso->lock);
                        iso->n_workers--;
                        continue;
                }
                if (iso->n_workers < ISOLATED_WORKERS_MAX) {
                        iso->n_workers++;
                        pthread_mutex_unlock(&iso->lock);
                        r = worker_start(l, deadline, false, ret, ret_error);
                        if (r < 0) {
                                pthread_mutex_lock(&iso->lock);
                                iso->n_workers--;
                                pthread_cond_signal(&iso->idle_cond);
                                pthread_mutex_unlock(&iso->lock);
                        }
                        return r;
                }
                struct timespec ts = { .tv_sec = (time_t) (deadline / 1000000),
                                       .tv_nsec = (long) (deadline % 1000000) * 1000 };
                if (pthread_cond_timedwait(&iso->idle_cond, &iso->lock, &ts) == ETIMEDOUT && wire_now_usec() >= deadline) {
                        pthread_mutex_unlock(&iso->lock);
                        plugin_set_error(ret_error, "plugin '%s': all %d workers stayed busy for %llds", l->name,
                                  ISOLATED_WORKERS_MAX, (long long) (iso->timeout_ms + 999) / 1000);
                        return -ETIMEDOUT;
                }
        }
}

/* Gives a worker back after a call: to the idle list, or retired when it has
 * served max_requests. */
static void iso_release(struct plugin_line *l, struct worker *w) {
        struct isolated_line *iso = l->iso;

        w->served++;
        pthread_mutex_lock(&iso->lock);
        /* Above the cap only after a conversation's worker came back for
         * its last call (iso_unwait()): that one goes. */
        if (w->served < iso->max_requests && iso->n_workers <= ISOLATED_WORKERS_MAX) {
                w->next = iso->idle;
                iso->idle = w;
                w = NULL;
        } else
                iso->n_workers--;
        pthread_cond_signal(&iso->idle_cond);
        pthread_mutex_unlock(&iso->lock);

        worker_retire(&l->ctx.host->isolation->reaper, w);
}

/* Replaces a worker that failed a call (error from worker_exchange()),
 * logging why with the plugin's name. */
static void iso_drop(struct plugin_line *l, struct worker *w, int error, const struct latch_req *req) {
        struct isolated_line *iso = l->iso;
        char why[64];

        worker_kill(w, why, sizeof(why));
        if (error == -ETIMEDOUT)
                plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true,
                           "plugin '%s': worker did not answer within %llds; replaced", l->name,
                           (long long) (iso->timeout_ms + 999) / 1000);
        else if (error == -EBADMSG)
                plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true,
                           "plugin '%s': worker sent a malformed answer; replaced", l->name);
        else
                plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true, "plugin '%s': worker %s; replaced", l->name,
                           why);

        pthread_mutex_lock(&iso->lock);
        iso->n_workers--;
        pthread_cond_signal(&iso->idle_cond);
        pthread_mutex_unlock(&iso->lock);
}

/* Takes `w` out of the line's waiting list. Under the line's lock. */
static void waiting_unlink(struct isolated_line *iso, struct worker *w) {
        if (w->older)
                w->older->newer = w->newer;
        else
                iso->waiting_oldest = w->newer;
        if (w->newer)
                w->newer->older = w->older;
        else
                iso->waiting_newest = w->older;
        w->older = w->newer = NULL;
        iso->n_waiting--;
}

/* The worker of a call that asked the client something now waits with the
 * request: it leaves the call workers (whose slot frees) for the end of the
 * waiting list. Past max_waiting the oldest waiting conversation is ended:
 * its worker is killed here, under the lock (signals and shutdown() only:
 * the worker stays its request's, which reaps and frees it when it takes it
 * back, iso_unwait()). */
static void iso_wait(struct plugin_line *l, struct worker *w) {
        struct isolated_line *iso = l->iso;
        bool evicted = false;

        pthread_mutex_lock(&iso->lock);
        iso->n_workers--;
        w->evicted = false;
        w->newer = NULL;
        w->older = iso->waiting_newest;
        if (iso->waiting_newest)
                iso->waiting_newest->newer = w;
        else
                iso->waiting_oldest = w;
        iso->waiting_newest = w;
        iso->n_waiting++;
        if (iso->n_waiting > iso->max_waiting) {
                struct worker *old = iso->waiting_oldest; /* not w: max_waiting >= 1 */
                waiting_unlink(iso, old);
                old->evicted = true;
                (void) shutdown(old->fd, SHUT_RDWR);
                if (old->pid > 0)
                        (void) kill(old->pid, SIGKILL);
                evicted = true;
        }
        pthread_cond_signal(&iso->idle_cond);
        pthread_mutex_unlock(&iso->lock);

        if (evicted)
                plugin_host_emitf(l->ctx.host, LOG_WARNING, l->name, NULL, true,
                                  "plugin '%s': more than %" PRIu32 " conversations waiting on workers of one line "
                                  "(max_waiting); the oldest was ended",
                                  l->name, iso->max_waiting);
}

/* Takes back the worker of a waiting conversation: for the call that goes
 * on with it (`call`: it counts among the call workers again, maybe one
 * above ISOLATED_WORKERS_MAX until iso_release()) or to end it. -ECANCELED
 * when it was ended to make room meanwhile (it is still to be reaped and
 * freed, with worker_kill()). */
static int iso_unwait(struct isolated_line *iso, struct worker *w, bool call) {
        int r = 0;

        pthread_mutex_lock(&iso->lock);
        if (w->evicted)
                r = -ECANCELED;
        else {
                waiting_unlink(iso, w);
                if (call)
                        iso->n_workers++;
        }
        pthread_mutex_unlock(&iso->lock);
        return r;
}

/* Adds the claims a worker's plugin made to the request, through the same
 * checks as an in-process plugin's. */
static void apply_claims(const struct plugin_line *l, struct latch_req *req, json_t *claims) {
        const char *name;
        json_t *v;

        json_object_foreach(claims, name, v) {
                int r = 0;
                if (json_is_string(v))
                        r = plugin_claim_set_string(req, name, json_string_value(v));
                else if (json_is_array(v)) {
                        size_t i;
                        json_t *e;
                        json_array_foreach(v, i, e) {
                                r = json_is_string(e) ? plugin_claim_append_string(req, name, json_string_value(e))
                                                      : -EINVAL;
                                if (r < 0)
                                        break;
                        }
                } else
                        r = -EINVAL;
                if (r < 0)
                        plugin_host_emitf(l->ctx.host, LOG_WARNING, l->name, req, false, "claim '%s' dropped: %s", name,
                                   strerror(-r));
        }
}

/* Sets on the request the items (LATCH_ITEM_PASSWORD, LATCH_ITEM_OLDPASSWORD)
 * the worker's plugin set during the call: {"password": STRING|null,
 * "oldpassword": ...}, each member only when set. Checks everything before
 * changing anything: -EBADMSG for a malformed member, or -ENOMEM. */
static int apply_items(struct latch_req *req, json_t *items) {
        static const struct {
                const char *name;
                int item;
        } names[] = { { "password", LATCH_ITEM_PASSWORD }, { "oldpassword", LATCH_ITEM_OLDPASSWORD } };
        const char *key;
        json_t *v;

        if (!items)
                return 0;
        if (!json_is_object(items))
                return -EBADMSG;
        json_object_foreach(items, key, v) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        known = known || streq(key, names[i].name);
                if (!known || !(json_is_null(v) || json_is_string(v)) ||
                    (json_is_string(v) && json_string_length(v) > LATCH_ANSWER_MAX) ||
                    (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)))
                        return -EBADMSG;
        }
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                v = json_object_get(items, names[i].name);
                if (!v)
                        continue;
                int r = latch_req_set_item(req, names[i].item, json_string_value(v));
                if (r < 0)
                        return r;
        }
        return 0;
}

static void isolation_unpin(const struct plugin_line *l, struct worker *w);

/* One call on an isolated line; `call` is "auth", "account", "password"
 * (with `flags`) or "outcome". */
static int iso_call(struct plugin_line *l, const char *call, struct latch_req *req, int result, int flags) {
        struct isolated_line *iso = l->iso;
        uint64_t deadline = wire_now_usec() + (uint64_t) iso->timeout_ms * 1000;
        _cleanup_free_ char *err = NULL;
        uint8_t *frame = NULL;
        struct worker *w = NULL;
        json_t *a = NULL, *res;
        size_t n = 0;
        int r;

        r = request_frame(l, call, req, result, flags, &frame, &n);
        if (r < 0) {
                plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true,
                           "plugin '%s': cannot make the request for the worker: %s", l->name, strerror(-r));
                return LATCH_SYSTEM_ERR;
        }

        /* A call that continues a conversation goes to the worker that
         * holds the plugin's state for this request. An outcome does not
         * continue it (the conversation ended unanswered: the stack reports
         * its failure): that worker waits for answers that will not come,
         * and would take anything else as a protocol error. It goes, as at
         * the conversation's end, and the outcome goes to another. */
        struct req_slot *slot = latch_req_slot(req, l, false);
        if (slot && slot->pinned && streq(call, "outcome"))
                isolation_unpin(l, TAKE_PTR(slot->pinned));
        if (slot && slot->pinned) {
                w = TAKE_PTR(slot->pinned);
                if (iso_unwait(iso, w, true) < 0) {
                        secret_frame_free(frame, n);
                        worker_kill(w, NULL, 0);
                        plugin_host_emitf(l->ctx.host, LOG_WARNING, l->name, req, true,
                                          "plugin '%s': the conversation had been ended to make room for newer "
                                          "ones (max_waiting %" PRIu32 ")",
                                          l->name, iso->max_waiting);
                        return LATCH_AUTHINFO_UNAVAIL;
                }
                r = 0;
        } else
                r = iso_acquire(l, deadline, &w, &err);
        if (r < 0) {
                secret_frame_free(frame, n);
                if (err)
                        plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true, "%s", err);
                else
                        plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, req, true, "plugin '%s': no worker: %s",
                                   l->name, strerror(-r));
                return LATCH_AUTHINFO_UNAVAIL;
        }

        /* Once the worker has the whole request, a lost or unusable answer
         * to an update pass may hide a password it changed. */
        bool update = streq(call, "password") && (flags & LATCH_UPDATE_AUTHTOK), sent = false;
        r = worker_exchange(l, w, req, LOG_ERR, frame, n, deadline, &a, &sent);
        secret_frame_free(frame, n);
        if (r < 0) {
                req->password_unsure = req->password_unsure || (update && sent);
                iso_drop(l, w, r, req);
                return LATCH_AUTHINFO_UNAVAIL;
        }

        res = json_object_get(a, "result");
        if (!json_is_integer(res) || json_integer_value(res) < 0 ||
            json_integer_value(res) >= _LATCH_RESULT_MAX ||
            (json_object_get(a, "claims") && !json_is_object(json_object_get(a, "claims")))) {
                json_decref(a);
                req->password_unsure = req->password_unsure || update;
                iso_drop(l, w, -EBADMSG, req);
                return LATCH_AUTHINFO_UNAVAIL;
        }
        r = (int) json_integer_value(res);
        apply_claims(l, req, json_object_get(a, "claims"));
        int ir = apply_items(req, json_object_get(a, "items"));
        if (ir < 0) {
                req->password_unsure = req->password_unsure || update;
                json_decref(a);
                iso_drop(l, w, ir, req);
                return ir == -ENOMEM ? LATCH_BUF_ERR : LATCH_AUTHINFO_UNAVAIL;
        }

        if (r == LATCH_INCOMPLETE && json_is_array(json_object_get(a, "prompts"))) {
                /* The plugin asked: keep this worker (and the plugin's state
                 * in it) for the request until the client answers. */
                json_t *ps = json_object_get(a, "prompts"), *pr;
                size_t i;

                json_array_foreach(ps, i, pr) {
                        json_t *style = json_object_get(pr, "style");
                        const char *msg = json_string_value(json_object_get(pr, "message"));
                        if (!json_is_integer(style) || !msg ||
                            req_post_prompt(req, (int) json_integer_value(style), msg) < 0) {
                                json_decref(a);
                                req_prompts_clear(req);
                                iso_drop(l, w, -EBADMSG, req);
                                return LATCH_AUTHINFO_UNAVAIL;
                        }
                }
                json_decref(a);
                slot = latch_req_slot(req, l, true);
                if (!slot) {
                        req_prompts_clear(req);
                        iso_drop(l, w, -ENOMEM, req);
                        return LATCH_SYSTEM_ERR;
                }
                slot->pinned = w;
                req->challenge = true;
                iso_wait(l, w);
                return r;
        }
        json_decref(a);

        iso_release(l, w);
        return r;
}

/* A conversation ended while a worker held its plugin's state: the state
 * must not serve another request, so the worker goes. */
static void isolation_unpin(const struct plugin_line *l, struct worker *w) {
        if (l->iso)
                (void) iso_unwait(l->iso, w, false);
        worker_kill(w, NULL, 0);
}

static void isolated_line_free(struct plugin_host *h, struct isolated_line *iso) {
        if (!iso)
                return;
        while (iso->idle) {
                struct worker *w = iso->idle;
                iso->idle = w->next;
                worker_retire(&h->isolation->reaper, w);
        }
        pthread_mutex_destroy(&iso->lock);
        pthread_cond_destroy(&iso->idle_cond);
        free(iso->worker_socket);
        free(iso->worker_path);
        free(iso->plugin_path);
        free(iso->open_frame);
        free(iso);
}

/* ---- the host's side ---- */

static void policies_free(struct plugin_policy *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].worker_socket);
        }
        free(p);
}

int plugin_host_configure(struct plugin_host *h, const struct plugin_config *plugins, size_t n,
                          const char *worker_path) {
        struct plugin_policy *p = NULL;
        struct plugin_isolation *pi;
        char *wp;

        assert_return(h, -EINVAL);
        assert_return(plugins || n == 0, -EINVAL);

        if (!worker_path)
                worker_path = getenv("LATCH_WORKER") ?: LATCH_WORKER_PATH;
        if (worker_path[0] != '/')
                return -EINVAL;

        wp = strdup(worker_path);
        if (!wp)
                return -ENOMEM;
        if (n > 0) {
                p = calloc(n, sizeof(*p));
                if (!p) {
                        free(wp);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                p[i] = (struct plugin_policy){
                        .name = plugins[i].name ? strdup(plugins[i].name) : NULL,
                        .timeout_ms = plugins[i].timeout_ms > 0 ? plugins[i].timeout_ms : ISOLATED_TIMEOUT_MS_DEFAULT,
                        .isolate = plugins[i].isolate,
                        .max_requests = plugins[i].max_requests > 0 ? plugins[i].max_requests
                                                                    : ISOLATED_MAX_REQUESTS_DEFAULT,
                        .max_waiting = plugins[i].max_waiting > 0 ? plugins[i].max_waiting
                                                                  : ISOLATED_MAX_WAITING_DEFAULT,
                        .worker_socket = plugins[i].worker_socket ? strdup(plugins[i].worker_socket) : NULL,
                };
                if (!p[i].name || (plugins[i].worker_socket && !p[i].worker_socket)) {
                        policies_free(p, i + 1);
                        free(wp);
                        return plugins[i].name ? -ENOMEM : -EINVAL;
                }
        }

        /* The first call makes the host's side of isolation, here, past
         * every failure: a host never has isolation without settings. */
        pi = h->isolation;
        if (!pi) {
                pi = calloc(1, sizeof(*pi));
                if (!pi) {
                        policies_free(p, n);
                        free(wp);
                        return -ENOMEM;
                }
                reaper_init(&pi->reaper);
                h->isolation = pi;
                h->isolation_ops = &isolation_ops;
        }

        /* A reload retires the old lines' workers: reap those gone since. */
        reaper_sweep(&pi->reaper);
        policies_free(pi->policies, pi->n_policies);
        pi->policies = p;
        pi->n_policies = n;
        free(pi->worker_path);
        pi->worker_path = wp;
        return 0;
}

static void isolation_host_free(struct plugin_host *h) {
        struct plugin_isolation *pi = h->isolation;

        if (!pi)
                return;

        /* Retired workers run their plugin's close() and exit: give them a
         * moment together, then kill what is left. */
        reaper_finish(&pi->reaper, REAP_GRACE_USEC);
        policies_free(pi->policies, pi->n_policies);
        free(pi->worker_path);
        free(pi);
        h->isolation = NULL;
}

/* Whether lines of plugin `name` run isolated, and how. */
static bool isolates(const struct plugin_isolation *pi, const char *name, const struct plugin_policy **ret) {
        const struct plugin_policy *p = NULL;

        for (size_t i = 0; i < pi->n_policies; i++)
                if (streq(pi->policies[i].name, name))
                        p = &pi->policies[i];
        *ret = p;
        if (p && p->worker_socket)
                return true;
        if (p && p->isolate >= 0)
                return p->isolate > 0;
        /* Linux-PAM modules are the classic backend that hangs or crashes. */
        return streq(name, "pam");
}

static int line_open_isolated(struct plugin_host *h, struct plugin_line *l, char *path,
                              const struct plugin_policy *p, int argc, const char *const *argv, char **ret_error) {
        _cleanup_free_ char *plugin_path = path;
        struct isolated_line *iso;
        struct worker *w = NULL;
        pthread_condattr_t ca;
        json_t *o, *args;
        char *dump;
        int r;

        /* As an in-process open would find: -ENOENT is "no such plugin" (a
         * "-auth" line keeps it as a missing module). Through a
         * worker_socket, the file is the worker's business. */
        if (!(p && p->worker_socket) && access(plugin_path, F_OK) < 0 && errno == ENOENT) {
                plugin_set_error(ret_error, "cannot load plugin '%s': %s: No such file", l->name, plugin_path);
                return -ENOENT;
        }

        iso = calloc(1, sizeof(*iso));
        if (!iso)
                return -ENOMEM;
        pthread_mutex_init(&iso->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&iso->idle_cond, &ca);
        pthread_condattr_destroy(&ca);
        l->iso = iso;

        iso->timeout_ms = p ? p->timeout_ms : ISOLATED_TIMEOUT_MS_DEFAULT;
        iso->max_requests = p ? p->max_requests : ISOLATED_MAX_REQUESTS_DEFAULT;
        iso->max_waiting = p ? p->max_waiting : ISOLATED_MAX_WAITING_DEFAULT;
        iso->plugin_path = TAKE_PTR(plugin_path);
        iso->worker_path = strdup(h->isolation->worker_path);
        iso->worker_socket = p && p->worker_socket ? strdup(p->worker_socket) : NULL;
        if (!iso->worker_path || (p && p->worker_socket && !iso->worker_socket))
                return -ENOMEM;

        args = json_array();
        for (int i = 0; args && i < argc; i++)
                if (json_array_append_new(args, json_string(argv[i])) < 0) {
                        json_decref(args);
                        plugin_set_error(ret_error, "plugin '%s': argument %d is not UTF-8", l->name, i + 1);
                        return -EINVAL;
                }
        o = args ? json_pack("{s:{s:s, s:o}}", "open", "name", l->name, "args", args) : NULL;
        if (!o)
                return -ENOMEM;
        dump = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        iso->open_frame = dump ? strdup(dump) : NULL;
        json_dump_free(dump);
        if (!iso->open_frame)
                return -ENOMEM;

        /* The first worker checks the line now, as an in-process open()
         * would, and then serves the first requests. */
        iso->n_workers = 1;
        r = worker_start(l, wire_now_usec() + (uint64_t) iso->timeout_ms * 1000, true, &w, ret_error);
        if (r < 0) {
                iso->n_workers = 0;
                return r;
        }
        iso->idle = w;
        return 0;
}

static int isolation_line_open(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                               struct plugin_line **ret, char **ret_error) {
        _cleanup_free_ char *path = NULL, *name = NULL;
        const struct plugin_policy *p;
        struct plugin_line *l;
        int r;

        r = plugin_resolve(h, plugin, &path, &name, ret_error);
        if (r < 0)
                return r;
        if (!isolates(h->isolation, name, &p))
                return 0;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ctx.host = h;
        l->iso_name = TAKE_PTR(name);
        l->name = l->iso_name;
        r = line_open_isolated(h, l, TAKE_PTR(path), p, argc, argv, ret_error);
        if (r < 0) {
                plugin_line_close(l);
                return r;
        }
        *ret = l;
        return 1;
}

static void isolation_line_close(struct plugin_line *l) {
        isolated_line_free(l->ctx.host, l->iso);
        l->iso = NULL;
}

static int isolation_call(struct plugin_line *l, enum stack_type type, struct latch_req *req, int flags) {
        return iso_call(l, stack_type_to_string(type), req, 0, flags);
}

static void isolation_outcome(struct plugin_line *l, struct latch_req *req, int result) {
        (void) iso_call(l, "outcome", req, result, 0);
}

static const struct plugin_isolation_ops isolation_ops = {
        .line_open = isolation_line_open,
        .line_close = isolation_line_close,
        .call = isolation_call,
        .outcome = isolation_outcome,
        .unpin = isolation_unpin,
        .host_free = isolation_host_free,
};
