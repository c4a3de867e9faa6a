# SPDX-License-Identifier: MIT
"""Flask helpers: a login page (with CSRF protection and conversations), a
logout, and a ``login_required`` decorator.

    from flask import Flask
    from latch.flask import Latch, current_user

    app = Flask(__name__)
    auth = Latch(app, service="wiki")       # adds /login and /logout

    @app.route("/")
    @auth.login_required
    def index():
        return f"hello {current_user()}"

The session lives in latchd; the browser holds only its id, in the
``__Host-latch`` cookie (Secure, HttpOnly, SameSite=Lax). The login form
carries a CSRF token bound to a second cookie (double submit, compared in
constant time) and refuses a foreign ``Origin``.
"""

from __future__ import annotations

import functools
import hmac
import html
import secrets
import time
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit

from flask import Response, current_app, g, redirect, request

from . import _web
from .client import Client
from .cookie import build_cookie, clear_cookie, parse_cookie
from .errors import Challenge, Denied, InvalidConversation, InvalidSession, LatchError

__all__ = ["Latch", "current_session", "current_user"]

_CSRF_FIELD = "csrf_token"


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset=utf-8><title>" + html.escape(title) +
            "</title></head><body>" + body + "</body></html>")


def default_login_page(*, csrf: str, next: str, error: Optional[str], prompts: Optional[List[Dict[str, str]]],
                       conversation: Optional[str], action: str) -> str:
    """The login form (override with Latch(login_page=...))."""
    e = html.escape
    parts = [f'<form method="post" action="{e(action)}">',
             f'<input type="hidden" name="{_CSRF_FIELD}" value="{e(csrf)}">',
             f'<input type="hidden" name="next" value="{e(next)}">']
    if error:
        parts.insert(0, f'<p role="alert">{e(error)}</p>')
    if conversation is not None:
        parts.append(f'<input type="hidden" name="conversation" value="{e(conversation)}">')
        i = 0
        for p in prompts or []:
            if p["style"] in ("secret", "text"):
                kind = "password" if p["style"] == "secret" else "text"
                parts.append(f'<label>{e(p["message"])} <input type="{kind}" name="answer{i}" '
                             f'autocomplete="off" required></label>')
                i += 1
            else:
                parts.append(f'<p class="{e(p["style"])}">{e(p["message"])}</p>')
    else:
        parts.append('<label>User <input name="user" autocomplete="username" required></label>'
                     '<label>Password <input type="password" name="password" autocomplete="current-password" '
                     'required></label>')
    parts.append('<button type="submit">Log in</button></form>')
    return _page("Log in", "".join(parts))


def current_session() -> Optional[Dict[str, Any]]:
    """validate's results for this request's session (``user``, ``claims``,
    ``handle``, ``expires_at``, ...), or None. Validated once per request."""
    ext: "Latch" = current_app.extensions["latch"]
    return ext.session()


def current_user() -> Optional[str]:
    """The logged-in user's name, or None."""
    s = current_session()
    return s["user"] if s else None


class Latch:
    """The Flask extension. ``Latch(app, service=..., client=None,
    cookie_name=None, login_path="/login", logout_path="/logout",
    login_page=None, token=False)``; or ``Latch(service=...)`` then
    ``init_app(app)``."""

    def __init__(self, app: Any = None, *, service: str, client: Optional[Client] = None,
                 cookie_name: Optional[str] = None, csrf_cookie_name: Optional[str] = None,
                 login_path: str = "/login", logout_path: str = "/logout",
                 login_page: Callable[..., str] = default_login_page, default_next: str = "/") -> None:
        self.service = service
        self.client = client or Client()
        self.cookie_name = cookie_name
        self.csrf_cookie_name = csrf_cookie_name or (
            (cookie_name + "-csrf") if cookie_name else "__Host-latch-csrf")
        self.login_path = login_path
        self.logout_path = logout_path
        self.login_page = login_page
        self.default_next = default_next
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        app.extensions["latch"] = self
        app.add_url_rule(self.login_path, "latch_login", self._login_view, methods=["GET", "POST"])
        app.add_url_rule(self.logout_path, "latch_logout", self._logout_view, methods=["POST"])
        app.after_request(self._after)

    # -- the session -------------------------------------------------------

    def session(self) -> Optional[Dict[str, Any]]:
        """See current_session()."""
        if "latch_session" in g:
            return g.latch_session
        info = None
        sid = parse_cookie(request.headers.get("Cookie"), self.cookie_name)
        if sid is not None:
            try:
                info = self.client.validate(sid, self.service)
                info["session"] = sid
            except InvalidSession:
                info = None
        g.latch_session = info
        return info

    def login_required(self, view: Callable) -> Callable:
        """Lets the view run only for a logged-in user: others are sent to
        the login page (GET/HEAD) or get 401; 503 when latchd cannot
        answer."""
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                info = self.session()
            except _web.UNAVAILABLE as e:
                status, headers, body = _web.unavailable(e)
                return Response(body, status=status, headers=headers)
            if info is None:
                login = self.login_path if request.method in ("GET", "HEAD") else None
                status, headers, body = _web.refusal(request.script_root + request.path,
                                                     request.query_string.decode("latin-1"), login)
                return Response(body, status=status, headers=headers)
            return view(*args, **kwargs)
        return wrapper

    # -- CSRF --------------------------------------------------------------

    def _csrf_token(self) -> str:
        tok = request.cookies.get(self.csrf_cookie_name)
        if not tok or len(tok) != 43:
            tok = getattr(g, "latch_new_csrf", None) or secrets.token_urlsafe(32)
            g.latch_new_csrf = tok
        return tok

    def _csrf_ok(self) -> bool:
        # A browser sends Origin on a cross-site POST; when it does, it must
        # be this site.
        origin = request.headers.get("Origin")
        if origin and origin != "null":
            o = urlsplit(origin)
            if o.netloc != request.host or o.scheme != request.scheme:
                return False
        elif origin == "null":
            return False
        sent = request.form.get(_CSRF_FIELD, "")
        have = request.cookies.get(self.csrf_cookie_name, "")
        return bool(have) and hmac.compare_digest(sent.encode(), have.encode())

    def _render(self, status: int, error: Optional[str] = None, challenge: Optional[Challenge] = None) -> Response:
        nxt = _web.safe_next(request.values.get("next"), self.default_next)
        body = self.login_page(csrf=self._csrf_token(), next=nxt, error=error,
                               prompts=challenge.prompts if challenge else None,
                               conversation=challenge.conversation if challenge else None,
                               action=request.script_root + self.login_path)
        resp = Response(body, status=status, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    def _after(self, resp: Response) -> Response:
        new = g.pop("latch_new_csrf", None)
        if new:
            resp.headers.add("Set-Cookie", self._cookie(self.csrf_cookie_name, new, 86400))
        return resp

    def _cookie(self, name: str, value: str, max_age: int) -> str:
        # The CSRF cookie follows the session cookie's rules (no secret
        # about the user in it, but it must not be readable cross-site).
        return build_cookie(value, int(time.time()) + max_age, name=name, same_site="Strict")

    # -- views -------------------------------------------------------------

    def _login_view(self) -> Any:
        if request.method == "GET":
            return self._render(200)
        if not self._csrf_ok():
            return Response(b"cross-site request refused\n", status=403, mimetype="text/plain")
        remote = request.remote_addr
        try:
            conv = request.form.get("conversation")
            if conv is not None:
                answers = []
                while f"answer{len(answers)}" in request.form:
                    answers.append(request.form[f"answer{len(answers)}"])
                res = self.client.respond(conv, answers)
            else:
                user, password = request.form.get("user", ""), request.form.get("password", "")
                if not user or not password:
                    return self._render(400, "enter a user name and a password")
                res = self.client.login(self.service, user, password, remote=remote)
        except Challenge as c:
            return self._render(200, challenge=c)
        except (Denied, InvalidConversation):
            return self._render(401, "authentication failed")
        except _web.UNAVAILABLE as e:
            return self._render(503, "authentication is unavailable; try again later")
        except LatchError as e:
            current_app.logger.warning("latch login: %s", e.code)
            return self._render(400, "authentication failed")
        resp = redirect(_web.safe_next(request.form.get("next"), self.default_next), 303)
        resp.headers.add("Set-Cookie", build_cookie(res["session"], res["expires_at"], name=self.cookie_name))
        # A new CSRF token after login: the old one was seen logged out.
        resp.headers.add("Set-Cookie", self._cookie(self.csrf_cookie_name, secrets.token_urlsafe(32), 86400))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _logout_view(self) -> Any:
        if not self._csrf_ok():
            return Response(b"cross-site request refused\n", status=403, mimetype="text/plain")
        sid = parse_cookie(request.headers.get("Cookie"), self.cookie_name)
        if sid is not None:
            try:
                self.client.logout(sid)
            except InvalidSession:
                pass
            except _web.UNAVAILABLE:
                return Response(b"authentication is unavailable; try again later\n", status=503)
        resp = redirect(request.script_root + self.login_path, 303)
        resp.headers.add("Set-Cookie", clear_cookie(name=self.cookie_name))
        return resp

    def csrf_token(self) -> str:
        """The CSRF token for a logout form in your templates
        (``<input type=hidden name=csrf_token value=...>``); set by the login
        page, so present for any logged-in browser."""
        return self._csrf_token()
