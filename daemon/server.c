/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conn.h"
#include "daemon-state.h"
#include "frame.h"
#include "log.h"
#include "server.h"

static int fill_addr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, n);
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* Whether a daemon answers at path. */
static bool socket_is_live(const struct sockaddr_un *sa, socklen_t len) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        bool live = connect(fd, (const struct sockaddr *) sa, len) == 0;
        safe_close(fd);
        return live;
}

static int bind_socket(struct daemon *d, const char *path) {
        struct sockaddr_un sa;
        socklen_t len;
        struct stat st;
        int r;

        r = fill_addr(path, &sa, &len);
        if (r < 0) {
                log_msg(LOG_ERR, "socket path '%s' is empty or too long", path);
                return r;
        }
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        log_msg(LOG_ERR, "%s exists and is not a socket; refusing to replace it", path);
                        return -EEXIST;
                }
                if (socket_is_live(&sa, len)) {
                        log_msg(LOG_ERR, "another daemon is already answering on %s", path);
                        return -EADDRINUSE;
                }
                /* A stale socket left by a daemon that died. */
                if (unlink(path) < 0 && errno != ENOENT) {
                        r = -errno;
                        return log_errno(LOG_ERR, r, "cannot remove stale socket %s", path);
                }
        }

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Bind under a umask that leaves 0660 from the start: there is no
         * window in which the socket is wider open. */
        mode_t old = umask(0117);
        r = bind(fd, (struct sockaddr *) &sa, len);
        umask(old);
        if (r < 0) {
                r = -errno;
                return log_errno(LOG_ERR, r, "cannot bind %s", path);
        }
        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                log_errno(LOG_ERR, r, "cannot listen on %s", path);
                unlink(path);
                return r;
        }
        if (stat(path, &st) == 0)
                d->socket_ino = st.st_ino;
        d->socket_path = strdup(path);
        if (!d->socket_path) {
                unlink(path);
                return -ENOMEM;
        }
        d->listen_fd = TAKE_FD(fd);
        return 0;
}

int server_listen(struct daemon *d) {
        int n = sd_listen_fds(1);

        if (n < 0) {
                return log_errno(LOG_ERR, n, "LISTEN_FDS is malformed");
        }
        if (n > 1) {
                log_msg(LOG_ERR, "socket activation passed %d sockets; latchd takes exactly one", n);
                return -EINVAL;
        }
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;
                int r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
                if (r < 0) {
                        return log_errno(LOG_ERR, r, "the socket passed by systemd (fd %d) is unusable", fd);
                }
                if (r == 0) {
                        log_msg(LOG_ERR,
                                "the socket passed by systemd (fd %d) is not a listening AF_UNIX stream socket", fd);
                        return -EINVAL;
                }
                int fl = fcntl(fd, F_GETFL);
                if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                        return -errno;
                d->listen_fd = fd;
                d->socket_activated = true;
                return 0;
        }
        return bind_socket(d, d->socket_override ? d->socket_override : d->config->socket);
}

/* Tells a client over the limit why it is dropped, without blocking. */
static void refuse(int fd) {
        static const char body[] =
                "{\"id\":null,\"ok\":false,\"error\":\"unavailable\",\"message\":\"too many connections\"}";
        uint8_t buf[WIRE_HEADER + sizeof body - 1];

        wire_put_header(buf, sizeof body - 1);
        memcpy(buf + WIRE_HEADER, body, sizeof body - 1);
        (void) !send(fd, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT);
        safe_close(fd);
}

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        if (d->listen_source && !d->stopping)
                (void) sd_event_source_set_enabled(d->listen_source, SD_EVENT_ON);
        return 0;
}

/* Out of fds: the listening socket stays readable, so retrying at once
 * would spin. Pause accepting briefly (connections wait in the backlog). */
static void accept_pause(struct daemon *d, int err) {
        static uint64_t last_log;
        uint64_t now = now_usec();

        if (now - last_log > 10000000) {
                log_msg(LOG_WARNING, "accept: %s; pausing new connections for 100 ms", strerror(err));
                last_log = now;
        }
        (void) sd_event_source_set_enabled(d->listen_source, SD_EVENT_OFF);
        (void) sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, 100000, 10000, on_accept_resume, d);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct daemon *d = userdata;

        for (int i = 0; i < 64; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                accept_pause(d, errno);
                        else if (errno != EAGAIN && errno != ECONNABORTED)
                                log_msg(LOG_WARNING, "accept: %s", strerror(errno));
                        break;
                }
                if (d->stopping) {
                        safe_close(cfd);
                        continue;
                }
                if (d->n_conns >= d->config->max_connections) {
                        d->stats.connections_refused++;
                        refuse(cfd);
                        continue;
                }
                int r = conn_new(d, cfd, NULL);
                if (r < 0)
                        log_errno(LOG_WARNING, r, "cannot set up a connection");
                else
                        d->stats.connections_total++;
        }
        return 0;
}

int server_start(struct daemon *d) {
        int r = sd_event_add_io(d->event, &d->listen_source, d->listen_fd, EPOLLIN, on_accept, d);
        if (r < 0)
                return r;
        return sd_event_source_set_description(d->listen_source, "listen");
}

void server_stop(struct daemon *d) { d->listen_source = sd_event_source_disable_unref(d->listen_source); }

void server_close(struct daemon *d) {
        struct stat st;

        server_stop(d);
        /* Under socket activation the socket is systemd's: connections keep
         * queueing in its backlog while we restart. Never close it into a
         * state that loses them, and never unlink its path. */
        if (d->socket_activated)
                return;
        d->listen_fd = safe_close(d->listen_fd);
        if (d->socket_path && stat(d->socket_path, &st) == 0 && st.st_ino == d->socket_ino)
                unlink(d->socket_path);
        free(d->socket_path);
        d->socket_path = NULL;
}
