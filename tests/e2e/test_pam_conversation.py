# SPDX-License-Identifier: MIT
"""The pam plugin relays Linux-PAM's conversation: real modules from Debian
(pam_oath with oathtool's codes, pam_unix before it) through latch-worker."""

import os
import shutil
import subprocess
import unittest

from harness import DaemonTest, on_pty

SECRET = "3132333435363738393031323334353637383930"
OATH = "/lib/x86_64-linux-gnu/security/pam_oath.so"


def code(step=0):
    """The TOTP code `step` periods from now: pam_oath takes each code once
    (a replay is refused), and accepts codes within its window."""
    return subprocess.run(["oathtool", "--totp", f"--now=now + {30 * step} seconds", SECRET],
                          capture_output=True, text=True, check=True).stdout.strip()


@unittest.skipUnless(os.geteuid() == 0, "needs root: writes /etc/pam.d and adds a user")
@unittest.skipUnless(os.path.exists(OATH) and shutil.which("oathtool"), "needs libpam-oath and oathtool")
class TestPamConversation(DaemonTest):
    user = "latchconv"

    def setUp(self):
        super().setUp()
        # pam_oath never frees the responses our conversation function hands
        # it (a struct pam_response and the code: 16 + 7 bytes per prompt, seen
        # by LeakSanitizer in latch-worker once pam_end() unloaded it). Not
        # ours to fix: leak checks are off for the workers of these tests.
        self.saved_asan = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (self.saved_asan + ":" if self.saved_asan else "") + "detect_leaks=0"
        subprocess.run(["userdel", self.user], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.user], check=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:Pam-Pass-1\n", text=True, check=True)
        self.oathfile = os.path.join(self.tmp, "users.oath")
        with open(self.oathfile, "w") as f:
            f.write(f"HOTP/T30/6 {self.user} - {SECRET}\n")
        os.chmod(self.oathfile, 0o600)
        self.pamfiles = []
        self.oath_only = self.pam("oath", f"auth required pam_oath.so usersfile={self.oathfile} window=20\n"
                                           "account required pam_permit.so\n")
        self.unix_oath = self.pam("unix-oath", "auth requisite pam_unix.so\n"
                                               f"auth required pam_oath.so usersfile={self.oathfile} window=20\n"
                                               "account required pam_unix.so\n")

    def pam(self, name, text):
        svc = f"latch-conv-{name}-{os.getpid()}"
        path = f"/etc/pam.d/{svc}"
        with open(path, "w") as f:
            f.write(text)
        self.pamfiles.append(path)
        return svc

    def tearDown(self):
        super().tearDown()
        if self.saved_asan is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = self.saved_asan
        for p in self.pamfiles:
            os.unlink(p)
        subprocess.run(["userdel", self.user], capture_output=True)

    @staticmethod
    def ppid(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        return self.daemon(services={
            "otp": f"auth required pam service={self.oath_only}\naccount required pam service={self.oath_only}\n",
            "sys": f"auth required pam service={self.unix_oath}\naccount required pam service={self.unix_oath}\n"})

    def test_pam_oath_code_through_an_isolated_worker(self):
        d = self.start()
        c = d.call({"op": "authenticate", "service": "otp", "user": self.user})
        self.assertEqual(c.get("error"), "challenge", str(c) + d.log())
        self.assertEqual(len(c["prompts"]), 1)
        self.assertEqual(c["prompts"][0]["style"], "secret")
        self.assertIn("One-time password", c["prompts"][0]["message"])
        # The module waits in a latch-worker child of latchd, not in latchd.
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and self.ppid(int(p)) == d.proc.pid]
        self.assertTrue(children, "no latch-worker process")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": [code()]})
        self.assertTrue(r["ok"], str(r) + d.log())
        # A wrong code is refused.
        c = d.call({"op": "authenticate", "service": "otp", "user": self.user})
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["000000"]})
        self.assertEqual(r.get("error"), "denied", r)

    def test_pam_unix_then_pam_oath_prompt_twice(self):
        d = self.start()
        c1 = d.call({"op": "login", "service": "sys", "user": self.user})
        self.assertEqual(c1.get("error"), "challenge", str(c1) + d.log())
        self.assertEqual(c1["prompts"][0]["style"], "secret")
        c2 = d.call({"op": "respond", "conversation": c1["conversation"], "answers": ["Pam-Pass-1"]})
        self.assertEqual(c2.get("error"), "challenge", str(c2) + d.log())
        self.assertIn("One-time password", c2["prompts"][0]["message"])
        r = d.call({"op": "respond", "conversation": c2["conversation"], "answers": [code()]})
        self.assertTrue(r["ok"], str(r) + d.log())
        self.assertEqual(d.call({"op": "validate", "session": r["session"]})["ok"], True)
        # With the password sent, only the code is asked.
        c = d.call({"op": "authenticate", "service": "sys", "user": self.user, "password": "Pam-Pass-1"})
        self.assertEqual([p["style"] for p in c["prompts"]], ["secret"], c)
        self.assertIn("One-time password", c["prompts"][0]["message"])
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": [code()]})
        self.assertEqual(r.get("error"), "denied", "pam_oath refuses a code used already")
        c = d.call({"op": "authenticate", "service": "sys", "user": self.user, "password": "Pam-Pass-1"})
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": [code(2)]})
        self.assertTrue(r["ok"], r)

    def test_latchctl_on_a_terminal_walks_password_then_code(self):
        d = self.start()
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "login", "sys", self.user],
                         [(r"assword: ?$", "Pam-Pass-1"), (r"One-time password", code())], d.env())
        self.assertEqual(rc, 0, out)
        self.assertIn("session", out)
        self.assertNotIn("Pam-Pass-1", out)


if __name__ == "__main__":
    unittest.main()
