# SPDX-License-Identifier: MIT
"""WSGI middleware: every request must carry a live latch session.

    from latch.wsgi import LatchMiddleware
    app = LatchMiddleware(app, service="wiki", login_path="/login", public=["/login", "/static/"])

For a request with a valid session cookie it sets ``environ["latch.session"]``
(validate's results: ``user``, ``claims``, ``handle``, ...) and
``REMOTE_USER``; without one it answers 303 to ``login_path`` (with
``?next=``) or 401, and 503 when latchd cannot answer. Paths in ``public``
(exact, or prefixes ending in "/") pass without a session, with
``latch.session`` set when there is one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from . import _web
from .client import Client
from .cookie import parse_cookie
from .errors import InvalidSession

__all__ = ["LatchMiddleware", "session_from_environ"]


def session_from_environ(environ: Dict[str, Any], client: Client, service: Optional[str] = None,
                         cookie_name: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """validate's results for the request's session cookie, or None when
    there is no cookie or the session is dead. Raises Unavailable & co."""
    sid = parse_cookie(environ.get("HTTP_COOKIE"), cookie_name)
    if sid is None:
        return None
    try:
        info = client.validate(sid, service)
    except InvalidSession:
        return None
    info["session"] = sid
    return info


class LatchMiddleware:
    """Wraps a WSGI app; see the module's docstring."""

    def __init__(self, app: Callable, client: Optional[Client] = None, *, service: Optional[str] = None,
                 cookie_name: Optional[str] = None, login_path: Optional[str] = None,
                 public: Iterable[str] = ()) -> None:
        self.app = app
        self.client = client or Client()
        self.service = service
        self.cookie_name = cookie_name
        self.login_path = login_path
        self.public = tuple(public) + ((login_path,) if login_path else ())

    def __call__(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        try:
            info = session_from_environ(environ, self.client, self.service, self.cookie_name)
        except _web.UNAVAILABLE as e:
            status, headers, body = _web.unavailable(e)
            start_response(status, headers)
            return [body]
        path = environ.get("PATH_INFO", "") or "/"
        if info is not None:
            environ["latch.session"] = info
            environ["REMOTE_USER"] = info["user"]
        elif not _web.is_public(path, self.public):
            status, headers, body = _web.refusal(environ.get("SCRIPT_NAME", "") + path,
                                                 environ.get("QUERY_STRING", ""), self.login_path)
            start_response(status, headers)
            return [body]
        return self.app(environ, start_response)
