# SPDX-License-Identifier: MIT
"""Self-service plugin calls: the `plugin` op with a user's own `session`
(and `password` to re-authenticate), as latch-http's account pages use it:
totp enrollment, confirmation and removal by the user, refused for another
user, without re-authentication, and for faillock; a failed
re-authentication counts like a failed login."""

import os
import shutil
import subprocess
import time
import unittest

from harness import SANITIZED, DaemonTest, core_image
from test_totp import next_step_code, oathtool

NOBODY = 65534


@unittest.skipUnless(shutil.which("oathtool"), "needs oathtool")
class TestSelfService(DaemonTest):
    def start(self, config_extra="", allow=None):
        users = os.path.join(self.tmp, "users")
        extra = config_extra + (f"[service.demo]\nallow_users = {allow}\n" if allow else "")
        return self.daemon(
            services={"demo": "auth requisite faillock deny=3 unlock_time=10min\n"
                              f"auth required file path={users}\n"
                              "auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo period=10\n"
                              f"account required file path={users}\n"},
            config_extra=extra)

    def session(self, d):
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertTrue(r["ok"], r)
        return r["session"]

    def plugin(self, d, session, action, **args):
        return d.call({"op": "plugin", "plugin": "totp", "action": action, "session": session, **args})

    def test_enroll_confirm_remove_own_factor(self):
        d = self.start()
        s = self.session(d)

        r = self.plugin(d, s, "status")
        self.assertEqual((r["ok"], r["user"], r["enrolled"], r["pending"]), (True, "demo", False, False), r)
        # Changing the factor needs the password again in the same call.
        r = self.plugin(d, s, "enroll")
        self.assertEqual((r["ok"], r["error"]), (False, "forbidden"), r)
        self.assertIn("re-authenticate", r["message"])
        r = self.plugin(d, s, "enroll", password="wrong-password")
        self.assertEqual((r["ok"], r["error"]), (False, "denied"), r)

        r = self.plugin(d, s, "enroll", password="demo-password")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["user"], "demo")
        self.assertTrue(r["uri"].startswith("otpauth://totp/Demo:demo?secret=" + r["secret"]), r)
        secret = r["secret"]

        # Confirming needs no password: the enrollment was begun re-authenticated.
        code = oathtool(secret, period=10)
        wrong = f"{(int(code) + 1) % 1000000:06d}"
        r = self.plugin(d, s, "confirm", code=wrong)
        self.assertEqual((r["ok"], r["error"]), (False, "denied"), r)
        r = self.plugin(d, s, "confirm", code=code)
        self.assertEqual((r["ok"], r["enrolled"]), (True, True), r)

        # Logins now ask for a code.
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "challenge", r)
        code = next_step_code(secret, period=10, after=code)
        r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [code]})
        self.assertTrue(r["ok"], r)

        # So does the re-authentication of a removal: a conversation.
        r = self.plugin(d, s, "remove")
        self.assertEqual(r["error"], "forbidden", r)
        r = self.plugin(d, s, "remove", password="demo-password")
        self.assertEqual(r["error"], "challenge", r)
        self.assertEqual(r["prompts"], [{"style": "secret", "message": "Verification code:"}])
        r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [code]})
        self.assertEqual(r["error"], "denied", "the code just used is refused (replay)")
        r = self.plugin(d, s, "remove", password="demo-password")
        code = next_step_code(secret, period=10, after=code)
        r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [code]})
        self.assertEqual((r["ok"], r.get("removed")), (True, True), r)
        r = self.plugin(d, s, "status")
        self.assertEqual((r["enrolled"], r["pending"]), (False, False), r)

        log = d.log()
        self.assertNotIn(secret, log)
        self.assertNotIn(s, log)
        self.assertIn("(self-service, re-authenticated)", log)

    def test_session_ended_during_the_reauthentication(self):
        # A removal waits on its code; the session is logged out meanwhile
        # (a password change elsewhere would revoke it the same way): the
        # answer is invalid_session, and the factor stays.
        d = self.start()
        s = self.session(d)
        r = self.plugin(d, s, "enroll", password="demo-password")
        secret = r["secret"]
        code = oathtool(secret, period=10)
        self.assertTrue(self.plugin(d, s, "confirm", code=code)["ok"])

        r = self.plugin(d, s, "remove", password="demo-password")
        self.assertEqual(r["error"], "challenge", r)
        self.assertTrue(d.call({"op": "logout", "session": s})["ok"])
        code = next_step_code(secret, period=10, after=code)
        r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [code]})
        self.assertEqual((r["ok"], r["error"], r["message"]),
                         (False, "invalid_session", "no such session, or it has expired or been revoked"), r)
        r = d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo"})
        self.assertEqual((r["ok"], r["enrolled"]), (True, True), r)
        self.assertIn("not run: the session ended before it could run", d.log())

    def test_only_the_sessions_own_user_and_service(self):
        d = self.start()
        d.add_user("alice", "alice-password")
        s = self.session(d)
        for extra in ({"user": "alice"}, {"user": "alice", "password": "demo-password"}, {"service": "other"}):
            r = self.plugin(d, s, "status", **extra)
            self.assertEqual((r["ok"], r["error"]), (False, "forbidden"), f"{extra}: {r}")
        r = self.plugin(d, s, "status", user="demo")
        self.assertTrue(r["ok"], r)
        r = self.plugin(d, "x" * 43, "status")
        self.assertEqual(r["error"], "invalid_session", r)
        d.call({"op": "logout", "session": s})
        r = self.plugin(d, s, "status")
        self.assertEqual(r["error"], "invalid_session", r)
        # A password re-authenticates a session: an admin call has none.
        r = d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo",
                    "password": "demo-password"})
        self.assertEqual(r["error"], "bad_request", r)
        # An administrator's call is as before (not self: enroll needs no password).
        r = d.call({"op": "plugin", "plugin": "totp", "action": "enroll", "user": "alice"})
        self.assertTrue(r["ok"], r)

    def test_faillock_refuses_self_and_counts_failed_reauthentication(self):
        d = self.start(config_extra="[throttle]\nmax_delay = 1s\n")
        s = self.session(d)
        for extra in ({}, {"password": "demo-password"}):
            for action in ("show", "reset"):
                r = d.call({"op": "plugin", "plugin": "faillock", "action": action, "session": s, **extra})
                self.assertEqual((r["ok"], r["error"]), (False, "forbidden"), f"{action} {extra}: {r}")

        before = d.call({"op": "stats"})["throttle"]["delayed"]
        for _ in range(3):
            r = self.plugin(d, s, "enroll", password="wrong-password")
            self.assertEqual(r["error"], "denied", r)
        # Counted by faillock like failed logins: the user is locked now...
        r = d.call({"op": "plugin", "plugin": "faillock", "action": "show", "user": "demo", "service": "demo"})
        self.assertEqual((len(r["failures"]), r["locked"]), (3, True), r)
        r = self.plugin(d, s, "enroll", password="demo-password")
        self.assertEqual(r["error"], "denied", r)
        # ...and by the throttle: later attempts of the user waited.
        self.assertGreater(d.call({"op": "stats"})["throttle"]["delayed"], before)
        log = d.log()
        self.assertIn("plugin denied for user 'demo' on service 'demo' (stack result", log)
        self.assertIn("plugin faillock reset for user 'demo' by pid=", log)
        self.assertIn("(self-service, re-authenticated): forbidden", log)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (to call as another uid)")
    def test_peer_must_be_allowed_for_the_sessions_service(self):
        d = self.start(allow="root")
        os.chmod(d.sock, 0o666)
        os.chmod(self.tmp, 0o755)
        s = self.session(d)
        code = (
            "import socket,struct,json,sys\n"
            "def call(o):\n"
            "    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "    b=json.dumps(o).encode(); s.sendall(struct.pack('>I',len(b))+b)\n"
            "    n=struct.unpack('>I',s.recv(4,socket.MSG_WAITALL))[0]\n"
            "    return json.loads(s.recv(n,socket.MSG_WAITALL))['error']\n"
            "print(call({'op':'plugin','plugin':'totp','action':'status','session':sys.argv[2]}))\n"
            "print(call({'op':'plugin','plugin':'totp','action':'status','user':'demo'}))\n")
        r = subprocess.run(["python3", "-c", code, d.sock, s], capture_output=True, text=True,
                           user=NOBODY, group=NOBODY, timeout=30)
        self.assertEqual(r.stdout.split(), ["forbidden", "forbidden"], r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (to call as another uid)")
    def test_null_session_is_no_session(self):
        """A `session` of null is absent, as for every other argument: the
        call is an administrator's, refused to any other peer (not a way
        around the admin check to another user's enrollment secret or
        faillock record)."""
        d = self.start()
        os.chmod(d.sock, 0o666)
        os.chmod(self.tmp, 0o755)
        code = (
            "import socket,struct,json,sys\n"
            "def call(o):\n"
            "    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "    b=json.dumps(o).encode(); s.sendall(struct.pack('>I',len(b))+b)\n"
            "    n=struct.unpack('>I',s.recv(4,socket.MSG_WAITALL))[0]\n"
            "    r=json.loads(s.recv(n,socket.MSG_WAITALL))\n"
            "    return 'ok' if r['ok'] else r['error']\n"
            "print(call({'op':'plugin','plugin':'totp','action':'enroll','user':'demo','service':'demo',"
            "'session':None}))\n"
            "print(call({'op':'plugin','plugin':'faillock','action':'reset','user':'demo','service':'demo',"
            "'session':None}))\n"
            "print(call({'op':'plugin','plugin':'totp','action':'status','user':'demo','session':7}))\n")
        r = subprocess.run(["python3", "-c", code, d.sock], capture_output=True, text=True,
                           user=NOBODY, group=NOBODY, timeout=30)
        self.assertEqual(r.stdout.split(), ["forbidden", "forbidden", "forbidden"], r.stderr)
        r = d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo", "service": "demo"})
        self.assertEqual((r["ok"], r["enrolled"], r["pending"]), (True, False, False), r)
        # An administrator's call with a null session is an administrator's call.
        r = d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo", "session": None})
        self.assertTrue(r["ok"], r)


    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("gcore"), "needs root and gdb's gcore")
    @unittest.skipIf(SANITIZED, "sanitizer shadow memory makes huge cores")
    def test_enrollment_keys_not_left_in_memory(self):
        """The answers that carried a key (users' own and an admin's
        enrollments) leave no copy of it in latchd's memory: not in its
        buffers, nor in Jansson's, nor on its stack."""
        d = self.start()
        answers = []
        for user in ("alice", "bob", "demo", "carol"):
            if user == "demo":
                answers.append(self.plugin(d, self.session(d), "enroll", password="demo-password"))
                continue
            d.add_user(user, user + "-password")
            answers.append(d.call({"op": "plugin", "plugin": "totp", "action": "enroll", "user": user}))
        for a in answers:
            self.assertTrue(a["ok"], a)
        time.sleep(0.5)
        image = core_image(d.proc.pid, self.tmp)
        self.assertGreater(len(image), 100000)
        # (Not assertNotIn: its message would print the whole image.)
        for a in answers:
            for what in ("secret", "uri"):
                at = image.find(a[what].encode())
                self.assertEqual(at, -1, f"{a['user']}'s enrollment {what} survived in latchd's memory: "
                                         f"{image[max(0, at - 64):at + 96]!r}")
            # Any 16 characters of the key, too (registers spilled in pieces).
            for k in range(0, 32 - 16 + 1, 8):
                self.assertEqual(image.find(a["secret"][k:k + 16].encode()), -1,
                                 f"a piece of {a['user']}'s key survived in latchd's memory")
        self.assertEqual(image.find(b"demo-password"), -1, "the password survived in latchd's memory")


if __name__ == "__main__":
    unittest.main()
