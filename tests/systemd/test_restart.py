# SPDX-License-Identifier: MIT
"""Restarts under load drop no client.

The test holds latchd's listening socket the way systemd does and restarts
latchd 20 times, alternating SIGTERM and kill -9, while 4 client processes
loop `validate` through liblatch. No validate may fail: a connection that
latchd drops is retried once by liblatch (validate is idempotent), and new
connections wait in the socket's backlog while no latchd runs. Between two
restarts every client must have made progress, so each restart lands on
clients in the middle of their work, and each client finishes a call on
every new latchd before the next restart (a call is dropped by one restart at
most: two crashes within one call are beyond the single retry).
"""

import os
import signal
import subprocess
import time
import unittest

import harness
from activation import ActivatedDaemon

VALIDATE_LOOP = os.environ.get("VALIDATE_LOOP", "validate-loop")
CLIENTS = 4
RESTARTS = 20
SESSIONS = 6


def read_progress(path):
    try:
        with open(path) as f:
            ok, failed = f.read().split()
        return int(ok), int(failed)
    except (FileNotFoundError, ValueError):
        return 0, 0


class RestartTest(harness.DaemonTest):
    def wait_progress(self, paths, since, timeout=60):
        """Waits until every client has made a successful call past `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = [read_progress(p)[0] for p in paths]
            if all(n > s for n, s in zip(now, since)):
                return now
            time.sleep(0.02)
        self.fail(f"clients made no progress in {timeout}s: {since} -> {now}")

    def test_restarts_drop_no_validate(self):
        d = ActivatedDaemon(self.tmp)
        self.daemons.append(d)
        d.listen()
        self.addCleanup(d.close_listener)
        d.start()

        sessions = []
        for _ in range(SESSIONS):
            r = d.ctl("login", "demo", "demo", input="demo-password\n", json_out=True)
            self.assertEqual(r.returncode, 0, f"{r.stdout}{r.stderr}\nfiles: {sorted(os.listdir(self.tmp))}\n"
                             f"latchd {d.proc.pid} running: {d.proc.poll() is None}; log:\n{d.log()}")
            sessions.append(r.json["session"])

        clients = []
        paths = []
        for i in range(CLIENTS):
            path = os.path.join(self.tmp, f"progress-{i}")
            err = open(os.path.join(self.tmp, f"client-{i}.err"), "w")
            p = subprocess.Popen([VALIDATE_LOOP, d.sock, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=err, text=True, env=d.env())
            err.close()
            p.stdin.write("\n".join(sessions[i:] + sessions[:i]) + "\n")
            p.stdin.close()
            clients.append(p)
            paths.append(path)

        def stop_clients():
            for p in clients:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            outs = []
            for p in clients:
                outs.append(p.stdout.read())
                p.stdout.close()
                p.wait(timeout=60)
            return outs

        events = []
        try:
            self.wait_progress(paths, [0] * CLIENTS)
            for i in range(RESTARTS):
                pid = d.proc.pid
                events.append(f"{time.time():.6f} restart {i}: {'SIGTERM' if i % 2 == 0 else 'SIGKILL'} to {pid}")
                if i % 2 == 0:
                    rc = d.stop(signal.SIGTERM)
                    self.assertEqual(rc, 0, f"restart {i}: latchd exited with {rc} on SIGTERM\n" + d.log()[-3000:])
                else:
                    d.kill9()
                d.start()
                self.assertNotEqual(d.proc.pid, pid)
                events.append(f"{time.time():.6f} restart {i}: latchd {d.proc.pid} ready")
                # Each client must finish a call on this latchd before the
                # next restart: a call is dropped by one restart at most,
                # which is what liblatch's single retry covers.
                self.wait_progress(paths, [read_progress(p)[0] for p in paths])
        finally:
            outputs = stop_clients()

        report = []
        for i, (p, out) in enumerate(zip(clients, outputs)):
            ok, failed = read_progress(paths[i])
            with open(os.path.join(self.tmp, f"client-{i}.err")) as f:
                errors = f.read()
            report.append(f"client {i}: {out.strip()} exit {p.returncode}")
            self.assertEqual(failed, 0, f"client {i}: {failed} failed validate call(s):\n{errors[-3000:]}\n"
                             + "\n".join(events))
            self.assertEqual(p.returncode, 0, f"client {i}: {out}\n{errors[-3000:]}")
            self.assertGreater(ok, RESTARTS, f"client {i} made too little progress")
        total = sum(read_progress(p)[0] for p in paths)
        print(f"\n{RESTARTS} restarts (SIGTERM and kill -9 alternating), {CLIENTS} clients: "
              f"{total} validate calls, 0 failed; " + "; ".join(report))

        # Every session survived the restarts.
        for s in sessions:
            r = d.ctl("validate", "-", input=s + "\n", json_out=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
