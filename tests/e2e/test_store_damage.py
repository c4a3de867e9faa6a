# SPDX-License-Identifier: MIT
"""The session store against a hostile file system and a busy writer:
cut-short, bit-flipped, loosely-moded and symlinked store files, and more
idle-expiry slides at once than any one write transaction holds."""

import os
import random
import socket
import threading
import time
import unittest

from harness import DaemonTest, frame, read_frame

PERMIT = "auth required permit\naccount required permit\n"
PAGE = os.sysconf("SC_PAGE_SIZE")
STORE_EXIT_FAULT = 74


def pipelined(d, requests, window=64, sock=None):
    """Sends requests on one connection, `window` in flight at a time;
    returns the answers in order."""
    s = sock or d.connect(timeout=60)
    answers = []
    try:
        for i in range(0, len(requests), window):
            chunk = requests[i:i + window]
            s.sendall(b"".join(frame(r) for r in chunk))
            for _ in chunk:
                answers.append(read_frame(s, timeout=120))
    finally:
        if sock is None:
            s.close()
    return answers


def bulk_login(d, n, user="demo"):
    """n sessions through the permit stack; their ids."""
    login = {"op": "login", "service": "demo", "user": user, "password": "x"}
    answers = pipelined(d, [login] * n)
    bad = [a for a in answers if not a.get("ok")]
    assert not bad, bad[:3]
    return [a["session"] for a in answers]


class StoreTest(DaemonTest):
    def permit_daemon(self, start=True, config_extra=""):
        return self.daemon(start=start, services={"demo": PERMIT},
                           config_extra="[throttle]\nenabled = no\n" + config_extra)

    def store_file(self, d, name="sessions.mdb"):
        return os.path.join(d.state, name)

    def expect_exit(self, d, timeout=60):
        """Waits for latchd to end on its own; returns its status and
        forgets the process (tearDown would report it)."""
        try:
            rc = d.proc.wait(timeout)
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        ready = any("READY=1" in n.split("\n") for n in d.notifications(timeout=0.2))
        d.proc = None
        d.notify.close()
        d.notify = None
        return rc, ready

    def start_refused(self, d):
        d.start(wait_ready=False)
        rc, ready = self.expect_exit(d)
        self.assertEqual(rc, 1, "latchd must refuse with status 1, log:\n" + d.log())
        self.assertFalse(ready, "a refused store must not get as far as READY=1")
        return d.log()


class TestTruncated(StoreTest):
    def filled(self, n=400):
        d = self.permit_daemon()
        bulk_login(d, n)
        self.assertEqual(d.stop(), 0)
        size = os.path.getsize(self.store_file(d))
        self.assertGreater(size, 8 * PAGE)
        return d, size

    def test_cut_to_its_meta_pages_is_refused_at_start(self):
        d, size = self.filled()
        os.truncate(self.store_file(d), 2 * PAGE)
        log = self.start_refused(d)
        self.assertIn(self.store_file(d) + " is damaged", log)
        self.assertIn("OPERATIONS.md", log)
        self.assertIn("backup", log)
        # Every start says the same: a refusal, never a crash.
        log2 = self.start_refused(d)
        self.assertEqual(log2.count(" is damaged"), 2)

    def test_cut_to_half_is_refused_at_start(self):
        d, size = self.filled()
        os.truncate(self.store_file(d), size // 2 // PAGE * PAGE)
        log = self.start_refused(d)
        self.assertIn(self.store_file(d) + " is damaged", log)
        self.assertIn("OPERATIONS.md", log)

    def test_cut_while_running_ends_in_a_logged_exit(self):
        d = self.permit_daemon()
        ids = bulk_login(d, 400)
        os.truncate(self.store_file(d), 2 * PAGE)
        try:
            d.call({"op": "validate", "session": ids[-1]}, timeout=30)
        except (EOFError, ConnectionError, OSError):
            pass  # the connection goes with the process
        rc, _ = self.expect_exit(d)
        self.assertEqual(rc, STORE_EXIT_FAULT, "a store fault must be a logged exit, log:\n" + d.log())
        log = d.log()
        self.assertIn("store damaged", log)
        self.assertIn(self.store_file(d), log)
        # The restart that systemd makes refuses it in one line.
        self.assertIn(" is damaged", self.start_refused(d))


class TestBitFlips(StoreTest):
    def test_flipped_data_pages_answer_internal_store_damaged(self):
        d = self.permit_daemon()
        ids = bulk_login(d, 600)
        self.assertEqual(d.stop(), 0)
        path = self.store_file(d)
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            pages = len(data) // PAGE
            rng = random.Random(12)
            # Flip bits in the records and node headers of the data pages
            # (not the meta pages 0 and 1): the damage a disk may do.
            for _ in range(400):
                p = rng.randrange(2, pages)
                off = p * PAGE + rng.randrange(16, PAGE)
                data[off] ^= 1 << rng.randrange(8)
            f.seek(0)
            f.write(data)
        d.start(wait_ready=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and d.proc.poll() is None and not os.path.exists(d.sock):
            time.sleep(0.05)
        if d.proc.poll() is not None:
            # Damage in what is read at open: a refusal that says so.
            rc, _ = self.expect_exit(d)
            self.assertEqual(rc, 1, d.log())
            self.assertIn("damaged", d.log())
            return
        d.wait_ready()
        try:
            answers = pipelined(d, [{"op": "validate", "session": s} for s in ids])
            answers.append(d.call({"op": "sessions.list"}))
        except (EOFError, ConnectionError, OSError):
            # LMDB followed a damaged page number out of the file: that
            # must be the logged exit, not a silent signal.
            rc, _ = self.expect_exit(d)
            self.assertEqual(rc, STORE_EXIT_FAULT, d.log())
            self.assertIn("store damaged", d.log())
            return
        errors = {a["error"] for a in answers if not a.get("ok")}
        self.assertIn("internal", errors, "the damage was read and must answer internal")
        self.assertLessEqual(errors, {"internal", "invalid_session"})
        log = d.log()
        self.assertIn("store damaged", log)
        self.assertNotIn("Cannot allocate memory", log)
        self.assertEqual(d.call({"op": "hello"}).get("ok"), True, "latchd keeps serving")


class TestModes(StoreTest):
    def made(self):
        d = self.permit_daemon()
        bulk_login(d, 5)
        self.assertEqual(d.stop(), 0)
        return d

    def test_loose_modes_are_refused_with_the_fix(self):
        d = self.made()
        cases = [(d.state, 0o755, "chmod 0700 " + d.state),
                 (self.store_file(d), 0o644, "chmod 0600 " + self.store_file(d)),
                 (self.store_file(d, "sessions.mdb-lock"), 0o666,
                  "chmod 0600 " + self.store_file(d, "sessions.mdb-lock"))]
        for path, mode, fix in cases:
            with self.subTest(path=path, mode=oct(mode)):
                good = os.stat(path).st_mode & 0o7777
                os.chmod(path, mode)
                log = self.start_refused(d)
                self.assertIn(fix, log.splitlines()[-2] if len(log.splitlines()) > 1 else log)
                self.assertIn(f"mode {mode:04o}", log)
                os.chmod(path, good)
        # Fixed as told, it starts.
        d.start()
        self.assertTrue(d.call({"op": "hello"})["ok"])

    def test_any_loose_file_in_the_state_folder_is_refused(self):
        d = self.made()
        stray = os.path.join(d.state, "sessions.mdb.bak")
        with open(stray, "wb") as f:
            f.write(b"x")
        os.chmod(stray, 0o644)
        self.assertIn("chmod 0600 " + stray, self.start_refused(d))
        os.chmod(stray, 0o600)
        d.start()


class TestLinks(StoreTest):
    def test_a_symlinked_store_is_refused_and_not_written_through(self):
        d = self.permit_daemon(start=False)
        os.makedirs(d.state, mode=0o700)
        elsewhere = os.path.join(self.tmp, "elsewhere.mdb")
        with open(elsewhere, "wb"):
            pass
        os.chmod(elsewhere, 0o600)
        os.symlink(elsewhere, self.store_file(d))
        log = self.start_refused(d)
        self.assertIn(self.store_file(d) + " is a symbolic link", log)
        self.assertEqual(os.path.getsize(elsewhere), 0, "nothing may be written through the link")

    def test_a_dangling_link_is_not_created_through(self):
        d = self.permit_daemon(start=False)
        os.makedirs(d.state, mode=0o700)
        target = os.path.join(self.tmp, "made-by-latchd.mdb")
        os.symlink(target, self.store_file(d))
        self.start_refused(d)
        self.assertFalse(os.path.exists(target))

    def test_a_symlinked_lock_file_is_refused(self):
        d = self.permit_daemon()
        bulk_login(d, 3)
        self.assertEqual(d.stop(), 0)
        lock = self.store_file(d, "sessions.mdb-lock")
        elsewhere = os.path.join(self.tmp, "elsewhere-lock")
        os.rename(lock, elsewhere)
        os.symlink(elsewhere, lock)
        log = self.start_refused(d)
        self.assertIn(lock + " is a symbolic link", log)


class TestSlides(StoreTest):
    def test_every_reported_idle_expiry_is_the_one_stored_under_a_busy_writer(self):
        # More slides at once than any one write transaction takes, while
        # the writer is busy with synced logouts queued ahead of them: the
        # idle expiry each validate reports must be the one the store
        # keeps, before and after a restart.
        idle = 100
        users = ["u0", "u1", "u2", "u3"]
        per_user_validate, per_user_logout = 2750, 750  # 11,000 and 3,000
        d = self.permit_daemon(config_extra=f"[session]\nidle_timeout = {idle}s\nabsolute_timeout = 1h\n")
        validates, logouts = [], []
        for u in users:
            ids = bulk_login(d, per_user_validate + per_user_logout, user=u)
            logouts += ids[:per_user_logout]
            validates += ids[per_user_logout:]
        # Past the touch granularity (idle / 10) for every session, well
        # before its idle expiry.
        time.sleep(idle / 10 + 1.5)

        def run_logouts():
            answers = pipelined(d, [{"op": "logout", "session": s} for s in logouts], window=len(logouts))
            assert all(a.get("ok") for a in answers)

        t = threading.Thread(target=run_logouts)
        t.start()
        time.sleep(0.2)  # queued ahead of the slides
        answers = [None] * 4
        part = len(validates) // 4 + 1

        def run_validates(k):
            answers[k] = pipelined(d, [{"op": "validate", "session": s}
                                       for s in validates[k * part:(k + 1) * part]], window=512)

        threads = [threading.Thread(target=run_validates, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.join()
        reported = [a for chunk in answers for a in chunk]
        self.assertEqual(len(reported), len(validates))
        self.assertTrue(all(a.get("ok") for a in reported), [a for a in reported if not a.get("ok")][:3])
        reported = {a["handle"]: a["idle_expires_at"] for a in reported}

        def stored():
            out = {}
            for u in users:
                r = d.call({"op": "sessions.list", "user": u}, timeout=60)
                self.assertTrue(r["ok"], r)
                out.update({x["handle"]: x["idle_expires_at"] for x in r["sessions"]})
            return out

        def differing(now_stored):
            return sum(1 for h, t in reported.items() if now_stored.get(h) != t)

        self.assertEqual(differing(stored()), 0, "a slide not yet written must count at once")
        self.assertEqual(d.stop(), 0)
        d.start()
        lost = differing(stored())
        self.assertEqual(lost, 0, f"{lost} sessions keep an idle expiry before the one validate reported")


if __name__ == "__main__":
    unittest.main()
