/* SPDX-License-Identifier: MIT */

/*
 * The plugin host's isolated lines (see plugin-host-internal.h for how this half
 * meets plugin-host.c, and plugin-host.h for what isolation promises): a
 * line whose plugin runs in latch-worker processes, up to four of them per
 * line, started here (or reached through a worker_socket), spoken to with
 * the protocol of worker/proto.h, killed when they miss a deadline, and
 * reaped.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "config.h"
#include "macro.h"
#include "plugin-host-internal.h"
#include "worker/proto.h"

#ifndef LATCH_WORKER_PATH
#define LATCH_WORKER_PATH "/usr/libexec/latch/latch-worker"
#endif

/* Defaults of [plugin.NAME] for isolated lines. */
#define ISOLATED_TIMEOUT_MS_DEFAULT 10000
#define ISOLATED_MAX_REQUESTS_DEFAULT 10000
/* Workers per isolated line: enough to overlap a few slow backend calls,
 * few enough that a stack of isolated lines stays a handful of processes. */
#define ISOLATED_WORKERS_MAX 4
/* How long plugin_host_free() lets retired workers run close() and exit. */
#define REAP_GRACE_USEC (2ULL * 1000000)

/* One [plugin.NAME] section as plugin_host_configure() was given it. */
struct plugin_policy {
        char *name;
        int64_t timeout_ms;
        int isolate;
        uint32_t max_requests;
        char *worker_socket;
};

/* The host's side of isolation: where lines run, and the workers let go. */
struct plugin_isolation {
        char *worker_path;
        struct plugin_policy *policies;
        size_t n_policies;

        pthread_mutex_t lock; /* guards `reap` */
        /* Workers let go (retired, or of closed lines) that have not
         * exited yet: reaped by later sweeps, killed at plugin_host_free(). */
        pid_t *reap;
        size_t n_reap;
};

/* One latch-worker process of an isolated line. */
struct worker {
        struct worker *next; /* in the line's idle list */
        pid_t pid;           /* our child; 0 when reached through a worker_socket */
        int fd;              /* the stream to it, non-blocking */
        uint32_t served;
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
        unsigned n_workers;  /* idle, busy, or being started */
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
                           int max_priority, const uint8_t *frame, size_t n, uint64_t deadline, json_t **ret) {
        int r;

        r = wire_send_all(w->fd, frame, n, deadline);
        if (r < 0)
                return r;
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

/* Remembers a worker that was let go but may not have exited yet. */
static void reap_later(struct plugin_isolation *pi, pid_t pid) {
        pid_t *a;

        if (waitpid(pid, NULL, WNOHANG) == pid)
                return;
        pthread_mutex_lock(&pi->lock);
        a = realloc(pi->reap, (pi->n_reap + 1) * sizeof(*a));
        if (a) {
                pi->reap = a;
                pi->reap[pi->n_reap++] = pid;
        }
        pthread_mutex_unlock(&pi->lock);
        if (!a) {
                /* Cannot remember it: do not leave a zombie behind. */
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
}

/* Reaps the workers of reap_later() that have exited. */
static void reap_sweep(struct plugin_isolation *pi) {
        pthread_mutex_lock(&pi->lock);
        for (size_t i = 0; i < pi->n_reap;) {
                pid_t k = waitpid(pi->reap[i], NULL, WNOHANG);
                if (k == pi->reap[i] || (k < 0 && errno == ECHILD))
                        pi->reap[i] = pi->reap[--pi->n_reap];
                else
                        i++;
        }
        pthread_mutex_unlock(&pi->lock);
}

/* Why a worker went: "crashed (signal 11)", "exited". */
static void describe_status(int status, char *buf, size_t size) {
        if (WIFSIGNALED(status))
                snprintf(buf, size, "crashed (signal %d)", WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                snprintf(buf, size, "crashed (exit status %d)", WEXITSTATUS(status));
        else
                snprintf(buf, size, "exited");
}

/* Ends a worker at once: killed (our child) or its connection dropped
 * (a worker_socket's), reaped, freed. Fills `why` with how it had ended
 * when it was gone already. */
static void worker_kill(struct worker *w, char *why, size_t size) {
        int status = 0;

        if (!w)
                return;
        if (why && size > 0)
                snprintf(why, size, "closed the connection");
        if (w->pid > 0) {
                /* A worker that has exited already keeps its exit status:
                 * the kill changes nothing then. */
                (void) kill(w->pid, SIGKILL);
                while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (why)
                        describe_status(status, why, size);
        }
        safe_close(w->fd);
        free(w);
}

/* Lets a worker go gently: the end of its stream makes it run the plugin's
 * close() and exit. */
static void worker_retire(struct plugin_host *h, struct worker *w) {
        if (!w)
                return;
        safe_close(w->fd);
        if (w->pid > 0)
                reap_later(h->isolation, w->pid);
        free(w);
}

/* The environment of a spawned worker: latchd's, without what systemd gave
 * latchd alone (a worker must not notify for latchd, nor think it was
 * socket-activated). The strings are borrowed from environ. */
static char **worker_environ(void) {
        static const char *const drop[] = {"NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
                                           "WATCHDOG_PID=", "WATCHDOG_USEC="};
        size_t n = 0, k = 0;
        char **e;

        for (char **p = environ; p && *p; p++)
                n++;
        e = calloc(n + 1, sizeof(*e));
        if (!e)
                return NULL;
        for (char **p = environ; p && *p; p++) {
                bool keep = true;
                for (size_t i = 0; i < ELEMENTSOF(drop) && keep; i++)
                        if (strncmp(*p, drop[i], strlen(drop[i])) == 0)
                                keep = false;
                if (keep)
                        e[k++] = *p;
        }
        return e;
}

/* Starts latch-worker on one end of a socket pair. posix_spawn() (vfork +
 * exec in glibc) is safe in this threaded process; the exec is what makes
 * sure that no LMDB handle or listening socket survives into the worker:
 * every fd of latchd is O_CLOEXEC, and everything above 2 is closed in the
 * child anyway, so even a stray inheritable fd stays behind. The signal
 * mask and dispositions are reset (latchd's loop thread blocks some). */
static int worker_spawn(const struct isolated_line *iso, struct worker **ret, char **ret_error) {
        _cleanup_free_ char **envp = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        struct worker *w;
        sigset_t none, all;
        int sv[2], r;
        pid_t pid;
        char *argv[] = {iso->worker_path, (char *) "--plugin", iso->plugin_path, NULL};

        envp = worker_environ();
        if (!envp)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;

        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        sigemptyset(&none);
        sigfillset(&all);
        r = posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawn(&pid, iso->worker_path, &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        safe_close(sv[1]);
        if (r != 0) {
                safe_close(sv[0]);
                plugin_set_error(ret_error, "cannot start %s: %s", iso->worker_path, strerror(r));
                return -r;
        }

        w = calloc(1, sizeof(*w));
        if (!w || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
                r = w ? -errno : -ENOMEM;
                free(w);
                (void) kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                safe_close(sv[0]);
                return r;
        }
        w->pid = pid;
        w->fd = sv[0];
        *ret = w;
        return 0;
}

/* Connects to a worker_socket, where each connection gets a worker of its
 * own (a socket unit with Accept=yes). */
static int worker_connect(const struct isolated_line *iso, uint64_t deadline, struct worker **ret, char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct worker *w;
        int r;

        if (strlen(iso->worker_socket) >= sizeof(sa.sun_path)) {
                plugin_set_error(ret_error, "worker_socket %s: path too long", iso->worker_socket);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, iso->worker_socket);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                if (r == -EINPROGRESS) {
                        int err = 0;
                        socklen_t len = sizeof(err);
                        r = wire_wait(fd, POLLOUT, deadline);
                        if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                r = -errno;
                        else if (r == 0)
                                r = -err;
                }
                if (r < 0) {
                        plugin_set_error(ret_error, "cannot connect to worker_socket %s: %s", iso->worker_socket,
                                  strerror(-r));
                        return r;
                }
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->pid = 0;
        w->fd = TAKE_FD(fd);
        *ret = w;
        return 0;
}

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
                r = worker_connect(iso, deadline, &w, &err);
        else
                r = worker_spawn(iso, &w, &err);
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
        r = worker_exchange(l, w, NULL, first ? LOG_ERR : LOG_DEBUG, frame, WIRE_HEADER + n, deadline, &a);
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

        reap_sweep(l->ctx.host->isolation);

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
        if (w->served < iso->max_requests) {
                w->next = iso->idle;
                iso->idle = w;
                w = NULL;
        } else
                iso->n_workers--;
        pthread_cond_signal(&iso->idle_cond);
        pthread_mutex_unlock(&iso->lock);

        worker_retire(l->ctx.host, w);
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
         * holds the plugin's state for this request. */
        struct req_slot *slot = latch_req_slot(req, l, false);
        if (slot && slot->pinned) {
                w = TAKE_PTR(slot->pinned);
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

        r = worker_exchange(l, w, req, LOG_ERR, frame, n, deadline, &a);
        secret_frame_free(frame, n);
        if (r < 0) {
                iso_drop(l, w, r, req);
                return LATCH_AUTHINFO_UNAVAIL;
        }

        res = json_object_get(a, "result");
        if (!json_is_integer(res) || json_integer_value(res) < 0 ||
            json_integer_value(res) >= _LATCH_RESULT_MAX ||
            (json_object_get(a, "claims") && !json_is_object(json_object_get(a, "claims")))) {
                json_decref(a);
                iso_drop(l, w, -EBADMSG, req);
                return LATCH_AUTHINFO_UNAVAIL;
        }
        r = (int) json_integer_value(res);
        apply_claims(l, req, json_object_get(a, "claims"));
        int ir = apply_items(req, json_object_get(a, "items"));
        if (ir < 0) {
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
                return r;
        }
        json_decref(a);

        iso_release(l, w);
        return r;
}

/* A conversation ended while a worker held its plugin's state: the state
 * must not serve another request, so the worker goes. */
static void isolation_unpin(const struct plugin_line *l, struct worker *w) {
        struct isolated_line *iso = l->iso;

        worker_kill(w, NULL, 0);
        if (!iso)
                return;
        pthread_mutex_lock(&iso->lock);
        iso->n_workers--;
        pthread_cond_signal(&iso->idle_cond);
        pthread_mutex_unlock(&iso->lock);
}

static void isolated_line_free(struct plugin_host *h, struct isolated_line *iso) {
        if (!iso)
                return;
        while (iso->idle) {
                struct worker *w = iso->idle;
                iso->idle = w->next;
                worker_retire(h, w);
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
                pthread_mutex_init(&pi->lock, NULL);
                h->isolation = pi;
                h->isolation_ops = &isolation_ops;
        }

        /* A reload retires the old lines' workers: reap those gone since. */
        reap_sweep(pi);
        policies_free(pi->policies, pi->n_policies);
        pi->policies = p;
        pi->n_policies = n;
        free(pi->worker_path);
        pi->worker_path = wp;
        return 0;
}

static void isolation_host_free(struct plugin_host *h) {
        struct plugin_isolation *pi = h->isolation;
        uint64_t until;

        if (!pi)
                return;

        /* Retired workers run their plugin's close() and exit: give them a
         * moment together, then kill what is left. */
        until = wire_now_usec() + REAP_GRACE_USEC;
        for (;;) {
                reap_sweep(pi);
                if (pi->n_reap == 0 || wire_now_usec() >= until)
                        break;
                (void) poll(NULL, 0, 10);
        }
        for (size_t i = 0; i < pi->n_reap; i++) {
                (void) kill(pi->reap[i], SIGKILL);
                while (waitpid(pi->reap[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(pi->reap);
        pthread_mutex_destroy(&pi->lock);
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
