# SPDX-License-Identifier: MIT
"""Framing (a 4-byte big-endian length, then one JSON object) and the rules
every client follows: where the socket is, which ops may be resent."""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

from .errors import LatchError, ProtocolError, error_from_reply

DEFAULT_SOCKET = "/run/latch/latchd.sock"
DEFAULT_TIMEOUT = 30.0  # longer than latchd may take to answer (see latch.h)
DEFAULT_MAX_RESPONSE = 1 << 20

# Ops whose repetition changes nothing that matters (validate only slides the
# idle expiry again): when the connection drops before their answer they are
# sent once more on a fresh connection. Every other op is never resent.
IDEMPOTENT_OPS = frozenset(("hello", "validate", "verify", "jwks", "stats"))

# Ops that run a service's stack (argon2, PAM, a second factor) or a
# plugin's action, and may take a second: pipelining clients keep them off
# the connections that carry validates, since replies come back in request
# order.
SLOW_OPS = frozenset(("authenticate", "login", "respond", "passwd", "plugin"))

_HDR = struct.Struct(">I")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False)


def socket_path(path: Optional[str]) -> str:
    """The socket to use: ``path``, else $LATCH_SOCKET, else the default."""
    if path:
        return path
    env = os.environ.get("LATCH_SOCKET")
    return env if env else DEFAULT_SOCKET


def sockaddr(path: str) -> str:
    # A leading '@' names an abstract socket, as in liblatch.
    return "\0" + path[1:] if path.startswith("@") else path


def encode(op: str, args: Dict[str, Any]) -> bytes:
    """One request frame. Arguments that are None are left out."""
    req = {"op": op}
    for k, v in args.items():
        if v is not None:
            req[k] = v
    data = _ENCODER.encode(req).encode("utf-8", "strict")
    return _HDR.pack(len(data)) + data


def split_frames(buf: bytearray, max_response: int) -> Tuple[List[bytes], int]:
    """Complete frames at the start of ``buf`` and how many bytes they took."""
    out = []
    pos = 0
    n_buf = len(buf)
    while n_buf - pos >= 4:
        (n,) = _HDR.unpack_from(buf, pos)
        if n == 0:
            raise ProtocolError("empty response frame")
        if n > max_response:
            raise ProtocolError(f"response of {n} bytes exceeds the limit of {max_response} bytes")
        if n_buf - pos - 4 < n:
            break
        out.append(bytes(buf[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out, pos


def decode(frame: bytes) -> Dict[str, Any]:
    """The reply object; a ProtocolError when it is not a JSON object with a
    boolean "ok"."""
    try:
        reply = json.loads(frame)
    except ValueError:
        raise ProtocolError('malformed response (not a JSON object with "ok")') from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ProtocolError('malformed response (not a JSON object with "ok")')
    return reply


def result(reply: Dict[str, Any]) -> Dict[str, Any]:
    """The results of a successful reply (without "id" and "ok"), or raises
    the error it carries."""
    if reply["ok"] is not True:
        raise error_from_reply(reply)
    reply.pop("ok", None)
    reply.pop("id", None)
    return reply


def outcome(frame: bytes) -> Any:
    """The result dict, or the LatchError instance (not raised): pipelines
    hand back a mix."""
    try:
        return result(decode(frame))
    except LatchError as e:
        return e
