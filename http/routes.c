/* SPDX-License-Identifier: MIT */
/*
 * The routes of latch-http. Each talks to latchd only through liblatch,
 * reads the session only through liblatch's cookie helpers, and never puts
 * a password or session id into a log line or a page.
 *
 *   GET  /auth                    nginx auth_request: 204 + X-Latch-* or 401
 *   GET  /login, POST /login      the form; login sets the cookie, redirects
 *   POST /login/step              the next form of a login whose stack asks
 *                                 more (converse.c); GET: "start again"
 *   GET  /password, POST /password, /password/step
 *                                 a signed-in user changes the password
 *                                 (password.c)
 *   GET  /login-redirect          for nginx's error_page: 303 to the form, with
 *                                 X-Original-URI (the page asked for) as rd
 *   POST /logout                  ends the session, clears its cookie and
 *                                 the step cookie
 *   GET  /token                   a fresh JWT for the current session
 *   GET  /.well-known/jwks.json   latchd's public keys
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "macro.h"
#include "policy.h"
#include "secret.h"

#define CSRF_LIFETIME (60 * 60)
#define USER_MAX 256
#define PASSWORD_MAX 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);
static inline void latch_secret_freep(char **p) { latch_secret_free(*p); }

/* The session id from the request's cookie, or NULL. New: latch_secret_free(). */
static char *session_from_cookie(const struct http_request *r) {
        char *session = NULL;
        if (latch_cookie_parse(http_header(r, "Cookie"), r->config->cookie_name, &session) != LATCH_OK)
                return NULL;
        return session;
}

static bool is_refusal(int err) {
        return err == LATCH_ERR_INVALID_SESSION || err == LATCH_ERR_FORBIDDEN || err == LATCH_ERR_UNKNOWN_SERVICE ||
               err == LATCH_ERR_INVALID_ARGUMENT;
}

/* latchd's message may quote what a client sent (a user name, a
 * service): it is quoted and escaped like every client string. */
void http_log_latchd_error(const char *what, latch_client *client, int err) {
        char message[512], now[32];
        fprintf(stderr, "latch-http: %s: %s: %s at %s\n", what, latch_error_name(err),
                http_log_quote(latch_last_message(client), message, sizeof message),
                http_log_time(time(NULL), now, sizeof now));
}

/* 503 when latchd is down or failed (nginx turns it into a 500 for
 * auth_request), 401 when the session is refused. */
static enum MHD_Result respond_latchd_error(struct http_request *r, const char *what, latch_client *client, int err) {
        if (is_refusal(err))
                return http_respond_text(r, MHD_HTTP_UNAUTHORIZED, "not signed in");
        http_log_latchd_error(what, client, err);
        return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the authentication service is unavailable");
}

int http_signed_in(struct http_request *r, latch_client **ret_client, char **ret_session,
                   latch_reply **ret_validate) {
        _cleanup_(latch_secret_freep) char *session = session_from_cookie(r);
        latch_reply *reply = NULL;

        if (!session)
                return -ENOENT;
        latch_client *client = http_client(r->config);
        if (!client)
                return -ENOMEM;
        /* One validate, which runs no plugin in latchd: it checks the
         * session's service and slides its idle expiry. */
        int k = latch_validate(client, session, r->config->service, &reply);
        if (k == LATCH_ERR_NO_MEMORY)
                return -ENOMEM;
        if (k != LATCH_OK) {
                if (is_refusal(k))
                        return -ENOENT;
                http_log_latchd_error("validate", client, k);
                return -EIO;
        }
        *ret_client = client;
        *ret_session = TAKE_PTR(session);
        *ret_validate = reply;
        return 0;
}

/* The latchd client and validate answer for a request that holds a valid
 * session cookie: NULL, with *ret the answer already given, when there is
 * no session (401), latchd cannot answer (503) or no memory. */
static latch_client *signed_in_client(struct http_request *r, char **ret_session, latch_reply **ret_validate,
                                      enum MHD_Result *ret) {
        latch_client *client = NULL;

        int k = http_signed_in(r, &client, ret_session, ret_validate);
        if (k == -ENOENT)
                *ret = http_respond_text(r, MHD_HTTP_UNAUTHORIZED, "not signed in");
        else if (k == -EIO)
                *ret = http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the authentication service is unavailable");
        else if (k < 0)
                *ret = MHD_NO;
        return k < 0 ? NULL : client;
}

/* The "groups" claim as "a,b,c" (new string; "" without groups). Names
 * that hold a comma or an unsafe byte are left out. */
static char *groups_from_reply(const latch_reply *reply) {
        _cleanup_free_ char *claims_text = latch_reply_json(reply, "claims");
        json_t *claims = claims_text ? json_loads(claims_text, 0, NULL) : NULL;
        json_t *groups = json_object_get(claims, "groups");
        size_t n = 1, i;
        json_t *g;

        json_array_foreach(groups, i, g)
                if (json_is_string(g))
                        n += json_string_length(g) + 1;
        char *out = calloc(1, n);
        if (out)
                json_array_foreach(groups, i, g) {
                        const char *s = json_string_value(g);
                        if (!s || !*s || strchr(s, ',') || !http_header_value_is_safe(s))
                                continue;
                        if (*out)
                                strcat(out, ",");
                        strcat(out, s);
                }
        json_decref(claims);
        return out;
}

enum MHD_Result route_auth(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL, *token_reply = NULL;
        enum MHD_Result ret;
        int k;

        /* The fast path: one validate, which runs no plugin in latchd. */
        latch_client *client = signed_in_client(r, &session, &reply, &ret);
        if (!client)
                return ret;

        const char *user = latch_reply_string(reply, "user");
        const char *handle = latch_reply_string(reply, "handle");
        _cleanup_free_ char *groups = groups_from_reply(reply);
        if (!user || !handle || !groups)
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "bad answer from latchd");

        _cleanup_free_ char *bearer = NULL;
        if (r->config->token_on_auth) {
                k = latch_token(client, session, NULL, &token_reply);
                if (k != LATCH_OK)
                        return respond_latchd_error(r, "token", client, k);
                const char *token = latch_reply_string(token_reply, "token");
                if (!token || asprintf(&bearer, "Bearer %s", token) < 0)
                        return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "bad answer from latchd");
        }

        struct MHD_Response *resp = http_response_new(NULL, NULL);
        if (!resp)
                return MHD_NO;
        if (!http_response_header(resp, "X-Latch-User", user) ||
            /* A user in no group gets no X-Latch-Groups (libmicrohttpd
             * refuses empty values; nginx passes an empty one on as none). */
            (*groups && !http_response_header(resp, "X-Latch-Groups", groups)) ||
            !http_response_header(resp, "X-Latch-Session-Handle", handle) ||
            (bearer && !http_response_header(resp, "Authorization", bearer))) {
                MHD_destroy_response(resp);
                if (bearer)
                        sodium_memzero(bearer, strlen(bearer));
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot pass the identity on");
        }
        if (bearer)
                sodium_memzero(bearer, strlen(bearer));
        return http_respond(r, MHD_HTTP_NO_CONTENT, resp);
}

/* The page to go to after login: rd when it is a path on this site, else "/". */
const char *http_redirect_target(const char *rd) {
        return http_redirect_is_safe(rd) ? rd : "/";
}

/* A new random CSRF token (base64url, 32 bytes of entropy) into buf. */
static void csrf_token_new(char buf[static 64]) {
        uint8_t raw[32];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(buf, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof raw);
}

int http_csrf_token(const struct http_request *r, char csrf[static 64], char **ret_cookie) {
        /* Keep the browser's token when it has a good one: two open tabs
         * must both be able to sign in. */
        _cleanup_(latch_secret_freep) char *old = NULL;
        if (latch_cookie_parse(http_header(r, "Cookie"), r->config->csrf_cookie_name, &old) == LATCH_OK &&
            strlen(old) == 43)
                memcpy(csrf, old, 44);
        else
                csrf_token_new(csrf);
        if (latch_cookie_build(csrf, (int64_t) time(NULL) + CSRF_LIFETIME, 0, r->config->csrf_cookie_name, "Strict",
                               NULL, ret_cookie) != LATCH_OK) {
                sodium_memzero(csrf, 64);
                return -ENOMEM;
        }
        return 0;
}

/* Queues resp (NULL: out of memory) as an HTML page: the pages' headers
 * (CSP, no framing) and up to two Set-Cookie values. */
static enum MHD_Result respond_page(struct http_request *r, unsigned status, struct MHD_Response *resp,
                                    const char *cookie1, const char *cookie2) {
        if (!resp)
                return MHD_NO;
        if ((cookie1 && !http_response_header(resp, "Set-Cookie", cookie1)) ||
            (cookie2 && !http_response_header(resp, "Set-Cookie", cookie2)) ||
            !http_response_header(resp, "Content-Security-Policy",
                                  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                  "frame-ancestors 'none'; base-uri 'none'") ||
            !http_response_header(resp, "X-Frame-Options", "DENY") ||
            !http_response_header(resp, "Referrer-Policy", "same-origin")) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_respond(r, status, resp);
}

enum MHD_Result http_respond_page(struct http_request *r, unsigned status, const char *page, const char *cookie1,
                                  const char *cookie2) {
        return respond_page(r, status, http_response_new("text/html; charset=utf-8", page), cookie1, cookie2);
}

enum MHD_Result http_respond_secret_page(struct http_request *r, unsigned status, char *page, const char *cookie1,
                                         const char *cookie2) {
        return respond_page(r, status, http_response_new_secret("text/html; charset=utf-8", page), cookie1, cookie2);
}

enum MHD_Result http_respond_login_form(struct http_request *r, unsigned status, const char *rd, const char *error,
                                        const char *user, const char *extra_cookie) {
        char csrf[64];
        _cleanup_free_ char *cookie = NULL, *page = NULL;

        if (http_csrf_token(r, csrf, &cookie) < 0)
                return MHD_NO;
        page = http_login_page(r->config->title, http_redirect_target(rd), csrf, error, user);
        sodium_memzero(csrf, sizeof csrf);
        if (!page)
                return MHD_NO;
        return http_respond_page(r, status, page, cookie, extra_cookie);
}

enum MHD_Result route_login_redirect(struct http_request *r) {
        /* nginx's $request_uri, raw: a path with its whole query string,
         * which no query parameter could carry unencoded ("&" would end it). */
        const char *uri = http_header(r, "X-Original-URI");
        _cleanup_free_ char *encoded = NULL, *location = NULL;

        if (http_redirect_is_safe(uri)) {
                encoded = http_query_encode(uri);
                if (!encoded || asprintf(&location, "/login?rd=%s", encoded) < 0)
                        return MHD_NO;
        } else if (!(location = strdup("/login")))
                return MHD_NO;
        return http_respond_redirect(r, location, NULL, NULL);
}

enum MHD_Result route_login_form(struct http_request *r) {
        return http_respond_login_form(r, MHD_HTTP_OK, http_query(r, "rd"), NULL, NULL, NULL);
}

bool http_origin_ok(const struct http_request *r) {
        return http_origin_is_allowed(r->config->origins, r->config->n_origins, http_header(r, "Origin"),
                                      http_header(r, "Referer"), http_header(r, "Host"),
                                      http_header(r, "Sec-Fetch-Site"));
}

bool http_is_form(const struct http_request *r) {
        const char *t = http_header(r, "Content-Type");
        const char *f = "application/x-www-form-urlencoded";
        return t && strncasecmp(t, f, strlen(f)) == 0 && (t[strlen(f)] == '\0' || t[strlen(f)] == ';');
}

/* Whether the form's csrf field equals the CSRF cookie (constant time). */
bool http_csrf_ok(const struct http_request *r) {
        _cleanup_secret_ char *field = NULL;
        _cleanup_(latch_secret_freep) char *cookie = NULL;

        if (http_form_get(r->body ? r->body : "", r->body_len, "csrf", &field) < 0 ||
            latch_cookie_parse(http_header(r, "Cookie"), r->config->csrf_cookie_name, &cookie) != LATCH_OK)
                return false;
        size_t n = strlen(field);
        return n == strlen(cookie) && n >= 32 && secret_equal(field, cookie, n);
}

/* A 303 to `location`, with up to two Set-Cookie values. */
enum MHD_Result http_respond_redirect(struct http_request *r, const char *location, const char *cookie1,
                                        const char *cookie2) {
        struct MHD_Response *resp = http_response_new("text/plain; charset=utf-8", "see other\n");
        if (!resp)
                return MHD_NO;
        if (!http_response_header(resp, "Location", location) ||
            (cookie1 && !http_response_header(resp, "Set-Cookie", cookie1)) ||
            (cookie2 && !http_response_header(resp, "Set-Cookie", cookie2))) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_respond(r, MHD_HTTP_SEE_OTHER, resp);
}

enum MHD_Result route_login(struct http_request *r) {
        _cleanup_free_ char *rd = NULL, *user = NULL;
        _cleanup_secret_ char *password = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        char remote_buf[64];

        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        if (!http_is_form(r))
                return http_respond_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "expected a form");
        const char *body = r->body ? r->body : "";
        (void) http_form_get(body, r->body_len, "rd", &rd);
        if (!http_csrf_ok(r))
                return http_respond_login_form(r, MHD_HTTP_FORBIDDEN, rd, "This form has expired. Please sign in again.", NULL, NULL);
        if (http_form_get(body, r->body_len, "user", &user) < 0 ||
            http_form_get(body, r->body_len, "password", &password) < 0 || !*user || strlen(user) > USER_MAX ||
            strlen(password) > PASSWORD_MAX)
                return http_respond_login_form(r, MHD_HTTP_BAD_REQUEST, rd, "Please enter your user name and password.",
                                    user && strlen(user) <= USER_MAX ? user : NULL, NULL);

        latch_client *client = http_client(r->config);
        if (!client)
                return MHD_NO;
        const char *remote = http_remote(r, remote_buf, sizeof remote_buf);
        int k = latch_login(client, r->config->service, user, password, remote, false, NULL, &reply);
        sodium_memzero(password, strlen(password));
        /* A name latchd (bad_request) or liblatch (not UTF-8) cannot take
         * is a wrong name to the person at the form, not an outage. */
        if (k == LATCH_ERR_DENIED || k == LATCH_ERR_BAD_REQUEST || k == LATCH_ERR_INVALID_ARGUMENT) {
                char quoted[USER_MAX * 4 + 8], now[32];
                /* remote passed http_remote_from_header(): address characters only. */
                fprintf(stderr, "latch-http: login refused for user %s from %s at %s%s\n",
                        http_log_quote(user, quoted, sizeof quoted), remote ? remote : "(unknown)",
                        http_log_time(time(NULL), now, sizeof now),
                        k == LATCH_ERR_DENIED ? "" : ": not a valid user name");
                return http_respond_login_form(r, MHD_HTTP_UNAUTHORIZED, rd, "Wrong user name or password.", user, NULL);
        }
        /* The stack asks for more (a code, a new password): the next
         * form of the sequence (converse.c). */
        if (k == LATCH_ERR_CHALLENGE)
                return http_respond_challenge(r, client, &http_flow_login, NULL, rd);
        if (k != LATCH_OK) {
                http_log_latchd_error("login", client, k);
                return http_respond_login_form(r, MHD_HTTP_SERVICE_UNAVAILABLE, rd,
                                    "Signing in is not possible right now. Please try again later.", user, NULL);
        }
        /* A step cookie left from an earlier conversation in this browser
         * (perhaps another user's) has no business with the new session. */
        _cleanup_free_ char *clear = NULL;
        if (latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear) != LATCH_OK)
                return MHD_NO;
        return http_respond_signed_in(r, reply, rd, clear);
}

enum MHD_Result http_respond_signed_in(struct http_request *r, const latch_reply *reply, const char *rd,
                                       const char *extra_cookie) {
        _cleanup_(latch_secret_freep) char *cookie = NULL;
        const char *session = latch_reply_string(reply, "session");
        int64_t expires_at = 0;
        if (!session || latch_reply_int(reply, "expires_at", &expires_at) != LATCH_OK ||
            latch_cookie_build(session, expires_at, 0, r->config->cookie_name, "Lax", NULL, &cookie) != LATCH_OK)
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "bad answer from latchd");
        return http_respond_redirect(r, http_redirect_target(rd), cookie, extra_cookie);
}

enum MHD_Result route_logout(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_free_ char *clear = NULL, *clear_step = NULL, *rd = NULL;
        _cleanup_free_ char *location = NULL;

        if (!http_origin_ok(r))
                return http_respond_text(r, MHD_HTTP_FORBIDDEN, "cross-origin request refused");
        session = session_from_cookie(r);
        if (session) {
                latch_client *client = http_client(r->config);
                if (!client)
                        return MHD_NO;
                int k = latch_logout(client, session, NULL);
                if (k != LATCH_OK && k != LATCH_ERR_INVALID_SESSION) {
                        http_log_latchd_error("logout", client, k);
                        return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                                 "the authentication service is unavailable");
                }
        }
        /* The step cookie too: a half-done change of the user who signs
         * out must not be there for whoever signs in next in this
         * browser. */
        if (latch_cookie_build_clear(r->config->cookie_name, "Lax", NULL, &clear) != LATCH_OK ||
            latch_cookie_build_clear(r->config->step_cookie_name, "Strict", NULL, &clear_step) != LATCH_OK)
                return MHD_NO;
        if (r->body && http_is_form(r))
                (void) http_form_get(r->body, r->body_len, "rd", &rd);
        if (http_redirect_is_safe(rd))
                location = strdup(rd);
        else
                location = strdup("/login");
        if (!location)
                return MHD_NO;
        return http_respond_redirect(r, location, clear, clear_step);
}

enum MHD_Result route_token(struct http_request *r) {
        _cleanup_(latch_secret_freep) char *session = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL, *token_reply = NULL;
        int64_t exp = 0;
        enum MHD_Result ret;

        /* validate first: it checks the session's service and slides it. */
        latch_client *client = signed_in_client(r, &session, &reply, &ret);
        if (!client)
                return ret;
        int k = latch_token(client, session, NULL, &token_reply);
        if (k != LATCH_OK)
                return respond_latchd_error(r, "token", client, k);
        const char *token = latch_reply_string(token_reply, "token");
        if (!token || latch_reply_int(token_reply, "expires_at", &exp) != LATCH_OK)
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "bad answer from latchd");
        json_t *o = json_pack("{s:s, s:I}", "token", token, "expires_at", (json_int_t) exp);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!text)
                return MHD_NO;
        size_t n = strlen(text);
        char *body = realloc(text, n + 2);
        if (!body) {
                secret_free(text);
                return MHD_NO;
        }
        strcpy(body + n, "\n");
        enum MHD_Result res = http_respond(r, MHD_HTTP_OK, http_response_new("application/json", body));
        secret_free(body);
        return res;
}

enum MHD_Result route_jwks(struct http_request *r) {
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        uint8_t hash[16];
        char etag[2 * sizeof hash + 3];

        latch_client *client = http_client(r->config);
        if (!client)
                return MHD_NO;
        int k = latch_jwks(client, &reply);
        if (k != LATCH_OK) {
                http_log_latchd_error("jwks", client, k);
                return http_respond_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the authentication service is unavailable");
        }
        _cleanup_free_ char *jwks = latch_reply_json(reply, NULL);
        if (!jwks)
                return MHD_NO;
        crypto_generichash(hash, sizeof hash, (const uint8_t *) jwks, strlen(jwks), NULL, 0);
        etag[0] = '"';
        sodium_bin2hex(etag + 1, sizeof etag - 1, hash, sizeof hash);
        strcat(etag, "\"");

        const char *inm = http_header(r, "If-None-Match");
        bool fresh = inm && streq(inm, etag);
        struct MHD_Response *resp = http_response_new(fresh ? NULL : "application/jwk-set+json", fresh ? NULL : jwks);
        if (!resp)
                return MHD_NO;
        /* Short: after a rotation new tokens carry a kid that a cached
         * copy lacks, so verifiers should refetch on an unknown kid; the
         * old keys stay in the set while their tokens live. */
        if (MHD_del_response_header(resp, "Cache-Control", "no-store") != MHD_YES ||
            !http_response_header(resp, "Cache-Control", "public, max-age=60") ||
            !http_response_header(resp, "ETag", etag) ||
            !http_response_header(resp, "Access-Control-Allow-Origin", "*")) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_respond(r, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}
