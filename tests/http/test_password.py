# SPDX-License-Identifier: MIT
"""latch-http's password pages end to end with curl: the real latchd (the
`file` plugin's password stack), latch-http and nginx.

A signed-in user changes the password through /password and the step
forms (current password, then the new one twice); the new password logs
in and the old one does not; the user's other sessions are signed out and
the page's own session is kept. Refusals (a wrong current password, new
passwords that differ or are too short), forms of the wrong flow, a
browser that is not or no longer signed in. And a login whose password has
expired (the user database's expiry field): the login goes on through the
same forms and ends signed in."""

import base64
import hashlib
import html
import json
import os
import re
import time
import unittest
from urllib.parse import urlencode

from httptest import LATCH_HTTP, FakeLatchd, HttpTest
from latchdemo import Stack

FORM = "Content-Type: application/x-www-form-urlencoded"
STEP_COOKIE = "__Host-latch-step"
PASSWORD_STACK = ("auth required file path={users}\n"
                  "account required file path={users}\n"
                  "password required file path={users}\n")
NEW = "a-new-passphrase"
# latchd's validate answer for demo's session, as a stand-in gives it.
VALIDATE_DEMO = {"ok": True, "user": "demo", "service": "demo", "handle": "h1", "created_at": 1,
                 "expires_at": 4102444800, "idle_expires_at": 4102444800, "claims": {"sub": "demo"}}


class PasswordTest(HttpTest):
    services = {"demo": PASSWORD_STACK, "other": PASSWORD_STACK}

    def hidden(self, r, names=("csrf", "step", "rd")):
        fields = {}
        for name in names:
            m = re.search(rb'name="%s" value="([^"]*)"' % name.encode(), r.body)
            self.assertIsNotNone(m, r)
            fields[name] = html.unescape(m.group(1).decode())
        return fields

    def labels(self, r):
        """The labels of a step form's fields, in order."""
        return [html.unescape(m.decode()) for m in re.findall(rb'<label for="answer\d+">([^<]*)</label>', r.body)]

    def errors(self, r):
        return [html.unescape(m.decode()) for m in re.findall(rb'<p class="error" role="alert">([^<]*)</p>', r.body)]

    def post(self, path, jar, body, origin=None):
        return self.curl(path, jar=jar, data=urlencode(body),
                         headers=[f"Origin: {origin or self.origin()}", FORM])

    def answer(self, jar, r, answers, path="/password/step"):
        """Answers the step form `r`: {label: answer} for its fields."""
        body = self.hidden(r)
        for i, label in enumerate(self.labels(r)):
            self.assertIn(label, answers, r)
            body[f"answer{i}"] = answers[label]
        return self.post(path, jar, body)

    def start(self, jar, rd="/app/page"):
        """GET /password, then its button: the first step form."""
        r = self.curl("/password?rd=" + rd, jar=jar)
        self.assertEqual(r.status, 200, r)
        return self.post("/password", jar, self.hidden(r, ("csrf", "rd")))

    def auth_status(self, jar):
        return self.curl("/auth", direct=True,
                         headers=[f"Cookie: __Host-latch={self.session_from_jar(jar)}"]).status

    def assert_expired(self, r, what, start):
        self.assertEqual(r.status, 403, r)
        self.assertIn(f"This {what} has expired or was already used. Please start again.".encode(), r.body)
        self.assertRegex(r.body, rb'<a id="start-again" href="%s\?rd=[^"]*">Start again</a>' % start.encode())

    def signed_in(self, name, password="demo-password", user="demo"):
        jar = self.jar(name)
        r = self.login(jar, user=user, password=password)
        self.assertEqual(r.status, 303, r)
        return jar


class PasswordPage(PasswordTest):
    def test_change_password(self):
        self.start_stack()
        page = self.signed_in("page")
        other = self.signed_in("other")
        bob = self.signed_in("bob", "bob-password", "bob")
        r = self.d.ctl("--json", "login", "other", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        elsewhere = json.loads(r.stdout)["session"]

        # The first page: who is signed in, a button, no secret field yet.
        r = self.curl("/password?rd=/app/page", jar=page)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"<h1>Change your password</h1>", r.body)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)
        self.assertIn(b'<form method="post" action="/password">', r.body)
        self.assertIn(b'<a id="back" href="/app/page">Back</a>', r.body)
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertIn("frame-ancestors 'none'", r.header("Content-Security-Policy"))

        # The button: the stack asks the current password, on a step form of
        # the password flow; the conversation id only in the step cookie.
        r = self.post("/password", page, self.hidden(r, ("csrf", "rd")))
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'action="/password/step"', r.body)
        self.assertIn(b"<h1>Change your password</h1>", r.body)
        self.assertEqual(self.labels(r), ["Current password:"])
        self.assertRegex(r.body, rb'<input id="answer0" name="answer0" type="password" '
                                 rb'autocomplete="current-password"')
        self.assertIn(b'<a href="/password?rd=/app/page">Start again</a>', r.body)
        conversation = self.cookie_from_jar(page, STEP_COOKIE)
        self.assertIsNotNone(conversation)
        self.assertNotIn(conversation.encode(), r.body)
        step_cookie = [c for c in r.all("Set-Cookie") if c.startswith(STEP_COOKIE + "=")]
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, step_cookie[0])

        # Then the new password, twice, in one step.
        r = self.answer(page, r, {"Current password:": "demo-password"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.labels(r), ["New password:", "Retype new password:"])
        self.assertEqual(len(re.findall(rb'autocomplete="new-password"', r.body)), 2, r)
        r = self.answer(page, r, {"New password:": NEW, "Retype new password:": NEW})

        # Done: this session kept, the user's two others (both services)
        # signed out, bob's untouched.
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"<h1>Password changed</h1>", r.body)
        self.assertIn(b'The password of <strong id="user">demo</strong> has been changed.', r.body)
        self.assertIn(b"This session stays signed in; 2 other sessions of this account were signed out.",
                      r.body)
        self.assertIn(b'<a id="continue" href="/app/page">Continue</a>', r.body)
        self.assertIsNone(self.cookie_from_jar(page, STEP_COOKIE), "the step cookie is cleared")
        self.assertEqual(self.auth_status(page), 204)
        self.assertEqual(self.auth_status(other), 401)
        self.assertEqual(self.auth_status(bob), 204)
        self.assertEqual(self.d.ctl("validate", elsewhere).returncode, 1)
        r = self.curl("/app/page", jar=page)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)

        # The new password signs in, the old one no longer does.
        self.assertEqual(self.login(self.jar("new"), password=NEW).status, 303)
        self.assertEqual(self.login(self.jar("old"), password="demo-password").status, 401)
        log = self.stack.http_log_text()
        for secret in ("demo-password", NEW, conversation):
            self.assertNotIn(secret, log)

    def test_wrong_current_password(self):
        self.start_stack()
        page = self.signed_in("page")
        other = self.signed_in("other")
        r = self.answer(page, self.start(page), {"Current password:": "not-it"})
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"The password was not changed: the current password was wrong, or the new one was not "
                      b"accepted.", r.body)
        self.assertIn(b'<form method="post" action="/password">', r.body, "the first page again")
        self.assertIsNone(self.cookie_from_jar(page, STEP_COOKIE))
        self.assertIn("password change refused for user 'demo' from", self.stack.http_log_text())
        self.assertNotIn("not-it", self.stack.http_log_text())
        # Nothing changed, nobody signed out.
        self.assertEqual(self.auth_status(page), 204)
        self.assertEqual(self.auth_status(other), 204)
        self.assertEqual(self.login(self.jar("again")).status, 303)

    def test_refused_new_passwords_are_asked_again(self):
        self.start_stack()
        page = self.signed_in("page")
        r = self.answer(page, self.start(page), {"Current password:": "demo-password"})
        # Two that differ, then one too short: each time the reason, shown
        # as an error above the same two fields.
        r = self.answer(page, r, {"New password:": NEW, "Retype new password:": NEW + "x"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.errors(r), ["Sorry, passwords do not match."])
        self.assertEqual(self.labels(r), ["New password:", "Retype new password:"])
        r = self.answer(page, r, {"New password:": "short", "Retype new password:": "short"})
        self.assertEqual(self.errors(r), ["BAD PASSWORD: The password is shorter than 8 characters"])
        r = self.answer(page, r, {"New password:": NEW, "Retype new password:": NEW})
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"has been changed", r.body)
        self.assertIn(b"This session stays signed in.", r.body)
        self.assertEqual(self.login(self.jar("new"), password=NEW).status, 303)

    def test_not_signed_in(self):
        self.start_stack()
        jar = self.jar()
        # To the login form, which comes back to the page (and its rd).
        r = self.curl("/password?rd=/app/x", jar=jar)
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/login?rd=/password%3Frd%3D/app/x")
        r = self.login(jar, rd="/password?rd=/app/x")
        self.assertEqual(r.header("Location"), "/password?rd=/app/x")
        self.assertEqual(self.curl("/password?rd=/app/x", jar=jar).status, 200)
        # The posts too: no change without a session of this service.
        fresh = self.jar("fresh")
        self.curl("/login", jar=fresh)
        r = self.post("/password", fresh, {"csrf": self.csrf(fresh), "rd": "/"})
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/login?rd="), r)
        r = self.curl("/password", headers=["Cookie: __Host-latch=" + "A" * 43])
        self.assertEqual(r.status, 303, r)

    def test_signed_out_between_steps(self):
        self.start_stack()
        page = self.signed_in("page")
        r = self.start(page)
        session = self.session_from_jar(page)
        self.assertEqual(self.d.ctl("logout", "-", input=session + "\n").returncode, 0)
        r = self.answer(page, r, {"Current password:": "demo-password"})
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/login?rd=/password"), r)
        self.assertEqual(self.login(self.jar("old")).status, 303, "the password is unchanged")

    def test_forms_are_checked(self):
        self.start_stack()
        page = self.signed_in("page")
        r = self.curl("/password", jar=page)
        fields = self.hidden(r, ("csrf", "rd"))
        # Cross-origin, or without the CSRF token: refused, no conversation.
        r = self.post("/password", page, fields, origin="https://evil.example")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"cross-origin request refused", r.body)
        r = self.post("/password", page, dict(fields, csrf="x" * 43))
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"This form has expired. Please try again.", r.body)
        self.assertIsNone(self.cookie_from_jar(page, STEP_COOKIE))
        # A step of the password change posted to the login's step address
        # (or the other way round) does not match, and is not used up.
        r = self.start(page)
        self.assert_expired(self.answer(page, r, {"Current password:": "demo-password"}, path="/login/step"),
                            "sign-in step", "/login")
        r2 = self.answer(page, r, {"Current password:": "demo-password"})
        self.assertEqual(self.labels(r2), ["New password:", "Retype new password:"])
        # The used step again (a reload, the back button): start again.
        self.assert_expired(self.answer(page, r, {"Current password:": "demo-password"}), "step", "/password")
        # Its address opened: the same page, which leads back to /password.
        r = self.curl("/password/step?rd=/app/x", jar=page)
        self.assert_expired(r, "step", "/password")
        self.assertIn(b'href="/password?rd=/app/x"', r.body)

    def test_other_service_session(self):
        # A session of another service is not signed in here.
        self.start_stack()
        r = self.d.ctl("--json", "login", "other", "demo", input="demo-password\n")
        session = json.loads(r.stdout)["session"]
        r = self.curl("/password", headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 303, r)


class OldLatchd(FakeLatchd):
    """A latchd of before the `passwd` op: `validate` says demo is signed
    in, every other op is unknown."""

    def reply(self, req):
        if req.get("op") == "validate":
            return VALIDATE_DEMO
        return super().reply(req)


class WithoutPasswd(PasswordTest):
    def test_a_latchd_without_passwd(self):
        fake = OldLatchd(os.path.join(self.tmp, "old-latchd.sock"))
        self.addCleanup(fake.close)
        self.stack = Stack(self.tmp, LATCH_HTTP, os.path.join(self.tmp, "old-latchd.sock"), service="demo",
                           wrapper=os.environ.get("LATCH_HTTP_WRAPPER", "").split())
        self.stack.start_http()
        cookie = "Cookie: __Host-latch=" + "A" * 43
        r = self.curl("/password", direct=True, headers=[cookie])
        self.assertEqual(r.status, 200, r)
        csrf = self.hidden(r, ("csrf",))["csrf"]
        r = self.curl("/password", direct=True, data=urlencode({"csrf": csrf, "rd": "/"}),
                      headers=[f"{cookie}; __Host-latch-csrf={csrf}", "Origin: http://localhost", FORM])
        # A clear page, with no button to try again, and a log line.
        self.assertEqual(r.status, 501, r)
        self.assertIn(b'<p class="error" role="alert" id="error">Passwords cannot be changed here.</p>', r.body)
        self.assertNotIn(b'action="/password"', r.body)
        self.assertIn(b'<a id="back" href="/">Back</a>', r.body)
        self.assertIn("passwd: unknown_op", self.stack.http_log_text())
        self.assertEqual(fake.ops, ["validate", "validate", "passwd"])



def unkeyed_tag(purpose, conversation):
    """The step tag as latch-http made it before it was keyed and bound to
    the session: anyone holding the step cookie could compute it."""
    digest = hashlib.blake2b(purpose.encode() + b"\0" + conversation.encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class StepOfOneSession(PasswordTest):
    """A step of a password change belongs to the session that started it:
    after a sign-out, nobody (another user signing in on the same browser,
    nor the same user in a new session) finishes it."""

    def half_done_change(self):
        """demo starts a change on a shared browser, answers the current
        password, and signs out at the "New password" step. Returns the
        jar, that step's form and its conversation id (what the step cookie
        held: the browser kept it before latch-http cleared it at sign-out)."""
        jar = self.signed_in("shared")
        r = self.answer(jar, self.start(jar), {"Current password:": "demo-password"})
        self.assertEqual(self.labels(r), ["New password:", "Retype new password:"])
        form, conversation = self.hidden(r), self.cookie_from_jar(jar, STEP_COOKIE)
        self.assertIsNotNone(conversation)
        r = self.curl("/logout", jar=jar, method="POST", headers=[f"Origin: {self.origin()}"])
        self.assertEqual(r.status, 303, r)
        return jar, form, conversation

    def post_step(self, jar, form, conversation, password):
        """The new password posted to /password/step with the jar's session
        and CSRF cookies and the given conversation as the step cookie."""
        body = dict(form, csrf=self.csrf(jar), answer0=password, answer1=password)
        cookies = (f"__Host-latch={self.session_from_jar(jar)}; __Host-latch-csrf={self.csrf(jar)}; "
                   f"{STEP_COOKIE}={conversation}")
        return self.curl("/password/step", data=urlencode(body),
                         headers=[f"Origin: {self.origin()}", FORM, "Cookie: " + cookies])

    def assert_unchanged(self, demo_elsewhere):
        """demo's password is the old one, and demo's other session lives."""
        self.assertEqual(self.auth_status(demo_elsewhere), 204, "demo's sessions are not revoked")
        self.assertEqual(self.login(self.jar("new"), password=NEW).status, 401)
        self.assertEqual(self.login(self.jar("old")).status, 303, "demo's password is unchanged")

    def takeover(self, tag):
        self.start_stack()
        elsewhere = self.signed_in("elsewhere")
        jar, form, conversation = self.half_done_change()
        # mallory (bob) signs in on the same browser and finishes demo's
        # change with a password of her choice.
        r = self.login(jar, user="bob", password="bob-password")
        self.assertEqual(r.status, 303, r)
        r = self.post_step(jar, dict(form, step=tag(form, conversation)), conversation, "mallory-chose-this")
        self.assert_expired(r, "step", "/password")
        self.assertNotIn(b"has been changed", r.body)
        self.assertEqual(self.auth_status(jar), 204, "bob stays signed in")
        self.assertNotIn("password change refused for user 'bob'", self.stack.http_log_text())
        self.assert_unchanged(elsewhere)
        self.assertEqual(self.login(self.jar("mallory"), password="mallory-chose-this").status, 401)

    def test_takeover_with_a_computed_tag(self):
        self.takeover(lambda form, conversation: unkeyed_tag("passwd+new", conversation))

    def test_takeover_with_the_form_demo_had(self):
        self.takeover(lambda form, conversation: form["step"])

    def test_own_older_step_after_signing_in_again(self):
        # demo comes back in a new session and finishes the old step: it
        # belongs to the session that ended, which cannot change anything
        # now; the new session is not signed out by it.
        self.start_stack()
        elsewhere = self.signed_in("elsewhere")
        jar, form, conversation = self.half_done_change()
        self.assertEqual(self.login(jar).status, 303)
        r = self.post_step(jar, form, conversation, NEW)
        self.assert_expired(r, "step", "/password")
        self.assertNotIn(b"This session stays signed in", r.body)
        self.assertEqual(self.auth_status(jar), 204)
        self.assert_unchanged(elsewhere)

    def test_sign_out_clears_the_step_cookie(self):
        self.start_stack()
        jar = self.signed_in("page")
        self.answer(jar, self.start(jar), {"Current password:": "demo-password"})
        self.assertIsNotNone(self.cookie_from_jar(jar, STEP_COOKIE))
        r = self.curl("/logout", jar=jar, method="POST", headers=[f"Origin: {self.origin()}"])
        self.assertEqual(r.status, 303, r)
        cleared = [c for c in r.all("Set-Cookie") if c.startswith(STEP_COOKIE + "=;")]
        self.assertEqual(len(cleared), 1, r)
        self.assertIn("Max-Age=0", cleared[0])
        self.assertIsNone(self.cookie_from_jar(jar, STEP_COOKIE))

    def test_restart_of_latch_http_means_start_again(self):
        # The tags' key is made anew at each start: an open step's form no
        # longer matches (docs/HTTP.md says so).
        self.start_stack()
        jar = self.signed_in("page")
        r = self.answer(jar, self.start(jar), {"Current password:": "demo-password"})
        p = self.stack.procs.pop("latch-http")
        p.terminate()
        self.assertEqual(p.wait(20), 0)
        self.stack.start_http()
        self.assert_expired(self.answer(jar, r, {"New password:": NEW, "Retype new password:": NEW}), "step",
                            "/password")
        self.assertEqual(self.auth_status(jar), 204)
        self.assertEqual(self.login(self.jar("old")).status, 303, "the password is unchanged")


class StepEndedByLatchd(PasswordTest):
    """latchd ends a step with invalid_session (the session ended after
    latch-http checked it) or forbidden: a stand-in that says demo is signed
    in, starts the change (or the two-factor set-up) with a challenge, and
    answers the step with the error asked for."""

    class Stand_in(FakeLatchd):
        respond_error = "invalid_session"

        def reply(self, req):
            op = req.get("op")
            if op == "validate":
                return VALIDATE_DEMO
            if op == "plugin" and req.get("action") == "status":
                return {"ok": True, "enrolled": False, "pending": False}
            if op in ("passwd", "plugin"):
                return {"ok": False, "error": "challenge", "message": "more input is needed",
                        "conversation": "C" * 43, "prompts": [{"style": "secret", "message": "Code:"}],
                        "expires_at": int(time.time()) + 120}
            if op == "respond":
                return {"ok": False, "error": self.respond_error, "message": "the stand-in says so"}
            return super().reply(req)

    COOKIE = "__Host-latch=" + "A" * 43

    def setUp(self):
        super().setUp()
        path = os.path.join(self.tmp, "stand-in.sock")
        self.fake = self.Stand_in(path)
        self.addCleanup(self.fake.close)
        self.stack = Stack(self.tmp, LATCH_HTTP, path, service="demo",
                           wrapper=os.environ.get("LATCH_HTTP_WRAPPER", "").split())
        self.stack.start_http()

    def step(self, page, start, step_path, start_body):
        """GET page, POST start (the challenge), then POST the step form to
        step_path: latch-http's answer to the step."""
        r = self.curl(page, direct=True, headers=["Cookie: " + self.COOKIE])
        self.assertEqual(r.status, 200, r)
        csrf = self.hidden(r, ("csrf",))["csrf"]
        cookies = f"Cookie: {self.COOKIE}; __Host-latch-csrf={csrf}"
        headers = ["Origin: http://localhost", FORM]
        r = self.curl(start, direct=True, data=urlencode(dict(start_body, csrf=csrf)), headers=headers + [cookies])
        self.assertEqual(r.status, 200, r)
        self.assertIn(f'action="{step_path}"'.encode(), r.body)
        fields = self.hidden(r, ("csrf", "step", "rd"))
        return self.curl(step_path, direct=True, data=urlencode(dict(fields, answer0="424242")),
                         headers=headers + [f"{cookies}; {STEP_COOKIE}={'C' * 43}"])

    def assert_not_logged_as_latchd_error(self):
        self.assertNotIn("latch-http: respond:", self.stack.http_log_text())

    def assert_sign_in(self, r, start):
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/login?rd=" + start), r)
        self.assertTrue(any(c.startswith(STEP_COOKIE + "=;") for c in r.all("Set-Cookie")), r)
        self.assert_not_logged_as_latchd_error()

    def test_totp_step_of_an_ended_session(self):
        r = self.step("/account/totp", "/account/totp/enroll", "/account/totp/enroll/step",
                      {"password": "demo-password"})
        self.assert_sign_in(r, "/account/totp")
        self.assertEqual(self.fake.ops.count("respond"), 1)

    def test_password_step_of_an_ended_session(self):
        r = self.step("/password", "/password", "/password/step", {"rd": "/app"})
        self.assert_sign_in(r, "/password")

    def test_totp_step_forbidden(self):
        self.fake.respond_error = "forbidden"
        r = self.step("/account/totp", "/account/totp/remove", "/account/totp/remove/step",
                      {"password": "demo-password"})
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"This change is not possible for your account.", r.body)
        self.assertTrue(any(c.startswith(STEP_COOKIE + "=;") for c in r.all("Set-Cookie")), r)
        self.assert_not_logged_as_latchd_error()

    def test_password_step_forbidden(self):
        self.fake.respond_error = "forbidden"
        r = self.step("/password", "/password", "/password/step", {"rd": "/app"})
        self.assertEqual(r.status, 403, r)
        self.assertIn(b'<p class="error" role="alert" id="error">Passwords cannot be changed here.</p>', r.body)
        self.assertNotIn(b'action="/password"', r.body)
        self.assertTrue(any(c.startswith(STEP_COOKIE + "=;") for c in r.all("Set-Cookie")), r)
        self.assert_not_logged_as_latchd_error()

class ExpiredPasswordLogin(PasswordTest):
    """The user database says demo's password must be changed: the login
    goes on through the password stack, on the same step forms."""

    def test_expired_password_changes_then_signs_in(self):
        self.start_stack()
        before = self.signed_in("before")
        r = self.d.ctl("user", "expire", self.d.users, "demo")
        self.assertEqual(r.returncode, 0, r.stderr)

        jar = self.jar()
        r = self.login(jar, rd="/app/page")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'action="/login/step"', r.body)
        self.assertIn(b"<h1>Change your password</h1>", r.body)
        self.assertIn(b'<p class="info" id="note">Your password must be changed before you can sign in.</p>',
                      r.body)
        # The login's password is the current one: only the new one is asked.
        self.assertEqual(self.labels(r), ["New password:", "Retype new password:"])
        self.assertIsNone(self.session_from_jar(jar), "no session before the change")
        r = self.answer(jar, r, {"New password:": "short", "Retype new password:": "short"}, path="/login/step")
        self.assertEqual(self.errors(r), ["BAD PASSWORD: The password is shorter than 8 characters"])
        self.assertIn(b"<h1>Change your password</h1>", r.body)
        r = self.answer(jar, r, {"New password:": NEW, "Retype new password:": NEW}, path="/login/step")
        # Signed in, as by any login: the cookie and the page asked for.
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/app/page")
        self.assertIsNotNone(self.session_from_jar(jar))
        self.assertIsNone(self.cookie_from_jar(jar, STEP_COOKIE))
        r = self.curl("/app/page", jar=jar)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)
        # The session from before the change is signed out; the new
        # password signs in at once (no longer expired), the old one not.
        self.assertEqual(self.auth_status(before), 401)
        self.assertEqual(self.login(self.jar("new"), password=NEW).status, 303)
        self.assertEqual(self.login(self.jar("old")).status, 401)

    def test_refused_change_ends_the_login(self):
        self.start_stack()
        self.assertEqual(self.d.ctl("user", "expire", self.d.users, "demo").returncode, 0)
        jar = self.jar()
        r = self.login(jar)
        # Three refused new passwords (the plugin's retry=3): no session.
        for _ in range(2):
            r = self.answer(jar, r, {"New password:": NEW, "Retype new password:": "other"}, path="/login/step")
            self.assertEqual(self.errors(r), ["Sorry, passwords do not match."])
        r = self.answer(jar, r, {"New password:": NEW, "Retype new password:": "other"}, path="/login/step")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"The new password was not accepted, and you are not signed in. Please start again.",
                      r.body)
        self.assertIsNone(self.session_from_jar(jar))
        self.assertIn("login refused at a later sign-in step (a new password) from", self.stack.http_log_text())
        # Still expired: the next login asks again.
        r = self.login(self.jar("again"))
        self.assertEqual(self.labels(r), ["New password:", "Retype new password:"])

    def test_wrong_password_of_an_expired_user(self):
        # A wrong password is refused before anything is said about expiry.
        self.start_stack()
        self.assertEqual(self.d.ctl("user", "expire", self.d.users, "demo").returncode, 0)
        r = self.login(self.jar(), password="wrong")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"Wrong user name or password.", r.body)
        self.assertNotIn(b"Change your password", r.body)


if __name__ == "__main__":
    unittest.main()
