# SPDX-License-Identifier: MIT
"""latch: the Python client of latchd.

    import latch
    client = latch.Client()                       # $LATCH_SOCKET or /run/latch/latchd.sock
    s = client.login("wiki", "alice", "secret")   # raises latch.Denied, latch.Challenge, ...
    who = client.validate(s["session"])["user"]
    claims = latch.Verifier("/run/latch/jwks.json").verify(token)

``Client`` is thread-safe (a pool), ``AsyncClient`` has the same methods as
coroutines; ``latch.wsgi``, ``latch.flask`` and ``latch.asgi`` protect web
apps.
"""

from .aio import AsyncClient
from .client import Client, Pipeline
from .cookie import DEFAULT_NAME as COOKIE_NAME, build_cookie, clear_cookie, parse_cookie
from .errors import (BadRequest, Challenge, ClientError, Denied, Disconnected, Forbidden, Internal,
                     InvalidConversation, InvalidSession, InvalidToken, LatchError, ProtocolError, Timeout,
                     TooLarge, Unavailable, UnknownOp, UnknownService, Unreachable)
from .token import KeySet, Verifier, verify_token

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "Client", "Pipeline", "COOKIE_NAME", "build_cookie", "clear_cookie", "parse_cookie",
    "BadRequest", "Challenge", "ClientError", "Denied", "Disconnected", "Forbidden", "Internal",
    "InvalidConversation", "InvalidSession", "InvalidToken", "LatchError", "ProtocolError", "Timeout",
    "TooLarge", "Unavailable", "UnknownOp", "UnknownService", "Unreachable", "KeySet", "Verifier",
    "verify_token",
]
