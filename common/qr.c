/* SPDX-License-Identifier: MIT */
/*
 * QR codes made in a child process (qr.h). The child encodes, writes the
 * width and the modules down a pipe and exits; the parent reads them into a
 * buffer of its own and reaps the child. A QR code is at most 177 × 177
 * modules, about 31 KiB: within one pipe's buffer, but read as it comes.
 */
#include <errno.h>
#include <fcntl.h>
#include <qrencode.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "qr.h"

#define QR_WIDTH_MAX 177

static int write_all(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static size_t read_all(int fd, void *buf, size_t n) {
        uint8_t *p = buf;
        size_t got = 0;

        while (got < n) {
                ssize_t k = read(fd, p + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        return got;
}

/* The child: 0 on success, else the errno libqrencode left. */
static _Noreturn void child(int fd, const char *text) {
        QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        int32_t width;

        if (!qr)
                _exit(errno == ERANGE || errno == EINVAL ? EINVAL : ENOMEM);
        width = qr->width;
        for (size_t i = 0; i < (size_t) width * (size_t) width; i++)
                qr->data[i] &= 1;
        if (write_all(fd, &width, sizeof width) < 0 || write_all(fd, qr->data, (size_t) width * (size_t) width) < 0)
                _exit(EIO);
        _exit(0);
}

int qr_modules_make(const char *text, struct qr_modules *ret) {
        int fds[2], status = 0, r = 0;
        int32_t width = 0;
        uint8_t *dark = NULL;
        size_t n = 0;
        pid_t pid;

        *ret = (struct qr_modules) {};
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                close(fds[0]);
                /* What the parent would do on SIGPIPE is not the child's to do. */
                signal(SIGPIPE, SIG_DFL);
                child(fds[1], text);
        }
        close(fds[1]);
        if (read_all(fds[0], &width, sizeof width) != sizeof width || width < 21 || width > QR_WIDTH_MAX)
                r = -EIO;
        else {
                n = (size_t) width * (size_t) width;
                dark = malloc(n);
                if (!dark)
                        r = -ENOMEM;
                else if (read_all(fds[0], dark, n) != n)
                        r = -EIO;
        }
        close(fds[0]);
        for (;;) {
                if (waitpid(pid, &status, 0) == pid) {
                        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                                r = -WEXITSTATUS(status); /* what the child saw first */
                        else if (!WIFEXITED(status))
                                r = -EIO;
                        break;
                }
                /* ECHILD: SIGCHLD is ignored (an inherited disposition) and the
                 * child was reaped unseen; what it wrote is all there is to go by. */
                if (errno != EINTR) {
                        if (errno != ECHILD && r == 0)
                                r = negative_errno();
                        break;
                }
        }
        if (r < 0) {
                if (dark) {
                        sodium_memzero(dark, n);
                        free(dark);
                }
                return r;
        }
        *ret = (struct qr_modules) { .width = width, .dark = dark };
        return 0;
}

void qr_modules_done(struct qr_modules *q) {
        if (q->dark) {
                sodium_memzero(q->dark, (size_t) q->width * (size_t) q->width);
                free(q->dark);
        }
        *q = (struct qr_modules) {};
}
