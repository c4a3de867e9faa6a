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
#include <time.h>

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

/*
 * `s` percent-encoded for use as one query value: every byte but the
 * unreserved ones of RFC 3986 (letters, digits, "-._~") and "/" becomes
 * %XX, so that "&", "=", "?", "#", "+" and "%" of the original survive a
 * round trip through a query string. Returns a new string (free(3)) or
 * NULL when out of memory.
 */
char *http_query_encode(const char *s);

/*
 * `s`, a string a client chose (a user name, a header, a message that may
 * quote one), quoted for a log line: between single quotes, with "'" and
 * "\" escaped by a backslash, control bytes (C0, DEL) as \n, \t or \xHH,
 * invalid UTF-8 bytes as \xHH, and C1 controls, U+2028, U+2029 and the
 * bidirectional overrides (U+202A..U+202E, U+2066..U+2069) as \uXXXX: the
 * result is printable ASCII and valid UTF-8 that cannot end the quote or
 * the line, or make text after it read differently. NULL gives "(none)"
 * without quotes. Writes at most `size` bytes, NUL included, and marks a
 * cut with "..." inside the quotes. Returns `buf`.
 */
char *http_log_quote(const char *s, char *buf, size_t size);

/* The time `t` as ISO 8601 UTC, "2026-05-01T12:00:00Z", into buf (at
 * least 21 bytes). Returns `buf`. */
char *http_log_time(time_t t, char *buf, size_t size);

/*
 * The autocomplete hint of the field for a prompt of a login step, from its
 * style (`secret` or `text`) and message, for password managers and phones:
 * "new-password" when the message asks for a new password (a password that
 * is new, retyped, repeated or confirmed), "one-time-code" when it asks for
 * a code (a code, one-time password, OTP, OATH, PIN or token) or any other
 * secret (the password came first, on the login form), "current-password"
 * when it asks for the password, else "off". Case-insensitive; NULL
 * message: as empty.
 */
const char *http_prompt_autocomplete(const char *style, const char *message);

/* Whether a prompt of a step asks for a new password: a `secret` or
 * `text` prompt whose autocomplete hint is "new-password". A step with one
 * is a password change (an expired password inside a login, or the
 * password page), and is titled so. */
bool http_prompt_asks_new_password(const char *style, const char *message);
