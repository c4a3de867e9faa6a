/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The security decisions of latch-http, as pure functions (no I/O, no
 * state, thread-safe) so that unit tests can hold them: where a login may
 * redirect to, whose Origin may post a form, which address is the client's,
 * and how a form body and HTML text are decoded and escaped.
 */

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether `rd` may be the target of the redirect after a login: a path on
 * this site, never another one. Accepted: starts with a single '/', not
 * "//" or "/\" (both mean another host to a browser), no backslash at all,
 * no control character, blank or non-ASCII byte (browsers drop tabs and
 * newlines from URLs, which would turn "/\t/evil" into "//evil"), at most
 * 2048 bytes. NULL is not safe.
 */
bool http_redirect_is_safe(const char *rd);

/*
 * Whether a state-changing request comes from a page of this site.
 * `origin` is the Origin header (NULL when absent), `referer` the Referer
 * header, `host` the Host header, `sec_fetch_site` the Sec-Fetch-Site
 * header. With allowed origins configured, Origin (or, when the browser
 * sent none, the scheme and host of Referer) must equal one of them; with
 * none configured, its host part must equal `host`. A request with neither
 * Origin nor Referer passes only with Sec-Fetch-Site "same-origin"; one
 * with Sec-Fetch-Site "cross-site" or "same-site" never passes.
 */
bool http_origin_is_allowed(char *const *allowed, size_t n_allowed, const char *origin, const char *referer,
                            const char *host, const char *sec_fetch_site);

/*
 * The client's address from the trusted proxy header's value: for a list
 * (X-Forwarded-For), the last element, which the nearest proxy (nginx's
 * $proxy_add_x_forwarded_for) appended. Only characters of IPv4 and IPv6
 * addresses are accepted (digits, hex letters, '.', ':', '[', ']'), at
 * most 63 bytes. Returns 0 and the address in ret_buf (NUL-terminated),
 * or -EINVAL (NULL, empty or malformed: the caller then sends no remote)
 * or -ENOBUFS.
 */
int http_remote_from_header(const char *value, char *ret_buf, size_t size);

/*
 * The value of field `key` in an application/x-www-form-urlencoded body of
 * `len` bytes (no NUL needed): '+' is a blank and %XX a byte. The first
 * field named `key` wins. Returns 0 and a new NUL-terminated string in
 * *ret (it may be a password: release with secret_free()), -ENOENT when
 * absent, -EINVAL when the value is not valid (bad escape, a NUL byte), or
 * -ENOMEM.
 */
int http_form_get(const char *body, size_t len, const char *key, char **ret);

/* `s` escaped for HTML text and attribute values (& < > " '). Returns a new
 * string (free(3)) or NULL when out of memory. */
char *http_html_escape(const char *s);

/* Whether `s` may be sent as an HTTP header value: printable ASCII and
 * blanks, no CR, LF or other control byte, at most 4096 bytes. */
bool http_header_value_is_safe(const char *s);
