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
#include <stdint.h>
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
        const char *user;       /* the signed-in user, once a route checked the
                                 * session (borrowed from its validate answer) */
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

/* As http_response_new(), for a body that holds a secret (a page showing an
 * enrollment's key): `body` is taken over (freed also on failure) and wiped
 * when libmicrohttpd is done with it. */
struct MHD_Response *http_response_new_secret(const char *type, char *body);

/* Adds a header; false if libmicrohttpd refused it (e.g. a bad byte). */
bool http_response_header(struct MHD_Response *resp, const char *name, const char *value);

/* Queues `resp` (NULL: out of memory, answered by dropping the
 * connection) with `status`, and releases our reference. */
enum MHD_Result http_respond(struct http_request *r, unsigned status, struct MHD_Response *resp);

/* A plain-text answer. */
enum MHD_Result http_respond_text(struct http_request *r, unsigned status, const char *text);

/* Shared by the login routes (routes.c). */
/* Whether a state-changing request comes from this site (Origin/Referer). */
bool http_origin_ok(const struct http_request *r);
/* Whether the body is application/x-www-form-urlencoded. */
bool http_is_form(const struct http_request *r);
/* Whether the form's csrf field equals the CSRF cookie (constant time). */
bool http_csrf_ok(const struct http_request *r);
/* rd when it is a path on this site, else "/". */
const char *http_redirect_target(const char *rd);
/* Logs a failed latchd call (its message quoted). */
void http_log_latchd_error(const char *what, latch_client *client, int err);
/* The form's CSRF token (the browser's, or a new one) into csrf (wiped by
 * the caller), and its Set-Cookie value in *ret_cookie. 0 or -ENOMEM. */
int http_csrf_token(const struct http_request *r, char csrf[static 64], char **ret_cookie);
/* An HTML page with the login pages' headers (CSP, no framing) and up to
 * two Set-Cookie values (NULL: none). */
enum MHD_Result http_respond_page(struct http_request *r, unsigned status, const char *page, const char *cookie1,
                                  const char *cookie2);
/* As http_respond_page(), for a page that holds a secret: `page` is taken
 * over and wiped once sent (see http_response_new_secret()). */
enum MHD_Result http_respond_secret_page(struct http_request *r, unsigned status, char *page, const char *cookie1,
                                         const char *cookie2);
/* The login form (a fresh CSRF cookie, plus extra_cookie unless NULL). */
enum MHD_Result http_respond_login_form(struct http_request *r, unsigned status, const char *rd, const char *error,
                                        const char *user, const char *extra_cookie);
/* A 303 to `location`, with up to two Set-Cookie values. */
enum MHD_Result http_respond_redirect(struct http_request *r, const char *location, const char *cookie1,
                                      const char *cookie2);
/* The end of a login: the session cookie from latchd's `reply` (plus
 * extra_cookie), and a 303 to rd (when safe, else "/"). */
enum MHD_Result http_respond_signed_in(struct http_request *r, const latch_reply *reply, const char *rd,
                                       const char *extra_cookie);

/*
 * The signed-in browser (routes.c): the session id of its cookie and
 * latchd's `validate` answer for it, checked against this service. Returns
 * 0 with *ret_client (the thread's, borrowed), *ret_session
 * (latch_secret_free()) and *ret_validate (latch_reply_free()); -ENOENT
 * when there is no session cookie or latchd refuses it; -ENOMEM; -EIO when
 * latchd cannot answer (logged).
 */
int http_signed_in(struct http_request *r, latch_client **ret_client, char **ret_session,
                   latch_reply **ret_validate);

/*
 * Conversations (converse.c). A flow is what a sequence of step forms is
 * for: a login (POST /login, then /login/step) or a password change (POST
 * /password, then /password/step). It says where its forms post, where
 * "start again" leads, and how an answer of latchd ends it. `clear` is the
 * Set-Cookie value that clears the step cookie; `new_password` says
 * whether the answered step asked for a new password.
 */
struct http_flow {
        const char *purpose;    /* bound into each step form's tag */
        const char *step_path;  /* "/login/step": where the step forms post */
        const char *start_path; /* "/login": the page that starts it again */
        const char *title;      /* of every page; NULL: the configured title,
                                 * or HTTP_PASSWORD_TITLE for a step that asks
                                 * a new password */
        const char *new_password_note; /* above a step asking a new password */
        const char *step_name;  /* "sign-in step": in "This ... has expired" */
        /* latchd's result. */
        enum MHD_Result (*done)(struct http_request *r, const latch_reply *reply, const char *rd,
                                const char *clear);
        /* latchd refused (denied). */
        enum MHD_Result (*refused)(struct http_request *r, const char *rd, bool new_password, const char *clear);
        /* latchd failed or answered nonsense (already logged). */
        enum MHD_Result (*unavailable)(struct http_request *r, const char *rd, const char *clear);
        /* latchd does not allow it (forbidden); NULL: "start again". */
        enum MHD_Result (*forbidden)(struct http_request *r, const char *rd, const char *clear);
};

extern const struct http_flow http_flow_login;
extern const struct http_flow http_flow_passwd;

/* Makes the key of the step tags (random, one per process; a second call
 * keeps it). Call after sodium_init() and before the server starts: every
 * step tag needs it. 0 or -ENOMEM. */
int http_converse_init(void);

/* The step form for the challenge that the last call on `client` failed
 * with (LATCH_ERR_CHALLENGE), which keeps the conversation id in an
 * HttpOnly, SameSite=Strict cookie. `session` is the session id the flow
 * acts for (the signed-in user's, as validated by the route; NULL for a
 * login): the form's step tag is bound to it, so that only the same
 * session can answer the step. */
enum MHD_Result http_respond_challenge(struct http_request *r, latch_client *client, const struct http_flow *flow,
                                       const char *session, const char *rd);
/* POST of a step form of `flow`: its answers to latchd, then the next step
 * or the flow's end. `session` as for http_respond_challenge(): the route
 * has validated it; a form made for another session is "start again". */
enum MHD_Result http_step_post(struct http_request *r, const struct http_flow *flow, const char *session);
/* A step of `flow` whose session is gone: 303 to the login form, which
 * leads back to the flow's start page for rd, clearing the step cookie. */
enum MHD_Result http_step_sign_in(struct http_request *r, const struct http_flow *flow, const char *rd);
/* GET of a step form's address (a reload, a bookmark): "start again". */
enum MHD_Result http_step_get(struct http_request *r, const struct http_flow *flow);

/* The routes (routes.c, converse.c, password.c). */
enum MHD_Result route_login_step_form(struct http_request *r);
enum MHD_Result route_login_step(struct http_request *r);
enum MHD_Result route_password_form(struct http_request *r);
enum MHD_Result route_password(struct http_request *r);
enum MHD_Result route_password_step_form(struct http_request *r);
enum MHD_Result route_password_step(struct http_request *r);
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

/* One prompt of a step page: its style (`secret`, `text`, `info`,
 * `error`) and message, from latchd. */
struct http_prompt {
        const char *style;
        const char *message;
};

/* The form of one step of a conversation. */
struct http_step_form {
        const char *title;
        const char *action;     /* where it posts: "/login/step" */
        const char *start_path; /* its "Start again" link: "/login" */
        const char *note;       /* shown above the prompts, or NULL */
        const char *rd;
        const char *csrf;
        const char *step;       /* the tag binding it to its conversation */
};

/*
 * A step of a conversation (page.c): each secret/text prompt is a labelled
 * field named answer0, answer1, ... (in order), each info/error prompt a
 * paragraph. `step` is the hidden tag that binds the form to its
 * conversation (never the conversation id). New string or NULL.
 */
char *http_step_page(const struct http_step_form *f, const struct http_prompt *prompts, size_t n_prompts);

/* The page for a step that can no longer be used (expired, used, from
 * another tab): says so (`what`: "sign-in step"), with a link back to
 * start_path for rd. New string or NULL. */
char *http_step_expired_page(const char *title, const char *what, const char *start_path, const char *rd);

/* A page of latch-http's look (page.c): `title` (escaped) as its title and
 * heading, then `body`, HTML as given (the caller escaped what it holds).
 * New string or NULL. */
char *http_page(const char *title, const char *body);

/* `text` as a QR code in an inline SVG element (qrsvg.c, libqrencode), with
 * `label` (escaped) as its accessible name. New string (it holds `text` in
 * another form: wipe it when `text` is a secret) or NULL. */
char *http_qr_svg(const char *text, const char *label);

/* The two-factor authentication pages of a signed-in user (account.c). */
enum MHD_Result route_account_totp(struct http_request *r);
enum MHD_Result route_account_totp_enroll(struct http_request *r);
enum MHD_Result route_account_totp_enroll_step(struct http_request *r);
enum MHD_Result route_account_totp_enroll_step_form(struct http_request *r);
enum MHD_Result route_account_totp_confirm(struct http_request *r);
enum MHD_Result route_account_totp_remove(struct http_request *r);
enum MHD_Result route_account_totp_remove_step(struct http_request *r);
enum MHD_Result route_account_totp_remove_step_form(struct http_request *r);

/* The title of the password pages and of a login step asking a new one. */
#define HTTP_PASSWORD_TITLE "Change your password"

/* The first page of a password change (page.c): who is signed in (user
 * NULL: not said), `error` (NULL: none), a button that starts the change
 * (a form posting to /password) unless !can_start, and a link back to rd.
 * New string or NULL. */
char *http_password_page(const char *user, const char *rd, const char *csrf, const char *error, bool can_start);

/* The last page of a password change: done, how many other sessions were
 * signed out, and a link on to rd. New string or NULL. */
char *http_password_done_page(const char *user, const char *rd, int64_t revoked);

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
