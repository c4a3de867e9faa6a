/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* CODE_FILE/CODE_LINE of log.c would tell a reader nothing. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"
#include "utf8.h"

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

char *log_escape(const char *s, bool quotes, char *buf, size_t size) {
        const unsigned char *p = (const unsigned char *) (s ? s : "(null)");
        size_t n = 0, cut = 0;

        assert(buf && size >= 4);
        while (*p) {
                char piece[8];
                size_t k, used;
                uint32_t cp;

                used = utf8_decode((const char *) p, &cp);
                if (used == 0) {
                        k = (size_t) snprintf(piece, sizeof piece, "\\x%02x", *p);
                        used = 1;
                } else if (used == 1) {
                        switch (cp) {
                        case '\\':
                                k = (size_t) snprintf(piece, sizeof piece, "\\\\");
                                break;
                        case '\'':
                        case '"':
                                k = (size_t) snprintf(piece, sizeof piece, quotes ? "\\%c" : "%c", (char) cp);
                                break;
                        case '\n':
                                k = (size_t) snprintf(piece, sizeof piece, "\\n");
                                break;
                        case '\r':
                                k = (size_t) snprintf(piece, sizeof piece, "\\r");
                                break;
                        case '\t':
                                k = (size_t) snprintf(piece, sizeof piece, "\\t");
                                break;
                        default:
                                if (cp < 0x20 || cp == 0x7f)
                                        k = (size_t) snprintf(piece, sizeof piece, "\\x%02x", (unsigned) cp);
                                else {
                                        piece[0] = (char) cp;
                                        k = 1;
                                }
                        }
                } else if (utf8_cp_escaped(cp))
                        k = (size_t) snprintf(piece, sizeof piece, "\\u%04x", (unsigned) cp);
                else {
                        memcpy(piece, p, used);
                        k = used;
                }
                p += used;

                /* Too long: back to the last whole escape that leaves room
                 * for "...". */
                if (n + k + 1 > size) {
                        memcpy(buf + cut, "...", 3);
                        n = cut + 3;
                        break;
                }
                memcpy(buf + n, piece, k);
                n += k;
                if (n + 3 + 1 <= size)
                        cut = n;
        }
        buf[n] = '\0';
        return buf;
}

static const char *log_esc_slot(const char *s, bool quotes) {
        static _Thread_local char slots[LOG_ESC_SLOTS][LOG_ESC_SIZE];
        static _Thread_local unsigned next;

        char *b = slots[next++ % LOG_ESC_SLOTS];
        return log_escape(s, quotes, b, LOG_ESC_SIZE);
}

const char *log_esc(const char *s) { return log_esc_slot(s, true); }
const char *log_esc_text(const char *s) { return log_esc_slot(s, false); }

/* On stderr a field value is quoted unless it is one plain word, so that
 * neither a space nor an "=" inside it can start a field of its own. */
static bool is_plain_word(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("._:@/+,-", *s)))
                        return false;
        return true;
}

static void log_stderr(int priority, const char *const *fields, const char *msg) {
        char extra[4096], value[LOG_ESC_SIZE];
        size_t n = 0;

        extra[0] = '\0';
        for (const char *const *f = fields; f && f[0]; f += 2) {
                if (!f[1])
                        continue;
                log_escape(f[1], true, value, sizeof value);
                bool plain = is_plain_word(value);
                int r = snprintf(extra + n, sizeof(extra) - n, " %s=%s%s%s", f[0], plain ? "" : "'", value,
                                 plain ? "" : "'");
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
                char *b, value[LOG_ESC_SIZE];
                if (!f[1])
                        continue;
                if (asprintf(&b, "%s=%s", f[0], log_escape(f[1], true, value, sizeof value)) < 0)
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

int log_errno(int priority, int r, const char *fmt, ...) {
        char msg[2048], err[128];
        va_list ap;

        if ((priority & 7) > max_priority)
                return r;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        /* The GNU strerror_r: thread-safe, returns the text (maybe not err). */
        log_msg(priority, "%s: %s", msg, strerror_r(r < 0 ? -r : r, err, sizeof err));
        return r;
}

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
