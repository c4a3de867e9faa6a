/* SPDX-License-Identifier: MIT */
/*
 * latchctl totp ... and faillock ...: latchd's `plugin` op (admin peers
 * only), answered by the plugin's admin actions; `totp enroll` also draws
 * the otpauth:// URI as a QR code (libqrencode, in a child: qr.h) and asks for the first code
 * that confirms the enrollment.
 */

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "latchctl.h"
#include "macro.h"
#include "qr.h"
#include "secret.h"

/* How many codes `totp enroll` asks for on a terminal before giving up (the
 * enrollment then stays pending: `totp confirm` finishes it). */
#define CONFIRM_TRIES 3

/* Calls op "plugin" with `plugin`, `action`, `user`, and `code` and
 * `service` when not NULL. Returns EXIT_DONE and the answer's members (ok
 * and id removed) in *ret, or prints the failure and returns its exit
 * code. */
static int plugin_call(latch_client *c, const char *service, const char *plugin, const char *action,
                       const char *user, const char *code, json_t **ret) {
        _cleanup_(json_decrefp) json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "op", "plugin", "plugin", plugin,
                                                         "action", action, "user", user);
        char *text = NULL, *response = NULL;
        json_t *o;
        int r;

        if (!req || (service && json_object_set_new(req, "service", json_string(service)) < 0) ||
            (code && json_object_set_new(req, "code", json_string(code)) < 0))
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        text = json_dumps(req, JSON_COMPACT);
        if (!text)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        r = latch_call_json(c, text, &response);
        latch_secret_free(text); /* may hold a code */
        if (r != LATCH_OK)
                return print_client_error(c, r);
        o = json_loads(response, 0, NULL);
        latch_secret_free(response); /* may hold a secret */
        if (!json_is_object(o)) {
                json_decref(o);
                return print_error(EXIT_UNAVAILABLE, "protocol", "latchd answered something that is not an object");
        }
        json_object_del(o, "ok");
        json_object_del(o, "id");
        *ret = o;
        return EXIT_DONE;
}

static int print_object(json_t *o) {
        _cleanup_secret_ char *text = json_dumps(o, JSON_COMPACT); /* may hold a key */
        if (!text)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        return print_json_text(text);
}

/* The QR code of `text` on stdout, two modules a character with Unicode half
 * blocks, light modules drawn (as qrencode -t UTF8 does: for the usual light
 * text on a dark terminal), with the quiet zone of 4 modules scanners need. */
static void print_qr(const char *text) {
        enum { QUIET = 4 };
        struct qr_modules qr;
        if (qr_modules_make(text, &qr) < 0) {
                fprintf(stderr, "latchctl: cannot make a QR code; type the secret in instead\n");
                return;
        }
        int w = qr.width, size = w + 2 * QUIET;
#define DARK(x, y)                                                                              \
        ((x) >= QUIET && (y) >= QUIET && (x) < QUIET + w && (y) < QUIET + w &&                   \
         qr.dark[((y) - QUIET) * w + ((x) - QUIET)])
        for (int y = 0; y < size; y += 2) {
                for (int x = 0; x < size; x++) {
                        bool top = !DARK(x, y), bottom = y + 1 < size ? !DARK(x, y + 1) : false;
                        fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", stdout);
                }
                fputc('\n', stdout);
        }
#undef DARK
        qr_modules_done(&qr);
}

static int confirm(latch_client *c, const char *service, const char *user, const char *code) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = plugin_call(c, service, "totp", "confirm", user, code, &o);
        if (r != EXIT_DONE)
                return r;
        if (arg_json)
                return print_object(o);
        printf("Enrolled: %s now needs a code to log in.\n", user);
        return EXIT_DONE;
}

static int totp_enroll(latch_client *c, const char *service, const char *user) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = plugin_call(c, service, "totp", "enroll", user, NULL, &o);
        if (r != EXIT_DONE)
                return r;

        /* One JSON object: the enrollment. `totp confirm` takes the code. */
        if (arg_json)
                return print_object(o);

        const char *uri = json_string_value(json_object_get(o, "uri"));
        const char *secret = json_string_value(json_object_get(o, "secret"));
        if (!uri || !secret)
                return print_error(EXIT_UNAVAILABLE, "protocol", "the enrollment answer lacks uri or secret");
        printf("Scan this with an authenticator app, or add the URI or the secret by hand:\n\n");
        print_qr(uri);
        printf("\n%s\nSecret: %s\n\n", term_text(uri), term_text(secret));
        /* Shown: no copy of the key stays while the app is set up. */
        json_decref(TAKE_PTR(o));
        output_forget();

        /* Nothing to read: leave it pending. */
        bool tty = isatty(STDIN_FILENO);
        for (int i = 0; i < (tty ? CONFIRM_TRIES : 1); i++) {
                _cleanup_(latch_secret_freep) char *code = NULL;
                r = read_secret("Verification code from the app: ", false, &code);
                if (r != EXIT_DONE)
                        break;
                r = confirm(c, service, user, code);
                if (r == EXIT_DONE)
                        return r;
        }
        fprintf(stderr, "latchctl: the enrollment of %s is pending; finish it with: latchctl totp confirm %s CODE\n",
                user, user);
        return r;
}

static int totp_recovery(latch_client *c, const char *service, const char *user) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        json_t *codes, *v;
        size_t i;
        int r = plugin_call(c, service, "totp", "recovery", user, NULL, &o);
        if (r != EXIT_DONE)
                return r;
        if (arg_json)
                return print_object(o);
        codes = json_object_get(o, "codes");
        printf("One-time recovery codes for %s (each works once, at the code prompt; "
               "the previous ones no longer work):\n\n", user);
        json_array_foreach(codes, i, v)
                printf("  %s\n", term_text(json_string_value(v) ?: "?"));
        output_forget();
        return EXIT_DONE;
}

int cmd_totp(const char *socket, const char *service, const char *action, char **argv) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = latch_client_new(socket, &c);

        if (r == LATCH_ERR_INVALID_ARGUMENT)
                return print_usage_error("invalid socket path");
        if (r != LATCH_OK)
                return print_error(exit_code_for(r), latch_error_name(r), "%s", latch_strerror(r));

        if (streq(action, "enroll"))
                return totp_enroll(c, service, argv[0]);
        if (streq(action, "confirm")) {
                _cleanup_(latch_secret_freep) char *code = NULL;
                if (argv[1]) {
                        code = strdup(argv[1]);
                        r = code ? EXIT_DONE : print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                } else
                        r = read_secret("Verification code from the app: ", false, &code);
                return r != EXIT_DONE ? r : confirm(c, service, argv[0], code);
        }
        if (streq(action, "recovery"))
                return totp_recovery(c, service, argv[0]);

        /* remove, status */
        r = plugin_call(c, service, "totp", action, argv[0], NULL, &o);
        if (r != EXIT_DONE)
                return r;
        if (arg_json || streq(action, "status"))
                return print_object(o);
        printf(json_is_true(json_object_get(o, "removed")) ? "Removed the enrollment of %s.\n"
                                                             : "%s had no enrollment.\n",
               argv[0]);
        return EXIT_DONE;
}

static void format_time(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "%" PRId64, t);
}

int cmd_faillock(const char *socket, const char *service, const char *action, char **argv) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(json_decrefp) json_t *o = NULL;
        const char *user = argv[0];
        int r = latch_client_new(socket, &c);

        if (r == LATCH_ERR_INVALID_ARGUMENT)
                return print_usage_error("invalid socket path");
        if (r != LATCH_OK)
                return print_error(exit_code_for(r), latch_error_name(r), "%s", latch_strerror(r));
        r = plugin_call(c, service, "faillock", action, user, NULL, &o);
        if (r != EXIT_DONE)
                return r;
        if (arg_json)
                return print_object(o);

        if (streq(action, "reset")) {
                printf(json_is_true(json_object_get(o, "reset")) ? "%s: tally cleared, not locked.\n"
                                                                 : "%s: no tally to clear.\n",
                       user);
                return EXIT_DONE;
        }

        /* As pam_faillock's faillock(8): the user, then one line a failure. */
        json_t *failures = json_object_get(o, "failures"), *v;
        char when[64];
        size_t i;
        printf("%s:", user);
        if (json_is_true(json_object_get(o, "locked"))) {
                json_int_t until = json_integer_value(json_object_get(o, "locked_until"));
                if (until == 0)
                        printf(" locked until the tally is reset\n");
                else {
                        format_time(until, when, sizeof when);
                        printf(" locked until %s\n", when);
                }
        } else
                printf(" not locked\n");
        if (json_array_size(failures) == 0) {
                printf("no failures recorded\n");
                return EXIT_DONE;
        }
        printf("When (%zu failures recorded; deny=%" JSON_INTEGER_FORMAT ")\n", json_array_size(failures),
               json_integer_value(json_object_get(o, "deny")));
        json_array_foreach(failures, i, v) {
                format_time(json_integer_value(v), when, sizeof when);
                printf("%s\n", when);
        }
        return EXIT_DONE;
}
