# SPDX-License-Identifier: MIT
"""Exceptions: one class per error code of the wire protocol, and the
client-side failures liblatch also distinguishes."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

__all__ = [
    "LatchError", "BadRequest", "UnknownOp", "TooLarge", "Denied", "InvalidSession",
    "InvalidToken", "Forbidden", "UnknownService", "Unavailable", "Internal", "Challenge",
    "InvalidConversation", "ClientError", "Unreachable", "Disconnected", "Timeout",
    "ProtocolError", "error_from_reply",
]


class LatchError(Exception):
    """Base class of every error this package raises.

    ``code`` is latchd's error code ("denied", ...) for errors latchd
    answered, or the client-side name ("unreachable", "disconnected",
    "timeout", "protocol") otherwise; ``message`` is for people and logs and
    never holds a password or a session id.
    """

    code: str = "unknown"

    def __init__(self, message: str = "", code: Optional[str] = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(LatchError):
    """The request or an argument was malformed."""
    code = "bad_request"


class UnknownOp(LatchError):
    """latchd does not know the op (an older daemon)."""
    code = "unknown_op"


class TooLarge(LatchError):
    """The request was larger than latchd's max_frame."""
    code = "too_large"


class Denied(LatchError):
    """Credentials refused (unknown user, wrong password, locked: all alike)."""
    code = "denied"


class InvalidSession(LatchError):
    """The session is unknown, expired, logged out or revoked."""
    code = "invalid_session"


class InvalidToken(LatchError):
    """A token failed verification; the message names the check."""
    code = "invalid_token"


class Forbidden(LatchError):
    """This peer (the application's uid/groups) may not do this."""
    code = "forbidden"


class UnknownService(LatchError):
    """No service stack of that name."""
    code = "unknown_service"


class Unavailable(LatchError):
    """A backend failed, timed out or latchd is busy: try again later."""
    code = "unavailable"


class Internal(LatchError):
    """latchd could not do it (out of memory, cannot sign, ...)."""
    code = "internal"


class InvalidConversation(LatchError):
    """The conversation id is unknown, used, expired or another peer's."""
    code = "invalid_conversation"


class Challenge(LatchError):
    """The stack needs more input: show ``prompts`` and call
    ``Client.respond(conversation, answers)`` with one answer per
    ``secret``/``text`` prompt, in order.

    ``prompts`` is a list of ``{"style": "secret"|"text"|"info"|"error",
    "message": str}``; ``expires_at`` is Unix seconds.
    """

    code = "challenge"

    def __init__(self, message: str, conversation: str, prompts: List[Dict[str, str]],
                 expires_at: Optional[int] = None) -> None:
        super().__init__(message)
        self.conversation = conversation
        self.prompts = prompts
        self.expires_at = expires_at

    def answers_needed(self) -> int:
        """How many answers ``respond`` needs (the secret and text prompts)."""
        return sum(1 for p in self.prompts if p.get("style") in ("secret", "text"))


class ClientError(LatchError):
    """A failure on the client's side of the socket."""


class Unreachable(ClientError):
    """Cannot connect to latchd's socket."""
    code = "unreachable"


class Disconnected(ClientError):
    """The connection dropped before the answer. For ops that are not
    idempotent (login, logout, token, ...) the op may or may not have taken
    effect."""
    code = "disconnected"


class Timeout(ClientError):
    """No complete answer within the client's timeout."""
    code = "timeout"


class ProtocolError(ClientError):
    """The answer broke the wire protocol."""
    code = "protocol"


_BY_CODE = {cls.code: cls for cls in (
    BadRequest, UnknownOp, TooLarge, Denied, InvalidSession, InvalidToken, Forbidden,
    UnknownService, Unavailable, Internal, InvalidConversation)}


def _clean(message: Any) -> str:
    # A broken or hostile daemon must not reach a terminal with escapes.
    if not isinstance(message, str):
        return ""
    return "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in message)


def error_from_reply(reply: Dict[str, Any]) -> LatchError:
    """The exception for a reply with ``"ok": false``."""
    code = reply.get("error")
    message = _clean(reply.get("message"))
    if not isinstance(code, str):
        return ProtocolError('malformed error response (no "error" code)')
    if code == "challenge":
        conv = reply.get("conversation")
        prompts = reply.get("prompts")
        if not isinstance(conv, str) or not isinstance(prompts, list) or not all(
                isinstance(p, dict) and isinstance(p.get("style"), str) and isinstance(p.get("message", ""), str)
                for p in prompts):
            return ProtocolError("malformed challenge")
        expires = reply.get("expires_at")
        return Challenge(message or "more input needed", conv,
                         [{"style": p["style"], "message": _clean(p.get("message", ""))} for p in prompts],
                         expires if isinstance(expires, int) else None)
    cls = _BY_CODE.get(code)
    if cls is None:
        return LatchError(message or code, code=code)
    return cls(message or code)
