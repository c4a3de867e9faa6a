/* SPDX-License-Identifier: MIT */
/*
 * latch-http: the HTTP front of latch for a reverse proxy (nginx
 * auth_request), outside the privileged daemon. It listens on a Unix socket
 * (socket-activated by latch-http.socket, or bound by itself) and talks to
 * latchd only through liblatch.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "macro.h"
#include "secret.h"

#define DEFAULT_CONFIG "/etc/latch/http.conf"

static void help(void) {
        printf("Usage: latch-http [OPTION...]\n"
               "The HTTP front of latch for nginx auth_request.\n\n"
               "  --config FILE     settings (default " DEFAULT_CONFIG ", optional)\n"
               "  --listen PATH     Unix socket to bind when not socket-activated\n"
               "  --socket PATH     latchd's socket\n"
               "  --service NAME    latchd service for login and validate\n"
               "  --check-config    read the settings and exit 0 (good) or 1\n"
               "  --version         print the version\n"
               "  --help            this text\n");
}


/* Stops the /metrics listener (NULL: none) and removes its socket. */
static void metrics_stop(const struct http_config *c, struct MHD_Daemon *metrics) {
        if (!metrics)
                return;
        MHD_stop_daemon(metrics);
        if (c->metrics_listen[0] == '/')
                (void) unlink(c->metrics_listen);
}

int main(int argc, char **argv) {
        enum { ARG_CONFIG = 0x100, ARG_LISTEN, ARG_SOCKET, ARG_SERVICE, ARG_CHECK, ARG_VERSION, ARG_HELP };
        static const struct option options[] = {
                { "config", required_argument, NULL, ARG_CONFIG },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "service", required_argument, NULL, ARG_SERVICE },
                { "check-config", no_argument, NULL, ARG_CHECK },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        const char *config_path = NULL, *listen_path = NULL, *socket_path = NULL, *service = NULL;
        bool check = false;
        struct http_config c;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_CONFIG: config_path = optarg; break;
                case ARG_LISTEN: listen_path = optarg; break;
                case ARG_SOCKET: socket_path = optarg; break;
                case ARG_SERVICE: service = optarg; break;
                case ARG_CHECK: check = true; break;
                case ARG_VERSION: printf("latch-http %s\n", LATCH_VERSION); return 0;
                case ARG_HELP: help(); return 0;
                default: return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "latch-http: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        if (sodium_init() < 0) {
                fprintf(stderr, "latch-http: libsodium failed to initialise\n");
                return 1;
        }
        /* The step tags' key, before any request's thread can need it. */
        if (http_converse_init() < 0) {
                fprintf(stderr, "latch-http: out of memory\n");
                return 1;
        }
        /* Jansson's copies of requests and answers are wiped when freed. */
        json_set_alloc_funcs(malloc, secret_json_free);

        if (http_config_init(&c) < 0)
                return 1;
        r = http_config_load(&c, config_path ? config_path : DEFAULT_CONFIG, !config_path);
        /* The command line wins over the file. */
        const struct { const char *key, *value; } overrides[] = {
                { "listen", listen_path }, { "latchd_socket", socket_path }, { "service", service },
        };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(overrides); i++)
                if (overrides[i].value && http_config_set(&c, overrides[i].key, overrides[i].value) < 0) {
                        fprintf(stderr, "latch-http: bad value for --%s\n",
                                streq(overrides[i].key, "latchd_socket") ? "socket" : overrides[i].key);
                        r = -EINVAL;
                }
        if (r < 0 || check) {
                http_config_done(&c);
                return r < 0 ? 1 : 0;
        }

        /* Signals are taken with sigwait() below; every thread libmicrohttpd
         * starts inherits the mask. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* The /metrics listener first: once the main socket accepts, all of
         * latch-http is up (what a check on that socket, or a test, takes
         * for ready, as systemd takes READY=1). */
        struct MHD_Daemon *metrics = NULL;
        if (c.metrics_listen) {
                r = http_metrics_start(&c, &metrics);
                if (r < 0) {
                        fprintf(stderr, "latch-http: cannot serve /metrics on %s: %s\n", c.metrics_listen,
                                strerror(-r));
                        http_config_done(&c);
                        return 1;
                }
                fprintf(stderr, "latch-http: /metrics on %s\n", c.metrics_listen);
        }

        int fd;
        bool bound = false;
        int n = sd_listen_fds(true);
        if (n > 1) {
                fprintf(stderr, "latch-http: expected one socket from systemd, got %d\n", n);
                metrics_stop(&c, metrics);
                return 1;
        }
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0) {
                        fprintf(stderr, "latch-http: the socket from systemd is not a listening Unix stream socket\n");
                        metrics_stop(&c, metrics);
                        return 1;
                }
        } else {
                /* The proxy (nginx's workers) connects as another user;
                 * the folder's permissions say who may reach the socket. */
                fd = http_listen_unix(c.listen, 0666);
                if (fd < 0) {
                        fprintf(stderr, "latch-http: cannot listen on %s: %s\n", c.listen, strerror(-fd));
                        metrics_stop(&c, metrics);
                        return 1;
                }
                bound = true;
        }

        struct MHD_Daemon *mhd = NULL;
        r = http_server_start(&c, fd, &mhd);
        if (r < 0) {
                fprintf(stderr, "latch-http: cannot start the HTTP server\n");
                metrics_stop(&c, metrics);
                return 1;
        }
        fprintf(stderr, "latch-http: listening on %s (service '%s')\n", bound ? c.listen : "the socket from systemd",
                c.service);

        (void) sd_notify(false, "READY=1\nSTATUS=serving");

        for (;;) {
                int sig;
                if (sigwait(&mask, &sig) != 0)
                        continue;
                /* No state to reload: SIGHUP is taken and ignored so that a
                 * stray one does not kill the process. */
                if (sig != SIGHUP)
                        break;
        }
        (void) sd_notify(false, "STOPPING=1");
        /* MHD_stop_daemon() closes the listening sockets, which the daemons
         * own: closing them again here could close a descriptor another
         * thread has opened meanwhile under the same number. */
        metrics_stop(&c, metrics);
        MHD_stop_daemon(mhd);
        if (bound)
                (void) unlink(c.listen);
        http_config_done(&c);
        return 0;
}
