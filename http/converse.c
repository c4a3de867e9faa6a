/* SPDX-License-Identifier: MIT */
/*
 * Logins whose stack asks more than the password (a one-time code, a new
 * password): latchd answers `challenge` with prompts and a conversation id,
 * and each answer goes back with `respond` (docs/PROTOCOL.md,
 * "Conversations"). The login page becomes a sequence of forms:
 *
 *   POST /login       user and password; on a challenge, the first step form
 *   POST /login/step  the answers of one step; the next step form, the
 *                     refusal (the login form again) or the session
 *   GET  /login/step  (a reload, a bookmark, the back button): "start again"
 *
 * The conversation id is a bearer secret for one step: it lives only in the
 * step cookie (HttpOnly, Secure, SameSite=Strict, __Host- like the session
 * cookie, expiring with the conversation), never in a URL or a page. The
 * step form carries the CSRF token (double-submit, as the login form) and a
 * step tag, a hash of the id: a form from another tab or an older step does
 * not match the browser's current conversation and is answered "start
 * again" without using that conversation up. latchd makes every id
 * single-use, so a replayed form ends the same way.
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
#include "secret.h"

/* More prompts in one step than a person can answer is a broken stack. */
#define STEP_PROMPTS_MAX 16
#define ANSWER_MAX 4096
#define STEP_TAG_BYTES 16

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);
static inline void latch_secret_freep(char **p) { latch_secret_free(*p); }

/* The step tag of conversation `id` (base64url of a BLAKE2b hash, which
 * tells nothing of the id) into buf. */
static void step_tag(const char *id, char buf[static 32]) {
        uint8_t hash[STEP_TAG_BYTES];
        crypto_generichash(hash, sizeof hash, (const uint8_t *) id, strlen(id), NULL, 0);
        sodium_bin2base64(buf, 32, hash, sizeof hash, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* "This sign-in step expired, start again", clearing the step cookie unless
 * keep_cookie (the cookie belongs to a newer step of another tab). */
static enum MHD_Result respond_expired(struct http_request *r, const char *rd, bool keep_cookie) {
        _cleanup_free_ char *page = http_step_expired_page(r->config->title, http_redirect_target(rd));
        _cleanup_free_ char *clear = NULL;

        if (!page)
                return MHD_NO;
        if (!keep_cookie && latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        return http_respond_page(r, MHD_HTTP_FORBIDDEN, page, clear, NULL);
}

enum MHD_Result http_respond_challenge(struct http_request *r, latch_client *client, const char *rd) {
        const latch_reply *challenge = latch_last_challenge(client);
        struct http_prompt prompts[STEP_PROMPTS_MAX];
        _cleanup_(latch_secret_freep) char *step_cookie = NULL;
        _cleanup_free_ char *csrf_cookie = NULL, *page = NULL;
        char csrf[64], tag[32];
        int64_t expires_at = 0;

        const char *id = challenge ? latch_reply_string(challenge, "conversation") : NULL;
        size_t n = challenge ? latch_reply_count(challenge, "prompts") : 0;
        if (!id || n == 0 || n > STEP_PROMPTS_MAX || latch_reply_int(challenge, "expires_at", &expires_at) != LATCH_OK) {
                fprintf(stderr, "latch-http: login: a challenge without a conversation or with 0 or more than %d "
                                "prompts\n", STEP_PROMPTS_MAX);
                return http_respond_login_form(r, MHD_HTTP_SERVICE_UNAVAILABLE, rd,
                                               "Signing in is not possible right now. Please try again later.", NULL,
                                               NULL);
        }
        for (size_t i = 0; i < n; i++)
                prompts[i] = (struct http_prompt) {
                        .style = latch_reply_item_string(challenge, "prompts", i, "style"),
                        .message = latch_reply_item_string(challenge, "prompts", i, "message"),
                };
        if (latch_cookie_build(id, expires_at, 0, r->config->step_cookie_name, "Strict", NULL, &step_cookie) !=
            LATCH_OK) {
                fprintf(stderr, "latch-http: login: latchd's conversation id cannot be a cookie\n");
                return http_respond_login_form(r, MHD_HTTP_SERVICE_UNAVAILABLE, rd,
                                               "Signing in is not possible right now. Please try again later.", NULL,
                                               NULL);
        }
        if (http_csrf_token(r, csrf, &csrf_cookie) < 0)
                return MHD_NO;
        step_tag(id, tag);
        page = http_step_page(r->config->title, http_redirect_target(rd), csrf, tag, prompts, n);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, MHD_HTTP_OK, page, csrf_cookie, step_cookie);
}

enum MHD_Result route_login_step_form(struct http_request *r) {
        /* Reached by a reload or a link: the step's form was a POST answer,
         * and its conversation cannot be shown again. */
        return respond_expired(r, http_query(r, "rd"), true);
}

/* Whether the form's step tag is the tag of conversation `id`. */
static bool step_ok(const struct http_request *r, const char *id) {
        _cleanup_free_ char *field = NULL;
        char tag[32];

        if (http_form_get(r->body ? r->body : "", r->body_len, "step", &field) < 0)
                return false;
        step_tag(id, tag);
        size_t n = strlen(tag);
        return strlen(field) == n && secret_equal(field, tag, n);
}

/* The fields answer0, answer1, ... up to the first missing one, into
 * answers (each a secret_free() string). Returns how many, or -EINVAL
 * (too many, too long, malformed) or -ENOMEM. */
static int answers_from_form(const struct http_request *r, char *answers[static STEP_PROMPTS_MAX]) {
        const char *body = r->body ? r->body : "";
        size_t n = 0;

        for (; n <= STEP_PROMPTS_MAX; n++) {
                char key[16];
                char *value = NULL;
                snprintf(key, sizeof key, "answer%zu", n);
                int k = http_form_get(body, r->body_len, key, &value);
                if (k == -ENOENT)
                        break;
                if (k < 0 || n == STEP_PROMPTS_MAX || strlen(value) > ANSWER_MAX) {
                        secret_free(value);
                        for (size_t i = 0; i < n; i++)
                                secret_free(TAKE_PTR(answers[i]));
                        return k < 0 ? k : -EINVAL;
                }
                answers[n] = value;
        }
        return (int) n;
}

enum MHD_Result route_login_step(struct http_request *r) {
        _cleanup_free_ char *rd = NULL, *clear = NULL;
        _cleanup_(latch_secret_freep) char *id = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        char *answers[STEP_PROMPTS_MAX] = { NULL };
        char remote_buf[64];

        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        if (!http_is_form(r))
                return http_respond_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "expected a form");
        (void) http_form_get(r->body ? r->body : "", r->body_len, "rd", &rd);
        if (latch_cookie_parse(http_header(r, "Cookie"), r->config->step_cookie_name, &id) != LATCH_OK)
                id = NULL;
        /* No conversation (expired cookie, another browser) or a form that
         * is not this browser's: nothing to continue. */
        if (!id || !http_csrf_ok(r))
                return respond_expired(r, rd, false);
        /* A form of another tab or an older step: the browser's current
         * conversation is left to the form it belongs to. */
        if (!step_ok(r, id))
                return respond_expired(r, rd, true);
        int n = answers_from_form(r, answers);
        if (n < 0)
                return n == -ENOMEM ? MHD_NO : respond_expired(r, rd, false);

        latch_client *client = http_client(r->config);
        if (!client) {
                for (int i = 0; i < n; i++)
                        secret_free(answers[i]);
                return MHD_NO;
        }
        int k = latch_respond(client, id, (const char *const *) answers, (size_t) n, &reply);
        for (int i = 0; i < n; i++)
                secret_free(answers[i]);

        if (k == LATCH_ERR_CHALLENGE)
                return http_respond_challenge(r, client, rd);
        if (latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        if (k == LATCH_OK)
                return http_respond_signed_in(r, reply, rd, clear);
        /* Used, expired, or answered with the wrong number of fields (a
         * form not made from this step's prompts): start again. */
        if (k == LATCH_ERR_INVALID_CONVERSATION || k == LATCH_ERR_BAD_REQUEST || k == LATCH_ERR_INVALID_ARGUMENT)
                return respond_expired(r, rd, false);
        if (k == LATCH_ERR_DENIED) {
                char now[32];
                const char *remote = http_remote(r, remote_buf, sizeof remote_buf);
                /* remote passed http_remote_from_header(): address characters only. */
                fprintf(stderr, "latch-http: login refused at a later sign-in step from %s at %s\n",
                        remote ? remote : "(unknown)", http_log_time(time(NULL), now, sizeof now));
                return http_respond_login_form(r, MHD_HTTP_UNAUTHORIZED, rd,
                                               "Sign-in failed: a wrong password or code. Please start again.", NULL,
                                               clear);
        }
        http_log_latchd_error("respond", client, k);
        return http_respond_login_form(r, MHD_HTTP_SERVICE_UNAVAILABLE, rd,
                                       "Signing in is not possible right now. Please try again later.", NULL, clear);
}
