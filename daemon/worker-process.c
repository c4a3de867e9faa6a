/* SPDX-License-Identifier: MIT */

/*
 * latch-worker processes as plugin-isolation.c keeps them (worker-process.h):
 * started with posix_spawn() or reached through a worker_socket, ended, and
 * reaped.
 */

#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include "macro.h"
#include "plugin-host-internal.h"
#include "wire.h"
#include "worker-process.h"

void reaper_init(struct reaper *r) {
        *r = (struct reaper){};
        pthread_mutex_init(&r->lock, NULL);
}

void reaper_add(struct reaper *r, pid_t pid) {
        pid_t *a;

        if (waitpid(pid, NULL, WNOHANG) == pid)
                return;
        pthread_mutex_lock(&r->lock);
        a = realloc(r->pids, (r->n_pids + 1) * sizeof(*a));
        if (a) {
                r->pids = a;
                r->pids[r->n_pids++] = pid;
        }
        pthread_mutex_unlock(&r->lock);
        if (!a) {
                /* Cannot remember it: do not leave a zombie behind. */
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
}

void reaper_sweep(struct reaper *r) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->n_pids;) {
                pid_t k = waitpid(r->pids[i], NULL, WNOHANG);
                if (k == r->pids[i] || (k < 0 && errno == ECHILD))
                        r->pids[i] = r->pids[--r->n_pids];
                else
                        i++;
        }
        pthread_mutex_unlock(&r->lock);
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

void worker_kill(struct worker *w, char *why, size_t size) {
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

void worker_retire(struct reaper *r, struct worker *w) {
        if (!w)
                return;
        safe_close(w->fd);
        if (w->pid > 0)
                reaper_add(r, w->pid);
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
int worker_spawn(const char *worker_path, const char *plugin_path, struct worker **ret, char **ret_error) {
        _cleanup_free_ char **envp = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        struct worker *w;
        sigset_t none, all;
        int sv[2], r;
        pid_t pid;
        char *argv[] = {(char *) worker_path, (char *) "--plugin", (char *) plugin_path, NULL};

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
                r = posix_spawn(&pid, worker_path, &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        safe_close(sv[1]);
        if (r != 0) {
                safe_close(sv[0]);
                plugin_set_error(ret_error, "cannot start %s: %s", worker_path, strerror(r));
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

int worker_connect(const char *socket_path, uint64_t deadline, struct worker **ret, char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct worker *w;
        int r;

        if (strlen(socket_path) >= sizeof(sa.sun_path)) {
                plugin_set_error(ret_error, "worker_socket %s: path too long", socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, socket_path);
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
                        plugin_set_error(ret_error, "cannot connect to worker_socket %s: %s", socket_path,
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

void reaper_finish(struct reaper *r, uint64_t grace_usec) {
        uint64_t until = wire_now_usec() + grace_usec;

        for (;;) {
                reaper_sweep(r);
                if (r->n_pids == 0 || wire_now_usec() >= until)
                        break;
                (void) poll(NULL, 0, 10);
        }
        for (size_t i = 0; i < r->n_pids; i++) {
                (void) kill(r->pids[i], SIGKILL);
                while (waitpid(r->pids[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(r->pids);
        r->pids = NULL;
        r->n_pids = 0;
        pthread_mutex_destroy(&r->lock);
}
