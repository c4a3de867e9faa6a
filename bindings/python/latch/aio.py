# SPDX-License-Identifier: MIT
"""The asyncio client: the same methods as Client, as coroutines. Requests
from concurrent tasks are pipelined on a few connections."""

from __future__ import annotations

import asyncio
import collections
import socket
from typing import Any, Deque, Dict, List, Optional

from . import _wire
from ._ops import Ops
from .errors import Disconnected, LatchError, ProtocolError, Timeout, Unreachable

__all__ = ["AsyncClient"]


class _Pending:
    __slots__ = ("op", "frame", "future", "retried")

    def __init__(self, op: str, frame: bytes, future: "asyncio.Future[Any]") -> None:
        self.op = op
        self.frame = frame
        self.future = future
        self.retried = False


class _AConn:
    """One connection with requests in flight; replies resolve them in
    order."""

    def __init__(self, owner: "AsyncClient") -> None:
        self.owner = owner
        self.transport: Optional[asyncio.Transport] = None
        self.pending: Deque[_Pending] = collections.deque()
        self.buf = bytearray()
        self.dead = False
        self.closing = False
        self.outbox: Optional[List[bytes]] = None
        self.connecting: Optional["asyncio.Future[None]"] = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        path = self.owner.socket_path
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.setblocking(False)
        try:
            await loop.sock_connect(s, _wire.sockaddr(path))
        except OSError as e:
            s.close()
            raise Unreachable(f"cannot connect to {path}: {e.strerror or e}") from None
        conn = self

        class Proto(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                conn._data(data)

            def connection_lost(self, exc: Optional[Exception]) -> None:
                conn._lost(exc)

        transport, _ = await loop.create_connection(Proto, sock=s)
        self.transport = transport  # type: ignore[assignment]

    def send(self, p: _Pending) -> None:
        self.pending.append(p)
        # Requests made in the same turn of the loop leave in one write:
        # fewer system calls here and in latchd.
        if self.outbox is not None:
            self.outbox.append(p.frame)
            return
        self.outbox = [p.frame]
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        out, self.outbox = self.outbox, None
        if self.transport is not None and not self.transport.is_closing() and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _data(self, data: bytes) -> None:
        self.buf += data
        try:
            frames, used = _wire.split_frames(self.buf, self.owner.max_response)
        except ProtocolError as e:
            self._fail_all(e)
            return
        if used:
            del self.buf[:used]
        for f in frames:
            if not self.pending:
                self._fail_all(ProtocolError("latchd sent more replies than requests"))
                return
            p = self.pending.popleft()
            if not p.future.done():  # a timed-out caller has gone
                p.future.set_result(_wire.outcome(f))

    def _fail_all(self, exc: LatchError) -> None:
        self.dead = True
        if self.transport is not None:
            self.transport.abort()
        while self.pending:
            p = self.pending.popleft()
            if not p.future.done():
                p.future.set_exception(exc)

    def _lost(self, exc: Optional[Exception]) -> None:
        # Requests whose answer did not come: idempotent ones go once more on
        # a fresh connection, in order; the others fail (they may or may not
        # have taken effect).
        self.dead = True
        lost = list(self.pending)
        self.pending.clear()
        owner = self.owner
        path = owner.socket_path
        if self.closing:
            # Closed by close(): nothing is resent for a closed client.
            for p in lost:
                if not p.future.done():
                    p.future.set_exception(Disconnected(f"the client was closed before the answer from {path}"))
            return
        resend = []
        for p in lost:
            if p.future.done():
                continue
            if p.op in _wire.IDEMPOTENT_OPS and not p.retried:
                p.retried = True
                resend.append(p)
            else:
                p.future.set_exception(Disconnected(
                    f"connection to {path} lost before the answer"
                    + (" (also when retried)" if p.retried else "")))
        if resend:
            asyncio.get_running_loop().create_task(owner._resend(resend))

    def close(self) -> None:
        self.dead = True
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class AsyncClient(Ops):
    """The asyncio counterpart of Client: every method is a coroutine with
    the same name and arguments (``await client.validate(session)``).

    Concurrent calls are pipelined over ``connections`` connections (round
    robin); latchd answers each connection in request order. Ops that run a
    service's stack or a plugin's action (login, authenticate, respond,
    passwd, plugin) go over
    ``slow_connections`` others, so that a slow login never holds back the
    validates pipelined behind it. Errors,
    timeout and retry rules are Client's. Create it anywhere; it connects
    on first use, in the running loop. ``await client.close()`` at the end.
    """

    def __init__(self, socket_path: Optional[str] = None, *, timeout: Optional[float] = _wire.DEFAULT_TIMEOUT,
                 connections: int = 1, slow_connections: int = 2,
                 max_response: int = _wire.DEFAULT_MAX_RESPONSE) -> None:
        if connections < 1 or slow_connections < 1:
            raise ValueError("connections and slow_connections must be at least 1")
        self.socket_path = _wire.socket_path(socket_path)
        self.timeout = timeout
        self.max_response = max_response
        # Lane 0: pipelined requests; lane 1: ops that run a stack (see
        # _wire.SLOW_OPS), so that a slow login never holds back a validate.
        self._lanes: List[List[Optional[_AConn]]] = [[None] * connections, [None] * slow_connections]
        self._next = [0, 0]
        self._opening: Dict[tuple, "asyncio.Task[_AConn]"] = {}

    async def _conn(self, op: str) -> _AConn:
        lane = 1 if op in _wire.SLOW_OPS else 0
        conns = self._lanes[lane]
        i = self._next[lane]
        self._next[lane] = (i + 1) % len(conns)
        c = conns[i]
        if c is not None and not c.dead:
            return c
        # Callers arriving while it connects share the attempt.
        key = (lane, i)
        task = self._opening.get(key)
        if task is None:
            async def open_one() -> _AConn:
                n = _AConn(self)
                try:
                    await n.connect()
                finally:
                    self._opening.pop(key, None)
                conns[i] = n
                return n
            task = asyncio.get_running_loop().create_task(open_one())
            self._opening[key] = task
        return await asyncio.shield(task)

    async def _resend(self, items: List[_Pending]) -> None:
        for p in items:
            try:
                c = await self._conn(p.op)
            except LatchError as e:
                if not p.future.done():
                    p.future.set_exception(e)
                continue
            if not p.future.done():
                c.send(p)

    async def _call(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        frame = _wire.encode(op, args)
        fut: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        p = _Pending(op, frame, fut)

        async def go() -> Any:
            c = await self._conn(op)
            c.send(p)
            return await fut

        try:
            if self.timeout is None:
                r = await go()
            else:
                r = await asyncio.wait_for(go(), self.timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"timed out waiting for {self.socket_path}") from None
        if isinstance(r, LatchError):
            raise r
        return r

    def _op(self, op: str, args: Dict[str, Any]) -> Any:
        return self._call(op, args)

    async def pipeline(self, calls: List[tuple]) -> List[Any]:
        """Runs ``[("validate", {"session": s}), ...]`` concurrently; returns
        a dict or LatchError instance per call, in order."""
        async def one(op: str, args: Dict[str, Any]) -> Any:
            try:
                return await self._call(op, args)
            except LatchError as e:
                return e
        return list(await asyncio.gather(*(one(op, a) for op, a in calls)))

    async def close(self) -> None:
        """Closes the connections (requests in flight fail with
        Disconnected; none is resent)."""
        for conns in self._lanes:
            for i, c in enumerate(conns):
                if c is not None:
                    c.close()
                conns[i] = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
