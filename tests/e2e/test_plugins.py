# SPDX-License-Identifier: MIT
"""authenticate through real stacks: file, faillock + file, and pam."""

import os
import subprocess
import time
import unittest

from harness import DaemonTest, scaled


class TestStacks(DaemonTest):
    def test_file_plugin_and_uniform_denials(self):
        d = self.daemon()
        r = d.ctl("authenticate", "demo", "demo", input="demo-password\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json["user"], "demo")
        self.assertEqual(r.json["claims"]["groups"], ["users"])
        wrong = d.ctl("authenticate", "demo", "demo", input="nope\n", json_out=True)
        unknown = d.ctl("authenticate", "demo", "nobody-here", input="nope\n", json_out=True)
        self.assertEqual(wrong.returncode, 1)
        self.assertEqual(wrong.json, unknown.json, "unknown user and wrong password answer alike")
        self.assertEqual(wrong.json["error"], "denied")
        r = d.ctl("authenticate", "nosuch", "demo", input="x\n", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "unknown_service"))
        self.assertNotIn("demo-password", d.log())
        self.assertNotIn("nope", d.log())

    def test_faillock_locks_and_unlocks(self):
        users = os.path.join(self.tmp, "users")
        # The daemon's backoff stays short: this tests faillock's lock.
        d = self.daemon(services={"demo": f"auth requisite faillock deny=3 unlock_time={scaled(3):.0f}s\n"
                                          f"auth required file path={users}\n"
                                          f"account required file path={users}\n"},
                        config_extra="[throttle]\nmax_delay = 1s\n")
        for _ in range(3):
            self.assertEqual(d.ctl("authenticate", "demo", "demo", input="wrong\n").returncode, 1)
        locked = d.ctl("authenticate", "demo", "demo", input="demo-password\n", json_out=True)
        wrong = d.ctl("authenticate", "demo", "demo", input="wrong\n", json_out=True)
        self.assertEqual(locked.returncode, 1, "locked: the right password is refused")
        self.assertEqual(locked.json, wrong.json, "locked looks like a wrong password")
        time.sleep(scaled(3.5))
        # The daemon's own backoff may delay this attempt, but not refuse it.
        r = d.ctl("authenticate", "demo", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The lock survives a restart.
        for _ in range(3):
            d.ctl("authenticate", "demo", "demo", input="wrong\n")
        d.stop()
        d.start()
        self.assertEqual(d.ctl("authenticate", "demo", "demo", input="demo-password\n").returncode, 1)

    def test_login_needs_the_account_stack_too(self):
        d = self.daemon(services={"demo": "auth required permit\naccount required deny\n"})
        self.assertEqual(d.ctl("login", "demo", "demo", input="x\n").returncode, 1)
        d.write_service("demo", "auth sufficient permit\nauth required deny\naccount required permit\n")
        d.ctl("reload")
        self.assertEqual(d.ctl("login", "demo", "demo", input="x\n").returncode, 0)


@unittest.skipUnless(os.geteuid() == 0, "needs root: writes /etc/pam.d and adds a user")
class TestPam(DaemonTest):
    user = "latche2e"
    service = f"latch-e2e-{os.getpid()}"

    def setUp(self):
        super().setUp()
        subprocess.run(["userdel", "-r", self.user], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.user], check=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:Pam-Pass-1\n", text=True, check=True)
        self.pamfile = f"/etc/pam.d/{self.service}"
        with open(self.pamfile, "w") as f:
            f.write("auth required pam_unix.so\naccount required pam_unix.so\n")

    def tearDown(self):
        super().tearDown()
        os.unlink(self.pamfile)
        subprocess.run(["userdel", self.user], capture_output=True)

    def test_pam_unix(self):
        d = self.daemon(services={"sys": f"auth required pam service={self.service}\n"
                                         f"account required pam service={self.service}\n"})
        r = d.ctl("authenticate", "sys", self.user, input="Pam-Pass-1\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        r = d.ctl("authenticate", "sys", self.user, input="wrong\n")
        self.assertEqual(r.returncode, 1)
        r = d.ctl("login", "sys", self.user, input="Pam-Pass-1\n", json_out=True)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(d.ctl("validate", r.json["session"]).returncode, 0)


if __name__ == "__main__":
    unittest.main()
