# SPDX-License-Identifier: MIT
"""ASGI middleware: the asyncio twin of latch.wsgi.LatchMiddleware.

    from latch.asgi import LatchASGIMiddleware
    app = LatchASGIMiddleware(app, service="wiki", login_path="/login")

HTTP and WebSocket requests with a live session get ``scope["latch.session"]``
(validate's results, ``user`` among them); others get 303/401 (a WebSocket
is closed with 4401 before it is accepted), or 503 when latchd cannot
answer. Lifespan events pass through.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from . import _web
from .aio import AsyncClient
from .cookie import parse_cookie
from .errors import InvalidSession

__all__ = ["LatchASGIMiddleware"]


class LatchASGIMiddleware:
    """Wraps an ASGI app; see the module's docstring."""

    def __init__(self, app: Callable, client: Optional[AsyncClient] = None, *, service: Optional[str] = None,
                 cookie_name: Optional[str] = None, login_path: Optional[str] = None,
                 public: Iterable[str] = ()) -> None:
        self.app = app
        self.client = client or AsyncClient()
        self.service = service
        self.cookie_name = cookie_name
        self.login_path = login_path
        self.public = tuple(public) + ((login_path,) if login_path else ())

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        cookie = None
        for k, v in scope.get("headers", ()):
            if k == b"cookie":
                cookie = v.decode("latin-1") if cookie is None else cookie + "; " + v.decode("latin-1")
        info = None
        sid = parse_cookie(cookie, self.cookie_name)
        try:
            if sid is not None:
                info = await self.client.validate(sid, self.service)
                info["session"] = sid
        except InvalidSession:
            info = None
        except _web.UNAVAILABLE as e:
            return await self._answer(scope, send, *_web.unavailable(e))
        path = scope.get("root_path", "") + scope.get("path", "/")
        if info is None and not _web.is_public(scope.get("path", "/"), self.public):
            q = scope.get("query_string", b"").decode("latin-1")
            return await self._answer(scope, send, *_web.refusal(path, q, self.login_path))
        if info is not None:
            scope = dict(scope)
            scope["latch.session"] = info
        return await self.app(scope, receive, send)

    async def _answer(self, scope: Dict[str, Any], send: Callable, status: str, headers: list, body: bytes) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4503 if status.startswith("503") else 4401})
            return
        await send({"type": "http.response.start", "status": int(status.split()[0]),
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers]})
        await send({"type": "http.response.body", "body": body})
