# SPDX-License-Identifier: MIT
"""The typed calls, shared by Client, AsyncClient and pipelines: each
builds (op, arguments) and hands it to ``self._op``."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence


class Ops:
    """Mixin: one method per op of the wire protocol. ``_op(op, args)``
    returns the results dict (or an awaitable of it, or queues it)."""

    def _op(self, op: str, args: Dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, op: str, **args: Any) -> Any:
        """Any op by name (also ones this version does not know); None
        arguments are left out. Retried like the typed calls, by name."""
        return self._op(op, args)

    def hello(self) -> Any:
        """op "hello": ``version``, ``server``."""
        return self._op("hello", {})

    def authenticate(self, service: str, user: str, password: Optional[str] = None,
                     remote: Optional[str] = None) -> Any:
        """op "authenticate": runs the stack, makes no session: ``user``,
        ``claims``. May raise Challenge (answer with respond())."""
        return self._op("authenticate", {"service": service, "user": user, "password": password,
                                         "remote": remote})

    def login(self, service: str, user: str, password: Optional[str] = None, *,
              remote: Optional[str] = None, token: bool = False, audience: Optional[str] = None) -> Any:
        """op "login": ``session`` (secret: the cookie's value), ``handle``,
        ``user``, ``service``, ``expires_at``, ``idle_expires_at``, and with
        token=True ``token``, ``token_expires_at``. May raise Challenge."""
        return self._op("login", {"service": service, "user": user, "password": password,
                                  "remote": remote, "token": True if token else None,
                                  "audience": audience})

    def validate(self, session: str, service: Optional[str] = None) -> Any:
        """op "validate": ``user``, ``service``, ``handle``, ``created_at``,
        ``expires_at``, ``idle_expires_at``, ``claims``. Slides the idle
        expiry. Raises InvalidSession for a dead session."""
        return self._op("validate", {"session": session, "service": service})

    def logout(self, session: str) -> Any:
        """op "logout": ends the session for good."""
        return self._op("logout", {"session": session})

    def token(self, session: str, audience: Optional[str] = None) -> Any:
        """op "token": a fresh JWT for the session: ``token``, ``expires_at``."""
        return self._op("token", {"session": session, "audience": audience})

    def verify(self, token: str, audience: Optional[str] = None) -> Any:
        """op "verify": latchd checks the token and that its session is
        live: ``claims``. (Offline: latch.Verifier.)"""
        return self._op("verify", {"token": token, "audience": audience})

    def jwks(self) -> Any:
        """op "jwks": ``keys`` (the dict is the JWKS)."""
        return self._op("jwks", {})

    def sessions_list(self, user: Optional[str] = None, service: Optional[str] = None) -> Any:
        """op "sessions.list" (admin): ``sessions``, ``truncated``."""
        return self._op("sessions.list", {"user": user, "service": service})

    def sessions_revoke(self, handle: Optional[str] = None, user: Optional[str] = None) -> Any:
        """op "sessions.revoke" (admin): exactly one of handle/user; ``revoked``."""
        if (handle is None) == (user is None):
            raise ValueError("give exactly one of handle or user")
        return self._op("sessions.revoke", {"handle": handle, "user": user})

    def keys_rotate(self) -> Any:
        """op "keys.rotate" (admin): ``kid``."""
        return self._op("keys.rotate", {})

    def stats(self) -> Any:
        """op "stats" (admin): counters and gauges."""
        return self._op("stats", {})

    def reload(self) -> Any:
        """op "reload" (admin): reloads latchd's configuration."""
        return self._op("reload", {})

    def respond(self, conversation: str, answers: Sequence[str]) -> Any:
        """op "respond": answers a Challenge (one string per secret/text
        prompt). Returns what the op that started the conversation returns,
        or raises its error, InvalidConversation, or the next Challenge."""
        return self._op("respond", {"conversation": conversation, "answers": list(answers)})

    def passwd(self, service: str, user: str, remote: Optional[str] = None, *,
               session: Optional[str] = None) -> Any:
        """op "passwd": changes a password through the service's password
        stack. Always raises Challenge first (the current password, the new
        one twice: answer with respond()); the last respond() returns
        ``user``, ``service`` and ``revoked`` (the user's other sessions
        revoked). ``session``, the caller's own session of that user and
        service, is kept."""
        return self._op("passwd", {"service": service, "user": user, "remote": remote, "session": session})


    def plugin(self, plugin: str, action: str, *, session: Optional[str] = None, password: Optional[str] = None,
               **args: Any) -> Any:
        """op "plugin": a plugin's action (``totp`` ``status``, ``enroll``,
        ``confirm``, ``recovery``, ``remove``; ``faillock`` ``show``,
        ``reset``); returns what the action answers. ``args`` are the
        action's own and the op's (``user``, ``service``, ``code``,
        ``remote``); None ones are left out.

        Without ``session``: an administrator's call (an admin peer), e.g.
        ``plugin("totp", "status", user="alice")``. With ``session``: the
        session's user acts on their own account (self-service; ``user``
        may be left out); with ``password`` as well, the session's service
        re-authenticates them first, which may raise Challenge (further
        factors: answer with respond(), whose last answer is the action's).
        """
        if "op" in args:
            raise TypeError("'op' is not an argument of the plugin op")
        return self._op("plugin", {**args, "plugin": plugin, "action": action, "session": session,
                                   "password": password})

__all__: List[str] = ["Ops"]
