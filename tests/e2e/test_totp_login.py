# SPDX-License-Identifier: MIT
"""Password + code logins through the totp plugin and conversations: the
wire protocol, latchctl on a terminal (a pty), liblatch (a C client), an
optional factor, replays, recovery codes, failures counted by faillock."""

import os
import pty
import re
import select
import shutil
import subprocess
import time
import unittest

from harness import LATCHCTL, DaemonTest, on_pty, scaled

TOTP_LOGIN = os.environ.get("LATCH_TOTP_LOGIN", "totp-login")


def oathtool(secret, at=None):
    args = ["oathtool", "--totp", "-b"] + (["-N", f"@{int(at)}"] if at is not None else []) + [secret]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


class Codes:
    """Codes of successive time steps of one secret, without waiting for the
    clock: the lines below take window=10, so the steps from 8 before now
    onwards are all acceptable, each once and in increasing order, for as
    long as a test runs."""

    def __init__(self, secret):
        self.secret = secret
        self.step = int(time.time()) // 30 - 8

    def next(self):
        self.step += 1
        return oathtool(self.secret, at=self.step * 30)

    def current(self):
        return oathtool(self.secret, at=self.step * 30)


@unittest.skipUnless(shutil.which("oathtool"), "needs oathtool")
class TestTotpLogin(DaemonTest):
    def start(self, control="required", deny=3):
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": f"auth requisite faillock deny={deny} unlock_time=10min\n"
                                          f"auth required file path={users}\n"
                                          f"auth {control} totp issuer=Demo window=10\n"
                                          f"account required file path={users}\n"},
                        config_extra="[throttle]\nmax_delay = 1s\n")
        d.add_user("bob", "bob-password", "users")
        return d

    def enroll(self, d, user="demo"):
        e = d.ctl("totp", "enroll", user, json_out=True)
        self.assertEqual(e.returncode, 0, e.stdout + e.stderr)
        codes = Codes(e.json["secret"])
        r = d.ctl("totp", "confirm", user, codes.next(), json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return codes

    def challenge(self, d, sock, **kw):
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password", **kw}, sock=sock)
        self.assertEqual(r.get("error"), "challenge", r)
        self.assertEqual(r["prompts"], [{"style": "secret", "message": "Verification code:"}])
        return r["conversation"]

    def test_password_and_code_over_the_wire(self):
        d = self.start()
        codes = self.enroll(d)
        secret, confirmed = codes.secret, codes.current()
        s = d.connect()
        # The code that confirmed the enrollment cannot log in.
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [confirmed]}, sock=s)
        self.assertEqual(r["error"], "denied", r)
        code = codes.next()
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [code]}, sock=s)
        self.assertTrue(r["ok"], r)
        self.assertTrue(d.call({"op": "validate", "session": r["session"]})["ok"])
        # The same code again: refused (a replay), like a wrong one.
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [code]}, sock=s)
        self.assertEqual(r["error"], "denied", r)
        # A wrong password is refused even with a right code (required).
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "wrong"}, sock=s)
        if r.get("error") == "challenge":
            r = d.call({"op": "respond", "conversation": r["conversation"],
                        "answers": [codes.next()]}, sock=s)
        self.assertEqual(r["error"], "denied", r)
        log = d.log()
        self.assertNotIn(secret, log)
        self.assertNotIn(code, log)
        self.assertIn("replay", log)

    def test_an_accepted_code_survives_a_crash(self):
        """The accepted time step is in the store before the answer that lets
        the user in (a login's session commit carries it; an authentication
        writes it before answering): latchd killed with SIGKILL right after
        that answer still refuses the same code once restarted."""
        d = self.start()
        codes = self.enroll(d)
        for op in ("login", "authenticate"):
            code = codes.next()
            s = d.connect()
            r = d.call({"op": "respond", "conversation": self.challenge(d, s, op=op), "answers": [code]}, sock=s)
            self.assertTrue(r["ok"], r)
            s.close()
            d.kill9()
            d.start()
            s = d.connect()
            r = d.call({"op": "respond", "conversation": self.challenge(d, s, op=op), "answers": [code]}, sock=s)
            self.assertEqual(r.get("error"), "denied", f"{op}: the code was accepted again after a crash")
            r = d.call({"op": "respond", "conversation": self.challenge(d, s, op=op), "answers": [codes.next()]},
                       sock=s)
            self.assertTrue(r["ok"], r)
            s.close()
        self.assertIn("replay", d.log())

    def test_recovery_code_at_the_prompt(self):
        d = self.start()
        self.enroll(d)
        codes = d.ctl("totp", "recovery", "demo", json_out=True).json["codes"]
        s = d.connect()
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [codes[0]]}, sock=s)
        self.assertTrue(r["ok"], r)
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [codes[0]]}, sock=s)
        self.assertEqual(r["error"], "denied", "each recovery code works once")
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [codes[1].upper()]}, sock=s)
        self.assertTrue(r["ok"], r)
        self.assertEqual(d.ctl("totp", "status", "demo", json_out=True).json["recovery_codes"], 8)

    def test_wrong_codes_count_toward_faillock(self):
        d = self.start(deny=3)
        codes = self.enroll(d)
        s = d.connect()
        right = codes.next()
        for i in range(3):
            wrong = f"{(int(right) + 1 + i) % 1000000:06d}"
            r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [wrong]}, sock=s)
            self.assertEqual(r["error"], "denied", r)
        show = d.ctl("faillock", "show", "demo", json_out=True).json
        self.assertTrue(show["locked"], show)
        self.assertEqual(len(show["failures"]), 3)
        # Locked: faillock refuses before anything is asked.
        r = d.call({"op": "login", "service": "demo", "user": "demo", "password": "demo-password"}, sock=s)
        self.assertEqual(r["error"], "denied", r)
        self.assertEqual(d.ctl("faillock", "reset", "demo").returncode, 0)
        r = d.call({"op": "respond", "conversation": self.challenge(d, s),
                    "answers": [codes.next()]}, sock=s)
        self.assertTrue(r["ok"], r)

    def test_optional_factor(self):
        """[success=ok user_unknown=ignore default=bad]: users without an
        enrollment log in with the password alone; enrolled ones need the
        code."""
        d = self.start(control="[success=ok user_unknown=ignore default=bad]")
        r = d.call({"op": "login", "service": "demo", "user": "bob", "password": "bob-password"})
        self.assertTrue(r["ok"], r)
        codes = self.enroll(d)
        s = d.connect()
        conv = self.challenge(d, s)
        r = d.call({"op": "respond", "conversation": conv, "answers": [codes.next()]}, sock=s)
        self.assertTrue(r["ok"], r)
        wrong = f"{(int(codes.next()) + 1) % 1000000:06d}"
        r = d.call({"op": "respond", "conversation": self.challenge(d, s), "answers": [wrong]}, sock=s)
        self.assertEqual(r["error"], "denied", "enrolled: a wrong code is refused")
        # The same stack with [user_unknown=ignore] alone refuses even a right
        # code (unnamed values are bad, as in Linux-PAM): why the docs name success.
        d.write_service("demo", f"auth required file path={d.users}\n"
                                "auth [user_unknown=ignore] totp window=10\n"
                                f"account required file path={d.users}\n")
        self.assertEqual(d.ctl("reload").returncode, 0)
        r = d.call({"op": "respond", "conversation": self.challenge(d, s),
                    "answers": [codes.next()]}, sock=s)
        self.assertEqual(r["error"], "denied", r)

    def test_latchctl_on_a_terminal(self):
        d = self.start()
        codes = self.enroll(d)
        code = codes.next()
        rc, out = on_pty([LATCHCTL, "--socket", d.sock, "login", "demo", "demo"],
                         [(r"Password: ?$", "demo-password"), (r"Verification code: ?$", code)], d.env())
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"session: \S{40,}")
        self.assertNotIn(code, out, "the code is not echoed")
        # The same code a second time: refused.
        rc, out = on_pty([LATCHCTL, "--socket", d.sock, "login", "demo", "demo"],
                         [(r"Password: ?$", "demo-password"), (r"Verification code: ?$", code)], d.env())
        self.assertEqual(rc, 1, out)

    def test_latchctl_totp_enroll_on_a_terminal(self):
        """enroll on a pty: QR code, URI, then the first code typed in."""
        d = self.start()
        pid, fd = pty.fork()
        if pid == 0:
            argv = [LATCHCTL, "--socket", d.sock, "totp", "enroll", "demo"]
            os.execve(argv[0], argv, d.env())
        out = b""
        while b"Verification code" not in out:
            r, _, _ = select.select([fd], [], [], scaled(20))
            self.assertTrue(r, out.decode(errors="replace"))
            out += os.read(fd, 4096)
        secret = re.search(rb"Secret: ([A-Z2-7]+)", out).group(1).decode()
        os.write(fd, (oathtool(secret) + "\n").encode())
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        text = out.decode(errors="replace")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, text)
        self.assertIn("\u2588", text)
        self.assertIn("Enrolled", text)

    def test_liblatch(self):
        d = self.start()
        codes = self.enroll(d)
        code = codes.next()
        r = subprocess.run([TOTP_LOGIN, d.sock, "demo", "demo", "demo-password", code], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("prompt: secret Verification code:", r.stdout)
        session = re.search(r"session: (\S+)", r.stdout).group(1)
        self.assertTrue(d.call({"op": "validate", "session": session})["ok"])
        r = subprocess.run([TOTP_LOGIN, d.sock, "demo", "demo", "demo-password", code], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("denied", r.stdout)


if __name__ == "__main__":
    unittest.main()
