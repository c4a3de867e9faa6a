/* SPDX-License-Identifier: MIT */
/*
 * Two-factor authentication for a signed-in user, on latchd's `plugin` op
 * with the user's own session (docs/PROTOCOL.md, "Self-service"):
 *
 *   GET  /account/totp           whether it is on; a form to set it up, or to
 *                                turn it off, asking the password again
 *   POST /account/totp/enroll    the password (and what else the stack asks,
 *                                through step forms at /account/totp/enroll/step)
 *                                → the QR code, the key, and a field for the
 *                                first code
 *   POST /account/totp/confirm   the first code from the app: it is on
 *   POST /account/totp/remove    the password (and the code, at
 *                                /account/totp/remove/step) → it is off
 *
 * Each change re-authenticates in latchd (the service's auth stack runs
 * again: a wrong password counts like a failed login), so a session left
 * open on a shared computer cannot add or remove a factor. Every POST is
 * checked as the login form is: same origin, a form, the CSRF token
 * (double-submit). The key is only on the QR code page, an answer to a POST
 * (Cache-Control: no-store as every answer), wiped from memory once sent;
 * never in a URL or a log line.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "macro.h"
#include "policy.h"
#include "secret.h"

#define TITLE "Two-factor authentication"
#define ACCOUNT_PATH "/account/totp"
#define PASSWORD_MAX 4096
#define CODE_MAX 16

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);
static inline void latch_secret_freep(char **p) { latch_secret_free(*p); }

/* The signed-in user of a request: latchd's client, the session id and
 * the user name. */
struct account {
        latch_client *client; /* the thread's, borrowed */
        char *session;        /* latch_secret_free() */
        latch_reply *validate;
        const char *user;     /* in validate */
};

static void account_done(struct account *a) {
        latch_secret_free(a->session);
        latch_reply_free(a->validate);
        *a = (struct account){ 0 };
}

/* 0 and *a, or the answer already given in *ret: the login form for a
 * browser not signed in (coming back here afterwards), 503 when latchd
 * cannot say. */
static int account_get(struct http_request *r, struct account *a, enum MHD_Result *ret) {
        *a = (struct account){ 0 };
        int k = http_signed_in(r, &a->client, &a->session, &a->validate);
        if (k == 0) {
                a->user = latch_reply_string(a->validate, "user");
                if (a->user)
                        return 0;
                account_done(a);
                k = -EIO;
        }
        if (k == -ENOENT)
                *ret = http_respond_redirect(r, "/login?rd=%2Faccount%2Ftotp", NULL, NULL);
        else if (k == -EIO)
                *ret = http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the authentication service is unavailable");
        else
                *ret = MHD_NO;
        return k;
}

/* Appends printf-style text to *html (realloc'd); false when out of memory. */
/* Appends to *html. Its pieces may carry the enrollment key, so no copy is
 * left behind: the piece is formatted straight into an exact-size buffer
 * (vasprintf() and realloc() would free unwiped intermediate copies), and
 * the old buffer is wiped before it is freed. */
static _printf_(2, 3) bool append(char **html, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (k < 0)
                return false;
        size_t old = *html ? strlen(*html) : 0, add = (size_t) k;
        char *n = malloc(old + add + 1);
        if (!n)
                return false;
        if (old > 0)
                memcpy(n, *html, old);
        va_start(ap, fmt);
        k = vsnprintf(n + old, add + 1, fmt, ap);
        va_end(ap);
        if (*html) {
                sodium_memzero(*html, old);
                free(*html);
        }
        *html = n;
        return k >= 0;
}

static bool append_message(char **html, const char *error, const char *notice) {
        _cleanup_free_ char *e = error ? http_html_escape(error) : NULL;
        _cleanup_free_ char *n = notice ? http_html_escape(notice) : NULL;

        if ((error && !e) || (notice && !n))
                return false;
        return (!e || append(html, "<p class=\"error\" role=\"alert\" id=\"error\">%s</p>\n", e)) &&
               (!n || append(html, "<p class=\"info\" role=\"status\" id=\"notice\">%s</p>\n", n));
}

/* The account page: whether the factor is on, and the form that changes it. */
static char *status_page(const char *user, bool enrolled, const char *csrf, const char *error, const char *notice) {
        _cleanup_free_ char *u = http_html_escape(user);
        _cleanup_free_ char *c = http_html_escape(csrf);
        _cleanup_free_ char *body = NULL;

        if (!u || !c || !append(&body, "<p>Signed in as <strong id=\"user\">%s</strong>.</p>\n", u) ||
            !append_message(&body, error, notice))
                return NULL;
        if (enrolled ? !append(&body,
                               "<p id=\"status\" data-enrolled=\"yes\">Two-factor authentication is <strong>on</strong>: "
                               "signing in asks for a code from your authenticator app after your password.</p>\n"
                               "<form method=\"post\" action=\"/account/totp/remove\">\n"
                               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                               "<label for=\"password\">Your password, to turn it off</label>\n"
                               "<input id=\"password\" name=\"password\" type=\"password\" "
                               "autocomplete=\"current-password\" required>\n"
                               "<button type=\"submit\" id=\"remove\">Turn off two-factor authentication</button>\n"
                               "</form>\n",
                               c)
                     : !append(&body,
                               "<p id=\"status\" data-enrolled=\"no\">Two-factor authentication is <strong>off</strong>: "
                               "signing in asks only for your password.</p>\n"
                               "<p>Turn it on with an authenticator app on your phone (any app for time-based "
                               "one-time codes).</p>\n"
                               "<form method=\"post\" action=\"/account/totp/enroll\">\n"
                               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                               "<label for=\"password\">Your password, to set it up</label>\n"
                               "<input id=\"password\" name=\"password\" type=\"password\" "
                               "autocomplete=\"current-password\" required autofocus>\n"
                               "<button type=\"submit\" id=\"enroll\">Set up two-factor authentication</button>\n"
                               "</form>\n",
                               c))
                return NULL;
        if (!append(&body, "<form method=\"post\" action=\"/logout\">\n"
                           "<input type=\"hidden\" name=\"rd\" value=\"" ACCOUNT_PATH "\">\n"
                           "<button type=\"submit\" id=\"logout\" style=\"background:#555\">Sign out</button>\n"
                           "</form>\n"))
                return NULL;
        return http_page(TITLE, body);
}

/* The form for the first code, below the QR code and the key when given
 * (just enrolled), alone after a wrong code. */
static char *setup_page(const char *csrf, const char *uri, const char *secret, const char *error) {
        _cleanup_free_ char *c = http_html_escape(csrf);
        _cleanup_free_ char *body = NULL;
        char *page = NULL;

        if (!c || !append_message(&body, error, NULL))
                return NULL;
        if (uri && secret) {
                _cleanup_free_ char *svg = http_qr_svg(uri, "QR code to scan with your authenticator app");
                _cleanup_free_ char *eu = http_html_escape(uri), *es = http_html_escape(secret);
                bool ok = svg && eu && es &&
                          append(&body,
                                 "<p>1. Scan this QR code with your authenticator app.</p>\n%s\n"
                                 "<p>Or add it by hand (a time-based key):<br><code id=\"secret\" "
                                 "style=\"word-break:break-all;font-size:1.05rem\">%s</code></p>\n"
                                 "<details><summary>The setup link</summary><p><code id=\"uri\" "
                                 "style=\"word-break:break-all\">%s</code></p></details>\n",
                                 svg, es, eu);
                /* The key, three times over: none of it outlives the page. */
                if (svg)
                        sodium_memzero(svg, strlen(svg));
                if (eu)
                        sodium_memzero(eu, strlen(eu));
                if (es)
                        sodium_memzero(es, strlen(es));
                if (!ok)
                        goto fail;
        }
        if (!append(&body,
                    "<form method=\"post\" action=\"/account/totp/confirm\">\n"
                    "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                    "<label for=\"code\">%sThe code the app shows</label>\n"
                    "<input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" "
                    "autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus>\n"
                    "<button type=\"submit\" id=\"confirm\">Turn on</button>\n"
                    "</form>\n"
                    "<p>The set-up is void if no code confirms it within 10 minutes. "
                    "<a href=\"" ACCOUNT_PATH "\" id=\"cancel\">Cancel</a></p>\n",
                    c, uri ? "2. " : ""))
                goto fail;
        page = http_page("Set up two-factor authentication", body);
fail:
        if (body)
                sodium_memzero(body, strlen(body));
        return page;
}

/* The account page for a, with `status` and a message; the status comes
 * from latchd (never a secret). */
static enum MHD_Result respond_status(struct http_request *r, struct account *a, unsigned status, const char *error,
                                      const char *notice, const char *extra_cookie) {
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_free_ char *cookie = NULL, *page = NULL;
        bool enrolled = false;
        char csrf[64];

        int k = latch_plugin(a->client, "totp", "status", a->session, NULL, NULL, 0, &reply);
        if (k == LATCH_OK)
                (void) latch_reply_bool(reply, "enrolled", &enrolled);
        else if (k == LATCH_ERR_INVALID_SESSION)
                return http_respond_redirect(r, "/login?rd=%2Faccount%2Ftotp", NULL, extra_cookie);
        else {
                http_log_latchd_error("totp status", a->client, k);
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                         k == LATCH_ERR_BAD_REQUEST ? "two-factor authentication is not set up for "
                                                                      "this site"
                                                                    : "the authentication service is unavailable");
        }
        if (http_csrf_token(r, csrf, &cookie) < 0)
                return MHD_NO;
        page = status_page(a->user, enrolled, csrf, error, notice);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, status, page, cookie, extra_cookie);
}

enum MHD_Result route_account_totp(struct http_request *r) {
        struct account a;
        enum MHD_Result ret;

        if (account_get(r, &a, &ret) < 0)
                return ret;
        /* After a change (a redirect here): a fixed notice, never text from
         * the URL. */
        const char *done = http_query(r, "done");
        const char *notice = !done                ? NULL
                             : streq(done, "on")  ? "Two-factor authentication is on. Signing in now asks for a code."
                             : streq(done, "off") ? "Two-factor authentication is off."
                                                  : NULL;
        ret = respond_status(r, &a, MHD_HTTP_OK, NULL, notice, NULL);
        account_done(&a);
        return ret;
}

/* The common checks of a POST: same origin, a form, the CSRF token, and a
 * signed-in browser. 0 and *a, or the answer given in *ret. */
static int post_begin(struct http_request *r, struct account *a, enum MHD_Result *ret) {
        if (!http_origin_ok(r)) {
                *ret = http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
                return -EPERM;
        }
        if (!http_is_form(r)) {
                *ret = http_respond_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "expected a form");
                return -EINVAL;
        }
        int k = account_get(r, a, ret);
        if (k < 0)
                return k;
        if (!http_csrf_ok(r)) {
                *ret = respond_status(r, a, MHD_HTTP_FORBIDDEN, "This form has expired. Please try again.", NULL, NULL);
                account_done(a);
                return -EPERM;
        }
        return 0;
}

static void log_refused(const struct http_request *r, const char *what, const char *user) {
        char quoted[1040], now[32], remote_buf[64];
        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);

        /* remote passed http_remote_from_header(): address characters only. */
        fprintf(stderr, "latch-http: %s refused for user %s from %s at %s\n", what,
                user ? http_log_quote(user, quoted, sizeof quoted) : "(the signed-in user)",
                remote ? remote : "(unknown)", http_log_time(time(NULL), now, sizeof now));
}

/* The QR code page for latchd's answer to `enroll`. */
static enum MHD_Result respond_setup(struct http_request *r, const latch_reply *reply, const char *extra_cookie) {
        const char *uri = latch_reply_string(reply, "uri"), *secret = latch_reply_string(reply, "secret");
        _cleanup_free_ char *cookie = NULL;
        char csrf[64];

        if (!uri || !secret)
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "bad answer from latchd");
        if (http_csrf_token(r, csrf, &cookie) < 0)
                return MHD_NO;
        char *page = setup_page(csrf, uri, secret, NULL);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_secret_page(r, MHD_HTTP_OK, page, cookie, extra_cookie);
}

/* ---- the re-authentication's further steps ---- */

static enum MHD_Result flow_refused(struct http_request *r, const char *rd, bool new_password, const char *clear) {
        struct account a;
        enum MHD_Result ret;

        log_refused(r, "two-factor change (a later step)", NULL);
        if (account_get(r, &a, &ret) < 0)
                return ret;
        ret = respond_status(r, &a, MHD_HTTP_UNAUTHORIZED, "A wrong password or code: nothing was changed.", NULL,
                             clear);
        account_done(&a);
        return ret;
}

static enum MHD_Result flow_unavailable(struct http_request *r, const char *rd, const char *clear) {
        struct MHD_Response *resp =
                http_response_new("text/plain; charset=utf-8", "the authentication service is unavailable\n");
        if (resp && clear && !http_response_header(resp, "Set-Cookie", clear)) {
                MHD_destroy_response(resp);
                resp = NULL;
        }
        return http_respond(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
}

/* latchd, or the plugin at the end, does not allow the change (the
 * plugin said EPERM; latchd logged why): as change() answers it. */
static enum MHD_Result flow_forbidden(struct http_request *r, const char *rd, const char *clear) {
        struct account a;
        enum MHD_Result ret;

        if (account_get(r, &a, &ret) < 0)
                return ret;
        ret = respond_status(r, &a, MHD_HTTP_FORBIDDEN, "This change is not possible for your account.", NULL, clear);
        account_done(&a);
        return ret;
}

static enum MHD_Result enroll_done(struct http_request *r, const latch_reply *reply, const char *rd,
                                   const char *clear) {
        return respond_setup(r, reply, clear);
}

static enum MHD_Result remove_done(struct http_request *r, const latch_reply *reply, const char *rd,
                                   const char *clear) {
        return http_respond_redirect(r, ACCOUNT_PATH "?done=off", clear, NULL);
}

static const struct http_flow flow_enroll = {
        .purpose = "totp-enroll",
        .step_path = "/account/totp/enroll/step",
        .start_path = ACCOUNT_PATH,
        .title = TITLE,
        .step_name = "step",
        .done = enroll_done,
        .refused = flow_refused,
        .unavailable = flow_unavailable,
        .forbidden = flow_forbidden,
};

static const struct http_flow flow_remove = {
        .purpose = "totp-remove",
        .step_path = "/account/totp/remove/step",
        .start_path = ACCOUNT_PATH,
        .title = TITLE,
        .step_name = "step",
        .done = remove_done,
        .refused = flow_refused,
        .unavailable = flow_unavailable,
        .forbidden = flow_forbidden,
};

/* A step of a change: only for the session that started it (its step
 * tag is bound to that session), so the browser must still be signed in. */
static enum MHD_Result step_post(struct http_request *r, const struct http_flow *flow) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *validate = NULL;
        _cleanup_free_ char *rd = NULL;
        latch_client *client = NULL;

        /* Before the session: a cross-origin post slides no expiry. */
        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        if (r->body && http_is_form(r))
                (void) http_form_get(r->body, r->body_len, "rd", &rd);
        /* Signed out since the step form (another tab, an expiry): the
         * login form, as for the page itself, and not a respond that
         * latchd could only refuse. */
        int k = http_signed_in(r, &client, &session, &validate);
        if (k == -ENOENT)
                return http_step_sign_in(r, flow, rd);
        if (k == -EIO)
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the authentication service is unavailable");
        if (k < 0)
                return MHD_NO;
        return http_step_post(r, flow, session);
}

enum MHD_Result route_account_totp_enroll_step(struct http_request *r) {
        return step_post(r, &flow_enroll);
}

enum MHD_Result route_account_totp_enroll_step_form(struct http_request *r) {
        return http_step_get(r, &flow_enroll);
}

enum MHD_Result route_account_totp_remove_step(struct http_request *r) {
        return step_post(r, &flow_remove);
}

enum MHD_Result route_account_totp_remove_step_form(struct http_request *r) {
        return http_step_get(r, &flow_remove);
}

/* ---- the changes ---- */

/* enroll or remove: the password re-authenticates in latchd. */
static enum MHD_Result change(struct http_request *r, const char *action, const struct http_flow *flow) {
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_secret_ char *password = NULL;
        struct account a;
        enum MHD_Result ret;
        char remote_buf[64];

        if (post_begin(r, &a, &ret) < 0)
                return ret;
        if (http_form_get(r->body ? r->body : "", r->body_len, "password", &password) < 0 || !*password ||
            strlen(password) > PASSWORD_MAX) {
                ret = respond_status(r, &a, MHD_HTTP_BAD_REQUEST, "Please enter your password.", NULL, NULL);
                goto out;
        }
        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);
        const char *args[] = { "remote", remote };
        int k = latch_plugin(a.client, "totp", action, a.session, password, args, remote ? 1 : 0, &reply);
        sodium_memzero(password, strlen(password));
        if (k == LATCH_OK)
                ret = streq(action, "enroll") ? respond_setup(r, reply, NULL)
                                              : http_respond_redirect(r, ACCOUNT_PATH "?done=off", NULL, NULL);
        else if (k == LATCH_ERR_CHALLENGE)
                ret = http_respond_challenge(r, a.client, flow, a.session, ACCOUNT_PATH);
        else if (k == LATCH_ERR_DENIED) {
                log_refused(r, streq(action, "enroll") ? "two-factor set-up" : "two-factor removal", a.user);
                ret = respond_status(r, &a, MHD_HTTP_UNAUTHORIZED, "Wrong password: nothing was changed.", NULL, NULL);
        } else if (k == LATCH_ERR_INVALID_SESSION)
                ret = http_respond_redirect(r, "/login?rd=%2Faccount%2Ftotp", NULL, NULL);
        else {
                http_log_latchd_error(streq(action, "enroll") ? "totp enroll" : "totp remove", a.client, k);
                ret = respond_status(r, &a,
                                     k == LATCH_ERR_FORBIDDEN || k == LATCH_ERR_BAD_REQUEST
                                             ? MHD_HTTP_FORBIDDEN
                                             : MHD_HTTP_SERVICE_UNAVAILABLE,
                                     k == LATCH_ERR_FORBIDDEN || k == LATCH_ERR_BAD_REQUEST
                                             ? "This change is not possible for your account."
                                             : "Not possible right now. Please try again later.",
                                     NULL, NULL);
        }
out:
        account_done(&a);
        return ret;
}

enum MHD_Result route_account_totp_enroll(struct http_request *r) {
        return change(r, "enroll", &flow_enroll);
}

enum MHD_Result route_account_totp_remove(struct http_request *r) {
        return change(r, "remove", &flow_remove);
}

static bool code_ok(const char *code) {
        size_t n = strlen(code);
        return n >= 6 && n <= 8 && strspn(code, "0123456789") == n;
}

/* A page with the code field again (no key: the app has it already). */
static enum MHD_Result respond_code_again(struct http_request *r, unsigned status, const char *error) {
        _cleanup_free_ char *cookie = NULL;
        char csrf[64];

        if (http_csrf_token(r, csrf, &cookie) < 0)
                return MHD_NO;
        char *page = setup_page(csrf, NULL, NULL, error);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_secret_page(r, status, page, cookie, NULL);
}

enum MHD_Result route_account_totp_confirm(struct http_request *r) {
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_secret_ char *code = NULL;
        struct account a;
        enum MHD_Result ret;

        if (post_begin(r, &a, &ret) < 0)
                return ret;
        /* People copy codes with spaces ("123 456"). */
        if (http_form_get(r->body ? r->body : "", r->body_len, "code", &code) == 0) {
                char *o = code;
                for (const char *p = code; *p; p++)
                        if (*p != ' ')
                                *o++ = *p;
                *o = '\0';
        }
        if (!code || !code_ok(code)) {
                ret = respond_code_again(r, MHD_HTTP_BAD_REQUEST, "Enter the code as the app shows it (6 or 8 digits).");
                goto out;
        }
        int k = latch_plugin(a.client, "totp", "confirm", a.session, NULL, (const char *const[]){ "code", code }, 1,
                             &reply);
        if (k == LATCH_OK)
                ret = http_respond_redirect(r, ACCOUNT_PATH "?done=on", NULL, NULL);
        else if (k == LATCH_ERR_DENIED) {
                log_refused(r, "two-factor confirmation (a wrong code)", a.user);
                ret = respond_code_again(r, MHD_HTTP_BAD_REQUEST,
                                         "That code is not right. Check the app's clock, wait for the next code and "
                                         "try again.");
        } else if (k == LATCH_ERR_BAD_REQUEST)
                /* Nothing pending: expired, or confirmed in another tab. */
                ret = respond_status(r, &a, MHD_HTTP_BAD_REQUEST,
                                     "The set-up has expired or is already done. If it is off, please start again.",
                                     NULL, NULL);
        else if (k == LATCH_ERR_INVALID_SESSION)
                ret = http_respond_redirect(r, "/login?rd=%2Faccount%2Ftotp", NULL, NULL);
        else {
                http_log_latchd_error("totp confirm", a.client, k);
                ret = respond_status(r, &a, MHD_HTTP_SERVICE_UNAVAILABLE,
                                     "Not possible right now. Please try again later.", NULL, NULL);
        }
out:
        account_done(&a);
        return ret;
}
