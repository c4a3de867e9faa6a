/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake-server.h"

#define MAX_REQUESTS 64

struct fake_server {
        char dir[64];
        char path[128];
        int listen_fd;
        int stop_pipe[2];
        pthread_t thread;
        const struct fake_step *steps;
        size_t n_steps;

        pthread_mutex_t lock;
        unsigned connections, closes, steps_done, n_requests;
        char *requests[MAX_REQUESTS];
};

static void die(const char *what) {
        fprintf(stderr, "fake-server: %s: %s\n", what, strerror(errno));
        abort();
}

/* Waits for fd to become readable, or for the stop pipe. Returns false on
 * stop. */
static bool wait_readable(struct fake_server *fs, int fd) {
        struct pollfd p[2] = {
                { .fd = fd, .events = POLLIN },
                { .fd = fs->stop_pipe[0], .events = POLLIN },
        };
        for (;;) {
                int r = poll(p, 2, -1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        die("poll");
                if (p[1].revents)
                        return false;
                return true;
        }
}

/* Reads exactly n bytes; false on EOF, error or stop. */
static bool read_exact(struct fake_server *fs, int fd, void *buf, size_t n) {
        char *p = buf;
        while (n > 0) {
                if (!wait_readable(fs, fd))
                        return false;
                ssize_t k = read(fd, p, n);
                if (k <= 0)
                        return false;
                p += k;
                n -= (size_t) k;
        }
        return true;
}

static void write_bytes(int fd, const void *buf, size_t n, bool split) {
        const char *p = buf;
        while (n > 0) {
                size_t chunk = split ? 1 : n;
                ssize_t k = send(fd, p, chunk, MSG_NOSIGNAL);
                if (k < 0)
                        return; /* the client went away: its test will tell */
                p += k;
                n -= (size_t) k;
                if (split)
                        usleep(100); /* let the client see the pieces apart */
        }
}

static void record(struct fake_server *fs, char *req) {
        pthread_mutex_lock(&fs->lock);
        if (fs->n_requests < MAX_REQUESTS)
                fs->requests[fs->n_requests++] = req;
        else
                free(req);
        pthread_mutex_unlock(&fs->lock);
}

static void count(struct fake_server *fs, unsigned *counter) {
        pthread_mutex_lock(&fs->lock);
        (*counter)++;
        pthread_mutex_unlock(&fs->lock);
}

/* Serves one connection; returns false when stopping. */
static bool serve(struct fake_server *fs, int fd, size_t *next) {
        for (;;) {
                if (*next >= fs->n_steps) {
                        /* Script done: hold the connection until the client
                         * leaves (or we stop). */
                        char c;
                        while (wait_readable(fs, fd))
                                if (read(fd, &c, 1) <= 0)
                                        return true;
                        return false;
                }

                const struct fake_step *s = &fs->steps[*next];
                uint8_t hdr[4];
                if (!read_exact(fs, fd, hdr, 4))
                        return true; /* the client closed: next connection */
                size_t len = (size_t) hdr[0] << 24 | (size_t) hdr[1] << 16 | (size_t) hdr[2] << 8 | hdr[3];
                char *req = malloc(len + 1);
                if (!req)
                        die("malloc");
                if (!read_exact(fs, fd, req, len)) {
                        free(req);
                        return true;
                }
                req[len] = '\0';
                record(fs, req);
                (*next)++;

                if (s->reply) {
                        size_t n = strlen(s->reply);
                        uint8_t *frame = malloc(n + 4);
                        if (!frame)
                                die("malloc");
                        frame[0] = (uint8_t) (n >> 24);
                        frame[1] = (uint8_t) (n >> 16);
                        frame[2] = (uint8_t) (n >> 8);
                        frame[3] = (uint8_t) n;
                        memcpy(frame + 4, s->reply, n);
                        write_bytes(fd, frame, n + 4, s->split);
                        free(frame);
                }
                if (s->raw)
                        write_bytes(fd, s->raw, s->raw_len, s->split);
                count(fs, &fs->steps_done);

                if (s->hang) {
                        char c;
                        while (wait_readable(fs, fd))
                                if (read(fd, &c, 1) <= 0)
                                        return true;
                        return false;
                }
                if (s->close)
                        return true;
        }
}

static void *server_thread(void *userdata) {
        struct fake_server *fs = userdata;
        size_t next = 0;

        for (;;) {
                if (!wait_readable(fs, fs->listen_fd))
                        return NULL;
                int fd = accept4(fs->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                count(fs, &fs->connections);
                bool go_on = serve(fs, fd, &next);
                close(fd);
                count(fs, &fs->closes);
                if (!go_on)
                        return NULL;
        }
}

struct fake_server *fake_server_start(const struct fake_step *steps, size_t n_steps) {
        struct fake_server *fs = calloc(1, sizeof(*fs));
        if (!fs)
                die("calloc");
        fs->steps = steps;
        fs->n_steps = n_steps;
        pthread_mutex_init(&fs->lock, NULL);

        snprintf(fs->dir, sizeof(fs->dir), "/tmp/latch-client-test-XXXXXX");
        if (!mkdtemp(fs->dir))
                die("mkdtemp");
        snprintf(fs->path, sizeof(fs->path), "%s/latchd.sock", fs->dir);

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(fs->path);
        if (len >= sizeof(sa.sun_path))
                die("socket path too long");
        memcpy(sa.sun_path, fs->path, len + 1);
        fs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fs->listen_fd < 0)
                die("socket");
        if (bind(fs->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("bind");
        if (listen(fs->listen_fd, 16) < 0)
                die("listen");
        if (pipe2(fs->stop_pipe, O_CLOEXEC) < 0)
                die("pipe2");
        if (pthread_create(&fs->thread, NULL, server_thread, fs) != 0)
                die("pthread_create");
        return fs;
}

const char *fake_server_path(const struct fake_server *fs) {
        return fs->path;
}

void fake_server_stop(struct fake_server *fs) {
        if (!fs)
                return;
        (void) !write(fs->stop_pipe[1], "x", 1);
        pthread_join(fs->thread, NULL);
        close(fs->listen_fd);
        close(fs->stop_pipe[0]);
        close(fs->stop_pipe[1]);
        unlink(fs->path);
        rmdir(fs->dir);
        for (unsigned i = 0; i < fs->n_requests; i++)
                free(fs->requests[i]);
        pthread_mutex_destroy(&fs->lock);
        free(fs);
}

void fake_server_wait(struct fake_server *fs, unsigned steps, unsigned closes) {
        /* Up to 30 s: only a broken client makes this run out. */
        for (int i = 0; i < 30000; i++) {
                pthread_mutex_lock(&fs->lock);
                bool done = fs->steps_done >= steps && fs->closes >= closes;
                pthread_mutex_unlock(&fs->lock);
                if (done)
                        return;
                usleep(1000);
        }
        fprintf(stderr, "fake-server: gave up waiting\n");
        abort();
}

unsigned fake_server_connections(struct fake_server *fs) {
        pthread_mutex_lock(&fs->lock);
        unsigned n = fs->connections;
        pthread_mutex_unlock(&fs->lock);
        return n;
}

unsigned fake_server_requests(struct fake_server *fs) {
        pthread_mutex_lock(&fs->lock);
        unsigned n = fs->n_requests;
        pthread_mutex_unlock(&fs->lock);
        return n;
}

const char *fake_server_request(struct fake_server *fs, unsigned i) {
        pthread_mutex_lock(&fs->lock);
        const char *r = i < fs->n_requests ? fs->requests[i] : NULL;
        pthread_mutex_unlock(&fs->lock);
        return r;
}
