/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the routes of latch-http share with the libmicrohttpd glue in
 * server.c: one request (its headers, its body) and the helpers that answer
 * it. Every function runs on the thread of the request's connection.
 */

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "latch/latch.h"

/* Request bodies (only POST /login and /logout read one) stop here. */
#define HTTP_BODY_MAX 8192

struct http_request {
        const struct http_config *config;
        struct MHD_Connection *conn;
        const char *method;
        const char *url;
        char *body;             /* may hold a password: wiped when the request ends */
        size_t body_len;
        bool body_too_large;
};

/* The latchd client of the calling thread, made on first use (each
 * connection has a thread of its own). NULL when out of memory. */
latch_client *http_client(const struct http_config *c);

/* A request header, borrowed from libmicrohttpd for the request's life. */
const char *http_header(const struct http_request *r, const char *name);

/* A query argument (decoded), borrowed as http_header(). */
const char *http_query(const struct http_request *r, const char *name);

/* The client's address from the trusted proxy header into buf, or NULL. */
const char *http_remote(const struct http_request *r, char *buf, size_t size);

/* A new response with `body` (copied; NULL: empty) of content type `type`,
 * carrying the headers every answer of latch-http carries (no caching,
 * nosniff). NULL when out of memory. */
struct MHD_Response *http_response_new(const char *type, const char *body);

/* Adds a header; false if libmicrohttpd refused it (e.g. a bad byte). */
bool http_response_header(struct MHD_Response *resp, const char *name, const char *value);

/* Queues `resp` (NULL: out of memory, answered by dropping the
 * connection) with `status`, and releases our reference. */
enum MHD_Result http_respond(struct http_request *r, unsigned status, struct MHD_Response *resp);

/* A plain-text answer. */
enum MHD_Result http_respond_text(struct http_request *r, unsigned status, const char *text);

/* The routes (routes.c). */
enum MHD_Result route_auth(struct http_request *r);
enum MHD_Result route_login_form(struct http_request *r);
enum MHD_Result route_login_redirect(struct http_request *r);
enum MHD_Result route_login(struct http_request *r);
enum MHD_Result route_logout(struct http_request *r);
enum MHD_Result route_token(struct http_request *r);
enum MHD_Result route_jwks(struct http_request *r);

/*
 * The login page (page.c): a new NUL-terminated HTML document (free(3)),
 * or NULL when out of memory. `rd` is the page to go to afterwards (put in
 * a hidden field), `csrf` the form's token, `error` a message shown above
 * the form (NULL: none), `user` the name to fill in (NULL: empty). Every
 * argument is escaped.
 */
char *http_login_page(const char *title, const char *rd, const char *csrf, const char *error, const char *user);

/* Binds and listens on a Unix socket at `path` (replacing a stale one)
 * with permissions `mode` (server.c). Returns the fd or a negative errno. */
int http_listen_unix(const char *path, mode_t mode);

/* /metrics (metrics.c): binds metrics_listen and serves it on a thread of
 * its own. Returns 0 and the daemon, which owns the listening socket (and
 * closes it in MHD_stop_daemon()), or a negative errno. */
int http_metrics_start(const struct http_config *c, struct MHD_Daemon **ret);

/* The server (server.c): starts libmicrohttpd on the listening socket
 * `fd` (taken over only on success). Returns 0 and the daemon in *ret, or
 * a negative errno. */
int http_server_start(const struct http_config *c, int fd, struct MHD_Daemon **ret);
