/* SPDX-License-Identifier: MIT */
/* latch-http's security decisions (see policy.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "policy.h"
#include "secret.h"
#include "utf8.h"

#define REDIRECT_MAX 2048

bool http_redirect_is_safe(const char *rd) {
        if (!rd || rd[0] != '/')
                return false;
        /* "//host" and "/\host" are network-path references to browsers. */
        if (rd[1] == '/' || rd[1] == '\\')
                return false;
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *) rd; *p; p++, n++) {
                if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
                        return false;
                if (n >= REDIRECT_MAX)
                        return false;
        }
        return true;
}

/* The "host[:port]" of an origin or URL "scheme://host[:port][/...]";
 * NULL for other schemes. Sets *ret_len. */
static const char *url_host(const char *url, size_t *ret_len) {
        const char *h;

        if (strncasecmp(url, "https://", 8) == 0)
                h = url + 8;
        else if (strncasecmp(url, "http://", 7) == 0)
                h = url + 7;
        else
                return NULL;
        size_t n = strcspn(h, "/?#");
        if (n == 0 || memchr(h, '@', n))
                return NULL;
        *ret_len = n;
        return h;
}

/* The "scheme://host[:port]" prefix length of a URL, 0 if not one. */
static size_t url_origin_len(const char *url) {
        size_t n;
        const char *h = url_host(url, &n);
        return h ? (size_t) (h - url) + n : 0;
}

static bool origin_matches(char *const *allowed, size_t n_allowed, const char *o, size_t o_len, const char *host) {
        if (n_allowed > 0) {
                for (size_t i = 0; i < n_allowed; i++)
                        if (strlen(allowed[i]) == o_len && strncasecmp(allowed[i], o, o_len) == 0)
                                return true;
                return false;
        }
        size_t hn;
        const char *h = url_host(o, &hn);
        if (!h || !host || hn > o_len)
                return false;
        return strlen(host) == hn && strncasecmp(host, h, hn) == 0;
}

bool http_origin_is_allowed(char *const *allowed, size_t n_allowed, const char *origin, const char *referer,
                            const char *host, const char *sec_fetch_site) {
        if (sec_fetch_site && (strcasecmp(sec_fetch_site, "cross-site") == 0 ||
                               strcasecmp(sec_fetch_site, "same-site") == 0))
                return false;
        /* "null" is what a sandboxed frame or a redirect chain sends: never ours. */
        if (origin)
                return !streq(origin, "null") && url_origin_len(origin) == strlen(origin) &&
                       origin_matches(allowed, n_allowed, origin, strlen(origin), host);
        if (referer) {
                size_t n = url_origin_len(referer);
                return n > 0 && origin_matches(allowed, n_allowed, referer, n, host);
        }
        return sec_fetch_site && strcasecmp(sec_fetch_site, "same-origin") == 0;
}

int http_remote_from_header(const char *value, char *ret_buf, size_t size) {
        if (!value)
                return -EINVAL;
        const char *start = strrchr(value, ',');
        start = start ? start + 1 : value;
        while (*start == ' ' || *start == '\t')
                start++;
        size_t n = strlen(start);
        while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
                n--;
        if (n == 0 || n > 63)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = start[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
                      c == ':' || c == '[' || c == ']'))
                        return -EINVAL;
        }
        if (n + 1 > size)
                return -ENOBUFS;
        memcpy(ret_buf, start, n);
        ret_buf[n] = '\0';
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes `n` bytes of a urlencoded name or value into out (room for n + 1). */
static int form_decode(const char *in, size_t n, char *out) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if (c == '+')
                        c = ' ';
                else if (c == '%') {
                        if (i + 2 >= n)
                                return -EINVAL;
                        int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        i += 2;
                }
                if (c == '\0')
                        return -EINVAL;
                out[o++] = c;
        }
        out[o] = '\0';
        return 0;
}

int http_form_get(const char *body, size_t len, const char *key, char **ret) {
        size_t pos = 0;

        if (!body || !key || !ret)
                return -EINVAL;
        while (pos < len) {
                const char *field = body + pos;
                const char *amp = memchr(field, '&', len - pos);
                size_t flen = amp ? (size_t) (amp - field) : len - pos;
                const char *eq = memchr(field, '=', flen);
                size_t klen = eq ? (size_t) (eq - field) : flen;

                pos += flen + 1;
                char name[64];
                if (klen >= sizeof name || form_decode(field, klen, name) < 0 || !streq(name, key))
                        continue;
                size_t vlen = eq ? flen - klen - 1 : 0;
                char *v = malloc(vlen + 1);
                if (!v)
                        return -ENOMEM;
                if (form_decode(eq ? eq + 1 : field + flen, vlen, v) < 0) {
                        sodium_memzero(v, vlen + 1);
                        free(v);
                        return -EINVAL;
                }
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

char *http_html_escape(const char *s) {
        size_t n = 1;
        for (const char *p = s; *p; p++)
                n += strchr("&<>\"'", *p) ? 6 : 1;
        char *out = malloc(n), *o = out;
        if (!out)
                return NULL;
        for (const char *p = s; *p; p++) {
                const char *e = NULL;
                switch (*p) {
                case '&': e = "&amp;"; break;
                case '<': e = "&lt;"; break;
                case '>': e = "&gt;"; break;
                case '"': e = "&quot;"; break;
                case '\'': e = "&#39;"; break;
                }
                if (e) {
                        size_t k = strlen(e);
                        memcpy(o, e, k);
                        o += k;
                } else
                        *o++ = *p;
        }
        *o = '\0';
        return out;
}

bool http_header_value_is_safe(const char *s) {
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++, n++)
                if ((*p < 0x20 && *p != '\t') || *p == 0x7f || n >= 4096)
                        return false;
        return true;
}

char *http_query_encode(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *out = malloc(3 * n + 1), *o = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                unsigned char c = *p;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c))
                        *o++ = (char) c;
                else {
                        *o++ = '%';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o = '\0';
        return out;
}

char *http_log_quote(const char *s, char *buf, size_t size) {
        size_t o = 0;

        if (size == 0)
                return buf;
        if (!s) {
                snprintf(buf, size, "(none)");
                return buf;
        }
        if (size < 8) {
                buf[0] = '\0';
                return buf;
        }
        /* Room kept at the end for "...'" and the NUL. */
        size_t limit = size - 5;
        buf[o++] = '\'';
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                char piece[16];
                uint32_t cp = 0;
                size_t n = utf8_decode((const char *) p, &cp), k;

                if (n == 0) {
                        k = (size_t) snprintf(piece, sizeof piece, "\\x%02x", *p);
                        n = 1;
                } else if (cp == '\'' || cp == '\\') {
                        piece[0] = '\\';
                        piece[1] = (char) cp;
                        k = 2;
                } else if (cp == '\n')
                        k = (size_t) snprintf(piece, sizeof piece, "\\n");
                else if (cp == '\t')
                        k = (size_t) snprintf(piece, sizeof piece, "\\t");
                else if (cp < 0x20 || cp == 0x7f)
                        k = (size_t) snprintf(piece, sizeof piece, "\\x%02x", (unsigned) cp);
                else if (utf8_cp_escaped(cp))
                        k = (size_t) snprintf(piece, sizeof piece, "\\u%04x", (unsigned) cp);
                else {
                        memcpy(piece, p, n);
                        k = n;
                }
                if (o + k > limit) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                memcpy(buf + o, piece, k);
                o += k;
                p += n;
        }
        buf[o++] = '\'';
        buf[o] = '\0';
        return buf;
}

char *http_log_time(time_t t, char *buf, size_t size) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "@%lld", (long long) t);
        return buf;
}

static bool contains_ci(const char *haystack, const char *needle) {
        size_t n = strlen(needle);
        for (const char *p = haystack; *p; p++)
                if (strncasecmp(p, needle, n) == 0)
                        return true;
        return false;
}

const char *http_prompt_autocomplete(const char *style, const char *message) {
        const char *m = message ? message : "";
        bool password = contains_ci(m, "password") || contains_ci(m, "passphrase");
        bool code = contains_ci(m, "code") || contains_ci(m, "one-time") || contains_ci(m, "otp") ||
                    contains_ci(m, "oath") || contains_ci(m, "pin") || contains_ci(m, "token");

        if (password && !code &&
            (contains_ci(m, "new") || contains_ci(m, "retype") || contains_ci(m, "repeat") ||
             contains_ci(m, "again") || contains_ci(m, "confirm")))
                return "new-password";
        /* pam_oath asks "One-time password (OATH)": a code, not the password. */
        if (code)
                return "one-time-code";
        if (password)
                return "current-password";
        /* The web form sends the password first: any other secret comes
         * after it, a second factor. */
        if (style && streq(style, "secret"))
                return "one-time-code";
        return "off";
}

bool http_prompt_asks_new_password(const char *style, const char *message) {
        return style && (streq(style, "secret") || streq(style, "text")) &&
               streq(http_prompt_autocomplete(style, message), "new-password");
}
