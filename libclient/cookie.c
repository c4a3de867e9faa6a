/* SPDX-License-Identifier: MIT */
/*
 * The session cookie (RFC 6265 and the __Host- prefix of RFC 6265bis):
 * building Set-Cookie values and finding the session id in a Cookie header.
 * Pure functions, no I/O.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "latch/latch.h"
#include "macro.h"
#include "secret.h"

#define COOKIE_DEFAULT_NAME "__Host-latch"
#define COOKIE_HOST_PREFIX "__Host-"
#define SESSION_MAX 512

static bool is_base64url(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Session ids are base64url, which also keeps them clear of every
 * character with a meaning in a cookie header. */
static bool session_is_valid(const char *s, size_t n) {
        if (n == 0 || n > SESSION_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_base64url(s[i]))
                        return false;
        return true;
}

/* RFC 6265 cookie-name = token (RFC 2616): visible ASCII except separators. */
static bool cookie_name_is_valid(const char *name) {
        if (!*name || strlen(name) > 256)
                return false;
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
                        return false;
        }
        return true;
}

/* Letters, digits, '-' and '.', as a host name; a leading dot is allowed
 * (browsers ignore it). */
static bool domain_is_valid(const char *d) {
        if (!*d || strlen(d) > 253)
                return false;
        for (const char *p = d; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                        return false;
        return true;
}

static const char *same_site_canonical(const char *s) {
        static const char *const values[] = { "Strict", "Lax", "None" };

        if (!s)
                return "Lax";
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                if (strcasecmp(s, values[i]) == 0)
                        return values[i];
        return NULL;
}

/* Checks the shared arguments; sets the effective name and SameSite. */
static int cookie_check(const char **name, const char **same_site, const char *domain) {
        const char *n = *name ? *name : COOKIE_DEFAULT_NAME;
        const char *ss = same_site_canonical(*same_site);

        assert_return(ss, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(cookie_name_is_valid(n), LATCH_ERR_INVALID_ARGUMENT);
        if (domain) {
                /* The browser drops a __Host- cookie carrying Domain. */
                assert_return(strncmp(n, COOKIE_HOST_PREFIX, strlen(COOKIE_HOST_PREFIX)) != 0,
                              LATCH_ERR_INVALID_ARGUMENT);
                assert_return(domain_is_valid(domain), LATCH_ERR_INVALID_ARGUMENT);
        }
        *name = n;
        *same_site = ss;
        return LATCH_OK;
}

#define COOKIE_FORMAT "%s=%s; Max-Age=%" PRId64 "; Path=/; Secure; HttpOnly; SameSite=%s%s%s"

/* Formats into one exactly-sized buffer (the value may be a session id, so
 * no intermediate copies). */
static int cookie_format(const char *name, const char *value, int64_t max_age, const char *same_site,
                         const char *domain, char **ret) {
        const char *dprefix = domain ? "; Domain=" : "";
        const char *dvalue = domain ? domain : "";

        int n = snprintf(NULL, 0, COOKIE_FORMAT, name, value, max_age, same_site, dprefix, dvalue);
        if (n < 0)
                return LATCH_ERR_INVALID_ARGUMENT;
        char *s = malloc((size_t) n + 1);
        if (!s)
                return LATCH_ERR_NO_MEMORY;
        snprintf(s, (size_t) n + 1, COOKIE_FORMAT, name, value, max_age, same_site, dprefix, dvalue);
        *ret = s;
        return LATCH_OK;
}

_public_ int latch_cookie_build(const char *session, int64_t expires_at, int64_t now, const char *name,
                                const char *same_site, const char *domain, char **ret_value) {
        int r;

        assert_return(session && ret_value, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(session_is_valid(session, strlen(session)), LATCH_ERR_INVALID_ARGUMENT);
        r = cookie_check(&name, &same_site, domain);
        if (r != LATCH_OK)
                return r;

        if (now == 0)
                now = (int64_t) time(NULL);
        /* An already expired session gets Max-Age=0, which deletes the
         * cookie: the browser then holds what latchd would answer. */
        int64_t max_age = expires_at > now ? expires_at - now : 0;

        return cookie_format(name, session, max_age, same_site, domain, ret_value);
}

_public_ int latch_cookie_build_clear(const char *name, const char *same_site, const char *domain, char **ret_value) {
        int r;

        assert_return(ret_value, LATCH_ERR_INVALID_ARGUMENT);
        r = cookie_check(&name, &same_site, domain);
        if (r != LATCH_OK)
                return r;
        return cookie_format(name, "", 0, same_site, domain, ret_value);
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

_public_ int latch_cookie_parse(const char *cookie_header, const char *name, char **ret_session) {
        assert_return(ret_session, LATCH_ERR_INVALID_ARGUMENT);
        if (!name)
                name = COOKIE_DEFAULT_NAME;
        assert_return(cookie_name_is_valid(name), LATCH_ERR_INVALID_ARGUMENT);
        if (!cookie_header)
                return LATCH_ERR_INVALID_SESSION;

        size_t name_len = strlen(name);
        const char *p = cookie_header;

        while (*p) {
                const char *end = strchrnul(p, ';');
                const char *k = p, *eq;

                while (k < end && is_blank(*k))
                        k++;
                eq = memchr(k, '=', (size_t) (end - k));
                if (eq) {
                        const char *ke = eq, *v = eq + 1, *ve = end;

                        while (ke > k && is_blank(ke[-1]))
                                ke--;
                        while (v < ve && is_blank(*v))
                                v++;
                        while (ve > v && is_blank(ve[-1]))
                                ve--;
                        /* RFC 6265: cookie-value may sit in one pair of DQUOTEs. */
                        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                                v++;
                                ve--;
                        }

                        if ((size_t) (ke - k) == name_len && memcmp(k, name, name_len) == 0 &&
                            session_is_valid(v, (size_t) (ve - v))) {
                                char *s = secret_strndup(v, (size_t) (ve - v));
                                if (!s)
                                        return LATCH_ERR_NO_MEMORY;
                                *ret_session = s;
                                return LATCH_OK;
                        }
                }
                p = *end ? end + 1 : end;
        }
        return LATCH_ERR_INVALID_SESSION;
}
