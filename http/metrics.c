/* SPDX-License-Identifier: MIT */
/*
 * /metrics: latchd's `stats` as OpenMetrics or Prometheus text, on a
 * listener of its own (metrics_listen: a Unix socket or a loopback port),
 * never on the login site's socket. One thread serves it; each scrape is
 * one `stats` request to latchd, which must admit latch-http's user
 * ([access] stats_groups in latchd.conf). latchd not answering gives
 * latch_up 0, still a 200, as exporters do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "macro.h"
#include "metrics.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);

/* Whether the scraper asked for OpenMetrics (Prometheus does, first). */
static bool wants_openmetrics(struct MHD_Connection *conn) {
        const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
        return accept && strstr(accept, "application/openmetrics-text");
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
        const struct http_config *c = cls;
        struct http_request r = { .config = c, .conn = conn, .method = method, .url = url };
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_free_ char *text = NULL, *stats_text = NULL;

        /* No body is read: the first call answers. */
        if (!streq(url, "/metrics"))
                return http_respond_text(&r, MHD_HTTP_NOT_FOUND, "not found; try /metrics");
        if (!streq(method, "GET") && !streq(method, "HEAD"))
                return http_respond_text(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");

        latch_client *client = http_client(c);
        json_t *stats = NULL;
        if (client) {
                int k = latch_stats(client, &reply);
                if (k == LATCH_OK && (stats_text = latch_reply_json(reply, NULL)))
                        stats = json_loads(stats_text, 0, NULL);
                else if (k != LATCH_OK)
                        fprintf(stderr, "latch-http: metrics: stats: %s (latch_up 0)\n", latch_error_name(k));
        }
        bool om = wants_openmetrics(conn);
        int k = metrics_render(stats, om ? METRICS_OPENMETRICS : METRICS_PROMETHEUS, &text);
        json_decref(stats);
        if (k < 0)
                return MHD_NO;
        return http_respond(&r, MHD_HTTP_OK,
                            http_response_new(om ? METRICS_CONTENT_TYPE_OPENMETRICS : METRICS_CONTENT_TYPE_PROMETHEUS,
                                              text));
}

static int listen_loopback(const char *value) {
        const char *colon = strrchr(value, ':');
        unsigned port = (unsigned) strtoul(colon + 1, NULL, 10);
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = {};
        socklen_t len;
        char host[64];
        _cleanup_close_ int fd = -1;

        snprintf(host, sizeof host, "%.*s", (int) (colon - value), value);
        if (host[0] == '[') {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons((uint16_t) port);
                a.in6.sin6_addr = in6addr_loopback;
                len = sizeof a.in6;
        } else {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons((uint16_t) port);
                if (inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
                        return -EINVAL;
                len = sizeof a.in;
        }
        fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, &a.sa, len) < 0 || listen(fd, 16) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int http_metrics_start(const struct http_config *c, struct MHD_Daemon **ret) {
        /* Mode 0660 for a Unix socket: the folder and the group say who
         * scrapes. */
        int fd = c->metrics_listen[0] == '/' ? http_listen_unix(c->metrics_listen, 0660)
                                             : listen_loopback(c->metrics_listen);
        if (fd < 0)
                return fd;
        struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                                on_metrics, (void *) c,
                                                MHD_OPTION_LISTEN_SOCKET, fd,
                                                MHD_OPTION_CONNECTION_LIMIT, (unsigned) 16,
                                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 16384,
                                                MHD_OPTION_END);
        if (!d) {
                close(fd);
                return -EIO;
        }
        *ret = d;
        return 0;
}
