# SPDX-License-Identifier: MIT
"""Password changes: the `passwd` op and `latchctl passwd`, expired passwords
changed inside a login, and what a change does to the user's other sessions.

The `debug` plugin stands in for a password backend where the result is all
that matters (revocation, refusals, the throttle); the `file` plugin gives
the real conversation (current password, new one twice) and the real
database."""

import os
import unittest

from harness import DaemonTest, on_pty, wait_for

AUTH = "auth required file path={users}\naccount required file path={users}\n"


class TestPasswdOp(DaemonTest):
    def start(self, password_lines="password required debug password=success\n", config_extra="", other=None):
        users = os.path.join(self.tmp, "users")
        services = {"demo": AUTH.format(users=users) + password_lines,
                    "other": AUTH.format(users=users) + "password required debug password=success\n",
                    "nopw": AUTH.format(users=users)}
        if other:
            services.update(other)
        d = self.daemon(services=services,
                        users={"demo": ("demo-password", "users"), "eve": ("eve-password", "users")},
                        config_extra=config_extra)
        return d

    def session(self, d, service="demo", user="demo"):
        r = d.call({"op": "login", "service": service, "user": user, "password": f"{user}-password"})
        self.assertTrue(r["ok"], r)
        return r["session"]

    def live(self, d, session):
        return d.call({"op": "validate", "session": session}).get("ok", False)

    def test_change_revokes_the_users_other_sessions_but_the_callers(self):
        d = self.start()
        mine, again, elsewhere = self.session(d), self.session(d), self.session(d, "other")
        eves = self.session(d, user="eve")
        r = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": mine, "id": 3})
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["id"], r["user"], r["service"], r["revoked"]), (3, "demo", "demo", 2))
        self.assertTrue(self.live(d, mine), "the caller's own session is kept")
        self.assertFalse(self.live(d, again))
        self.assertFalse(self.live(d, elsewhere), "on every service")
        self.assertTrue(self.live(d, eves), "another user's session is not touched")
        # Durable: still gone after a restart.
        d.stop()
        d.start()
        self.assertTrue(self.live(d, mine))
        self.assertFalse(self.live(d, again))
        self.assertIn("passwd ok for user 'demo' on service 'demo': password changed, 2 other session(s) revoked",
                      d.log())

    def test_without_a_session_every_session_goes(self):
        d = self.start()
        sessions = [self.session(d), self.session(d, "other")]
        r = d.ctl("passwd", "demo", "demo", input="", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json, {"user": "demo", "service": "demo", "revoked": 2})
        self.assertFalse(any(self.live(d, s) for s in sessions))

    def test_service_may_keep_the_other_sessions(self):
        d = self.start(config_extra="[service.demo]\nrevoke_on_password_change = no\n")
        sessions = [self.session(d), self.session(d, "other")]
        r = d.call({"op": "passwd", "service": "demo", "user": "demo"})
        self.assertEqual((r["ok"], r["revoked"]), (True, 0), r)
        self.assertTrue(all(self.live(d, s) for s in sessions))
        # The flag is the changing service's: a change through `other` revokes.
        r = d.call({"op": "passwd", "service": "other", "user": "demo"})
        self.assertEqual((r["ok"], r["revoked"]), (True, 2), r)

    def test_session_must_be_the_users_on_that_service(self):
        d = self.start()
        eves, elsewhere, mine = self.session(d, user="eve"), self.session(d, "other"), self.session(d)
        for session, error in ((eves, "forbidden"), (elsewhere, "forbidden"), ("x" * 44, "invalid_session"),
                               ("", "invalid_session")):
            r = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": session})
            self.assertEqual(r.get("error"), error, (session, r))
        # Nothing changed, nothing revoked.
        self.assertTrue(all(self.live(d, s) for s in (eves, elsewhere, mine)))
        self.assertNotIn("passwd ok", d.log())

    def test_bad_requests(self):
        d = self.start()
        for req, error in (({"service": "demo"}, "bad_request"),
                           ({"service": "demo", "user": ""}, "bad_request"),
                           ({"service": "demo", "user": "demo", "remote": "a\nb"}, "bad_request"),
                           ({"service": "demo", "user": "demo", "session": 5}, "bad_request"),
                           ({"service": "nope", "user": "demo"}, "unknown_service")):
            r = d.call({"op": "passwd", **req})
            self.assertEqual(r.get("error"), error, (req, r))

    def test_a_service_without_password_lines_refuses(self):
        d = self.start()
        kept = self.session(d)
        r = d.call({"op": "passwd", "service": "nopw", "user": "demo"})
        self.assertEqual(r["error"], "denied", r)
        self.assertEqual(r["message"], "authentication failed")
        self.assertTrue(self.live(d, kept))
        r = d.ctl("passwd", "nopw", "demo", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "denied"), r.stdout + r.stderr)
        self.assertIn("passwd denied for user 'demo' on service 'nopw' (stack result perm_denied)", d.log())

    def test_wrong_current_password_is_denied_throttled_and_counted(self):
        # The current password is wrong in the preliminary pass, as a file
        # or pam line answers it.
        d = self.start(password_lines="password requisite faillock deny=3 unlock_time=10min\n"
                                      "password required debug password_prelim=auth_err\n",
                       other={"locked": "auth requisite faillock deny=3 unlock_time=10min\n" +
                                        AUTH.format(users=os.path.join(self.tmp, "users"))})
        kept = self.session(d)
        change = {"op": "passwd", "service": "demo", "user": "demo", "remote": "192.0.2.7"}
        r = d.call(change)
        self.assertEqual(r["error"], "denied", r)
        self.assertEqual(r["message"], "authentication failed")
        self.assertTrue(self.live(d, kept), "a failed change revokes nothing")
        shown = d.ctl("faillock", "show", "demo", "--service", "demo", json_out=True)
        self.assertEqual(shown.returncode, 0, shown.stdout + shown.stderr)
        self.assertEqual(len(shown.json["failures"]), 1, shown.json)
        # The throttle counts them too: with two failures behind it (one
        # decays just under a whole), the next attempt for the user waits.
        self.assertEqual(d.call(change, timeout=60)["error"], "denied")
        before = d.ctl("stats", json_out=True).json["throttle"]["delayed"]
        self.assertEqual(d.call(change, timeout=60)["error"], "denied")
        self.assertGreater(d.ctl("stats", json_out=True).json["throttle"]["delayed"], before)
        # Three failures: locked, for logins too (the same tally).
        shown = d.ctl("faillock", "show", "demo", "--service", "demo", json_out=True)
        self.assertTrue(shown.json["locked"], shown.json)
        r = d.call({"op": "login", "service": "locked", "user": "demo", "password": "demo-password"}, timeout=60)
        self.assertEqual(r["error"], "denied", r)

    def test_a_refused_new_password_is_not_a_wrong_credential(self):
        d = self.start(password_lines="password requisite faillock deny=1 unlock_time=10min\n"
                                      "password required debug password_update=authtok_err\n",
                       config_extra="[throttle]\nenabled = no\n")
        r = d.call({"op": "passwd", "service": "demo", "user": "demo"})
        self.assertEqual(r["error"], "denied", r)
        shown = d.ctl("faillock", "show", "demo", "--service", "demo", json_out=True)
        self.assertEqual((shown.json["locked"], shown.json["failures"]), (False, []), shown.json)


class TestExpiredInLogin(DaemonTest):
    """`account` answering new_authtok_reqd during a login (the debug
    plugin's acct=new_authtok_reqd): the password stack runs, and the login
    completes with a session."""

    def start(self, config_extra="", password_lines="password required debug password=success\n"):
        users = os.path.join(self.tmp, "users")
        expired = ("auth required file path={users}\naccount required debug acct=new_authtok_reqd\n"
                   .format(users=users))
        return self.daemon(services={"expired": expired + password_lines,
                                     "demo": AUTH.format(users=users)},
                           config_extra=config_extra)

    def test_login_changes_the_password_then_makes_a_session(self):
        d = self.start()
        other = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "demo-password",
                    "token": True})
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["password_changed"], r["revoked"]), (True, 1), r)
        self.assertIn("token", r)
        self.assertTrue(d.call({"op": "validate", "session": r["session"]})["ok"], "the new session lives")
        self.assertFalse(d.call({"op": "validate", "session": other})["ok"], "the older one is revoked")
        self.assertIn("changed an expired password, 1 other session(s) revoked", d.log())

    def test_kept_when_the_service_says_so(self):
        d = self.start("[service.expired]\nrevoke_on_password_change = no\n")
        other = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "demo-password"})
        self.assertEqual((r["ok"], r["password_changed"], r["revoked"]), (True, True, 0), r)
        self.assertTrue(d.call({"op": "validate", "session": other})["ok"])

    def test_revoked_by_an_admin_while_changing_makes_no_session(self):
        # Parked on the new password; an administrator revokes the user
        # meanwhile: the change goes through (its own revocation does not
        # count against it), but the admin's does: no session.
        users = os.path.join(self.tmp, "users")
        d = self.start(password_lines=f"password required file path={users}\n")
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "demo-password"})
        self.assertEqual(r.get("error"), "challenge", r)
        while r.get("error") == "challenge" and any("Current" in p["message"] for p in r["prompts"]):
            r = d.call({"op": "respond", "conversation": r["conversation"], "answers": ["demo-password"]})
        self.assertEqual(r.get("error"), "challenge", r)
        self.assertEqual(d.ctl("sessions", "revoke", "--user", "demo", json_out=True).returncode, 0)
        r = d.call({"op": "respond", "conversation": r["conversation"],
                    "answers": ["a brand new one"] * len([p for p in r["prompts"] if p["style"] == "secret"])})
        self.assertEqual((r.get("error"), r.get("message")), ("denied", "authentication failed"), r)
        self.assertIn("no session made (the expired password it changed stays changed)", d.log())
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "a brand new one"})
        self.assertTrue(r["ok"], r)

        # Without the admin: its own revocation lets its session be made.
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "a brand new one"})
        while r.get("error") == "challenge":
            n = len([p for p in r["prompts"] if p["style"] == "secret"])
            current = any("Current" in p["message"] for p in r["prompts"])
            r = d.call({"op": "respond", "conversation": r["conversation"],
                        "answers": ["a brand new one" if current else "another new one"] * n})
        self.assertEqual((r.get("ok"), r.get("password_changed"), r.get("revoked")), (True, True, 1), r)

    def test_authenticate_of_an_expired_user_is_denied(self):
        d = self.start()
        r = d.call({"op": "authenticate", "service": "expired", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", r)
        self.assertIn("authenticate denied for user 'demo' on service 'expired' (stack result new_authtok_reqd)",
                      d.log())

    def test_a_failed_change_makes_no_session(self):
        d = self.start(password_lines="password required debug password_update=authtok_err\n")
        other = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", r)
        self.assertTrue(d.call({"op": "validate", "session": other})["ok"])
        listed = d.ctl("sessions", "list", "--service", "expired", json_out=True)
        self.assertEqual(listed.json["sessions"], [])

    def test_without_password_lines_the_login_is_denied(self):
        d = self.start(password_lines="")
        r = d.call({"op": "login", "service": "expired", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", r)


FILE_STACK = ("auth requisite faillock deny=3 unlock_time=10min\n"
              "auth required file path={users}\naccount required file path={users}\n"
              "password requisite faillock deny=3 unlock_time=10min\n"
              "password required file path={users} min_length=8\n")


class TestFilePlugin(DaemonTest):
    """The conversation with the `file` plugin: the current password, the new
    one twice, a refusal that says why; its database really changes."""

    def start(self, config_extra=""):
        users = os.path.join(self.tmp, "users")
        return self.daemon(services={"demo": FILE_STACK.format(users=users)},
                           config_extra="[throttle]\nenabled = no\n" + config_extra)

    def can_login(self, d, password):
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": password})
        return r.get("ok", False)

    def test_latchctl_on_a_terminal(self):
        d = self.start()
        other = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "passwd", "demo", "demo"],
                         [(r"Current password: ?$", "demo-password"),
                          (r"New password: ?$", "tiny7"), (r"Retype new password: ?$", "tiny7"),
                          (r"New password: ?$", "a-new-passphrase"),
                          (r"Retype new password: ?$", "a-new-passphrase")], d.env(), timeout=60)
        self.assertEqual(rc, 0, out)
        # The refusal said why, and the new password was asked again.
        self.assertIn("BAD PASSWORD", out)
        self.assertRegex(out, r"revoked:\s*1")
        for secret in ("demo-password", "a-new-passphrase", "tiny7"):
            self.assertNotIn(secret, out, "no answer is echoed")
        self.assertTrue(self.can_login(d, "a-new-passphrase"))
        self.assertFalse(self.can_login(d, "demo-password"))
        self.assertFalse(d.call({"op": "validate", "session": other})["ok"])
        log = d.log()
        for secret in ("demo-password", "a-new-passphrase"):
            self.assertNotIn(secret, log)

    def test_json_and_respond(self):
        d = self.start()
        mine = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        r = d.ctl("passwd", "demo", "demo", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "challenge"), r.stdout + r.stderr)
        self.assertEqual(r.json["prompts"], [{"style": "secret", "message": "Current password:"}])
        r = d.ctl("respond", r.json["conversation"], input="demo-password\n", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "challenge"), r.stdout + r.stderr)
        self.assertEqual([p["message"] for p in r.json["prompts"]], ["New password:", "Retype new password:"])
        r = d.ctl("respond", r.json["conversation"], input="a-new-passphrase\na-new-passphrase\n",
                  json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json, {"user": "demo", "service": "demo", "revoked": 1})
        self.assertTrue(self.can_login(d, "a-new-passphrase"))
        # The same over the wire, keeping the caller's session.
        mine = d.call({"op": "login", "service": "demo", "user": "demo", "password": "a-new-passphrase"})["session"]
        c = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": mine})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["a-new-passphrase"]})
        r = d.call({"op": "respond", "conversation": c["conversation"],
                    "answers": ["third-passphrase", "third-passphrase"]})
        self.assertEqual((r["ok"], r["revoked"]), (True, 0), r)
        self.assertTrue(d.call({"op": "validate", "session": mine})["ok"])

    def test_a_change_failing_after_the_file_changed_still_revokes(self):
        # Linux-PAM leaves a partial change made: here the file line writes
        # the new password, then the line after it refuses. The password
        # did change, so what the old one opened goes all the same.
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": FILE_STACK.format(users=users) +
                                  "password required debug password_prelim=success password_update=authtok_err\n"},
                        config_extra="[throttle]\nenabled = no\n")
        mine, other = (d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
                       for _ in range(2))
        c = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": mine})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["demo-password"]})
        r = d.call({"op": "respond", "conversation": c["conversation"],
                    "answers": ["a-new-passphrase", "a-new-passphrase"]})
        self.assertEqual(r.get("error"), "denied", r)
        self.assertTrue(self.can_login(d, "a-new-passphrase"), "the file line did change it")
        self.assertFalse(d.call({"op": "validate", "session": other})["ok"], "the old password's session went")
        self.assertTrue(d.call({"op": "validate", "session": mine})["ok"], "the caller's own stays")
        self.assertIn("passwd for 'demo' on 'demo' failed after a line of the password stack's update pass "
                      "succeeded: the password may have changed; 1 other session(s) revoked", d.log())
        self.assertEqual(d.ctl("stats", json_out=True).json["password_changes"]["revoked_sessions"], 1)

    def test_a_change_whose_session_ended_meanwhile_changes_nothing(self):
        # The change is made for the caller's session: signed out (or
        # revoked) while the conversation waited, it ends there.
        d = self.start()
        mine, other = (d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
                       for _ in range(2))
        c = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": mine})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["demo-password"]})
        self.assertEqual(c["error"], "challenge", c)
        self.assertTrue(d.call({"op": "logout", "session": mine})["ok"])
        r = d.call({"op": "respond", "conversation": c["conversation"],
                    "answers": ["a-new-passphrase", "a-new-passphrase"]})
        self.assertEqual(r.get("error"), "invalid_session", r)
        self.assertTrue(self.can_login(d, "demo-password"))
        self.assertFalse(self.can_login(d, "a-new-passphrase"))
        self.assertTrue(d.call({"op": "validate", "session": other})["ok"])
        self.assertIn("passwd for user 'demo' on service 'demo': the session it was made for ended during the "
                      "conversation; nothing changed", d.log())

    def test_a_change_whose_session_ended_after_an_update_line_still_revokes(self):
        # A line of the update pass succeeded (it changed what it keeps)
        # before the file line asked for the new password; then the session
        # ended. The change goes no further, but what the first line changed
        # stays, and revokes as any change.
        users = os.path.join(self.tmp, "users")
        stack = FILE_STACK.format(users=users).replace(
            "password required file", "password required debug password=success\npassword required file")
        d = self.daemon(services={"demo": stack}, config_extra="[throttle]\nenabled = no\n")
        mine, other = (d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
                       for _ in range(2))
        c = d.call({"op": "passwd", "service": "demo", "user": "demo", "session": mine})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["demo-password"]})
        self.assertEqual([p["message"] for p in c["prompts"]], ["New password:", "Retype new password:"], c)
        self.assertTrue(d.call({"op": "logout", "session": mine})["ok"])
        r = d.call({"op": "respond", "conversation": c["conversation"],
                    "answers": ["a-new-passphrase", "a-new-passphrase"]})
        self.assertEqual(r.get("error"), "invalid_session", r)
        self.assertTrue(self.can_login(d, "demo-password"), "the file line never ran")
        self.assertFalse(d.call({"op": "validate", "session": other})["ok"])
        log = d.log()
        self.assertIn("the password may have changed; 1 other session(s) revoked", log)
        self.assertIn("ended during the conversation; the change stopped there", log)
        self.assertEqual(d.ctl("stats", json_out=True).json["password_changes"]["revoked_sessions"], 1)

    def test_latchctl_reads_the_answers_from_stdin(self):
        # No terminal and no --json: one answer a line, prompt after prompt.
        d = self.start()
        r = d.ctl("passwd", "demo", "demo", input="demo-password\na-new-passphrase\na-new-passphrase\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"revoked:\s*0")
        self.assertTrue(self.can_login(d, "a-new-passphrase"))
        # Input that ends before the stack is done is a usage error, and changes nothing.
        r = d.ctl("passwd", "demo", "demo", input="a-new-passphrase\n")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertTrue(self.can_login(d, "a-new-passphrase"))

    def test_wrong_current_password_is_denied_and_counted(self):
        d = self.start()
        for _ in range(3):
            c = d.call({"op": "passwd", "service": "demo", "user": "demo"})
            r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["wrong-password"]})
            self.assertEqual((r["error"], r["message"]), ("denied", "authentication failed"), r)
        self.assertFalse(self.can_login(d, "demo-password"), "locked by faillock after 3")
        shown = d.ctl("faillock", "show", "demo", json_out=True)
        self.assertEqual(len(shown.json["failures"]), 3, shown.json)
        d.ctl("faillock", "reset", "demo")
        self.assertTrue(self.can_login(d, "demo-password"), "the password did not change")

    def test_unknown_user_reads_like_a_wrong_password(self):
        d = self.start()
        c = d.call({"op": "passwd", "service": "demo", "user": "nobody"})
        self.assertEqual(c["prompts"], [{"style": "secret", "message": "Current password:"}])
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["whatever"]})
        self.assertEqual((r["error"], r["message"]), ("denied", "authentication failed"), r)

    def test_expired_password_is_changed_during_login(self):
        d = self.start()
        other = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})["session"]
        r = d.ctl("user", "expire", d.users, "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", "authenticate cannot change it: refused")
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "login", "demo", "demo"],
                         [(r"Password: ?$", "demo-password"), (r"New password: ?$", "a-new-passphrase"),
                          (r"Retype new password: ?$", "a-new-passphrase")], d.env(), timeout=60)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"session:\s*\S{44}")
        self.assertRegex(out, r"password_changed:\s*true")
        self.assertNotIn("Current password", out, "the login's password is the current one")
        self.assertFalse(d.call({"op": "validate", "session": other})["ok"], "the older session is revoked")
        # The change cleared the expiry: the next login is a plain one.
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "a-new-passphrase"})
        self.assertTrue(r["ok"], r)
        self.assertNotIn("password_changed", r)
        self.assertFalse(self.can_login(d, "demo-password"))

    def test_an_abandoned_change_in_a_login_counts_once(self):
        # faillock is in both stacks; the login ran both: one failure.
        d = self.start("[daemon]\nconversation_timeout = 1s\n")
        d.ctl("user", "expire", d.users, "demo")
        c = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(c["error"], "challenge", c)
        wait_for(lambda: "ended after 1 step(s): expired" in d.log(), 10, "the conversation expired")
        wait_for(lambda: d.ctl("faillock", "show", "demo", json_out=True).json.get("failures"), 10,
                 "the failure counted")
        shown = d.ctl("faillock", "show", "demo", json_out=True)
        self.assertEqual(len(shown.json["failures"]), 1, shown.json)

    def test_expired_password_over_the_wire(self):
        d = self.start()
        d.ctl("user", "expire", d.users, "demo")
        c = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(c["error"], "challenge", c)
        self.assertEqual([p["message"] for p in c["prompts"]], ["New password:", "Retype new password:"])
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["a-new-passphrase"] * 2})
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["password_changed"], r["revoked"]), (True, 0))
        self.assertTrue(d.call({"op": "validate", "session": r["session"]})["ok"])


if __name__ == "__main__":
    unittest.main()
