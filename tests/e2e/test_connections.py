# SPDX-License-Identifier: MIT
"""Connections under pressure: pipelined frames before a half-close, and a
daemon stalled past client_timeout while its clients were asking."""

import json
import os
import signal
import socket
import struct
import threading
import time
import unittest

from harness import DaemonTest, frame, read_frame, scaled

PERMIT = "auth required permit\naccount required permit\n"


class FrameReader(threading.Thread):
    """Reads frames in bulk until end-of-file (a reader slower than latchd
    would hide what a fast client sees), counting them as they come."""

    def __init__(self, sock, timeout=scaled(60)):
        super().__init__()
        self.sock, self.timeout = sock, timeout
        self.frames, self.error = [], None
        self.cond = threading.Condition()

    def run(self):
        buf = bytearray()
        self.sock.settimeout(self.timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
                got = []
                while len(buf) >= 4:
                    (n,) = struct.unpack(">I", buf[:4])
                    if len(buf) < 4 + n:
                        break
                    got.append(json.loads(bytes(buf[4:4 + n])))
                    del buf[:4 + n]
                with self.cond:
                    self.frames += got
                    self.cond.notify_all()
            if buf:
                raise EOFError("connection closed inside a frame")
        except (OSError, EOFError) as e:
            self.error = repr(e)
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, n, timeout=scaled(60)):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.frames) >= n or not self.is_alive(), timeout) and \
                len(self.frames) >= n


def read_all_frames(sock):
    r = FrameReader(sock)
    r.run()
    if r.error:
        raise EOFError(r.error)
    return r.frames


class TestHalfClose(DaemonTest):
    def test_every_frame_before_a_half_close_is_answered_in_order(self):
        d = self.daemon(config_extra="[throttle]\nenabled = no\n", services={"demo": PERMIT})
        total, n_tail, n_sessions = 10000, 300, 400
        with d.connect() as s:
            s.sendall(b"".join(frame({"op": "login", "service": "demo", "user": f"u{i}", "password": "x"})
                               for i in range(n_sessions)))
            sessions = [read_frame(s, scaled(30)) for _ in range(n_sessions)]
        self.assertTrue(all(r["ok"] for r in sessions))
        ids = [r["session"] for r in sessions]
        # Every 50th request is a logout; no session is both logged out and
        # validated, so no answer depends on how latchd overlaps the two.
        gone, kept = ids[: n_sessions // 2], ids[n_sessions // 2:]
        logged_out = []
        reqs = []
        for i in range(total):
            if i % 50 == 0 and i < total - n_tail:
                logged_out.append(gone.pop())
                reqs.append({"op": "logout", "session": logged_out[-1], "id": i})
            else:
                reqs.append({"op": "validate", "session": kept[i % len(kept)], "id": i})
        head = b"".join(frame(r) for r in reqs[:-n_tail])
        tail = b"".join(frame(r) for r in reqs[-n_tail:])

        # The end is what matters: the last frames and the end-of-file must
        # reach latchd together, as when a client writes faster than latchd
        # reads. Stop latchd while they are sent, whatever the machine's
        # speed; the tail is all validates, answered without waiting for a
        # disk, so latchd reads it in one go.
        s = d.connect()
        reader = FrameReader(s)
        reader.start()  # the replies outgrow every buffer: read while writing
        s.sendall(head)
        self.assertTrue(reader.wait_for(total - n_tail), f"{len(reader.frames)} answers, {reader.error}")
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            s.sendall(tail)
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        reader.join(scaled(120))
        s.close()
        self.assertIsNone(reader.error)
        answers = reader.frames
        self.assertEqual(len(answers), total, "every frame sent before end-of-file is answered")
        self.assertEqual([a["id"] for a in answers], list(range(total)), "in order")
        for req, a in zip(reqs, answers):
            self.assertTrue(a["ok"], (req["op"], a))
        # The logouts took effect; the other sessions live on.
        for sid in logged_out:
            self.assertEqual(d.call({"op": "validate", "session": sid})["error"], "invalid_session")
        for sid in kept[:20]:
            self.assertTrue(d.call({"op": "validate", "session": sid})["ok"])
        self.assertNotIn("closed inside a frame", d.log())

    def test_only_a_partial_frame_at_end_of_file_is_lost(self):
        d = self.daemon()
        with d.connect() as s:
            partial = frame({"op": "hello", "id": "partial"})
            s.sendall(b"".join(frame({"op": "hello", "id": i}) for i in range(100)) + partial[:-3])
            s.shutdown(socket.SHUT_WR)
            answers = read_all_frames(s)
        self.assertEqual([a["id"] for a in answers], list(range(100)))
        deadline = time.monotonic() + scaled(10)
        while "closed inside a frame" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("closed inside a frame", d.log())


class TestStall(DaemonTest):
    def test_a_stall_past_client_timeout_drops_no_client_that_asked(self):
        # 2 s, widened with a slowed-down latchd so that setting up the
        # clients does not itself idle them out.
        client_timeout = max(2, round(scaled(2)))
        d = self.daemon(config_extra=f"client_timeout = {client_timeout}s\n[throttle]\nenabled = no\n")
        session = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        n = 40
        socks = [d.connect(timeout=30) for _ in range(n)]
        # Every connection is known to latchd (and its idle timer armed)
        # before the stall.
        for i, s in enumerate(socks):
            s.sendall(frame({"op": "hello", "id": i}))
            self.assertTrue(read_frame(s)["ok"])
        idle = d.connect(timeout=30)  # asks nothing: dropped, as before
        self.assertTrue(d.call({"op": "hello"}, sock=idle)["ok"])
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            for i, s in enumerate(socks):
                req = {"op": "validate", "session": session} if i % 2 else {"op": "hello"}
                s.sendall(frame(dict(req, id=i)))
            time.sleep(client_timeout + 1)  # past client_timeout: every idle timer is due at SIGCONT
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        dropped = []
        for i, s in enumerate(socks):
            try:
                r = read_frame(s, scaled(30))
                self.assertEqual(r["id"], i)
                self.assertTrue(r["ok"], r)
            except (EOFError, ConnectionResetError):
                dropped.append(i)
            s.close()
        self.assertEqual(dropped, [], "clients that asked during the stall were dropped")
        # A connection that asked nothing is still idle, and dropped.
        idle.settimeout(scaled(30))
        self.assertEqual(idle.recv(1), b"")
        idle.close()
