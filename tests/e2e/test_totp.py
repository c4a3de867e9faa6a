# SPDX-License-Identifier: MIT
"""The totp and faillock plugins' admin actions through latchd's `plugin`
op and latchctl (totp enroll|confirm|recovery|remove|status, faillock
show|reset), with codes made by Debian's oathtool."""

import os
import re
import shutil
import subprocess
import time
import unittest
from urllib.parse import parse_qs, unquote, urlparse

from harness import LATCHCTL, SANITIZED, DaemonTest, core_image, on_pty

NOBODY = 65534


def oathtool(secret, algorithm="SHA1", digits=6, period=30, at=None):
    args = ["oathtool", f"--totp={algorithm}", "-b", "-d", str(digits), "-s", f"{period}s"]
    if at is not None:
        args += ["-N", f"@{int(at)}"]
    return subprocess.run(args + [secret], capture_output=True, text=True, check=True).stdout.strip()


def next_step_code(secret, period=30, after=None):
    """A code of a time step later than `after` (a code), waiting for it."""
    while True:
        code = oathtool(secret, period=period)
        if code != after:
            return code
        time.sleep(1)


@unittest.skipUnless(shutil.which("oathtool"), "needs oathtool")
class TestTotpAdmin(DaemonTest):
    def stack(self, totp_args=""):
        users = os.path.join(self.tmp, "users")
        return {"demo": "auth requisite faillock deny=3 unlock_time=10min\n"
                        f"auth required file path={users}\n"
                        f"auth required totp {totp_args}\n"
                        f"account required file path={users}\n"}

    def test_enroll_confirm_recovery_remove(self):
        d = self.daemon(services=self.stack("issuer=ACME"))
        r = d.ctl("totp", "enroll", "demo", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        e = r.json
        self.assertTrue(e["pending"])
        uri = urlparse(e["uri"])
        self.assertEqual((uri.scheme, uri.netloc, unquote(uri.path)), ("otpauth", "totp", "/ACME:demo"))
        q = parse_qs(uri.query)
        self.assertEqual(q["secret"], [e["secret"]])
        self.assertEqual((q["issuer"], q["algorithm"], q["digits"], q["period"]),
                         (["ACME"], ["SHA1"], ["6"], ["30"]))
        self.assertEqual(len(e["secret"]), 32, "160 bits in base32")

        status = d.ctl("totp", "status", "demo", json_out=True).json
        self.assertEqual((status["enrolled"], status["pending"]), (False, True))
        self.assertNotIn("secret", status)

        # A wrong code does not confirm; the secret imported into oathtool does.
        code = oathtool(q["secret"][0])
        wrong = f"{(int(code) + 1) % 1000000:06d}"
        # A wrong code is a refusal (exit 1, as a wrong password), not bad input.
        r = d.ctl("totp", "confirm", "demo", wrong, json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "denied"), r.stdout)
        r = d.ctl("totp", "confirm", "demo", input=code + "\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.json["enrolled"])
        self.assertTrue(d.ctl("totp", "status", "demo", json_out=True).json["enrolled"])

        r = d.ctl("totp", "recovery", "demo", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(r.json["codes"]), 10)
        self.assertTrue(all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in r.json["codes"]))
        self.assertEqual(d.ctl("totp", "status", "demo", json_out=True).json["recovery_codes"], 10)
        human = d.ctl("totp", "recovery", "demo")
        self.assertEqual(human.returncode, 0)
        self.assertEqual(len(re.findall(r"^  [a-z2-7]{4}-", human.stdout, re.M)), 10)

        r = d.ctl("totp", "remove", "demo", json_out=True)
        self.assertEqual((r.returncode, r.json["removed"]), (0, True))
        self.assertFalse(d.ctl("totp", "status", "demo", json_out=True).json["enrolled"])

        # Secrets and codes never reach the log.
        log = d.log()
        self.assertNotIn(e["secret"], log)
        self.assertNotIn(code, log)
        self.assertIn("plugin totp enroll for user 'demo'", log)

    def test_enroll_on_a_terminal_prints_a_qr_code(self):
        """latchctl totp enroll without --json: the URI, a QR code of it,
        and the first code read from stdin confirms."""
        d = self.daemon(services=self.stack())
        # Start it with a code we cannot know yet: feed the code through a pipe
        # once the URI is out.
        p = subprocess.Popen([LATCHCTL, "--socket", d.sock, "totp", "enroll", "demo"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=d.env())
        lines = []
        while True:
            line = p.stdout.readline()
            self.assertTrue(line, "latchctl ended before printing the URI: " + "".join(lines))
            lines.append(line)
            if line.startswith("Secret: "):
                secret = line.split()[1]
                break
        out, err = p.communicate(oathtool(secret) + "\n", timeout=30)
        self.assertEqual(p.returncode, 0, out + err)
        text = "".join(lines)
        self.assertIn("otpauth://totp/latch:demo?secret=" + secret, text)
        qr = [l for l in lines if set(l.rstrip("\n")) <= set("\u2588\u2580\u2584 ") and l.strip()]
        self.assertGreaterEqual(len(qr), 12, "a QR code in half blocks:\n" + text)
        self.assertIn("Enrolled", out)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("gcore"), "needs root and gdb's gcore")
    @unittest.skipIf(SANITIZED, "sanitizer shadow memory makes huge cores")
    def test_enroll_on_a_terminal_leaves_no_key_in_latchctl(self):
        """While latchctl waits for the first code, nothing of the key it
        printed is in its memory: not latchd's answer (Jansson's blocks),
        not the text it printed (stdout's buffer, the escaped copies), not
        libqrencode's copies (the QR code is made in a child)."""
        d = self.daemon(services=self.stack())
        seen = {}

        def at_prompt(pid, out):
            # latchctl on a terminal (stdout line-buffered), at the prompt.
            secret = out.split("Secret: ")[1].split()[0]
            time.sleep(0.3)
            seen["image"] = core_image(pid, self.tmp)
            seen["secret"] = secret
            return oathtool(secret)

        code, out = on_pty([LATCHCTL, "--socket", d.sock, "totp", "enroll", "demo"],
                           [(r"Verification code from the app: $", at_prompt)], d.env(), timeout=120)
        self.assertEqual(code, 0, out)
        self.assertIn("Enrolled", out)
        image, secret = seen["image"], seen["secret"]
        self.assertGreater(len(image), 100000)
        for k in range(0, 32 - 16 + 1, 8):
            at = image.find(secret[k:k + 16].encode())
            self.assertEqual(at, -1, "a piece of the key survived in latchctl's memory: "
                                     f"{image[max(0, at - 64):at + 96]!r}")

    def test_admin_only_and_bad_requests(self):
        d = self.daemon(services=self.stack())
        r = d.ctl("totp", "confirm", "demo", "123456", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (2, "bad_request"))
        self.assertIn("no enrollment", r.json["message"])
        r = d.ctl("totp", "recovery", "nobody", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (2, "bad_request"))
        for req, code in (({"op": "plugin", "plugin": "totp", "action": "frobnicate", "user": "demo"}, "bad_request"),
                          ({"op": "plugin", "plugin": "../totp", "action": "status", "user": "demo"}, "bad_request"),
                          ({"op": "plugin", "plugin": "totp"}, "bad_request"),
                          ({"op": "plugin", "plugin": "permit", "action": "x"}, "bad_request"),
                          ({"op": "plugin", "plugin": "nosuch", "action": "x"}, "bad_request"),
                          ({"op": "plugin", "plugin": "totp", "action": "status", "user": "a\nb"}, "bad_request"),
                          ({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo",
                            "service": "nosuch"}, "unknown_service")):
            r = d.call(req)
            self.assertEqual((r["ok"], r["error"]), (False, code), f"{req}: {r}")
        # A plugin no service names is opened for the call (permit: no actions).
        r = d.call({"op": "plugin", "plugin": "permit", "action": "x"})
        self.assertIn("no admin actions", r["message"])
        # With `service`, that service's line answers (with its deny=).
        r = d.call({"op": "plugin", "plugin": "faillock", "action": "show", "user": "demo", "service": "demo"})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["deny"], 3)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_not_for_other_peers(self):
        d = self.daemon(services=self.stack())
        os.chmod(d.sock, 0o666)
        os.chmod(self.tmp, 0o755)
        for args in (["totp", "enroll", "demo"], ["faillock", "reset", "demo"], ["faillock", "show", "demo"]):
            r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                                LATCHCTL, "--socket", d.sock, "--json"] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}")
            self.assertIn('"forbidden"', r.stdout)

    def test_faillock_show_and_reset(self):
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": "auth requisite faillock deny=3 unlock_time=10min\n"
                                          f"auth required file path={users}\n"
                                          f"account required file path={users}\n"},
                        config_extra="[throttle]\nmax_delay = 1s\n")
        r = d.ctl("faillock", "show", "demo", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.json["locked"], r.json["failures"]), (False, []))
        for _ in range(3):
            self.assertEqual(d.ctl("authenticate", "demo", "demo", input="wrong\n").returncode, 1)
        self.assertEqual(d.ctl("authenticate", "demo", "demo", input="demo-password\n").returncode, 1)
        r = d.ctl("faillock", "show", "demo", json_out=True)
        self.assertTrue(r.json["locked"])
        self.assertEqual(len(r.json["failures"]), 3)
        self.assertGreater(r.json["locked_until"], time.time())
        human = d.ctl("faillock", "show", "demo")
        self.assertIn("demo: locked until", human.stdout)
        self.assertEqual(len(re.findall(r"^\d{4}-\d\d-\d\d ", human.stdout, re.M)), 3)

        r = d.ctl("faillock", "reset", "demo", json_out=True)
        self.assertEqual((r.returncode, r.json["reset"]), (0, True))
        # Unlocked at once: the right password passes.
        r = d.ctl("authenticate", "demo", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tally of user 'demo' reset by an administrator", d.log())


if __name__ == "__main__":
    unittest.main()
