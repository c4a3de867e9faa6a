/* SPDX-License-Identifier: MIT */
/* What latchctl prints: one JSON object with --json, readable lines else. */

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "latchctl.h"
#include "macro.h"
#include "secret.h"
#include "utf8.h"

bool arg_json = false;

int exit_code_for(int err) {
        switch (err) {
        case LATCH_OK:
                return EXIT_DONE;
        case LATCH_ERR_DENIED:
        case LATCH_ERR_INVALID_SESSION:
        case LATCH_ERR_INVALID_TOKEN:
        case LATCH_ERR_FORBIDDEN:
        case LATCH_ERR_UNKNOWN_SERVICE:
        case LATCH_ERR_CHALLENGE:            /* more input, which nobody gave */
        case LATCH_ERR_INVALID_CONVERSATION:
                return EXIT_REFUSED;
        /* latchd refusing the request's form means the input was bad (a
         * malformed argument, or one too large to send). */
        case LATCH_ERR_BAD_REQUEST:
        case LATCH_ERR_TOO_LARGE:
        case LATCH_ERR_INVALID_ARGUMENT:
        case LATCH_ERR_IO:
                return EXIT_USAGE;
        default:
                return EXIT_UNAVAILABLE;
        }
}

/* ---- text from latchd, made safe for a terminal ---- */

char *text_escape(const char *s, bool multiline) {
        const unsigned char *p = (const unsigned char *) s;
        char *buf, *o;

        /* \uXXXX (6 bytes) is the longest escape of the shortest sequence
         * that needs one (2 bytes); \xNN takes 4 for 1. */
        buf = malloc(strlen(s) * 4 + 1);
        if (!buf)
                return NULL;
        o = buf;
        while (*p) {
                uint32_t cp;
                size_t used = utf8_decode((const char *) p, &cp);

                if (used == 0) {
                        o += sprintf(o, "\\x%02x", *p);
                        used = 1;
                } else if (used == 1 && (cp == '\n' || cp == '\t'))
                        o += multiline ? sprintf(o, "%c", (char) cp) : sprintf(o, cp == '\n' ? "\\n" : "\\t");
                else if (used == 1 && (cp < 0x20 || cp == 0x7f))
                        o += sprintf(o, "\\x%02x", (unsigned) cp);
                else if (utf8_cp_escaped(cp))
                        o += sprintf(o, "\\u%04x", (unsigned) cp);
                else {
                        memcpy(o, p, used);
                        o += used;
                }
                p += used;
        }
        *o = '\0';
        return buf;
}

/* latchctl is single-threaded; a few strings are alive at once (the
 * arguments of one printf). Wiped when reused: they may be a key. */
static char *term_slots[8];
static unsigned term_next;

const char *term_text(const char *s) {
        char *e;

        if (!s)
                return NULL;
        e = text_escape(s, false);
        if (!e)
                return "(out of memory)";
        secret_free(term_slots[term_next % ELEMENTSOF(term_slots)]);
        term_slots[term_next++ % ELEMENTSOF(term_slots)] = e;
        return e;
}

/* stdout's buffer is ours (setvbuf() in output_init()), so that what went
 * through it can be wiped. */
static char stdout_buffer[BUFSIZ];

void output_init(void) {
        /* Buffered as the C library would: by line on a terminal. */
        setvbuf(stdout, stdout_buffer, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof stdout_buffer);
        /* Jansson's copies of what latchd answered (an enrollment's key,
         * recovery codes) are wiped when freed. */
        json_set_alloc_funcs(malloc, secret_json_free);
}

/* Zeroes `size` bytes of the stack below the caller's frame, where the
 * frames of the calls that printed a secret were (the C library's and
 * Jansson's, whose locals and spilled registers can hold pieces of it), as
 * libgcrypt's burn_stack does. Not inlined, so the array is a frame of its
 * own. */
static __attribute__((noinline)) void burn_stack(void) {
        volatile char area[64 * 1024];

        sodium_memzero((char *) area, sizeof area);
        __asm__ __volatile__("" : : "r"(area) : "memory");
}

void output_forget(void) {
        burn_stack();
        fflush(stdout);
        sodium_memzero(stdout_buffer, sizeof stdout_buffer);
        for (size_t i = 0; i < ELEMENTSOF(term_slots); i++) {
                secret_free(term_slots[i]);
                term_slots[i] = NULL;
        }
}

static void print_json_object(json_t *o) {
        json_dumpf(o, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        fflush(stdout);
}

_printf_(3, 0) static int vprint_error(int exit_code, const char *code, const char *fmt, va_list ap) {
        char msg[1024];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (arg_json) {
                json_t *o = json_pack("{s:s,s:s}", "error", code, "message", msg);
                if (o)
                        print_json_object(o);
                json_decref(o);
        } else
                fprintf(stderr, "latchctl: %s\n", term_text(msg));
        return exit_code;
}

int print_error(int exit_code, const char *code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = vprint_error(exit_code, code, fmt, ap);
        va_end(ap);
        return r;
}

int print_usage_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = vprint_error(EXIT_USAGE, "usage", fmt, ap);
        va_end(ap);
        if (!arg_json)
                fprintf(stderr, "Try 'latchctl --help'.\n");
        return r;
}

int print_client_error(latch_client *client, int err) {
        const char *code = latch_last_error_code(client);

        return print_error(exit_code_for(err), code ? code : latch_error_name(err), "%s",
                           latch_last_message(client));
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && streq(s + n - m, suffix);
}

static void format_time(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%" PRId64, t);
}

/* key: value lines; objects nest as prefix.key, times (*_at, exp, iat, nbf)
 * also in ISO 8601. Arrays and other values print as compact JSON. */
static void print_lines(const char *prefix, json_t *o) {
        const char *key;
        json_t *v;

        json_object_foreach(o, key, v) {
                char name[256];

                snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", term_text(key));
                if (json_is_object(v) && json_object_size(v) > 0) {
                        print_lines(name, v);
                        continue;
                }

                printf("%s: ", name);
                if (json_is_string(v))
                        fputs(term_text(json_string_value(v)), stdout);
                else if (json_is_integer(v) &&
                         (ends_with(key, "_at") || streq(key, "exp") || streq(key, "iat") || streq(key, "nbf"))) {
                        char when[64];
                        format_time(json_integer_value(v), when, sizeof(when));
                        printf("%" JSON_INTEGER_FORMAT " (%s)", json_integer_value(v), when);
                } else
                        json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
                fputc('\n', stdout);
        }
        fflush(stdout);
}

int print_json_text(const char *text) {
        if (arg_json) {
                printf("%s\n", text);
                fflush(stdout);
                return EXIT_DONE;
        }

        json_t *o = json_loads(text, 0, NULL);
        if (!json_is_object(o)) {
                json_decref(o);
                return print_error(EXIT_UNAVAILABLE, "protocol", "malformed result");
        }
        print_lines("", o);
        json_decref(o);
        return EXIT_DONE;
}

int print_reply(const latch_reply *reply) {
        char *text = latch_reply_json(reply, NULL);
        if (!text)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        int r = print_json_text(text);
        latch_secret_free(text);
        return r;
}

int print_jwks(const latch_reply *reply) {
        if (arg_json)
                return print_reply(reply);

        char *text = latch_reply_json(reply, NULL);
        json_t *o = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        if (!o)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(o);
        return EXIT_DONE;
}

/* The last cell of a row is not padded (no trailing blanks). */
static void print_cell(const char *s, size_t width, bool last) {
        s = term_text(s);
        if (last)
                printf("%s\n", s);
        else
                printf("%-*s  ", (int) width, s);
}

int print_sessions(const latch_reply *reply) {
        static const char *const columns[] = { "handle", "user", "service", "created_at", "last_seen_at",
                                               "expires_at", "idle_expires_at" };
        static const char *const titles[] = { "HANDLE", "USER", "SERVICE", "CREATED", "LAST SEEN",
                                              "EXPIRES", "IDLE EXPIRES" };
        size_t widths[ELEMENTSOF(columns)];
        size_t n = latch_reply_count(reply, "sessions");

        if (arg_json)
                return print_reply(reply);

        /* Two passes: widths first, then the rows. */
        for (int pass = 0; pass < 2; pass++) {
                for (size_t c = 0; c < ELEMENTSOF(columns); c++) {
                        if (pass == 0)
                                widths[c] = strlen(titles[c]);
                        else
                                print_cell(titles[c], widths[c], c + 1 == ELEMENTSOF(columns));
                }
                for (size_t i = 0; i < n; i++)
                        for (size_t c = 0; c < ELEMENTSOF(columns); c++) {
                                char cell[64];
                                int64_t t;
                                const char *s = latch_reply_item_string(reply, "sessions", i, columns[c]);

                                if (!s) {
                                        if (latch_reply_item_int(reply, "sessions", i, columns[c], &t) == LATCH_OK)
                                                format_time(t, cell, sizeof(cell));
                                        else
                                                snprintf(cell, sizeof(cell), "-");
                                        s = cell;
                                }
                                if (pass == 0)
                                        widths[c] = MAX(widths[c], strlen(term_text(s)));
                                else
                                        print_cell(s, widths[c], c + 1 == ELEMENTSOF(columns));
                        }
        }
        printf("\n%zu session%s\n", n, n == 1 ? "" : "s");
        fflush(stdout);
        return EXIT_DONE;
}
