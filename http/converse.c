/* SPDX-License-Identifier: MIT */
/*
 * Conversations as a sequence of forms. When a stack asks more than the
 * first form gave (a one-time code, a new password, the current password
 * of a password change), latchd answers `challenge` with prompts and a
 * conversation id, and each answer goes back with `respond`
 * (docs/PROTOCOL.md, "Conversations"). Each step becomes a form:
 *
 *   POST /login       user and password; on a challenge, the first step form
 *   POST /login/step  the answers of one step; the next step form, the
 *                     refusal (the login form again) or the session
 *   GET  /login/step  (a reload, a bookmark, the back button): "start again"
 *
 * and the same for a password change (password.c) under /password. What
 * differs between the two is a struct http_flow: where the forms post, how
 * the end is answered.
 *
 * The conversation id is a bearer secret for one step: it lives only in the
 * step cookie (HttpOnly, Secure, SameSite=Strict, __Host- like the session
 * cookie, expiring with the conversation), never in a URL or a page. The
 * step form carries the CSRF token (double-submit, as the login form) and a
 * step tag, a keyed hash of the flow, the id and (for a flow of a
 * signed-in user) the session: a form from another tab, an older step,
 * another flow or another session does not match the browser's current
 * conversation and is answered "start again" without using that
 * conversation up. latchd makes every id single-use, so a replayed form
 * ends the same way.
 *
 * The tag is keyed because the step cookie alone must not be enough to
 * continue a conversation: whoever holds the cookie (the next user of a
 * shared browser) could otherwise compute the tag. It is bound to the
 * session because a password change or a two-factor change acts for the
 * session that started it: a step finished under another session (after a
 * sign-out and someone else's sign-in) would change the first user's
 * account.
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

/* The key of the step tags: random, made once at start (before any
 * request's thread), read-only afterwards. A restart makes a new one, so
 * the forms of open steps are then answered "start again". */
static uint8_t *step_key;

int http_converse_init(void) {
        uint8_t *k;

        if (step_key)
                return 0;
        k = sodium_malloc(crypto_generichash_KEYBYTES);
        if (!k)
                return -ENOMEM;
        randombytes_buf(k, crypto_generichash_KEYBYTES);
        /* Best effort: a key that stays writable still works. */
        (void) sodium_mprotect_readonly(k);
        step_key = k;
        return 0;
}

/*
 * The step tag of conversation `id` in `flow` (base64url of a BLAKE2b hash,
 * keyed with step_key, of the purpose, whether the step asks a new
 * password, the id and the session, which tells nothing of either) into
 * buf. The purpose keeps a password change's form from being answered at
 * /login/step and the other way round; the new-password bit tells the
 * refusal page what the step asked; the session (NULL for a login, which
 * has none yet) keeps a step from being finished under another session.
 * The NUL separators are unambiguous: neither purpose nor id holds one.
 */
static void step_tag(const struct http_flow *flow, bool new_password, const char *id, const char *session,
                     char buf[static 32]) {
        crypto_generichash_state st;
        uint8_t hash[STEP_TAG_BYTES];

        /* libsodium takes a NULL key as none: a tag made without the key
         * could be forged by anyone holding the step cookie. */
        if (!step_key)
                abort();
        crypto_generichash_init(&st, step_key, crypto_generichash_KEYBYTES, sizeof hash);
        crypto_generichash_update(&st, (const uint8_t *) flow->purpose, strlen(flow->purpose));
        if (new_password)
                crypto_generichash_update(&st, (const uint8_t *) "+new", 4);
        crypto_generichash_update(&st, (const uint8_t *) "", 1);
        crypto_generichash_update(&st, (const uint8_t *) id, strlen(id));
        crypto_generichash_update(&st, (const uint8_t *) "", 1);
        /* "s" + the session, or "-" without one: a login's tag is never a
         * session's. */
        if (session) {
                crypto_generichash_update(&st, (const uint8_t *) "s", 1);
                crypto_generichash_update(&st, (const uint8_t *) session, strlen(session));
        } else
                crypto_generichash_update(&st, (const uint8_t *) "-", 1);
        crypto_generichash_final(&st, hash, sizeof hash);
        sodium_memzero(&st, sizeof st);
        sodium_bin2base64(buf, 32, hash, sizeof hash, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static const char *flow_title(const struct http_request *r, const struct http_flow *flow) {
        return flow->title ? flow->title : r->config->title;
}

/* "This step expired, start again", clearing the step cookie unless
 * keep_cookie (the cookie belongs to a newer step of another tab). */
static enum MHD_Result respond_expired(struct http_request *r, const struct http_flow *flow, const char *rd,
                                       bool keep_cookie) {
        _cleanup_free_ char *page = http_step_expired_page(flow_title(r, flow), flow->step_name, flow->start_path,
                                                           http_redirect_target(rd));
        _cleanup_free_ char *clear = NULL;

        if (!page)
                return MHD_NO;
        if (!keep_cookie && latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        return http_respond_page(r, MHD_HTTP_FORBIDDEN, page, clear, NULL);
}

enum MHD_Result http_step_sign_in(struct http_request *r, const struct http_flow *flow, const char *rd) {
        _cleanup_free_ char *rd_q = NULL, *back = NULL, *back_q = NULL, *location = NULL, *clear = NULL;

        rd_q = http_query_encode(http_redirect_target(rd));
        if (!rd_q || asprintf(&back, "%s?rd=%s", flow->start_path, rd_q) < 0)
                return MHD_NO;
        back_q = http_query_encode(back);
        if (!back_q || asprintf(&location, "/login?rd=%s", back_q) < 0)
                return MHD_NO;
        if (latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        return http_respond_redirect(r, location, clear, NULL);
}

enum MHD_Result http_respond_challenge(struct http_request *r, latch_client *client, const struct http_flow *flow,
                                       const char *session, const char *rd) {
        const latch_reply *challenge = latch_last_challenge(client);
        struct http_prompt prompts[STEP_PROMPTS_MAX];
        _cleanup_(latch_secret_freep) char *step_cookie = NULL;
        _cleanup_free_ char *csrf_cookie = NULL, *page = NULL;
        char csrf[64], tag[32];
        int64_t expires_at = 0;
        bool new_password = false;

        const char *id = challenge ? latch_reply_string(challenge, "conversation") : NULL;
        size_t n = challenge ? latch_reply_count(challenge, "prompts") : 0;
        if (!id || n == 0 || n > STEP_PROMPTS_MAX || latch_reply_int(challenge, "expires_at", &expires_at) != LATCH_OK) {
                fprintf(stderr, "latch-http: %s: a challenge without a conversation or with 0 or more than %d "
                                "prompts\n", flow->purpose, STEP_PROMPTS_MAX);
                return flow->unavailable(r, rd, NULL);
        }
        for (size_t i = 0; i < n; i++) {
                prompts[i] = (struct http_prompt) {
                        .style = latch_reply_item_string(challenge, "prompts", i, "style"),
                        .message = latch_reply_item_string(challenge, "prompts", i, "message"),
                };
                new_password = new_password || http_prompt_asks_new_password(prompts[i].style, prompts[i].message);
        }
        if (latch_cookie_build(id, expires_at, 0, r->config->step_cookie_name, "Strict", NULL, &step_cookie) !=
            LATCH_OK) {
                fprintf(stderr, "latch-http: %s: latchd's conversation id cannot be a cookie\n", flow->purpose);
                return flow->unavailable(r, rd, NULL);
        }
        if (http_csrf_token(r, csrf, &csrf_cookie) < 0)
                return MHD_NO;
        step_tag(flow, new_password, id, session, tag);
        const struct http_step_form form = {
                .title = flow->title ? flow->title : new_password ? HTTP_PASSWORD_TITLE : r->config->title,
                .action = flow->step_path,
                .start_path = flow->start_path,
                .note = new_password ? flow->new_password_note : NULL,
                .rd = http_redirect_target(rd),
                .csrf = csrf,
                .step = tag,
        };
        page = http_step_page(&form, prompts, n);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, MHD_HTTP_OK, page, csrf_cookie, step_cookie);
}

enum MHD_Result http_step_get(struct http_request *r, const struct http_flow *flow) {
        /* Reached by a reload or a link: the step's form was a POST answer,
         * and its conversation cannot be shown again. */
        return respond_expired(r, flow, http_query(r, "rd"), true);
}

/* Whether the form's step tag is a tag of conversation `id` in `flow` for
 * `session`, and whether that step asked a new password. */
static bool step_ok(const struct http_request *r, const struct http_flow *flow, const char *id, const char *session,
                    bool *ret_new_password) {
        _cleanup_free_ char *field = NULL;

        if (http_form_get(r->body ? r->body : "", r->body_len, "step", &field) < 0)
                return false;
        for (int new_password = 0; new_password <= 1; new_password++) {
                char tag[32];
                step_tag(flow, new_password, id, session, tag);
                size_t n = strlen(tag);
                if (strlen(field) == n && secret_equal(field, tag, n)) {
                        *ret_new_password = new_password;
                        return true;
                }
        }
        return false;
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

enum MHD_Result http_step_post(struct http_request *r, const struct http_flow *flow, const char *session) {
        _cleanup_free_ char *rd = NULL, *clear = NULL;
        _cleanup_(latch_secret_freep) char *id = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        char *answers[STEP_PROMPTS_MAX] = { NULL };
        bool new_password = false;

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
                return respond_expired(r, flow, rd, false);
        /* A form of another tab, an older step, another flow or another
         * session (a sign-out and another sign-in since): the browser's
         * current conversation is left to the form it belongs to. */
        if (!step_ok(r, flow, id, session, &new_password))
                return respond_expired(r, flow, rd, true);
        int n = answers_from_form(r, answers);
        if (n < 0)
                return n == -ENOMEM ? MHD_NO : respond_expired(r, flow, rd, false);

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
                return http_respond_challenge(r, client, flow, session, rd);
        /* The session ended between the step route's check and latchd's
         * answer (a sign-out in another tab, an expiry): what the user
         * meets is "sign in first", as at the route's check, not an
         * outage. */
        if (k == LATCH_ERR_INVALID_SESSION && session)
                return http_step_sign_in(r, flow, rd);
        if (latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        if (k == LATCH_OK)
                return flow->done(r, reply, rd, clear);
        /* Used, expired, or answered with the wrong number of fields (a
         * form not made from this step's prompts), or a plugin's
         * bad_request at the end of a self-service change (nothing to
         * turn off, already on: its page shows the state): start again. */
        if (k == LATCH_ERR_INVALID_CONVERSATION || k == LATCH_ERR_BAD_REQUEST || k == LATCH_ERR_INVALID_ARGUMENT)
                return respond_expired(r, flow, rd, false);
        if (k == LATCH_ERR_DENIED)
                return flow->refused(r, rd, new_password, clear);
        /* latchd (or the plugin it ran at the end) does not allow this
         * change: a decision, not a failure, which the flow's first page
         * states as it would for its first request. latchd logged why. */
        if (k == LATCH_ERR_FORBIDDEN)
                return flow->forbidden ? flow->forbidden(r, rd, clear) : respond_expired(r, flow, rd, false);
        http_log_latchd_error("respond", client, k);
        return flow->unavailable(r, rd, clear);
}

/* The login's flow: its end is the session cookie, its refusal the login
 * form again. */

static enum MHD_Result login_done(struct http_request *r, const latch_reply *reply, const char *rd,
                                  const char *clear) {
        return http_respond_signed_in(r, reply, rd, clear);
}

static enum MHD_Result login_refused(struct http_request *r, const char *rd, bool new_password, const char *clear) {
        char now[32], remote_buf[64];
        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);

        /* remote passed http_remote_from_header(): address characters only. */
        fprintf(stderr, "latch-http: login refused at a later sign-in step%s from %s at %s\n",
                new_password ? " (a new password)" : "", remote ? remote : "(unknown)",
                http_log_time(time(NULL), now, sizeof now));
        return http_respond_login_form(r, MHD_HTTP_UNAUTHORIZED, rd,
                                       new_password ? "The new password was not accepted, and you are not signed "
                                                      "in. Please start again."
                                                    : "Sign-in failed: a wrong password or code. Please start again.",
                                       NULL, clear);
}

static enum MHD_Result login_unavailable(struct http_request *r, const char *rd, const char *clear) {
        return http_respond_login_form(r, MHD_HTTP_SERVICE_UNAVAILABLE, rd,
                                       "Signing in is not possible right now. Please try again later.", NULL, clear);
}

const struct http_flow http_flow_login = {
        .purpose = "login",
        .step_path = "/login/step",
        .start_path = "/login",
        .new_password_note = "Your password must be changed before you can sign in.",
        .step_name = "sign-in step",
        .done = login_done,
        .refused = login_refused,
        .unavailable = login_unavailable,
};

enum MHD_Result route_login_step_form(struct http_request *r) {
        return http_step_get(r, &http_flow_login);
}

enum MHD_Result route_login_step(struct http_request *r) {
        /* A login has no session yet: its steps are bound to none. */
        return http_step_post(r, &http_flow_login, NULL);
}
