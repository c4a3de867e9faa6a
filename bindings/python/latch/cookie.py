# SPDX-License-Identifier: MIT
"""The session cookie, by liblatch's rules (RFC 6265, and the __Host-
prefix): build a Set-Cookie value, clear it, find the session in a Cookie
header. Pure functions."""

from __future__ import annotations

import re
import time
from typing import Optional

__all__ = ["DEFAULT_NAME", "build_cookie", "clear_cookie", "parse_cookie"]

DEFAULT_NAME = "__Host-latch"
_HOST_PREFIX = "__Host-"
_SESSION_MAX = 512
_SESSION_RE = re.compile(r"[A-Za-z0-9_-]{1,512}\Z")
_NAME_BAD = set('()<>@,;:\\"/[]?={}')
_DOMAIN_RE = re.compile(r"[A-Za-z0-9.-]{1,253}\Z")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _session_ok(s: str) -> bool:
    # Session ids are base64url, clear of every character with a meaning in
    # a cookie header.
    return bool(_SESSION_RE.match(s))


def _name_ok(name: str) -> bool:
    # RFC 6265 cookie-name = token: visible ASCII except separators.
    return 0 < len(name) <= 256 and all(0x20 < ord(c) < 0x7F and c not in _NAME_BAD for c in name)


def _check(name: Optional[str], same_site: Optional[str], domain: Optional[str]) -> "tuple[str, str]":
    n = DEFAULT_NAME if name is None else name
    ss = "Lax" if same_site is None else _SAME_SITE.get(same_site.lower())
    if ss is None:
        raise ValueError("same_site must be Strict, Lax or None")
    if not _name_ok(n):
        raise ValueError("the cookie name must be an RFC 6265 token")
    if domain is not None:
        # The browser drops a __Host- cookie carrying Domain.
        if n.startswith(_HOST_PREFIX):
            raise ValueError("a __Host- cookie cannot carry a Domain")
        if not _DOMAIN_RE.match(domain):
            raise ValueError("the domain must be letters, digits, '-' and '.'")
    return n, ss


def _format(name: str, value: str, max_age: int, same_site: str, domain: Optional[str]) -> str:
    s = f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite={same_site}"
    return s + (f"; Domain={domain}" if domain is not None else "")


def build_cookie(session: str, expires_at: int, now: Optional[int] = None, *, name: Optional[str] = None,
                 same_site: Optional[str] = None, domain: Optional[str] = None) -> str:
    """The Set-Cookie value carrying ``session``:
    ``NAME=SESSION; Max-Age=N; Path=/; Secure; HttpOnly; SameSite=Lax[; Domain=D]``
    with N = expires_at - now (0 once expired, which deletes the cookie).
    ``name`` defaults to "__Host-latch", ``same_site`` to "Lax". Raises
    ValueError for a session that is not 1-512 base64url characters, a bad
    name, SameSite or domain, or a domain with a __Host- name."""
    if not isinstance(session, str) or not _session_ok(session):
        raise ValueError("the session id must be 1 to 512 base64url characters")
    n, ss = _check(name, same_site, domain)
    if not now:
        now = int(time.time())
    max_age = expires_at - now if expires_at > now else 0
    return _format(n, session, max_age, ss, domain)


def clear_cookie(*, name: Optional[str] = None, same_site: Optional[str] = None,
                 domain: Optional[str] = None) -> str:
    """The Set-Cookie value that removes the cookie (empty, Max-Age=0)."""
    n, ss = _check(name, same_site, domain)
    return _format(n, "", 0, ss, domain)


def parse_cookie(header: Optional[str], name: Optional[str] = None) -> Optional[str]:
    """The session id in a Cookie header ("a=1; NAME=ID"), or None.

    Pairs split at ';', blanks around names and values ignored, a value in
    double quotes unquoted, names compared exactly; the first pair with the
    name whose value is a well-formed session id wins, malformed ones are
    skipped. Raises ValueError for a bad name."""
    n = DEFAULT_NAME if name is None else name
    if not _name_ok(n):
        raise ValueError("the cookie name must be an RFC 6265 token")
    if not header:
        return None
    for part in header.split(";"):
        k, eq, v = part.partition("=")
        if not eq:
            continue
        v = v.strip(" \t")
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        if k.strip(" \t") == n and _session_ok(v):
            return v
    return None
