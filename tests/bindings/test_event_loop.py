# SPDX-License-Identifier: MIT
"""liblatch driven by an event loop: examples/sd-event/validate.c (built as
sd-event-validate) keeps many validates in flight on one connection from
one thread, against the real latchd and against fakelatchd.py."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "bindings", "python"), os.path.join(HERE, "..", "e2e")]

import harness  # noqa: E402
import latch  # noqa: E402
from test_python import Fake  # noqa: E402

EXAMPLE = os.environ.get("SD_EVENT_VALIDATE", "sd-event-validate")


def run(sock, sessions):
    env = dict(os.environ, LATCH_SOCKET=sock)
    return subprocess.run([EXAMPLE] + sessions, capture_output=True, text=True, env=env, timeout=60)


class EventLoop(harness.DaemonTest):
    def test_many_in_flight_answered_in_order(self):
        d = self.daemon()
        c = latch.Client(d.sock)
        good = [c.login("demo", "demo", "demo-password")["session"] for _ in range(3)]
        c.logout(good[2])
        sessions = [good[i % 2] for i in range(300)] + [good[2], "A" * 44, "not a session"]
        r = run(d.sock, sessions)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:300], [f"{i} ok demo" for i in range(300)], "in submission order")
        self.assertEqual(lines[300:], ["300 invalid_session", "301 invalid_session", "302 invalid_session"])
        # All of them on one connection.
        stats = c.stats()
        self.assertLessEqual(stats["connections"]["total"], 3, stats["connections"])

    def test_unreachable(self):
        r = run(os.path.join(self.tmp, "nothing.sock"), ["A" * 44])
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)


class EventLoopFake(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="latch-ev-")
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.stop()

    def test_dropped_connection_resends_validate_once(self):
        f = Fake(self.tmp, "drop-first")
        self.fakes.append(f)
        r = run(f.sock, ["S" * 44, "T" * 44])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["0 ok alice", "1 ok alice"])

    def test_timeout_by_the_loops_timer(self):
        f = Fake(self.tmp, "silent")
        self.fakes.append(f)
        r = run(f.sock, ["S" * 44])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines(), ["0 timeout"])

    def test_garbled_answer(self):
        f = Fake(self.tmp, "junk")
        self.fakes.append(f)
        r = run(f.sock, ["S" * 44, "T" * 44])
        self.assertEqual(r.stdout.splitlines(), ["0 protocol", "1 protocol"])


if __name__ == "__main__":
    unittest.main()
