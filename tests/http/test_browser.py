# SPDX-License-Identifier: MIT
"""latch-http in a real browser: headless Debian chromium, driven by
playwright-core (installed from npm into the build folder at test time),
through nginx: protected page -> login form -> wrong password shows an
error -> right password -> the page shows the user -> logout -> the page
asks for the login again; then, on a phone-sized screen with JavaScript
off, the form fits and signing in works. And a two-step login (password,
then a code on a second form; a wrong code; a used step opened again).
And two-factor authentication set up by the user on /account/totp (the QR
code page, the key read from it, a code from oathtool), then a login with
password and code, and its removal. A password change from the protected
page's link (current password, new passwords that differ, then the right
ones, the done page), and a login whose password must be changed first.
Screenshots go to the build folder.

Exits 77 (skipped) when chromium, node, npm or nginx is missing, or when
playwright-core cannot be installed (no registry)."""

import json
import os
import shutil
import subprocess
import sys
import unittest

from httptest import NGINX, HttpTest

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.environ.get("HTTP_NODE_DIR", os.path.join(HERE, "node"))
ARTIFACTS = os.environ.get("HTTP_ARTIFACTS", HERE)


def playwright_ready():
    """Installs playwright-core into NODE_DIR when it is not there; the
    reason it cannot, or None."""
    for tool in ("/usr/bin/chromium", shutil.which("node"), shutil.which("npm"), NGINX, shutil.which("curl")):
        if not tool or not os.path.exists(tool):
            return "chromium, node, npm, nginx or curl is not installed"
    if os.path.exists(os.path.join(NODE_DIR, "node_modules", "playwright-core", "package.json")):
        return None
    os.makedirs(NODE_DIR, exist_ok=True)
    r = subprocess.run(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--no-save",
                        "playwright-core@1"], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return "cannot install playwright-core from npm:\n" + r.stderr[-2000:]
    return None


def walk(test, mode, shots):
    test.start_stack()
    profile = os.path.join(test.tmp, "chromium-profile")
    os.makedirs(profile)
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    r = subprocess.run(["node", os.path.join(HERE, "browser.js"), test.stack.url("").rstrip("/"), profile,
                        ARTIFACTS] + ([mode] if mode else []), capture_output=True, text=True, env=env, timeout=600)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    seen = json.loads(lines[-1]) if lines else {"ok": False, "error": r.stdout + r.stderr}
    for s in seen.get("steps", []):
        print(("ok  " if s["ok"] else "FAIL") + " " + s["name"])
    test.assertTrue(seen.get("ok"), json.dumps(seen, indent=1) + "\n" + r.stderr[-3000:] +
                    "\nlatch-http:\n" + test.stack.http_log_text()[-2000:])
    test.assertEqual(r.returncode, 0)
    for name in shots:
        path = os.path.join(ARTIFACTS, name)
        # Removed first: a screenshot left by an earlier run proves nothing.
        test.assertGreater(os.path.getsize(path), 1000, path)
    print("screenshots in", ARTIFACTS)
    return seen


class TwoStepBrowser(HttpTest):
    """Password, then a code asked by the stack's `debug` line."""

    services = {"demo": "auth required file path={users}\n"
                        "auth required debug ask=info:A_code_was_sent ask=secret:Code: expect=424242\n"
                        "account required file path={users}\n"}
    SHOTS = ("browser-5-code.png", "browser-6-refused.png", "browser-7-two-step-signed-in.png",
             "browser-8-expired.png")

    def test_two_step_walk(self):
        for name in self.SHOTS:
            if os.path.exists(os.path.join(ARTIFACTS, name)):
                os.unlink(os.path.join(ARTIFACTS, name))
        walk(self, "two-step", self.SHOTS)


@unittest.skipUnless(shutil.which("oathtool"), "needs oathtool")
class TotpBrowser(HttpTest):
    """Two-factor authentication, set up and removed by the user."""

    services = {"demo": "auth requisite faillock deny=5 unlock_time=10min\n"
                        "auth required file path={users}\n"
                        "auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo period=10\n"
                        "account required file path={users}\n"}
    SHOTS = ("account-1-off.png", "account-2-qr.png", "account-3-on.png", "account-4-code.png",
             "account-5-removed.png")

    def test_totp_walk(self):
        for name in self.SHOTS:
            if os.path.exists(os.path.join(ARTIFACTS, name)):
                os.unlink(os.path.join(ARTIFACTS, name))
        seen = walk(self, "totp", self.SHOTS)
        self.assertNotIn(seen["secret"], self.stack.http_log_text())
        self.assertNotIn(seen["secret"], self.d.log())
        # The QR code on the page, read by a scanner: the enrollment URI.
        if shutil.which("zbarimg"):
            r = subprocess.run(["zbarimg", "-q", "--raw", os.path.join(ARTIFACTS, "account-2-qr.png")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.stdout.strip(), f"otpauth://totp/Demo:demo?secret={seen['secret']}&issuer=Demo"
                                               "&algorithm=SHA1&digits=6&period=10", r.stderr)


PASSWORD_STACK = ("auth required file path={users}\n"
                  "account required file path={users}\n"
                  "password required file path={users}\n")


class PasswordBrowser(HttpTest):
    """The password page, and a login whose password must be changed."""

    services = {"demo": PASSWORD_STACK}

    def test_change_password_walk(self):
        shots = ("browser-9-password.png", "browser-10-password-current.png", "browser-11-password-new.png",
                 "browser-12-password-mismatch.png", "browser-13-password-changed.png")
        for name in shots:
            if os.path.exists(os.path.join(ARTIFACTS, name)):
                os.unlink(os.path.join(ARTIFACTS, name))
        # Another session of demo's, which the change signs out.
        r = self.d.ctl("--json", "login", "demo", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        other = json.loads(r.stdout)["session"]
        walk(self, "password", shots)
        self.assertEqual(self.d.ctl("validate", "-", input=other + "\n").returncode, 1)

    def test_expired_password_walk(self):
        shots = ("browser-14-expired.png", "browser-15-expired-signed-in.png")
        for name in shots:
            if os.path.exists(os.path.join(ARTIFACTS, name)):
                os.unlink(os.path.join(ARTIFACTS, name))
        r = self.d.ctl("user", "expire", self.d.users, "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        walk(self, "expired", shots)
        r = self.d.ctl("authenticate", "demo", "demo", input="a-new-passphrase\n")
        self.assertEqual(r.returncode, 0, "the new password is stored, and no longer expired")


class Browser(HttpTest):
    def test_login_walk(self):
        self.start_stack()
        profile = os.path.join(self.tmp, "chromium-profile")
        os.makedirs(profile)
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        r = subprocess.run(["node", os.path.join(HERE, "browser.js"), self.stack.url("").rstrip("/"), profile,
                            ARTIFACTS], capture_output=True, text=True, env=env, timeout=600)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        seen = json.loads(lines[-1]) if lines else {"ok": False, "error": r.stdout + r.stderr}
        for s in seen.get("steps", []):
            print(("ok  " if s["ok"] else "FAIL") + " " + s["name"])
        self.assertTrue(seen.get("ok"), json.dumps(seen, indent=1) + "\n" + r.stderr[-3000:] +
                        "\nlatch-http:\n" + self.stack.http_log_text()[-2000:])
        self.assertEqual(r.returncode, 0)
        for name in ("browser-1-error.png", "browser-2-signed-in.png", "browser-3-signed-out.png",
                     "browser-4-phone.png"):
            path = os.path.join(ARTIFACTS, name)
            self.assertGreater(os.path.getsize(path), 1000, path)
        print("screenshots in", ARTIFACTS)


if __name__ == "__main__":
    why = playwright_ready()
    if why:
        print("skipped:", why)
        sys.exit(77)
    unittest.main(verbosity=2)
