/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * latch-http's settings: defaults, the INI file (inih), and the command-line
 * overrides applied on top.
 */

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_ORIGINS 16

struct http_config {
        char *listen;           /* Unix socket to bind when not socket-activated */
        char *latchd_socket;    /* NULL: liblatch's default ($LATCH_SOCKET, /run/latch/latchd.sock) */
        char *service;          /* latchd service for login and validate */
        char *cookie_name;      /* the session cookie */
        char *csrf_cookie_name; /* the login form's double-submit cookie: cookie_name + "-csrf" */
        char *step_cookie_name; /* a waiting conversation's id: cookie_name + "-step" */
        bool token_on_auth;     /* GET /auth adds Authorization: Bearer <fresh JWT> */
        char *proxy_header;     /* trusted header with the client's address, NULL for none */
        char *origins[HTTP_MAX_ORIGINS]; /* allowed Origin values; none: the request's own Host */
        size_t n_origins;
        char *title;            /* heading of the login form */
        unsigned max_connections;
        char *metrics_listen;   /* NULL: no /metrics; "/path" or a loopback "HOST:PORT" */
};

/* Fills `c` with the defaults. Returns 0 or -ENOMEM. */
int http_config_init(struct http_config *c);

/*
 * Reads the INI file at `path` over the current values (section [http]).
 * Syntax errors, unknown sections and keys, and bad values are errors:
 * every one is printed to stderr as FILE:LINE, and reading goes on to the
 * end of the file.
 * With `missing_ok` a file that does not exist is no error. Returns 0,
 * -EINVAL (a problem was printed), -ENOENT or -ENOMEM.
 */
int http_config_load(struct http_config *c, const char *path, bool missing_ok);

/* Sets one key as in the file ("listen", "service", ...). Returns 0, -ENOENT
 * (unknown key), -EINVAL (bad value) or -ENOMEM. */
int http_config_set(struct http_config *c, const char *key, const char *value);

/* Whether `value` names a place /metrics may listen: an absolute Unix
 * socket path, or "127.x.y.z:PORT" / "[::1]:PORT" (loopback only: the
 * counters are for the admin's scraper, never the public site). */
bool http_metrics_listen_is_valid(const char *value);

/* Frees every string; `c` may then be initialized again. */
void http_config_done(struct http_config *c);
