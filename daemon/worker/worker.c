/* SPDX-License-Identifier: MIT */

/*
 * latch-worker: runs one plugin line for latchd in a process of its own, so
 * that a plugin that crashes or hangs costs one worker, never latchd (the
 * model of Dovecot's auth-worker).
 *
 *   latch-worker --plugin PLUGIN [ARG...]
 *
 * The stream socket to latchd is fd 0: latchd spawns the worker on one end
 * of a socket pair, or a socket unit with Accept=yes starts one per
 * connection (inetd style, fd 0 and maybe fd 1). PLUGIN is a name in the
 * plugin folder or an absolute path, and only ever comes from this command
 * line. ARGs, when given, fix the line's arguments: latchd's line must then
 * name the same ones; without them the worker takes the line's. The protocol
 * is in proto.h. The worker loads the plugin with the same host code as
 * latchd (plugin-host.c, in-process), minus the key-value store (a host made
 * by plugin_host_new_kv() without one: kv_get and kv_update answer
 * -ENOTSUP, and no LMDB is linked) and minus isolation (plugin-isolation.c
 * is latchd's alone). It exits when latchd closes the stream.
 *
 * Every Jansson allocation is wiped when freed: requests carry the password.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "macro.h"
#include "plugin-host.h"
#include "proto.h"
#include "secret.h"

#define SOCKET_FD STDIN_FILENO

/* ---- memory that is wiped when freed, for Jansson ---- */

#define WIPE_HEADER alignof(max_align_t)

static void *wipe_malloc(size_t n) {
        uint8_t *p;

        if (n > SIZE_MAX - WIPE_HEADER)
                return NULL;
        p = malloc(n + WIPE_HEADER);
        if (!p)
                return NULL;
        memcpy(p, &n, sizeof(n));
        return p + WIPE_HEADER;
}

static void wipe_free(void *ptr) {
        uint8_t *p;
        size_t n;

        if (!ptr)
                return;
        p = (uint8_t *) ptr - WIPE_HEADER;
        memcpy(&n, p, sizeof(n));
        sodium_memzero(p, n + WIPE_HEADER);
        free(p);
}

/* ---- framing on fd 0 (blocking) ---- */

static void wipe_freep(char **s) { wipe_free(*s); }

static int send_frame(json_t *o) {
        _cleanup_(wipe_freep) char *s = NULL; /* json_dumps() allocates with wipe_malloc() */
        uint8_t hdr[WIRE_HEADER];
        size_t n;

        s = json_dumps(o, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        if (n == 0 || n > WORKER_ANSWER_MAX)
                return -E2BIG;
        wire_put_header(hdr, (uint32_t) n);

        /* Two writes: latchd reads the header and the payload apart anyway. */
        int r = wire_send_all(SOCKET_FD, hdr, sizeof(hdr), WIRE_NO_DEADLINE);
        if (r < 0)
                return r;
        r = wire_send_all(SOCKET_FD, s, n, WIRE_NO_DEADLINE);
        if (r < 0)
                return r;
        return 0;
}

/* Sends `o` and drops the reference; a worker that cannot talk to latchd
 * has nothing left to do. */
static void send_or_die(json_t *o) {
        int r = o ? send_frame(o) : -ENOMEM;
        json_decref(o);
        if (r < 0) {
                fprintf(stderr, "latch-worker: cannot answer latchd: %s\n", strerror(-r));
                _exit(EXIT_FAILURE);
        }
}

/* The next message from latchd: 1 and an object, 0 at the end of the stream,
 * or a negative errno. The frame (it may hold a password) is wiped. */
static int recv_frame(json_t **ret) {
        uint8_t hdr[WIRE_HEADER];
        ssize_t k;
        int r;

        do
                k = read(SOCKET_FD, hdr, 1);
        while (k < 0 && errno == EINTR);
        if (k == 0)
                return 0;
        if (k < 0)
                return -errno;
        r = wire_recv_all(SOCKET_FD, hdr + 1, sizeof(hdr) - 1, WIRE_NO_DEADLINE);
        if (r < 0)
                return r;
        r = worker_recv_payload(SOCKET_FD, hdr, WORKER_REQUEST_MAX, WIRE_NO_DEADLINE, ret);
        return r < 0 ? r : 1;
}

/* ---- the plugin's side ---- */

/* latchd's clock for the current request (host->now()). */
static int64_t request_now;

static int64_t worker_now(void *userdata) { return request_now > 0 ? request_now : (int64_t) time(NULL); }

/* host->log(): each line goes to latchd as it happens, which names the
 * plugin and the request. */
static void forward_log(void *userdata, int priority, const char *plugin, const struct latch_req *req,
                        const char *message) {
        json_t *m = json_string(message);

        if (!m) {
                /* Not UTF-8: keep the line readable rather than lose it. */
                _cleanup_free_ char *copy = strdup(message);
                if (!copy)
                        return;
                for (char *p = copy; *p; p++)
                        if ((unsigned char) *p >= 0x80)
                                *p = '?';
                m = json_string(copy);
        }
        send_or_die(json_pack("{s:{s:i, s:o}}", "log", "priority", priority, "message", m));
}

static const char *plugin_short_name(const char *plugin, char *buf, size_t size) {
        const char *base = strrchr(plugin, '/');
        size_t n;

        base = base ? base + 1 : plugin;
        n = strlen(base);
        if (n > 3 && streq(base + n - 3, ".so"))
                n -= 3;
        snprintf(buf, size, "%.*s", (int) n, base);
        return buf;
}

/* Answers the open message with an error and ends the worker. */
static _Noreturn void refuse(const char *message, int error) {
        send_or_die(json_pack("{s:s, s:i}", "error", message, "errno", error));
        _exit(EXIT_FAILURE);
}

/* Reads the "open" message and opens the line as it asks, within what the
 * command line allows. */
static struct plugin_line *open_line(struct plugin_host *h, const char *plugin, int fixed_argc,
                                     char *const *fixed_argv) {
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ char *error = NULL, *msg = NULL;
        struct plugin_line *l = NULL;
        char name[256];
        json_t *o = NULL, *open, *args, *a;
        const char *want;
        size_t i;
        int r, argc;

        r = recv_frame(&o);
        if (r <= 0) {
                fprintf(stderr, "latch-worker: no open message from latchd: %s\n",
                        r == 0 ? "end of stream" : strerror(-r));
                exit(EXIT_FAILURE);
        }
        open = json_object_get(o, "open");
        want = json_string_value(json_object_get(open, "name"));
        args = json_object_get(open, "args");
        if (!want || !json_is_array(args))
                refuse("latch-worker: malformed open message", EPROTO);

        plugin_short_name(plugin, name, sizeof(name));
        if (!streq(want, name)) {
                if (asprintf(&msg, "plugin '%s': this worker serves plugin '%s'", want, name) < 0)
                        msg = NULL;
                refuse(msg ?: "wrong plugin", EPROTO);
        }

        argc = (int) json_array_size(args);
        argv = calloc((size_t) argc + 1, sizeof(*argv));
        if (!argv)
                refuse("out of memory", ENOMEM);
        json_array_foreach(args, i, a) {
                argv[i] = json_string_value(a);
                if (!argv[i])
                        refuse("latch-worker: malformed open message", EPROTO);
        }
        if (fixed_argc > 0) {
                /* The unit fixed the arguments: a line asking for others is
                 * a configuration mistake to show, not to paper over. */
                bool same = argc == fixed_argc;
                for (int k = 0; same && k < argc; k++)
                        same = streq(argv[k], fixed_argv[k]);
                if (!same) {
                        if (asprintf(&msg, "plugin '%s': the line's arguments differ from those the worker was started with",
                                     name) < 0)
                                msg = NULL;
                        refuse(msg ?: "arguments differ", EINVAL);
                }
        }

        r = plugin_line_open(h, plugin, argc, argv, &l, &error);
        json_decref(o);
        if (r < 0) {
                if (!error && asprintf(&error, "plugin '%s' failed to open: %s", name, strerror(-r)) < 0)
                        error = NULL;
                refuse(error ?: "open failed", -r);
        }
        send_or_die(json_pack("{s:{s:s, s:i, s:b}}", "ready", "name", plugin_line_name(l), "pid", (int) getpid(),
                              "outcome", plugin_line_has_outcome(l)));
        return l;
}

/* The request whose call returned LATCH_INCOMPLETE: kept, with the
 * plugin's set_data() state, for the call that continues it (latchd sends
 * it here and nowhere else). */
static struct latch_req *pending;
static int pending_type = -1;

/* The items the plugin set during the call (host->set_item()), for latchd
 * to set on its request: {"password": STRING|null, ...}; NULL when none. */
static json_t *changed_items(struct latch_req *req) {
        unsigned m = latch_req_take_items_changed(req);
        json_t *items;

        if (m == 0)
                return NULL;
        items = json_object();
        if (!items)
                return NULL;
        if (m & (1U << LATCH_ITEM_PASSWORD)) {
                const char *v = latch_req_item(req, LATCH_ITEM_PASSWORD);
                json_object_set_new(items, "password", v ? json_string(v) : json_null());
        }
        if (m & (1U << LATCH_ITEM_OLDPASSWORD)) {
                const char *v = latch_req_item(req, LATCH_ITEM_OLDPASSWORD);
                json_object_set_new(items, "oldpassword", v ? json_string(v) : json_null());
        }
        return items;
}

/* Serves one request; false when the message is not one. */
static bool serve(struct plugin_line *l, json_t *o) {
        const char *call, *op, *service, *user, *password, *oldpassword, *remote;
        struct latch_req *req = NULL;
        json_t *now, *result, *answers, *flags;
        int type, r;

        call = json_string_value(json_object_get(o, "call"));
        op = json_string_value(json_object_get(o, "op"));
        service = json_string_value(json_object_get(o, "service"));
        user = json_string_value(json_object_get(o, "user"));
        password = json_string_value(json_object_get(o, "password"));
        oldpassword = json_string_value(json_object_get(o, "oldpassword"));
        remote = json_string_value(json_object_get(o, "remote"));
        now = json_object_get(o, "now");
        result = json_object_get(o, "result");
        answers = json_object_get(o, "answers");
        flags = json_object_get(o, "flags");
        if (!call || !op || !service || !user || !json_is_integer(now) || (answers && !json_is_array(answers)))
                return false;
        request_now = (int64_t) json_integer_value(now);
        type = stack_type_from_string(call, false);
        /* A password call carries its pass's flags; no other call has any. */
        if (type == STACK_PASSWORD ? !json_is_integer(flags) || json_integer_value(flags) < 0 ||
                                             json_integer_value(flags) > INT_MAX
                                   : flags != NULL)
                return false;

        if (pending) {
                /* Only the continuation of the pending call may come. */
                const char *a[LATCH_PROMPTS_MAX];
                size_t n = 0, i;
                json_t *v;

                if (type != pending_type || !answers || json_array_size(answers) > LATCH_PROMPTS_MAX)
                        return false;
                json_array_foreach(answers, i, v)
                        if (json_is_string(v))
                                a[n++] = json_string_value(v);
                if (latch_req_set_answers(pending, a, n) < 0)
                        return false;
                req = TAKE_PTR(pending);
                pending_type = -1;
        } else {
                if (latch_req_new(op, service, user, password, remote, &req) < 0)
                        return false;
                if (oldpassword && latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, oldpassword) < 0) {
                        latch_req_free(req);
                        return false;
                }
        }

        if (type >= 0) {
                r = plugin_line_call(l, (enum stack_type) type, req, flags ? (int) json_integer_value(flags) : 0);
                /* A copy: the claims are cleared below while the reply
                 * still has to carry them. */
                json_t *reply = json_pack("{s:i, s:o}", "result", r, "claims", json_deep_copy(latch_req_claims(req)));
                json_t *items = changed_items(req);
                if (reply && items)
                        json_object_set_new(reply, "items", items);
                else
                        json_decref(items);
                if (reply && r == LATCH_INCOMPLETE && latch_req_challenge(req)) {
                        json_t *ps = json_array();
                        for (size_t i = 0; i < latch_req_n_prompts(req); i++) {
                                const char *m;
                                int style = latch_req_prompt(req, i, &m);
                                json_array_append_new(ps, json_pack("{s:i, s:s}", "style", style, "message", m));
                        }
                        json_object_set_new(reply, "prompts", ps);
                        /* Claims go back once: those of the next call only. */
                        json_object_clear(latch_req_claims(req));
                        pending = TAKE_PTR(req);
                        pending_type = type;
                }
                send_or_die(reply);
        } else if (streq(call, "outcome") && json_is_integer(result)) {
                plugin_line_outcome(l, req, (int) json_integer_value(result));
                send_or_die(json_pack("{s:i}", "result", 0));
        } else {
                latch_req_free(req);
                return false;
        }
        latch_req_free(req);
        return true;
}

/* ---- start-up ---- */

static bool same_file(int a, int b) {
        struct stat sa, sb;
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* fd 0 is the protocol's alone: in inetd style fd 1 (and, with a unit's
 * default StandardError=inherit, fd 2) is the same socket, and a plugin's
 * stray printf() there would corrupt the stream. */
static int setup_fds(void) {
        struct stat st;
        int null;

        if (fstat(SOCKET_FD, &st) < 0 || !S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        if (same_file(SOCKET_FD, STDERR_FILENO)) {
                null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDERR_FILENO) < 0)
                        return -errno;
                safe_close(null);
        }
        if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                return -errno;
        /* Nothing else is ours: a socket unit may pass more. */
        (void) close_range(3, ~0U, 0);
        return 0;
}

static void help(void) {
        printf("latch-worker --plugin PLUGIN [ARG...]\n\n"
               "Runs one latch plugin line for latchd, speaking latchd's worker protocol on fd 0.\n"
               "Started by latchd, or per connection by a socket unit (Accept=yes) named in\n"
               "latchd.conf's [plugin.NAME] worker_socket=. ARGs, when given, fix the line's arguments.\n\n"
               "  --plugin PLUGIN   a plugin name (in %s) or an absolute path\n"
               "  --help            show this help\n"
               "  --version         show the version\n",
               LATCH_PLUGIN_DIR);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "plugin", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        struct plugin_host *h = NULL;
        struct plugin_line *l;
        const char *plugin = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        plugin = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("latch-worker %s\n", LATCH_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        if (!plugin) {
                fprintf(stderr, "latch-worker: --plugin is required (see --help)\n");
                return 2;
        }

        /* Before anything allocates through Jansson. */
        json_set_alloc_funcs(wipe_malloc, wipe_free);
        /* A worker's memory holds passwords: no core dumps, no ptrace by
         * other processes of the same user. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) signal(SIGPIPE, SIG_IGN);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");

        r = setup_fds();
        if (r < 0) {
                fprintf(stderr, "latch-worker: fd 0 must be the stream socket to latchd: %s\n", strerror(-r));
                return 2;
        }
        if (sodium_init() < 0) {
                fprintf(stderr, "latch-worker: cannot initialise libsodium\n");
                return EXIT_FAILURE;
        }

        r = plugin_host_new_kv(LATCH_PLUGIN_DIR, NULL, &h);
        if (r < 0) {
                fprintf(stderr, "latch-worker: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        plugin_host_set_log(h, forward_log, NULL);
        plugin_host_set_clock(h, worker_now, NULL);

        l = open_line(h, plugin, argc - optind, argv + optind);

        for (;;) {
                json_t *o = NULL;

                r = recv_frame(&o);
                if (r == 0)
                        break;
                if (r < 0 || !serve(l, o)) {
                        fprintf(stderr, "latch-worker: %s: bad message from latchd: %s\n", plugin_line_name(l),
                                r < 0 ? strerror(-r) : "not a request");
                        json_decref(o);
                        r = -EBADMSG;
                        break;
                }
                json_decref(o);
        }

        latch_req_free(TAKE_PTR(pending));
        plugin_line_close(l);
        plugin_host_free(h);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
