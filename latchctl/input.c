/* SPDX-License-Identifier: MIT */
/* Secrets from stdin: one line, or a no-echo prompt on a terminal. */

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "latchctl.h"
#include "macro.h"

/* Matches USERDB_PASSWORD_MAX: nothing longer is a valid password anywhere. */
#define SECRET_MAX 4096

static struct termios saved_termios;
static volatile sig_atomic_t echo_off;

/* A signal while echo is off must not leave the terminal mute. */
static void restore_and_reraise(int sig) {
        if (echo_off)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        signal(sig, SIG_DFL);
        raise(sig);
}

static int set_echo(bool on) {
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };

        if (on) {
                if (!echo_off)
                        return 0;
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
                echo_off = 0;
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        signal(sigs[i], SIG_DFL);
                return 0;
        }

        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return -errno;
        struct termios t = saved_termios;
        t.c_lflag &= ~(tcflag_t) (ECHO | ECHOE | ECHOK | ECHONL);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                signal(sigs[i], restore_and_reraise);
        echo_off = 1;
        /* TCSANOW: an answer typed as soon as the prompt shows is kept. */
        if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) {
                int r = -errno;
                set_echo(true);
                return r;
        }
        return 0;
}

/* After a line was refused: reads the rest of it, up to its '\n', keeping
 * nothing. On a terminal the rest is already typed (with echo off, for a
 * secret): left unread, the shell would read it as a command once latchctl
 * exits, and keep it in its history. */
static void discard_rest_of_line(void) {
        for (;;) {
                char c;
                ssize_t k = read(STDIN_FILENO, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || c == '\n')
                        break;
        }
}

/* Reads up to the first '\n' (not kept) one byte at a time, so nothing
 * after the line is consumed or copied anywhere. On failure `buf` may hold
 * part of the line, for the caller to wipe; a refused line (a NUL, too
 * long) is read to its end, nothing of it kept. */
static int read_line(char *buf, size_t size, size_t *ret_len) {
        size_t n = 0;
        bool any = false;

        for (;;) {
                char c;
                ssize_t k = read(STDIN_FILENO, &c, 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                any = true;
                if (c == '\n')
                        break;
                /* The line is used as a C string: a NUL would silently cut
                 * it there (a password stored as its first bytes only), so
                 * it is refused rather than kept. */
                if (c == '\0' || n + 1 >= size) {
                        discard_rest_of_line();
                        return c == '\0' ? -EILSEQ : -E2BIG;
                }
                buf[n++] = c;
        }
        if (!any)
                return -ENODATA;
        buf[n] = '\0';
        *ret_len = n;
        return 0;
}

static int prompt_line_echo(const char *prompt, bool tty, bool echo, char *buf, size_t size, size_t *ret_len) {
        int r;

        if (!tty)
                return read_line(buf, size, ret_len);

        if (echo) {
                fprintf(stderr, "%s", prompt);
                fflush(stderr);
                return read_line(buf, size, ret_len);
        }
        /* Echo goes off before the prompt shows: whatever is typed after
         * seeing it is never echoed. */
        r = set_echo(false);
        if (r < 0)
                return r;
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        r = read_line(buf, size, ret_len);
        set_echo(true);
        fputc('\n', stderr);
        return r;
}

static int prompt_line(const char *prompt, bool tty, char *buf, size_t size, size_t *ret_len) {
        return prompt_line_echo(prompt, tty, false, buf, size, ret_len);
}

int read_answer_line(char **ret) {
        size_t len;
        int r;

        char *buf = malloc(SECRET_MAX + 2);
        if (!buf)
                return -ENOMEM;
        r = read_line(buf, SECRET_MAX + 2, &len);
        if (r < 0) {
                sodium_memzero(buf, SECRET_MAX + 2);
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

int read_answer(const char *prompt, bool echo, char **ret) {
        bool tty = isatty(STDIN_FILENO);
        size_t len;
        int r;

        char *buf = malloc(SECRET_MAX + 2);
        if (!buf)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        r = prompt_line_echo(prompt, tty, echo, buf, SECRET_MAX + 2, &len);
        if (r < 0) {
                sodium_memzero(buf, SECRET_MAX + 2);
                free(buf);
                if (r == -ENODATA)
                        return print_error(EXIT_USAGE, "usage", "no answer on stdin");
                if (r == -E2BIG)
                        return print_error(EXIT_USAGE, "usage", "input line longer than %d bytes", SECRET_MAX);
                if (r == -EILSEQ)
                        return print_error(EXIT_USAGE, "usage", "input line contains a NUL byte");
                return print_error(EXIT_USAGE, "usage", "cannot read stdin: %s", strerror(-r));
        }
        *ret = buf;
        return 0;
}

int read_secret(const char *prompt, bool confirm, char **ret) {
        bool tty = isatty(STDIN_FILENO);
        size_t len, len2;
        int r;

        char *buf = malloc(SECRET_MAX + 2);
        if (!buf)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");

        r = prompt_line(prompt, tty, buf, SECRET_MAX + 2, &len);
        if (r == 0 && tty && confirm) {
                char *again = malloc(SECRET_MAX + 2);
                if (!again) {
                        latch_secret_free(buf);
                        return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                }
                r = prompt_line("Retype: ", tty, again, SECRET_MAX + 2, &len2);
                if (r == 0 && (len != len2 || sodium_memcmp(buf, again, len) != 0))
                        r = -EBADMSG;
                sodium_memzero(again, SECRET_MAX + 2);
                free(again);
        }
        if (r < 0) {
                sodium_memzero(buf, SECRET_MAX + 2);
                free(buf);
                switch (r) {
                case -ENODATA:
                        return print_error(EXIT_USAGE, "usage", "no input on stdin");
                case -E2BIG:
                        return print_error(EXIT_USAGE, "usage", "input line longer than %d bytes", SECRET_MAX);
                case -EILSEQ:
                        return print_error(EXIT_USAGE, "usage", "input line contains a NUL byte");
                case -EBADMSG:
                        return print_error(EXIT_USAGE, "usage", "the two entries differ");
                default:
                        return print_error(EXIT_USAGE, "usage", "cannot read stdin: %s", strerror(-r));
                }
        }

        *ret = buf;
        return 0;
}
