# SPDX-License-Identifier: MIT
"""What latchd writes to its log: client strings escaped so that none forges
a field or a line, stack results by name and times as ISO 8601 UTC.

(The same records in the journal: tests/systemd/test_journal.py.)
"""

import datetime
import os
import re
import unittest

from harness import DaemonTest

OPEN_STACK = "auth required permit\naccount required permit\n"

# name sent -> how it must appear inside the quotes of the log text.
FORGERS = {
    # A quote would end the name and forge the rest of the line.
    "eve' on service 'admin', session XYZ": "eve\\' on service \\'admin\\', session XYZ",
    'mal"lory\\': 'mal\\"lory\\\\',
    # What some readers take for a line break.
    "x\u2028login ok for user 'root'": "x\\u2028login ok for user \\'root\\'",
    "y\u2029para": "y\\u2029para",
    "nel\u0085c1\u009b31m": "nel\\u0085c1\\u009b31m",
    # Text that shows in another order than it is stored.
    "\u202eevil\u202c": "\\u202eevil\\u202c",
}


class TestLogInjection(DaemonTest):
    def lines(self, d):
        return d.log().split("\n")

    def test_client_strings_cannot_forge_fields_or_lines(self):
        d = self.daemon(services={"open": OPEN_STACK})
        for name, escaped in FORGERS.items():
            r = d.call({"op": "login", "service": "open", "user": name, "password": "x",
                        "remote": "203.0.113.9 LATCH_RESULT=ok\u2028"})
            self.assertTrue(r.get("ok"), r)
        d.stop()
        log = d.log()
        for ch in ("\u2028", "\u2029", "\u0085", "\u009b", "\u202e"):
            self.assertNotIn(ch, log, "a raw separator or format character in the log")
        for name, escaped in FORGERS.items():
            want = f"login ok for user '{escaped}' on service 'open', session "
            hits = [line for line in self.lines(d) if want in line]
            self.assertEqual(len(hits), 1, f"{want!r} not found once in:\n{log}")
            # On stderr the field values that are not one word are quoted too.
            self.assertIn(f" LATCH_USER='{escaped}'", hits[0])
            self.assertIn(" LATCH_REMOTE='203.0.113.9 LATCH_RESULT=ok\\u2028'", hits[0])
            self.assertIn(" LATCH_SERVICE=open ", hits[0])
        # No line starts with a forged record.
        for line in self.lines(d):
            if line:
                self.assertRegex(line, r"^(latchd\[[a-z]+\]: |==\d+==)", f"a forged line: {line!r}")

    def test_control_characters_and_invalid_utf8_never_reach_the_log(self):
        d = self.daemon()
        # Newlines, ANSI escapes and DEL in a user name or remote are refused.
        for name in ("x\nlatchd[info]: login ok for user 'root'", "\x1b[2J\x1b[31mred", "del\x7f"):
            r = d.call({"op": "login", "service": "demo", "user": name, "password": "x"})
            self.assertEqual(r.get("error"), "bad_request", r)
            r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "x", "remote": name})
            self.assertEqual(r.get("error"), "bad_request", r)
        # Invalid UTF-8 does not even make JSON.
        s = d.connect()
        body = b'{"op":"login","service":"demo","user":"\xff\xfe\xc0\xaf\xed\xa0\x80","password":"x"}'
        s.sendall(len(body).to_bytes(4, "big") + body)
        from harness import read_frame
        self.assertEqual(read_frame(s).get("error"), "bad_request")
        s.close()
        d.stop()
        with open(d.log_path, "rb") as f:
            raw = f.read()
        for bad in (b"\x1b", b"\x7f", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"login ok for user 'root'"):
            self.assertNotIn(bad, raw)

    def test_plugin_strings_are_escaped(self):
        # The file plugin names its users file in a log line: a path holding
        # an ANSI escape, U+2028 and invalid UTF-8 must stay one plain line.
        evil = os.path.join(self.tmp.encode(), b"u\x1b[31m\xe2\x80\xa8\xff'sers")
        d = self.daemon(start=False)
        os.rename(d.users, evil)
        with open(os.path.join(self.tmp, "services", "demo"), "wb") as f:
            f.write(b"auth required file path=" + evil + b"\naccount required file path=" + evil + b"\n")
        d.start()
        self.login(d)
        # Touch the file: the plugin reloads it and logs that, naming it.
        os.utime(evil, (1, 1))
        self.login(d)
        d.stop()
        with open(d.log_path, "rb") as f:
            raw = f.read()
        for bad in (b"\x1b", b"\xe2\x80\xa8", b"\xff"):
            self.assertNotIn(bad, raw)
        self.assertIn(b"u\\x1b[31m\\u2028\\xff'sers: reloaded, 1 users", raw)


class TestReadableLogs(DaemonTest):
    def test_stack_results_by_name(self):
        d = self.daemon()
        bad = d.ctl("login", "demo", "demo", input="wrong\n")
        self.assertEqual(bad.returncode, 1)
        nobody = d.ctl("authenticate", "demo", "nobody", input="wrong\n")
        self.assertEqual(nobody.returncode, 1)
        d.stop()
        log = d.log()
        self.assertIn("login denied for user 'demo' on service 'demo' (stack result auth_err)", log)
        self.assertIn("authenticate denied for user 'nobody' on service 'demo' (stack result user_unknown)", log)
        self.assertNotRegex(log, r"stack result \d")

    def test_faillock_names_the_unlock_time_in_utc(self):
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": "auth requisite faillock deny=2 unlock_time=1h\n"
                                          f"auth required file path={users}\n"
                                          f"account required file path={users}\n"})
        before = datetime.datetime.now(datetime.timezone.utc)
        for _ in range(2):
            self.assertEqual(d.ctl("authenticate", "demo", "demo", input="wrong\n").returncode, 1)
        d.stop()
        m = re.search(r"faillock \(service 'demo', user 'demo'\): locked out after 2 failed attempts, "
                      r"until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", d.log())
        self.assertTrue(m, d.log())
        until = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        # An hour from the failure (the margin is for a slow machine).
        self.assertGreaterEqual(until, before + datetime.timedelta(minutes=59))
        self.assertLessEqual(until, before + datetime.timedelta(minutes=70))


if __name__ == "__main__":
    unittest.main()
