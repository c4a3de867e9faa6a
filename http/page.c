/* SPDX-License-Identifier: MIT */
/*
 * The pages of latch-http (login, the steps of a conversation, the
 * password change): plain HTML, no script (works without JavaScript),
 * labels tied to their inputs, autocomplete hints for password managers, a
 * viewport for phones, and errors announced to screen readers. Every string
 * put in a page is escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "macro.h"
#include "policy.h"

#define PAGE_HEAD \
        "<!DOCTYPE html>\n" \
        "<html lang=\"en\">\n" \
        "<head>\n" \
        "<meta charset=\"utf-8\">\n" \
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" \
        "<title>%s</title>\n" \
        "<style>\n" \
        "body{font:1.1rem/1.5 system-ui,sans-serif;margin:0;padding:1rem;background:#f4f4f4;color:#111}\n" \
        "main{max-width:22rem;margin:3rem auto;padding:1.5rem;background:#fff;border:1px solid #ccc;border-radius:.5rem}\n" \
        "h1{font-size:1.5rem;margin-top:0}\n" \
        "label{display:block;margin-top:1rem;font-weight:600}\n" \
        "input{box-sizing:border-box;width:100%%;font:inherit;padding:.6rem;margin-top:.25rem;border:1px solid #555;border-radius:.25rem}\n" \
        "input:focus,button:focus{outline:3px solid #1a5fb4;outline-offset:2px}\n" \
        "button{margin-top:1.5rem;width:100%%;font:inherit;padding:.7rem;border:0;border-radius:.25rem;background:#1a5fb4;color:#fff;cursor:pointer}\n" \
        ".error{color:#a51d2d;background:#fbe9eb;border:1px solid #a51d2d;padding:.5rem;border-radius:.25rem}\n" \
        ".info{background:#eef4fb;border:1px solid #1a5fb4;padding:.5rem;border-radius:.25rem}\n" \
        "a{color:#1a5fb4}\n" \
        "</style>\n" \
        "</head>\n" \
        "<body>\n" \
        "<main>\n" \
        "<h1>%s</h1>\n"

static const char page_format[] =
        PAGE_HEAD
        "%s"
        "<form method=\"post\" action=\"/login\">\n"
        "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
        "<input type=\"hidden\" name=\"rd\" value=\"%s\">\n"
        "<label for=\"user\">User name</label>\n"
        "<input id=\"user\" name=\"user\" type=\"text\" value=\"%s\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required%s>\n"
        "<label for=\"password\">Password</label>\n"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required%s>\n"
        "<button type=\"submit\">Sign in</button>\n"
        "</form>\n"
        "</main>\n"
        "</body>\n"
        "</html>\n";

char *http_login_page(const char *title, const char *rd, const char *csrf, const char *error, const char *user) {
        _cleanup_free_ char *t = http_html_escape(title ? title : "Sign in");
        _cleanup_free_ char *r = http_html_escape(rd ? rd : "/");
        _cleanup_free_ char *c = http_html_escape(csrf ? csrf : "");
        _cleanup_free_ char *u = http_html_escape(user ? user : "");
        _cleanup_free_ char *e = error ? http_html_escape(error) : NULL;
        _cleanup_free_ char *error_html = NULL;
        char *page = NULL;

        if (!t || !r || !c || !u || (error && !e))
                return NULL;
        if (asprintf(&error_html, e ? "<p class=\"error\" role=\"alert\" id=\"error\">%s</p>\n" : "%s", e ? e : "") < 0)
                return NULL;
        /* Focus goes where the user types next: the password after a
         * failed attempt, the name otherwise. */
        bool retry = user && *user;
        if (asprintf(&page, page_format, t, t, error_html, c, r, u, retry ? "" : " autofocus",
                     retry ? " autofocus" : "") < 0)
                return NULL;
        return page;
}

static const char step_format[] =
        PAGE_HEAD
        "%s"
        "<form method=\"post\" action=\"%s\">\n"
        "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
        "<input type=\"hidden\" name=\"step\" value=\"%s\">\n"
        "<input type=\"hidden\" name=\"rd\" value=\"%s\">\n"
        "%s"
        "<button type=\"submit\">Continue</button>\n"
        "</form>\n"
        "<p><a href=\"%s?rd=%s\">Start again</a></p>\n"
        "</main>\n"
        "</body>\n"
        "</html>\n";

static const char expired_format[] =
        PAGE_HEAD
        "<p class=\"error\" role=\"alert\" id=\"error\">This %s has expired or was already used. Please start again.</p>\n"
        "<p><a id=\"start-again\" href=\"%s?rd=%s\">Start again</a></p>\n"
        "</main>\n"
        "</body>\n"
        "</html>\n";

/* Appends the HTML of one prompt to *html (realloc'd). */
static int append_prompt(char **html, size_t *n_fields, const struct http_prompt *p) {
        _cleanup_free_ char *m = http_html_escape(p->message ? p->message : "");
        _cleanup_free_ char *piece = NULL;
        const char *style = p->style ? p->style : "";
        bool secret = streq(style, "secret");
        int k;

        if (!m)
                return -1;
        if (secret || streq(style, "text")) {
                /* The first field gets the focus; a secret is never echoed. */
                k = asprintf(&piece,
                             "<label for=\"answer%zu\">%s</label>\n"
                             "<input id=\"answer%zu\" name=\"answer%zu\" type=\"%s\" autocomplete=\"%s\" "
                             "autocapitalize=\"none\" spellcheck=\"false\"%s>\n",
                             *n_fields, m, *n_fields, *n_fields, secret ? "password" : "text",
                             http_prompt_autocomplete(style, p->message), *n_fields == 0 ? " autofocus" : "");
                (*n_fields)++;
        } else if (streq(style, "error"))
                k = asprintf(&piece, "<p class=\"error\" role=\"alert\">%s</p>\n", m);
        else
                k = asprintf(&piece, "<p class=\"info\" role=\"status\">%s</p>\n", m);
        if (k < 0)
                return -1;
        size_t old = *html ? strlen(*html) : 0, add = strlen(piece);
        char *n = realloc(*html, old + add + 1);
        if (!n)
                return -1;
        memcpy(n + old, piece, add + 1);
        *html = n;
        return 0;
}

char *http_step_page(const struct http_step_form *f, const struct http_prompt *prompts, size_t n_prompts) {
        _cleanup_free_ char *t = http_html_escape(f->title ? f->title : "Sign in");
        _cleanup_free_ char *a = http_html_escape(f->action);
        _cleanup_free_ char *sp = http_html_escape(f->start_path);
        _cleanup_free_ char *r = http_html_escape(f->rd ? f->rd : "/");
        _cleanup_free_ char *q = http_query_encode(f->rd ? f->rd : "/");
        _cleanup_free_ char *qe = q ? http_html_escape(q) : NULL;
        _cleanup_free_ char *c = http_html_escape(f->csrf ? f->csrf : "");
        _cleanup_free_ char *s = http_html_escape(f->step ? f->step : "");
        _cleanup_free_ char *note = NULL;
        _cleanup_free_ char *fields = strdup("");
        size_t n_fields = 0;
        char *page = NULL;

        if (!t || !a || !sp || !r || !qe || !c || !s || !fields)
                return NULL;
        if (f->note) {
                _cleanup_free_ char *m = http_html_escape(f->note);
                if (!m || asprintf(&note, "<p class=\"info\" id=\"note\">%s</p>\n", m) < 0)
                        return NULL;
        }
        for (size_t i = 0; i < n_prompts; i++)
                if (append_prompt(&fields, &n_fields, &prompts[i]) < 0)
                        return NULL;
        if (asprintf(&page, step_format, t, t, note ? note : "", a, c, s, r, fields, sp, qe) < 0)
                return NULL;
        return page;
}

char *http_step_expired_page(const char *title, const char *what, const char *start_path, const char *rd) {
        _cleanup_free_ char *t = http_html_escape(title ? title : "Sign in");
        _cleanup_free_ char *w = http_html_escape(what);
        _cleanup_free_ char *sp = http_html_escape(start_path);
        _cleanup_free_ char *q = http_query_encode(rd ? rd : "/");
        _cleanup_free_ char *qe = q ? http_html_escape(q) : NULL;
        char *page = NULL;

        if (!t || !w || !sp || !qe)
                return NULL;
        if (asprintf(&page, expired_format, t, t, w, sp, qe) < 0)
                return NULL;
        return page;
}

static const char any_format[] =
        PAGE_HEAD
        "%s"
        "</main>\n"
        "</body>\n"
        "</html>\n";

char *http_page(const char *title, const char *body) {
        _cleanup_free_ char *t = http_html_escape(title ? title : "Sign in");
        char *page = NULL;

        if (!t)
                return NULL;
        /* Formatted into an exact-size buffer: the body may carry a secret
         * (the QR code page's key), and asprintf() frees unwiped copies of
         * what it has formatted so far as its buffer grows. */
        int n = snprintf(NULL, 0, any_format, t, t, body ? body : "");
        if (n < 0 || !(page = malloc((size_t) n + 1)))
                return NULL;
        if (snprintf(page, (size_t) n + 1, any_format, t, t, body ? body : "") != n) {
                free(page);
                return NULL;
        }
        return page;
}

static const char password_start_format[] =
        "<form method=\"post\" action=\"/password\">\n"
        "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
        "<input type=\"hidden\" name=\"rd\" value=\"%s\">\n"
        "<button type=\"submit\" autofocus>Change password</button>\n"
        "</form>\n";

char *http_password_page(const char *user, const char *rd, const char *csrf, const char *error, bool can_start) {
        _cleanup_free_ char *u = http_html_escape(user ? user : "");
        _cleanup_free_ char *r = http_html_escape(rd ? rd : "/");
        _cleanup_free_ char *c = http_html_escape(csrf ? csrf : "");
        _cleanup_free_ char *e = error ? http_html_escape(error) : NULL;
        _cleanup_free_ char *error_html = NULL, *who = NULL, *form = NULL, *body = NULL;

        if (!u || !r || !c || (error && !e))
                return NULL;
        if (asprintf(&error_html, e ? "<p class=\"error\" role=\"alert\" id=\"error\">%s</p>\n" : "%s",
                     e ? e : "") < 0)
                return NULL;
        /* No name when latchd could not say whose session it is. */
        if (user ? asprintf(&who, "<p>Signed in as <strong id=\"user\">%s</strong>.</p>\n", u) < 0
                 : !(who = strdup("")))
                return NULL;
        if (can_start ? asprintf(&form, password_start_format, c, r) < 0 : !(form = strdup("")))
                return NULL;
        if (asprintf(&body, "%s%s%s<p><a id=\"back\" href=\"%s\">Back</a></p>\n", error_html, who, form, r) < 0)
                return NULL;
        return http_page(HTTP_PASSWORD_TITLE, body);
}

char *http_password_done_page(const char *user, const char *rd, int64_t revoked) {
        _cleanup_free_ char *u = http_html_escape(user ? user : "");
        _cleanup_free_ char *r = http_html_escape(rd ? rd : "/");
        _cleanup_free_ char *sessions = NULL, *body = NULL;

        if (!u || !r)
                return NULL;
        if (revoked > 0) {
                if (asprintf(&sessions, "This session stays signed in; %lld other session%s of this account %s "
                             "signed out.", (long long) revoked, revoked == 1 ? "" : "s",
                             revoked == 1 ? "was" : "were") < 0)
                        return NULL;
        } else if (!(sessions = strdup("This session stays signed in.")))
                return NULL;
        if (asprintf(&body,
                     "<p class=\"info\" role=\"status\" id=\"done\">The password of <strong id=\"user\">%s</strong> "
                     "has been changed.</p>\n"
                     "<p id=\"revoked\">%s</p>\n"
                     "<p><a id=\"continue\" href=\"%s\">Continue</a></p>\n",
                     u, sessions, r) < 0)
                return NULL;
        return http_page("Password changed", body);
}
