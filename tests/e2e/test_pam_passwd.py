# SPDX-License-Identifier: MIT
"""Password changes through the pam plugin: Debian's pam_unix changes a real
user's password in /etc/shadow, through `latchctl passwd` (on a terminal and
with --json/respond) and through a login whose password expired (chage -d 0),
in latch-worker (the default for pam) and in latchd's own threads."""

import os
import subprocess
import unittest

from harness import DaemonTest, on_pty

OLD, NEW = "Pam-Pass-1", "Pam-Changed-2"


def shadow_entry(user):
    with open("/etc/shadow") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == user:
                return fields
    raise AssertionError(f"{user} is not in /etc/shadow")


@unittest.skipUnless(os.geteuid() == 0, "needs root: writes /etc/pam.d and adds a user")
class TestPamPasswd(DaemonTest):
    user = "latchpw"
    config = ""  # latch-worker: the default for pam
    isolated = True

    def setUp(self):
        super().setUp()
        subprocess.run(["userdel", self.user], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.user], check=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:{OLD}\n", text=True, check=True)
        self.service = f"latch-passwd-{os.getpid()}"
        self.pamfile = f"/etc/pam.d/{self.service}"
        with open(self.pamfile, "w") as f:
            f.write("auth     required pam_unix.so\n"
                    "account  required pam_unix.so\n"
                    "password required pam_unix.so\n")

    def tearDown(self):
        super().tearDown()
        os.unlink(self.pamfile)
        subprocess.run(["userdel", self.user], capture_output=True)

    def start(self):
        # No throttle: a wrong password would slow what follows down (that
        # the throttle counts it is the passwd op's own test).
        return self.daemon(services={"sys": f"auth     required pam service={self.service}\n"
                                            f"account  required pam service={self.service}\n"
                                            f"password required pam service={self.service}\n"},
                           config_extra=self.config + "[throttle]\nenabled = no\n")

    @staticmethod
    def children(pid):
        """latchd's child processes (its latch-workers)."""
        found = []
        for p in os.listdir("/proc"):
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
        return found

    def assert_password(self, d, good, bad):
        r = d.ctl("authenticate", "sys", self.user, input=good + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        r = d.ctl("authenticate", "sys", self.user, input=bad + "\n", json_out=True)
        self.assertEqual((r.returncode, r.json.get("error")), (1, "denied"), r.stdout)

    def test_passwd_on_a_terminal(self):
        d = self.start()
        before = shadow_entry(self.user)
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "passwd", "sys", self.user],
                         [(r"Password: ?$", OLD), (r"New password: ?$", NEW),
                          (r"Retype new password: ?$", NEW)], d.env())
        self.assertEqual(rc, 0, out + d.log())
        self.assertNotIn(OLD, out)
        self.assertNotIn(NEW, out)
        after = shadow_entry(self.user)
        self.assertNotEqual(before[1], after[1], "pam_unix did not write a new hash")
        self.assert_password(d, NEW, OLD)

    def test_passwd_with_json_and_respond(self):
        d = self.start()
        before = shadow_entry(self.user)
        r = d.ctl("passwd", "sys", self.user, input="", json_out=True)
        self.assertEqual((r.returncode, r.json.get("error")), (1, "challenge"), r.stdout + r.stderr + d.log())
        # pam_authenticate's prompt: the current password is checked first.
        self.assertEqual(r.json["prompts"], [{"style": "secret", "message": "Password: "}])
        # The module waits in a latch-worker, or in latchd's own thread.
        self.assertEqual(bool(self.children(d.proc.pid)), self.isolated)
        r = d.ctl("respond", r.json["conversation"], input=OLD + "\n", json_out=True)
        self.assertEqual(r.json.get("error"), "challenge", r.stdout + d.log())
        self.assertEqual(r.json["prompts"][-1], {"style": "secret", "message": "New password: "})
        r = d.ctl("respond", r.json["conversation"], input=NEW + "\n", json_out=True)
        self.assertEqual(r.json.get("error"), "challenge", r.stdout + d.log())
        self.assertEqual(r.json["prompts"][-1], {"style": "secret", "message": "Retype new password: "})
        r = d.ctl("respond", r.json["conversation"], input=NEW + "\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        self.assertEqual(r.json["user"], self.user)
        self.assertNotEqual(before[1], shadow_entry(self.user)[1])
        self.assert_password(d, NEW, OLD)

    def test_wrong_current_password_changes_nothing(self):
        d = self.start()
        before = shadow_entry(self.user)
        c = d.call({"op": "passwd", "service": "sys", "user": self.user})
        self.assertEqual(c.get("error"), "challenge", str(c) + d.log())
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["Not-" + OLD]})
        self.assertEqual(r.get("error"), "denied", r)
        # Refused before any new password was asked, and /etc/shadow as it was.
        self.assertEqual(before, shadow_entry(self.user))
        self.assert_password(d, OLD, NEW)
        # On the terminal: the same.
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "passwd", "sys", self.user],
                         [(r"Password: ?$", "Not-" + OLD)], d.env())
        self.assertEqual(rc, 1, out)
        self.assertNotIn("New password", out)
        self.assertEqual(before, shadow_entry(self.user))

    def test_retyped_differently_changes_nothing(self):
        d = self.start()
        before = shadow_entry(self.user)
        c = d.call({"op": "passwd", "service": "sys", "user": self.user})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": [OLD]})
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": [NEW]})
        self.assertEqual(c["prompts"][-1]["message"], "Retype new password: ", c)
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": [NEW + "x"]})
        # A typo, not a server down: denied, not unavailable.
        self.assertEqual(r.get("error"), "denied", r)
        self.assertEqual(before, shadow_entry(self.user))
        self.assert_password(d, OLD, NEW)

    def test_expired_password_changes_during_login(self):
        subprocess.run(["chage", "-d", "0", self.user], check=True)
        d = self.start()
        # pam_unix's account step says the password must change: a plain
        # authentication is denied, a login goes on to change it.
        r = d.ctl("authenticate", "sys", self.user, input=OLD + "\n", json_out=True)
        self.assertEqual((r.returncode, r.json.get("error")), (1, "denied"), r.stdout + d.log())
        c = d.call({"op": "login", "service": "sys", "user": self.user, "password": OLD})
        self.assertEqual(c.get("error"), "challenge", str(c) + d.log())
        # The login's password answered pam_unix's "Current password: ".
        self.assertEqual([p["message"] for p in c["prompts"] if p["style"] == "secret"], ["New password: "], c)
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": [NEW]})
        self.assertEqual(c.get("error"), "challenge", str(c) + d.log())
        self.assertEqual(c["prompts"][-1]["message"], "Retype new password: ")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": [NEW]})
        self.assertTrue(r.get("ok"), str(r) + d.log())
        self.assertIn("session", r)
        self.assertEqual(d.call({"op": "validate", "session": r["session"]}).get("ok"), True)
        entry = shadow_entry(self.user)
        self.assertNotEqual(entry[2], "0", "the password still must change")
        # No longer expired: the new password logs in without a change.
        r = d.call({"op": "login", "service": "sys", "user": self.user, "password": NEW})
        self.assertTrue(r.get("ok"), str(r) + d.log())
        self.assert_password(d, NEW, OLD)

    def test_expired_password_on_a_terminal(self):
        subprocess.run(["chage", "-d", "0", self.user], check=True)
        d = self.start()
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "login", "sys", self.user],
                         [(r"Password: ?$", OLD), (r"New password: ?$", NEW),
                          (r"Retype new password: ?$", NEW)], d.env())
        self.assertEqual(rc, 0, out + d.log())
        self.assertIn("session", out)
        self.assertIn(f"Changing password for {self.user}.", out)
        self.assertNotIn(OLD, out)
        self.assertNotIn(NEW, out)
        self.assert_password(d, NEW, OLD)


class TestPamPasswdInProcess(TestPamPasswd):
    """The same, with the pam lines in latchd's own threads."""
    config = "[plugin.pam]\nisolate = no\n"
    isolated = False


if __name__ == "__main__":
    unittest.main()
