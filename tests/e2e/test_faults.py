# SPDX-License-Identifier: MIT
"""Fault tests: clients that die mid-login, and well-behaved clients that
keep working while others misbehave."""

import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

from harness import LATCHCTL, DaemonTest, frame, read_frame, scaled

PERMIT = "auth required permit\naccount required permit\n"


class TestFaults(DaemonTest):
    def test_clients_killed_mid_login_leave_no_session(self):
        d = self.daemon(config_extra="[throttle]\nenabled = no\n")
        rng = random.Random(7)
        body = frame({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})
        # argon2id takes tens of milliseconds: these clients die before the
        # answer exists, at random points of the frame or after it.
        for i in range(40):
            s = d.connect()
            cut = rng.choice([1, 4, len(body) // 2, len(body) - 1, len(body), len(body)])
            s.sendall(body[:cut])
            time.sleep(rng.random() * 0.02)
            s.close()
        # And latchctl processes killed mid-login.
        for i in range(10):
            p = subprocess.Popen([LATCHCTL, "--socket", d.sock, "login", "demo", "demo"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=d.env())
            p.stdin.write(b"demo-password\n")
            p.stdin.flush()
            time.sleep(0.005)
            p.kill()
            p.wait()
            p.stdin.close()
        time.sleep(scaled(4))  # every started login has finished by now
        stats = d.ctl("stats", json_out=True).json
        listed = d.ctl("sessions", "list", json_out=True).json["sessions"]
        self.assertEqual(listed, [], "a login whose client died left a session behind")
        self.assertEqual(d.ctl("hello").returncode, 0)
        self.assertGreater(stats["logins"]["abandoned"], 0, "logins ran and were undone")

    def test_abandoned_login_session_is_deleted(self):
        # A client that sends a login and closes at once never learns the
        # id: the session must not stay behind.
        d = self.daemon(services={"demo": "auth required debug auth=success\naccount required permit\n"},
                        config_extra="[throttle]\nenabled = no\n")
        for _ in range(20):
            s = d.connect()
            s.sendall(frame({"op": "login", "service": "demo", "user": "ghost", "password": "x"}))
            s.shutdown(socket.SHUT_RDWR)
            s.close()
        time.sleep(scaled(1.5))
        listed = d.ctl("sessions", "list", "--user", "ghost", json_out=True).json["sessions"]
        self.assertEqual(listed, [])

    def test_twenty_good_clients_while_others_misbehave(self):
        d = self.daemon(services={"demo": PERMIT}, config_extra="max_connections = 2048\n")
        sessions = [self.login(d)["session"] for _ in range(20)]
        stop = threading.Event()
        failures, calls = [], [0]
        lock = threading.Lock()

        def good(sid):
            try:
                with d.connect() as s:
                    while not stop.is_set():
                        s.sendall(frame({"op": "validate", "session": sid}))
                        r = read_frame(s)
                        if not r.get("ok"):
                            failures.append(r)
                        with lock:
                            calls[0] += 1
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))

        def malformed():
            while not stop.is_set():
                try:
                    with d.connect() as s:
                        s.sendall(frame(b'{"op":') + struct.pack(">I", 0) + frame(b"[1,2]"))
                except OSError:
                    pass

        def aborter():
            while not stop.is_set():
                try:
                    s = d.connect()
                    s.sendall(struct.pack(">I", 500) + b'{"op":"hello"')
                    s.close()
                except OSError:
                    pass

        def flooder():
            held = []
            while not stop.is_set():
                try:
                    held.append(d.connect())
                except OSError:
                    time.sleep(0.01)
                if len(held) > 300:
                    for s in held:
                        s.close()
                    held = []
            for s in held:
                s.close()

        threads = [threading.Thread(target=good, args=(sid,)) for sid in sessions]
        threads += [threading.Thread(target=f) for f in (malformed, malformed, aborter, aborter, flooder)]
        for t in threads:
            t.start()
        time.sleep(8)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(failures, [])
        self.assertGreater(calls[0], 200)


if __name__ == "__main__":
    unittest.main()
