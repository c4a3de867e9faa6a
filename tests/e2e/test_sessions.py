# SPDX-License-Identifier: MIT
"""Sessions: login, validate, logout, expiry, revocation, restarts, kill -9."""

import glob
import os
import random
import threading
import time
import unittest

from harness import DaemonTest, frame, read_frame

PERMIT = "auth required permit\naccount required permit\n"


class TestSessions(DaemonTest):
    def test_login_validate_logout(self):
        d = self.daemon()
        s = self.login(d)
        for k in ("session", "handle", "user", "service", "expires_at", "idle_expires_at"):
            self.assertIn(k, s)
        self.assertGreaterEqual(len(s["session"]), 43)
        r = d.ctl("validate", s["session"], json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json["user"], "demo")
        self.assertEqual(r.json["service"], "demo")
        self.assertEqual(r.json["handle"], s["handle"])
        self.assertEqual(r.json["claims"]["groups"], ["users"])
        # The session may come from stdin, as every secret.
        r = d.ctl("validate", "-", input=s["session"] + "\n")
        self.assertEqual(r.returncode, 0)
        # A service that does not match is an unknown session.
        r = d.call({"op": "validate", "session": s["session"], "service": "other"})
        self.assertEqual(r["error"], "invalid_session")
        self.assertEqual(d.ctl("logout", s["session"]).returncode, 0)
        r = d.ctl("validate", s["session"], json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.json["error"], "invalid_session")
        self.assertEqual(d.ctl("logout", s["session"]).returncode, 1)

    def test_every_login_makes_a_new_session(self):
        d = self.daemon()
        a, b = self.login(d), self.login(d)
        self.assertNotEqual(a["session"], b["session"])
        self.assertNotEqual(a["handle"], b["handle"])

    def test_unknown_malformed_expired_revoked_look_the_same(self):
        d = self.daemon(config_extra="[session]\nabsolute_timeout = 1s\n")
        expired = self.login(d)["session"]
        revoked = self.login(d)
        d.ctl("sessions", "revoke", revoked["handle"])
        time.sleep(1.5)
        answers = set()
        for sid in (expired, revoked["session"], "A" * 44, "not-a-session", "x" * 100, "é" * 10):
            r = d.call({"op": "validate", "session": sid})
            answers.add((r["error"], r["message"]))
        self.assertEqual(len(answers), 1, answers)
        self.assertEqual(answers.pop()[0], "invalid_session")

    def test_idle_expiry_slides_absolute_does_not(self):
        # Times are whole seconds, and a persisted last_seen may lag by the
        # touch granularity (1 s here): windows leave room for both, and for
        # a slow sanitized build.
        d = self.daemon(config_extra="[session]\nidle_timeout = 6s\nabsolute_timeout = 14s\n")
        s = self.login(d)

        def validate(sid):
            return d.call({"op": "validate", "session": sid})

        first = validate(s["session"])
        self.assertTrue(first["ok"])
        expires_at = first["expires_at"]
        idle_seen = [first["idle_expires_at"]]
        # Keep it busy for longer than the idle timeout: it stays valid and
        # its idle expiry moves; its absolute expiry does not.
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            time.sleep(2)
            r = validate(s["session"])
            self.assertTrue(r["ok"], "validated sessions stay alive")
            self.assertEqual(r["expires_at"], expires_at)
            idle_seen.append(r["idle_expires_at"])
        self.assertGreater(idle_seen[-1], idle_seen[0])
        self.assertLessEqual(max(idle_seen), expires_at)
        # Past the absolute expiry, validating does not help.
        while time.time() < expires_at + 1:
            time.sleep(1)
            validate(s["session"])
        self.assertEqual(validate(s["session"])["error"], "invalid_session")
        # An untouched session dies after the idle timeout.
        s2 = self.login(d)
        self.assertTrue(validate(s2["session"])["ok"])
        time.sleep(7.5)
        self.assertEqual(validate(s2["session"])["error"], "invalid_session")

    def test_revoke_one_and_all_of_a_user(self):
        d = self.daemon(users={"demo": ("demo-password", "users"), "eve": ("eve-password", None)})
        a, b = self.login(d), self.login(d)
        e = self.login(d, "eve", "eve-password")
        r = d.ctl("sessions", "list", "--user", "demo", json_out=True)
        self.assertEqual(sorted(x["handle"] for x in r.json["sessions"]), sorted([a["handle"], b["handle"]]))
        for x in r.json["sessions"]:
            self.assertNotIn("session", x)
        r = d.ctl("sessions", "revoke", a["handle"], json_out=True)
        self.assertEqual(r.json["revoked"], 1)
        self.assertEqual(d.ctl("validate", a["session"]).returncode, 1)
        self.assertEqual(d.ctl("validate", b["session"]).returncode, 0)
        self.login(d)
        r = d.ctl("sessions", "revoke", "--user", "demo", json_out=True)
        self.assertEqual(r.json["revoked"], 2)
        self.assertEqual(d.ctl("validate", b["session"]).returncode, 1)
        self.assertEqual(d.ctl("validate", e["session"]).returncode, 0)

    def test_sessions_and_revocations_survive_restart_and_ids_are_not_stored(self):
        d = self.daemon()
        keep = [self.login(d) for _ in range(3)]
        gone = self.login(d)
        d.ctl("sessions", "revoke", gone["handle"])
        out = self.login(d)
        d.ctl("logout", out["session"])
        d.stop()
        d.start()
        for s in keep:
            self.assertEqual(d.ctl("validate", s["session"]).returncode, 0)
        self.assertEqual(d.ctl("validate", gone["session"]).returncode, 1)
        self.assertEqual(d.ctl("validate", out["session"]).returncode, 1)
        d.stop()
        blobs = b""
        for path in glob.glob(os.path.join(d.state, "**"), recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    blobs += f.read()
        self.assertGreater(len(blobs), 0)
        for s in keep + [gone, out]:
            self.assertNotIn(s["session"].encode(), blobs, "a session id reached the state files")
        for s in keep:
            self.assertIn(s["handle"].encode(), blobs, "the store holds the handles (the grep can see)")
        self.assertNotIn(b"demo-password", blobs)

    def test_sweep_removes_expired_sessions(self):
        d = self.daemon(config_extra="[session]\nabsolute_timeout = 2s\nsweep_interval = 1s\n",
                        services={"demo": PERMIT})
        with d.connect() as sock:
            for batch in range(10):
                for i in range(30):
                    sock.sendall(frame({"op": "login", "service": "demo", "user": f"u{i}", "password": "x"}))
                for i in range(30):
                    self.assertTrue(read_frame(sock)["ok"])
        time.sleep(4)
        st = d.ctl("stats", json_out=True).json
        self.assertGreaterEqual(st["sweep"]["removed"], 300)
        self.assertEqual(st["sessions"]["stored"], 0)


class TestDurability(DaemonTest):
    def test_kill9_under_load_loses_no_acknowledged_login_or_logout(self):
        d = self.daemon(services={"demo": PERMIT})
        acked_in, acked_out, tried_out = {}, set(), set()
        lock = threading.Lock()
        rng = random.Random(1234)
        for rnd in range(5):
            stop = threading.Event()

            def worker(seed):
                r = random.Random(seed)
                try:
                    with d.connect(timeout=5) as s:
                        mine = []
                        while not stop.is_set():
                            if mine and r.random() < 0.3:
                                sid = mine.pop(r.randrange(len(mine)))
                                with lock:
                                    tried_out.add(sid)
                                s.sendall(frame({"op": "logout", "session": sid}))
                                if read_frame(s)["ok"]:
                                    with lock:
                                        acked_out.add(sid)
                            else:
                                s.sendall(frame({"op": "login", "service": "demo", "user": f"load{seed}", "password": "x"}))
                                resp = read_frame(s)
                                if resp["ok"]:
                                    with lock:
                                        acked_in[resp["session"]] = resp["handle"]
                                    mine.append(resp["session"])
                except (OSError, EOFError, ValueError):
                    pass

            threads = [threading.Thread(target=worker, args=(rnd * 100 + i,)) for i in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.3 + rng.random())
            d.kill9()
            stop.set()
            for t in threads:
                t.join()
            d.start()
        self.assertGreater(len(acked_in), 50)
        with d.connect() as s:
            for sid in acked_in:
                s.sendall(frame({"op": "validate", "session": sid}))
                resp = read_frame(s)
                if sid in acked_out:
                    self.assertFalse(resp["ok"], "an acknowledged logout came back")
                elif sid not in tried_out:
                    self.assertTrue(resp["ok"], "an acknowledged login was lost")


if __name__ == "__main__":
    unittest.main()
