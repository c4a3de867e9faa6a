# SPDX-License-Identifier: MIT
"""What the web helpers share: which paths are public, where a refused
request goes, which redirect targets are safe."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple
from urllib.parse import quote

from .errors import ClientError, Internal, LatchError, Unavailable

# Failures that mean "latch cannot answer now", not "this user is not
# logged in": a 503, never a login page.
UNAVAILABLE = (Unavailable, Internal, ClientError)


def is_public(path: str, public: Iterable[str]) -> bool:
    for p in public:
        if p.endswith("/") and path.startswith(p):
            return True
        if path == p:
            return True
    return False


def safe_next(target: Optional[str], default: str = "/") -> str:
    """A local path to go back to after login: only "/..." and never
    "//host" or "/\\host" (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return default
    if any(ord(c) < 0x20 for c in target):
        return default
    return target


def refusal(path: str, query: str, login_path: Optional[str]) -> Tuple[str, list, bytes]:
    """Status, headers and body for a request without a valid session."""
    if login_path:
        target = path + ("?" + query if query else "")
        loc = login_path + "?next=" + quote(target, safe="")
        return "303 See Other", [("Location", loc), ("Content-Type", "text/plain"), ("Cache-Control", "no-store")], \
            b"login required\n"
    return "401 Unauthorized", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")], b"login required\n"


def unavailable(e: LatchError) -> Tuple[str, list, bytes]:
    return "503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")], \
        b"authentication is unavailable; try again later\n"
