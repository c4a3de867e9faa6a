# SPDX-License-Identifier: MIT
"""The `file` plugin's password changes through latchd, beyond the
conversation test_passwd.py walks: each refusal of a new password as the
client sees it (an `error` prompt saying why, then the question again),
min_length=, the database a change leaves, two changes at once, and changes
while other users log in and an administrator edits the same database."""

import os
import threading
import unittest

from harness import DaemonTest


def stack(users, extra=""):
    return (f"auth required file path={users}\n"
            f"account required file path={users}\n"
            f"password required file path={users}{extra}\n")


def prompts(r):
    return [(p["style"], p["message"]) for p in r["prompts"]]


ASK_CURRENT = [("secret", "Current password:")]
ASK_NEW = [("secret", "New password:"), ("secret", "Retype new password:")]


class TestFilePasswd(DaemonTest):
    def start(self, extra=""):
        self.users = os.path.join(self.tmp, "users")
        return self.daemon(services={"demo": stack(self.users, extra)},
                           users={"demo": ("demo-password", "users"), "eve": ("eve-password", None)})

    def step(self, d, r, answers):
        self.assertEqual(r.get("error"), "challenge", r)
        return d.call({"op": "respond", "conversation": r["conversation"], "answers": answers},
                      timeout=60)

    def can_login(self, d, user, password):
        r = d.call({"op": "login", "service": "demo", "user": user, "password": password}, timeout=60)
        return r.get("ok", False)

    def line_of(self, user):
        with open(self.users) as f:
            return next(line.rstrip("\n") for line in f if line.startswith(user + ":"))

    def test_conversation_with_a_refusal(self):
        d = self.start()
        r = d.call({"op": "passwd", "service": "demo", "user": "demo"})
        self.assertEqual(prompts(r), ASK_CURRENT, r)
        r = self.step(d, r, ["demo-password"])
        self.assertEqual(prompts(r), ASK_NEW, r)
        r = self.step(d, r, ["short", "short"])
        self.assertEqual(prompts(r), [("error", "BAD PASSWORD: The password is shorter than 8 characters")]
                         + ASK_NEW, r)
        r = self.step(d, r, ["brand new words", "brand new wordz"])
        self.assertEqual(prompts(r), [("error", "Sorry, passwords do not match.")] + ASK_NEW, r)
        r = self.step(d, r, ["brand new words", "brand new words"])
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["user"], r["service"]), ("demo", "demo"))

        # The other refusals, in a second change (three tries each time).
        r = self.step(d, d.call({"op": "passwd", "service": "demo", "user": "demo"}), ["brand new words"])
        r = self.step(d, r, ["brand new words", "brand new words"])
        self.assertEqual(prompts(r), [("error", "BAD PASSWORD: The password is the same as the old one")]
                         + ASK_NEW, r)
        r = self.step(d, r, ["my-DEMO-password", "my-DEMO-password"])
        self.assertEqual(prompts(r), [("error", "BAD PASSWORD: The password contains the user name in some form")]
                         + ASK_NEW, r)
        r = self.step(d, r, ["", ""])
        self.assertEqual((r.get("error"), r.get("message")), ("denied", "authentication failed"), r)
        self.assertTrue(self.can_login(d, "demo", "brand new words"), "three refusals change nothing")

        self.assertFalse(self.can_login(d, "demo", "demo-password"))
        self.assertTrue(self.can_login(d, "demo", "brand new words"))
        self.assertTrue(self.can_login(d, "eve", "eve-password"))
        line = self.line_of("demo")
        self.assertTrue(line.startswith("demo:$argon2id$"), line)
        self.assertTrue(line.endswith(":users"), line)
        log = d.log()
        self.assertIn("password changed", log)
        for secret in ("brand new words", "brand new wordz", "demo-password", "my-DEMO-password"):
            self.assertNotIn(secret, log)

    def test_min_length_argument(self):
        d = self.start(" min_length=20")
        r = self.step(d, d.call({"op": "passwd", "service": "demo", "user": "demo"}), ["demo-password"])
        r = self.step(d, r, ["nineteen characters", "nineteen characters"])
        self.assertEqual(prompts(r)[0], ("error", "BAD PASSWORD: The password is shorter than 20 characters"))
        r = self.step(d, r, ["twenty characters ok", "twenty characters ok"])
        self.assertTrue(r["ok"], r)

    def test_two_changes_at_once(self):
        d = self.start()
        # Both have passed the current password; their updates race.
        asks = [self.step(d, d.call({"op": "passwd", "service": "demo", "user": "demo"}), ["demo-password"])
                for _ in range(2)]
        results = [None, None]

        def finish(i):
            results[i] = self.step(d, asks[i], [f"racer {i} wins it"] * 2)

        threads = [threading.Thread(target=finish, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        oks = [bool(r.get("ok")) for r in results]
        self.assertEqual(sorted(oks), [False, True], results)
        loser = results[oks.index(False)]
        self.assertEqual(loser["error"], "denied", loser)
        won = oks.index(True)
        self.assertTrue(self.can_login(d, "demo", f"racer {won} wins it"))
        self.assertFalse(self.can_login(d, "demo", f"racer {1 - won} wins it"))
        self.assertTrue(self.can_login(d, "eve", "eve-password"))

    def test_changes_while_others_log_in_and_an_admin_edits(self):
        d = self.start()
        stop = threading.Event()
        failures, logins, edits = [], [0], [0]

        def log_in():
            while not stop.is_set():
                r = d.call({"op": "login", "service": "demo", "user": "eve", "password": "eve-password"},
                           timeout=60)
                if not r.get("ok"):
                    failures.append(r)
                logins[0] += 1

        def administer():
            i = 0
            while not stop.is_set():
                r = d.ctl("user", "add", self.users, f"temp{i}", input="temp-password\n")
                r2 = d.ctl("user", "del", self.users, f"temp{i}")
                if r.returncode != 0 or r2.returncode != 0:
                    failures.append(r.stderr + r2.stderr)
                edits[0] += 1
                i += 1

        threads = [threading.Thread(target=log_in), threading.Thread(target=administer)]
        for t in threads:
            t.start()
        try:
            current = "demo-password"
            for i in range(4):
                new = f"changed-{i}-words"
                r = self.step(d, d.call({"op": "passwd", "service": "demo", "user": "demo"}), [current])
                r = self.step(d, r, [new, new])
                self.assertTrue(r["ok"], r)
                current = new
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(logins[0], 0)
        self.assertGreater(edits[0], 0)
        self.assertTrue(self.can_login(d, "demo", current))
        self.assertNotIn("cannot reload", d.log())
        with open(self.users) as f:
            names = sorted(line.split(":")[0] for line in f if line.strip())
        self.assertEqual(names, ["demo", "eve"])
        self.assertEqual([n for n in os.listdir(self.tmp) if n.startswith(".users.")], [])


    def test_a_login_checked_before_a_change_makes_no_session(self):
        # The password checked first, then a code: a login parked on the
        # code while the password changes (or an administrator revokes the
        # user) answered `ok` after the revocation once, and kept a session
        # opened with the old password. Now it is denied, with nothing made.
        self.users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": stack(self.users).replace(
            "account", "auth required debug ask=secret:Code: expect=424242\naccount", 1)},
            users={"demo": ("demo-password", "users"), "eve": ("eve-password", None)})

        def begin(user, password):
            r = d.call({"op": "login", "service": "demo", "user": user, "password": password}, timeout=60)
            self.assertEqual(prompts(r), [("secret", "Code:")], r)
            return r

        old = begin("demo", "demo-password")
        other = begin("eve", "eve-password")
        r = self.step(d, d.call({"op": "passwd", "service": "demo", "user": "demo"}), ["demo-password"])
        r = self.step(d, r, ["brand new words", "brand new words"])
        self.assertTrue(r["ok"], r)
        r = self.step(d, old, ["424242"])
        self.assertEqual((r.get("error"), r.get("message")), ("denied", "authentication failed"), r)
        self.assertEqual(d.ctl("sessions", "list", "--user", "demo", json_out=True).json["sessions"], [])
        r = self.step(d, other, ["424242"])
        self.assertTrue(r["ok"], "another user's login goes on")

        # Begun after the change: a session.
        r = self.step(d, begin("demo", "brand new words"), ["424242"])
        self.assertTrue(r["ok"], r)

        # An administrator's revocation of the user does the same.
        parked = begin("demo", "brand new words")
        rv = d.ctl("sessions", "revoke", "--user", "demo", json_out=True)
        self.assertEqual(rv.json["revoked"], 1, rv.stdout)
        r = self.step(d, parked, ["424242"])
        self.assertEqual(r.get("error"), "denied", r)
        self.assertEqual(d.ctl("sessions", "list", "--user", "demo", json_out=True).json["sessions"], [])
        self.assertIn("the user's sessions were revoked (a password change?) while it was checked",
                      d.log())

if __name__ == "__main__":
    unittest.main()
