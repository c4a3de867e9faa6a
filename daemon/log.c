/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
/* CODE_FILE/CODE_LINE of log.c would tell a reader nothing. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"

static bool use_journal;
static int max_priority = LOG_INFO;
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const prio_names[] = {
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

void log_open(bool force_stderr) {
        /* systemd sets JOURNAL_STREAM when stderr is connected to the journal
         * and INVOCATION_ID for every unit it starts: either means that the
         * journal is the natural sink. */
        use_journal = !force_stderr && (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID"));
        const char *e = getenv("LATCH_LOG_LEVEL");
        if (e) {
                for (size_t i = 0; i < ELEMENTSOF(prio_names); i++)
                        if (streq(e, prio_names[i]))
                                max_priority = (int) i;
        }
}

void log_set_max_priority(int priority) { max_priority = priority; }

static void log_stderr(int priority, const char *const *fields, const char *msg) {
        char extra[1024];
        size_t n = 0;

        extra[0] = '\0';
        for (const char *const *f = fields; f && f[0]; f += 2) {
                if (!f[1])
                        continue;
                int r = snprintf(extra + n, sizeof(extra) - n, " %s=%s", f[0], f[1]);
                if (r < 0 || (size_t) r >= sizeof(extra) - n)
                        break;
                n += (size_t) r;
        }
        pthread_mutex_lock(&stderr_lock);
        fprintf(stderr, "latchd[%s]: %s%s\n", prio_names[priority & 7], msg, extra);
        fflush(stderr);
        pthread_mutex_unlock(&stderr_lock);
}

static void log_journal(int priority, const char *const *fields, const char *msg) {
        struct iovec iov[40];
        char *bufs[40];
        size_t n = 0, nb = 0;
        char prio[16];
        char *m = NULL;

        snprintf(prio, sizeof prio, "PRIORITY=%d", priority & 7);
        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        iov[n++] = (struct iovec){ prio, strlen(prio) };
        iov[n++] = (struct iovec){ m, strlen(m) };
        iov[n++] = (struct iovec){ (char *) "SYSLOG_IDENTIFIER=latchd", strlen("SYSLOG_IDENTIFIER=latchd") };
        for (const char *const *f = fields; f && f[0] && n < ELEMENTSOF(iov); f += 2) {
                char *b;
                if (!f[1])
                        continue;
                if (asprintf(&b, "%s=%s", f[0], f[1]) < 0)
                        break;
                bufs[nb++] = b;
                iov[n++] = (struct iovec){ b, strlen(b) };
        }
        /* No journal after all (a stale INVOCATION_ID): stderr it is. */
        if (sd_journal_sendv(iov, (int) n) < 0)
                log_stderr(priority, fields, msg);
        for (size_t i = 0; i < nb; i++)
                free(bufs[i]);
        free(m);
}

static void log_emit(int priority, const char *const *fields, const char *fmt, va_list ap) _printf_(3, 0);
static void log_emit(int priority, const char *const *fields, const char *fmt, va_list ap) {
        char msg[2048];

        if ((priority & 7) > max_priority)
                return;
        vsnprintf(msg, sizeof msg, fmt, ap);
        if (use_journal)
                log_journal(priority, fields, msg);
        else
                log_stderr(priority, fields, msg);
}

void log_msgv(int priority, const char *fmt, va_list ap) { log_emit(priority, NULL, fmt, ap); }

void log_msg(int priority, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_emit(priority, NULL, fmt, ap);
        va_end(ap);
}

void log_fields(int priority, const char *const *fields, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_emit(priority, fields, fmt, ap);
        va_end(ap);
}
