/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes what latch-http parses from a request before anything reaches
 * latchd: the Cookie header (liblatch's latch_cookie_parse), the form body
 * (http_form_get), the redirect target rd (http_redirect_is_safe, its
 * encoding for /login-redirect), the client's address header, Origin
 * checks, the step form's fields and a prompt's autocomplete hint, and the escaping of all of these for pages and log lines.
 *
 * Input: up to four parts split at NUL bytes: a Cookie header, a form
 * body, an rd value, a header value (address, Origin). Beyond not
 * crashing, each function's promises are checked and a broken one aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "latch/latch.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARTS 4

static void check(bool ok) {
        if (!ok)
                abort();
}

static void release(char *s) {
        if (s) {
                memset(s, 0, strlen(s));
                free(s);
        }
}

static bool is_base64url(const char *s) {
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_'))
                        return false;
        return true;
}

/* A log field may not break the line or the quote, nor hold a byte a
 * terminal or a log viewer reads as a control. */
static void check_log_quote(const char *in) {
        char buf[128];
        http_log_quote(in, buf, sizeof buf);
        size_t n = strlen(buf);
        check(n >= 2 && n < sizeof buf && buf[0] == '\'' && buf[n - 1] == '\'');
        for (size_t i = 1; i + 1 < n; i++) {
                unsigned char c = (unsigned char) buf[i];
                check(c >= 0x20 && c != 0x7f);
                if (c == '\'')
                        check(buf[i - 1] == '\\');
                /* U+2028/U+2029 and the C1 controls are never left raw. */
                if (c == 0xe2 && (unsigned char) buf[i + 1] == 0x80)
                        check((unsigned char) buf[i + 2] < 0xa8 || (unsigned char) buf[i + 2] > 0xae);
                if (c == 0xc2)
                        check((unsigned char) buf[i + 1] > 0x9f);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *part[PARTS] = { "", "", "", "" };
        size_t len[PARTS] = {};
        char *copy = malloc(size + 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        copy[size] = '\0';

        /* Split at NULs: each part is then a C string; the body keeps its length. */
        size_t k = 0, start = 0;
        for (size_t i = 0; i <= size && k < PARTS; i++)
                if (i == size || copy[i] == '\0') {
                        part[k] = copy + start;
                        len[k] = i - start;
                        k++;
                        start = i + 1;
                }

        /* The cookie: a session id found is always well-formed. */
        char *session = NULL;
        if (latch_cookie_parse(part[0], "__Host-latch", &session) == LATCH_OK) {
                check(session && *session && strlen(session) <= 512 && is_base64url(session));
                check(strstr(part[0], session) != NULL);
        }
        release(session);

        /* The form: every field latch-http reads, and what a decoded value may hold. */
        static const char *const keys[] = { "csrf", "user", "password", "rd", "step", "answer0", "answer1" };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                char *v = NULL;
                int r = http_form_get(part[1], len[1], keys[i], &v);
                check(r == 0 || r == -ENOENT || r == -EINVAL || r == -ENOMEM);
                if (r == 0) {
                        check(v != NULL && strlen(v) <= len[1]);
                        check_log_quote(v);
                        char *h = http_html_escape(v);
                        check(h && !strpbrk(h, "<>\"'"));
                        free(h);
                }
                release(v);
        }

        /* rd: a safe target is a path on this site, and its encoding comes
         * back whole through a query string. */
        const char *rd = part[2];
        if (http_redirect_is_safe(rd)) {
                check(rd[0] == '/' && rd[1] != '/' && rd[1] != '\\' && !strpbrk(rd, " \t\r\n\\"));
                char *enc = http_query_encode(rd);
                check(enc != NULL);
                check(!strpbrk(enc, "&=?#+ "));
                size_t n = strlen(enc);
                char *query = malloc(n + 8);
                if (query) {
                        memcpy(query, "a=1&rd=", 7);
                        memcpy(query + 7, enc, n + 1);
                        char *back = NULL;
                        check(http_form_get(query, n + 7, "rd", &back) == 0);
                        check(strcmp(back, rd) == 0);
                        release(back);
                        free(query);
                }
                free(enc);
        }

        /* The address and Origin headers. */
        char addr[64];
        if (http_remote_from_header(part[3], addr, sizeof addr) == 0) {
                check(*addr && strspn(addr, "0123456789abcdefABCDEF.:[]") == strlen(addr));
                check_log_quote(addr);
        }
        char *const allowed[] = { (char *) "https://app.example" };
        bool a = http_origin_is_allowed(allowed, 1, part[3], NULL, "app.example", NULL);
        bool b = http_origin_is_allowed(NULL, 0, part[3], part[2], "app.example", part[0]);
        if (a)
                check(strcasecmp(part[3], "https://app.example") == 0);
        /* A cross-site fetch never passes, whatever else it carries. */
        if (strcasecmp(part[0], "cross-site") == 0)
                check(!b);
        check_log_quote(part[3]);

        /* A prompt's message (latchd's, from a plugin): its field's
         * autocomplete hint is always one of four fixed words. */
        const char *hint = http_prompt_autocomplete(part[0], part[3]);
        check(strcmp(hint, "new-password") == 0 || strcmp(hint, "current-password") == 0 ||
              strcmp(hint, "one-time-code") == 0 || strcmp(hint, "off") == 0);
        /* A prompt titles its step a password change only when its field
         * is a new password's. */
        if (http_prompt_asks_new_password(part[0], part[3]))
                check(strcmp(hint, "new-password") == 0 &&
                      (strcmp(part[0], "secret") == 0 || strcmp(part[0], "text") == 0));
        if (http_header_value_is_safe(part[3]))
                check(!strpbrk(part[3], "\r\n") && strlen(part[3]) <= 4096);

        free(copy);
        return 0;
}
