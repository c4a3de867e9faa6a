# SPDX-License-Identifier: MIT
"""Cold start: from socket activation to the first answer.

A client connects to the held socket and sends `hello` while no latchd
runs (its connection waits in the backlog, as under systemd); then latchd is
started on the socket, and the time until the answer arrives is printed:
once with an empty state folder (the first start makes the store and the
signing key) and once more with the state in place. The numbers are printed,
not asserted (machines are shared); the answers are checked.
"""

import time
import unittest

import harness
from activation import ActivatedDaemon


class ColdStartTest(harness.DaemonTest):
    def first_answer(self, d):
        s = d.connect(timeout=30)
        try:
            s.sendall(harness.frame({"op": "hello", "id": 1}))
            t0 = time.monotonic()
            d.spawn()
            reply = harness.read_frame(s, timeout=30)
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        self.assertEqual(reply.get("ok"), True, reply)
        self.assertEqual(reply.get("id"), 1)
        self.assertEqual(reply.get("version"), 1)
        return elapsed

    def test_cold_start(self):
        d = ActivatedDaemon(self.tmp)
        self.daemons.append(d)
        d.listen()
        self.addCleanup(d.close_listener)

        first = self.first_answer(d)
        d.wait_ready()
        self.assertEqual(d.stop(), 0)
        again = self.first_answer(d)
        print(f"\ncold start, socket activation to first answer: {first * 1000:.1f} ms with an empty "
              f"state folder, {again * 1000:.1f} ms with the state in place")


if __name__ == "__main__":
    unittest.main()
