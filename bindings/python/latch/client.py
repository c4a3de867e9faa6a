# SPDX-License-Identifier: MIT
"""The blocking client: safe to share between threads (a small pool of
connections), reconnecting, resending idempotent requests once."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import _wire
from ._ops import Ops
from .errors import Disconnected, LatchError, ProtocolError, Timeout, Unreachable

__all__ = ["Client", "Pipeline"]

_DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, EOFError)


class _Conn:
    """One socket; used by one thread at a time (the pool sees to that)."""

    __slots__ = ("sock", "buf", "poller", "waits")

    def __init__(self, path: str, deadline: Optional[float]) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.settimeout(_left(deadline))
            s.connect(_wire.sockaddr(path))
        except socket.timeout:
            s.close()
            raise Timeout(f"timed out connecting to {path} (daemon busy)") from None
        except OSError as e:
            s.close()
            raise Unreachable(f"cannot connect to {path}: {e.strerror or e}") from None
        self.sock = s
        self.waits = s.gettimeout()
        self.buf = bytearray()
        self.poller = select.poll()
        self.poller.register(s.fileno(), select.POLLIN)

    def stale(self) -> bool:
        # Nothing is outstanding between calls, so anything readable is EOF
        # (latchd closed an idle connection), a reset or junk: start afresh.
        # Not a retry: the request has not been sent anywhere yet.
        return bool(self.buf) or bool(self.poller.poll(0))

    def bound(self, deadline: Optional[float]) -> None:
        """Makes the socket's own timeout end by the deadline (50 ms of
        slack): settimeout() costs a system call, so it is changed only
        when a call has used up part of its time."""
        left = _left(deadline)
        if left is None:
            return
        if self.waits is None or abs(self.waits - left) > 0.05:
            self.sock.settimeout(left)
            self.waits = left

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def exchange(self, frames: List[bytes], deadline: Optional[float], max_response: int,
                 got: List[bytes]) -> None:
        """Sends the frames in one write and appends their replies to
        ``got`` in order; raises EOFError/OSError when the connection drops
        (``got`` holds the replies that did arrive), socket.timeout,
        ProtocolError."""
        s = self.sock
        self.bound(deadline)
        s.sendall(frames[0] if len(frames) == 1 else b"".join(frames))
        want = len(got) + len(frames)
        buf = self.buf
        while len(got) < want:
            self.bound(deadline)
            chunk = s.recv(262144)
            if not chunk:
                raise EOFError
            buf += chunk
            frames_in, used = _wire.split_frames(buf, max_response)
            if used:
                del buf[:used]
                got.extend(frames_in)
        if len(got) > want or buf:
            raise ProtocolError("latchd sent more replies than requests")


def _left(deadline: Optional[float]) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout
    return left


class Client(Ops):
    """A connection pool to latchd, safe to share between threads.

    ``Client(socket_path=None, timeout=30.0, pool_size=16)``: the socket is
    ``socket_path``, else ``$LATCH_SOCKET``, else /run/latch/latchd.sock.
    Nothing connects until the first call. Each call takes an idle
    connection (or opens one, up to ``pool_size``; beyond that callers wait
    for one), so at most ``pool_size`` requests are on the wire at once.

    Every op is a method (``hello``, ``login``, ``validate``, ...) returning
    the results as a dict, or raising the LatchError subclass for the error.
    ``timeout`` (seconds, None for none) bounds a call from connecting to
    the last byte of the answer, a retry included; a call that runs out
    raises Timeout and drops its connection.

    Retries: hello, validate, verify, jwks and stats are sent once more on a
    fresh connection when the connection drops before their answer; other
    ops never are (Disconnected: it may or may not have taken effect).
    """

    def __init__(self, socket_path: Optional[str] = None, *, timeout: Optional[float] = _wire.DEFAULT_TIMEOUT,
                 pool_size: int = 16, max_response: int = _wire.DEFAULT_MAX_RESPONSE) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.socket_path = _wire.socket_path(socket_path)
        self.timeout = timeout
        self.max_response = max_response
        # _open counts connections, idle or in use, and slots reserved for
        # connecting: at most _size.
        self._idle: List[_Conn] = []
        self._open = 0
        self._size = pool_size
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._waiters = 0
        self._closed = False

    # -- pool --------------------------------------------------------------

    def _acquire(self, deadline: Optional[float]) -> Optional[_Conn]:
        """An idle connection, or None with a slot reserved to open one."""
        with self._lock:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    return None
                # Every slot is in use: wait for a release (a Condition only
                # here, since it costs far more than the plain lock).
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise Timeout(f"timed out waiting for a free connection to {self.socket_path}")
                self._waiters += 1
                try:
                    self._freed.wait(wait)
                finally:
                    self._waiters -= 1

    def _release(self, conn: Optional[_Conn]) -> None:
        """Returns the connection, or with None (dropped) its slot."""
        with self._lock:
            keep = conn is not None and not self._closed
            if keep:
                self._idle.append(conn)  # type: ignore[arg-type]
            else:
                self._open -= 1
            if self._waiters:
                self._freed.notify()
        if conn is not None and not keep:
            conn.close()

    def close(self) -> None:
        """Closes the idle connections; busy ones close when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for c in idle:
            c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls -------------------------------------------------------------

    def _deadline(self) -> Optional[float]:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _run(self, batch: List[Tuple[str, bytes]]) -> List[Any]:
        """Sends (op, frame) pairs pipelined on one connection; returns one
        result dict or LatchError instance per request, in order."""
        deadline = self._deadline()
        conn = self._acquire(deadline)
        results: List[Any] = []
        try:
            todo = batch
            retried = False
            while todo:
                if conn is not None and conn.stale():
                    conn.close()
                    conn = None
                if conn is None:
                    conn = _Conn(self.socket_path, deadline)
                got: List[bytes] = []
                try:
                    conn.exchange([f for _, f in todo], deadline, self.max_response, got)
                    results.extend(_wire.outcome(f) for f in got)
                    todo = []
                except socket.timeout:
                    conn.close()
                    conn = None
                    raise Timeout(f"timed out waiting for {self.socket_path}") from None
                except ProtocolError:
                    conn.close()
                    conn = None
                    raise
                except (OSError, EOFError) as e:
                    conn.close()
                    conn = None
                    results.extend(_wire.outcome(f) for f in got)
                    lost = todo[len(got):]
                    todo = []
                    why = e.strerror if isinstance(e, OSError) and not isinstance(e, _DROPPED) else None
                    for i, (op, frame) in enumerate(lost):
                        if not retried and why is None and op in _wire.IDEMPOTENT_OPS:
                            # Resend, in order, on a fresh connection: what
                            # follows waits for it (replies come in order).
                            todo = lost[i:]
                            break
                        results.append(Disconnected(
                            f"connection to {self.socket_path} lost before the answer"
                            + (f": {why}" if why else "")
                            + (" (also when retried)" if retried and op in _wire.IDEMPOTENT_OPS else "")))
                    retried = True
        finally:
            self._release(conn)
        return results

    def _op(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        r = self._run([(op, _wire.encode(op, args))])[0]
        if isinstance(r, LatchError):
            raise r
        return r

    def pipeline(self) -> "Pipeline":
        """A batch of calls sent in one write on one connection, answered in
        order: ``with client.pipeline() as p: p.validate(a); p.validate(b)``,
        then ``p.results`` (a dict or a LatchError instance per call). Or
        call ``p.execute()`` yourself."""
        return Pipeline(self)


class Pipeline(Ops):
    """Queued calls for Client.pipeline(); each typed method returns None
    and queues the request."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._batch: List[Tuple[str, bytes]] = []
        self.results: List[Any] = []

    def _op(self, op: str, args: Dict[str, Any]) -> None:
        self._batch.append((op, _wire.encode(op, args)))

    def execute(self) -> List[Any]:
        """Sends the queued requests; returns one dict or LatchError per
        request, in order (errors are returned, not raised)."""
        batch, self._batch = self._batch, []
        self.results = self._client._run(batch) if batch else []
        return self.results

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.execute()
