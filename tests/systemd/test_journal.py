# SPDX-License-Identifier: MIT
"""latchd's audit records reach the journal with their structured fields.

latchd started by systemd (INVOCATION_ID set) logs through
sd_journal_sendv() to /run/systemd/journal/socket. This test puts its own
datagram socket there (in a private mount namespace when it can, else at the
real path when nothing listens on it), performs a login, a failed login and a
logout, decodes the records from the native journal protocol and checks
their fields, and that no record holds a password, the session id or a
token.
"""

import os
import unittest

import harness
import journal

FIELDS = ("LATCH_OP", "LATCH_SERVICE", "LATCH_USER", "LATCH_RESULT", "LATCH_PEER_UID")


class JournalDaemon(harness.Daemon):
    def env(self):
        e = super().env()
        e["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
        e.pop("JOURNAL_STREAM", None)
        e.pop("LATCH_LOG_LEVEL", None)
        return e


class JournalTest(harness.DaemonTest):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to own /run/systemd/journal/socket")
        cls.private = journal.private_run_systemd()
        if not cls.private and journal.journal_in_use():
            raise unittest.SkipTest("a journald listens on " + journal.JOURNAL_SOCKET)

    def setUp(self):
        super().setUp()
        self.journal = journal.FakeJournal().bind()
        self.addCleanup(self.journal.close)

    def record(self, **want):
        """The one record whose fields include `want`."""
        found = []
        for raw, fields in self.journal.records:
            d = {}
            for k, v in fields:
                d.setdefault(k, v.decode())
            if all(d.get(k) == v for k, v in want.items()):
                found.append(d)
        self.assertEqual(len(found), 1, f"records matching {want}: {found}\nall: {self.journal.records}")
        return found[0]

    def test_audit_records(self):
        password = "journal-Secret-pw1"
        wrong = "not-the-Secret-pw2"
        d = JournalDaemon(self.tmp, users={"alice": (password, "users")})
        self.daemons.append(d)
        d.start()

        r = self.login(d, "alice", password, "demo", "--token")
        session, handle, token = r["session"], r["handle"], r["token"]
        bad = d.ctl("login", "demo", "alice", input=wrong + "\n", json_out=True)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertEqual(bad.json["error"], "denied")
        out = d.ctl("logout", "-", input=session + "\n")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(d.stop(), 0)

        records = self.journal.drain()
        self.assertTrue(records, "no record reached the journal socket; latchd's log:\n" + d.log())
        uid = str(os.getuid())

        for raw, fields in records:
            keys = [k for k, _ in fields]
            # Every record: a message, a priority, latchd's identifier, and
            # each field once.
            for k in ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"):
                self.assertIn(k, keys, raw)
            self.assertEqual(len(keys), len(set(keys)), f"a field repeats: {raw!r}")
            self.assertIn(dict(fields)["SYSLOG_IDENTIFIER"], (b"latchd",))
            # No secret, in any field.
            for secret in (password, wrong, session, token):
                self.assertNotIn(secret.encode(), raw, f"a secret in a journal record: {raw!r}")

        ok = self.record(LATCH_OP="login", LATCH_RESULT="ok")
        denied = self.record(LATCH_OP="login", LATCH_RESULT="denied")
        out = self.record(LATCH_OP="logout")
        for rec in (ok, denied, out):
            for k in FIELDS:
                self.assertIn(k, rec)
            self.assertEqual(rec["LATCH_SERVICE"], "demo")
            self.assertEqual(rec["LATCH_USER"], "alice")
            self.assertEqual(rec["LATCH_PEER_UID"], uid)
        self.assertEqual(ok["LATCH_SESSION_HANDLE"], handle)
        self.assertEqual(out["LATCH_SESSION_HANDLE"], handle)
        self.assertEqual(out["LATCH_RESULT"], "ok")
        self.assertNotIn("LATCH_SESSION_HANDLE", denied)
        self.assertEqual(ok["PRIORITY"], "6")
        self.assertEqual(denied["PRIORITY"], "5")
        # Nothing went to stderr: the journal was the sink.
        self.assertNotIn("login ok", d.log())

    def test_client_strings_are_escaped_in_fields_and_message(self):
        d = JournalDaemon(self.tmp, services={"open": "auth required permit\naccount required permit\n"})
        self.daemons.append(d)
        d.start()
        user = "eve' on service 'admin'\u2028login ok for user 'root'\u202e\u0085"
        r = d.call({"op": "login", "service": "open", "user": user, "password": "x", "remote": "a b\u2029"})
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(d.stop(), 0)
        self.journal.drain()
        escaped = "eve\\' on service \\'admin\\'\\u2028login ok for user \\'root\\'\\u202e\\u0085"
        rec = self.record(LATCH_OP="login", LATCH_USER=escaped)
        self.assertEqual(rec["LATCH_REMOTE"], "a b\\u2029")
        self.assertIn(f"login ok for user '{escaped}' on service 'open'", rec["MESSAGE"])
        for raw, _ in self.journal.records:
            for ch in ("\u2028", "\u2029", "\u202e", "\u0085"):
                self.assertNotIn(ch.encode(), raw)


if __name__ == "__main__":
    unittest.main()
