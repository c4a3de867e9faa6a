/* SPDX-License-Identifier: MIT */
/*
 * A signed-in user changes the password (latchd's `passwd` op, run for the
 * session's user and service, with the session itself so that latchd keeps
 * it while it signs the user's other sessions out):
 *
 *   GET  /password       who is signed in, and a button to start
 *   POST /password       starts the change; its first step form (converse.c)
 *   POST /password/step  the answers of one step (current password, new
 *                        password, its repetition, as the service's
 *                        `password` stack asks); the next step, the
 *                        refusal, or "password changed"
 *   GET  /password/step  "start again"
 *
 * A browser that is not signed in goes to the login form, which comes back
 * here. Each step is checked as a login step is (Origin, CSRF token, step
 * cookie, step tag), and the session again: the step tag is bound to the
 * session that started the change, so that no other session (another
 * user's, after a sign-out and a sign-in in the same browser) can finish
 * it.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "macro.h"
#include "policy.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);
static inline void latch_secret_freep(char **p) { latch_secret_free(*p); }

#define PASSWORD_PATH "/password"

/* 303 to the login form, which returns to the password page for rd. */
static enum MHD_Result respond_sign_in_first(struct http_request *r, const char *rd) {
        _cleanup_free_ char *back = NULL, *rd_q = NULL, *back_q = NULL, *location = NULL;

        rd_q = http_query_encode(http_redirect_target(rd));
        if (!rd_q || asprintf(&back, PASSWORD_PATH "?rd=%s", rd_q) < 0)
                return MHD_NO;
        back_q = http_query_encode(back);
        if (!back_q || asprintf(&location, "/login?rd=%s", back_q) < 0)
                return MHD_NO;
        return http_respond_redirect(r, location, NULL, NULL);
}

/* The password page with `error` (NULL: none) and the start button unless
 * !can_start, plus extra_cookie unless NULL. */
static enum MHD_Result respond_password_page(struct http_request *r, unsigned status, const char *user,
                                             const char *rd, const char *error, bool can_start,
                                             const char *extra_cookie) {
        _cleanup_free_ char *csrf_cookie = NULL, *page = NULL;
        char csrf[64];

        if (http_csrf_token(r, csrf, &csrf_cookie) < 0)
                return MHD_NO;
        page = http_password_page(user, http_redirect_target(rd), csrf, error, can_start);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, status, page, csrf_cookie, extra_cookie);
}

static enum MHD_Result respond_unavailable(struct http_request *r, const char *user, const char *rd,
                                           const char *clear) {
        return respond_password_page(r, MHD_HTTP_SERVICE_UNAVAILABLE, user, rd,
                                     "Changing the password is not possible right now. Please try again later.",
                                     true, clear);
}

/* The signed-in user for the password routes; NULL, with *ret the answer
 * given, when there is none (for a step, the sign-in clears the step
 * cookie: its conversation belongs to a session that is gone). */
static const char *signed_in_user(struct http_request *r, const char *rd, bool step, latch_client **ret_client,
                                  char **ret_session, latch_reply **ret_validate, enum MHD_Result *ret) {
        int k = http_signed_in(r, ret_client, ret_session, ret_validate);
        if (k == -ENOENT)
                *ret = step ? http_step_sign_in(r, &http_flow_passwd, rd) : respond_sign_in_first(r, rd);
        else if (k == -EIO)
                *ret = respond_unavailable(r, NULL, rd, NULL);
        else if (k < 0)
                *ret = MHD_NO;
        if (k < 0)
                return NULL;
        const char *user = latch_reply_string(*ret_validate, "user");
        if (!user) {
                *ret = respond_unavailable(r, NULL, rd, NULL);
                return NULL;
        }
        return user;
}

enum MHD_Result route_password_form(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *validate = NULL;
        latch_client *client = NULL;
        enum MHD_Result ret;
        const char *rd = http_query(r, "rd");

        const char *user = signed_in_user(r, rd, false, &client, &session, &validate, &ret);
        if (!user)
                return ret;
        return respond_password_page(r, MHD_HTTP_OK, user, rd, NULL, true, NULL);
}

/* Logs a refused change: the user is the session's, not a client's
 * choice, but a name is quoted all the same. */
static void log_refused(struct http_request *r, const char *user) {
        char quoted[1024], now[32], remote_buf[64];
        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);

        /* remote passed http_remote_from_header(): address characters only. */
        fprintf(stderr, "latch-http: password change refused for user %s from %s at %s\n",
                http_log_quote(user, quoted, sizeof quoted), remote ? remote : "(unknown)",
                http_log_time(time(NULL), now, sizeof now));
}

#define REFUSED_MESSAGE \
        "The password was not changed: the current password was wrong, or the new one was not accepted."

enum MHD_Result route_password(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *validate = NULL, *reply = NULL;
        _cleanup_free_ char *rd = NULL;
        latch_client *client = NULL;
        enum MHD_Result ret;
        char remote_buf[64];

        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        if (!http_is_form(r))
                return http_respond_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "expected a form");
        (void) http_form_get(r->body ? r->body : "", r->body_len, "rd", &rd);
        const char *user = signed_in_user(r, rd, false, &client, &session, &validate, &ret);
        if (!user)
                return ret;
        if (!http_csrf_ok(r))
                return respond_password_page(r, MHD_HTTP_FORBIDDEN, user, rd,
                                             "This form has expired. Please try again.", true, NULL);

        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);
        int k = latch_passwd(client, r->config->service, user, remote, session, &reply);
        if (k == LATCH_ERR_CHALLENGE)
                return http_respond_challenge(r, client, &http_flow_passwd, session, rd);
        if (k == LATCH_OK)
                return http_flow_passwd.done(r, reply, rd, NULL);
        if (k == LATCH_ERR_DENIED) {
                log_refused(r, user);
                return respond_password_page(r, MHD_HTTP_UNAUTHORIZED, user, rd, REFUSED_MESSAGE, true, NULL);
        }
        http_log_latchd_error("passwd", client, k);
        /* A latchd without the op, or a service whose peers may not use
         * it: no use trying again. */
        if (k == LATCH_ERR_UNKNOWN_OP || k == LATCH_ERR_FORBIDDEN)
                return respond_password_page(r, MHD_HTTP_NOT_IMPLEMENTED, user, rd,
                                             "Passwords cannot be changed here.", false, NULL);
        return respond_unavailable(r, user, rd, NULL);
}

/* The flow's ends. The step routes have checked the session already. */

static enum MHD_Result passwd_done(struct http_request *r, const latch_reply *reply, const char *rd,
                                   const char *clear) {
        _cleanup_free_ char *page = NULL;
        int64_t revoked = 0;

        (void) latch_reply_int(reply, "revoked", &revoked);
        page = http_password_done_page(latch_reply_string(reply, "user"), http_redirect_target(rd), revoked);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, MHD_HTTP_OK, page, clear, NULL);
}

/* The user of the session, for the pages that end a step (the step route
 * validated it just before). */
static const char *step_user(struct http_request *r) {
        return r->user;
}

static enum MHD_Result passwd_refused(struct http_request *r, const char *rd, bool new_password, const char *clear) {
        log_refused(r, step_user(r));
        return respond_password_page(r, MHD_HTTP_UNAUTHORIZED, step_user(r), rd, REFUSED_MESSAGE, true, clear);
}

static enum MHD_Result passwd_unavailable(struct http_request *r, const char *rd, const char *clear) {
        return respond_unavailable(r, step_user(r), rd, clear);
}

/* latchd does not let this change finish: as route_password() answers a
 * forbidden start, with no button to try again. */
static enum MHD_Result passwd_forbidden(struct http_request *r, const char *rd, const char *clear) {
        return respond_password_page(r, MHD_HTTP_FORBIDDEN, step_user(r), rd, "Passwords cannot be changed here.",
                                     false, clear);
}

const struct http_flow http_flow_passwd = {
        .purpose = "passwd",
        .step_path = PASSWORD_PATH "/step",
        .start_path = PASSWORD_PATH,
        .title = HTTP_PASSWORD_TITLE,
        .step_name = "step",
        .done = passwd_done,
        .refused = passwd_refused,
        .unavailable = passwd_unavailable,
        .forbidden = passwd_forbidden,
};

enum MHD_Result route_password_step_form(struct http_request *r) {
        return http_step_get(r, &http_flow_passwd);
}

enum MHD_Result route_password_step(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *validate = NULL;
        _cleanup_free_ char *rd = NULL;
        latch_client *client = NULL;
        enum MHD_Result ret;

        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        if (r->body && http_is_form(r))
                (void) http_form_get(r->body, r->body_len, "rd", &rd);
        /* Signed out in the meantime (another tab, an expiry): no step of
         * a change goes on without the session that started it. */
        const char *user = signed_in_user(r, rd, true, &client, &session, &validate, &ret);
        if (!user)
                return ret;
        /* The step tag binds the step to this session, so the user of the
         * session is the user of the change (passwd_refused logs it). */
        r->user = user;
        return http_step_post(r, &http_flow_passwd, session);
}
