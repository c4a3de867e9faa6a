# SPDX-License-Identifier: MIT
"""latch-http end to end with curl: the real latchd, latch-http and nginx.

Covers /auth (missing, garbage, logged-out and expired cookies; the
headers on success; a token when configured), the login form and its
cookie, open-redirect attempts, CSRF (cross-origin posts, a missing token),
the client's address reaching latchd, /token, the JWKS and its caching,
logout, oversized headers and bodies, socket activation and the settings
file."""

import html
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
from urllib.parse import urlencode

import harness
from httptest import LATCH_HTTP, HttpTest

FORM = "Content-Type: application/x-www-form-urlencoded"


class AuthEndpoint(HttpTest):
    def test_no_cookie_is_401(self):
        self.start_stack()
        r = self.curl("/auth", direct=True)
        self.assertEqual(r.status, 401)
        self.assertIsNone(r.header("X-Latch-User"))
        # Through nginx: the protected page sends the browser to the form.
        r = self.curl("/some/page?x=1")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.header("Location"), "/login?rd=/some/page%3Fx%3D1", r)
        self.assertNotIn(b"Protected page", r.body)

    def test_user_without_groups_passes(self):
        # A `file` user added without --groups: no groups claim to pass on.
        self.d.add_user("solo", "solo-password")
        self.start_stack()
        jar = self.jar()
        r = self.login(jar, user="solo", password="solo-password", rd="/app/solo")
        self.assertEqual(r.status, 303, r)
        session = self.session_from_jar(jar)
        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("X-Latch-User"), "solo")
        self.assertIn(r.header("X-Latch-Groups"), (None, ""))
        # Through nginx: the page, not a 500, and no groups however the
        # browser tries to forge some.
        r = self.curl("/app/solo", jar=jar, headers=["X-Latch-Groups: admins"])
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<strong id="user">solo</strong>', r.body)
        self.assertIn(b'<span id="groups"></span>', r.body)
        self.assertNotIn("503", self.stack.http_log_text())

    def test_query_string_survives_the_login(self):
        self.start_stack()
        jar = self.jar()
        page = "/p?x=1&y=2&z=a%26b+c#frag"
        r = self.curl(page.split("#")[0], jar=jar)
        self.assertEqual(r.status, 303, r)
        location = r.header("Location")
        self.assertEqual(location, "/login?rd=/p%3Fx%3D1%26y%3D2%26z%3Da%2526b%2Bc")
        # The form carries the whole URI back in its rd field...
        r = self.curl(location, jar=jar)
        self.assertEqual(r.status, 200, r)
        m = re.search(rb'name="rd" value="([^"]*)"', r.body)
        self.assertIsNotNone(m, r)
        rd = html.unescape(m.group(1).decode())
        self.assertEqual(rd, "/p?x=1&y=2&z=a%26b+c")
        body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "demo-password", "rd": rd})
        r = self.curl("/login", jar=jar, data=body, headers=[f"Origin: {self.origin()}", FORM])
        # ...and the login returns to it, every parameter intact.
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/p?x=1&y=2&z=a%26b+c")
        r = self.curl(r.header("Location"), jar=jar)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<code id="path">/p?x=1&amp;y=2&amp;z=a%26b+c</code>', r.body)
        # A POST to a protected page is sent to the form the same way.
        r = self.curl("/q?a=1&b=2", method="POST", data="x=1", headers=[FORM])
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/login?rd=/q%3Fa%3D1%26b%3D2")

    def test_garbage_cookies_are_401(self):
        self.start_stack()
        for cookie in ["__Host-latch=garbage", "__Host-latch=", "__Host-latch=%00%ff", "__Host-latch=" + "A" * 600,
                       "__Host-latch=\"unterminated", "other=1; __Host-latch=QFeZZUHC_0Wg7QRI_R08n4xqYQ5uD7y_PQ",
                       "latch=" + "x" * 43, ";;;===;"]:
            r = self.curl("/auth", direct=True, headers=[f"Cookie: {cookie}"])
            self.assertEqual(r.status, 401, cookie)
            r = self.curl("/", headers=[f"Cookie: {cookie}"])
            self.assertEqual(r.status, 303, cookie)

    def test_login_then_auth_headers(self):
        self.start_stack()
        jar = self.jar()
        r = self.login(jar, rd="/app/page")
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/app/page")
        cookie = [c for c in r.all("Set-Cookie") if c.startswith("__Host-latch=")]
        self.assertEqual(len(cookie), 1, r)
        attrs = [a.strip() for a in cookie[0].split(";")]
        for a in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
            self.assertIn(a, attrs)
        self.assertFalse(any(a.lower().startswith("domain") for a in attrs))
        session = self.session_from_jar(jar)
        self.assertTrue(session)

        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("X-Latch-User"), "demo")
        self.assertEqual(r.header("X-Latch-Groups"), "users,wiki")
        listed = self.d.ctl("sessions", "list", json_out=True).json["sessions"]
        self.assertEqual([s["handle"] for s in listed], [r.header("X-Latch-Session-Handle")])
        self.assertIsNone(r.header("Authorization"))
        self.assertEqual(r.header("Cache-Control"), "no-store")

        # The app behind nginx sees who it is, and a forged header is overwritten.
        r = self.curl("/app/page", jar=jar, headers=["X-Latch-User: mallory"])
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)
        self.assertNotIn(b"mallory", r.body)

    def test_logged_out_session_is_401(self):
        self.start_stack()
        jar = self.jar()
        self.assertEqual(self.login(jar).status, 303)
        session = self.session_from_jar(jar)
        self.assertEqual(self.curl("/", jar=jar).status, 200)
        self.assertEqual(self.d.ctl("logout", session).returncode, 0)
        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 401)
        self.assertEqual(self.curl("/", jar=jar).status, 303)

    def test_other_service_session_is_401(self):
        # A session of another service is no key to this one.
        self.d.write_service("other", harness.DEFAULT_STACK.format(users=self.d.users))
        self.d.ctl("reload")
        self.start_stack(nginx=False)
        session = self.login_ctl("other")
        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 401)
        session = self.login_ctl("demo")
        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 204)

    def login_ctl(self, service):
        r = self.d.ctl("login", service, "demo", input="demo-password\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        return r.json["session"]

    def test_latchd_down_is_not_a_pass(self):
        self.start_stack()
        jar = self.jar()
        self.assertEqual(self.login(jar).status, 303)
        self.d.stop()
        r = self.curl("/auth", jar=jar, direct=True)
        self.assertEqual(r.status, 503)
        r = self.curl("/", jar=jar)
        self.assertEqual(r.status, 500)
        self.assertNotIn(b"Protected page", r.body)


class ExpiredSession(HttpTest):
    daemon_config = "[session]\nabsolute_timeout = 2s\n"

    def test_expired_cookie_is_401(self):
        self.start_stack()
        jar = self.jar()
        self.assertEqual(self.login(jar).status, 303)
        session = self.session_from_jar(jar)
        # Waits well past the 2 s lifetime; no assertion on time itself.
        deadline = time.monotonic() + 60
        while True:
            r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
            if r.status == 401 or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertEqual(r.status, 401)
        self.assertEqual(self.curl("/", headers=[f"Cookie: __Host-latch={session}"]).status, 303)


class TokenOnAuth(HttpTest):
    http_conf = "token_on_auth = yes\n"

    def test_auth_carries_a_fresh_verifiable_jwt(self):
        self.start_stack(nginx=False)
        jar = self.jar()
        self.assertEqual(self.login(jar, direct=True).status, 303)
        session = self.session_from_jar(jar)
        r = self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"])
        self.assertEqual(r.status, 204, r)
        auth = r.header("Authorization")
        self.assertTrue(auth and auth.startswith("Bearer "), r)
        token = auth[len("Bearer "):]
        v = self.d.ctl("token", "verify", token, "--jwks", self.d.jwks, "--audience", "demo", json_out=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertEqual(v.json["claims"]["sub"], "demo")
        self.assertEqual(v.json["claims"]["sid"], r.header("X-Latch-Session-Handle"))


class LoginForm(HttpTest):
    def test_form_is_accessible_html(self):
        self.start_stack()
        r = self.curl("/login?rd=/app/%3Cscript%3E")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        body = r.body.decode()
        for needle in ('<html lang="en">', 'name="viewport"', '<label for="user">', '<label for="password">',
                       'autocomplete="username"', 'autocomplete="current-password"', 'method="post"',
                       'action="/login"'):
            self.assertIn(needle, body)
        self.assertNotIn("<script", body)
        self.assertIn("frame-ancestors 'none'", r.header("Content-Security-Policy"))
        csrf = [c for c in r.all("Set-Cookie") if c.startswith("__Host-latch-csrf=")]
        self.assertEqual(len(csrf), 1)
        self.assertIn("HttpOnly", csrf[0])

    def test_wrong_password_shows_error_and_sets_no_cookie(self):
        self.start_stack()
        jar = self.jar()
        r = self.login(jar, password="wrong")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"Wrong user name or password.", r.body)
        self.assertIn(b'role="alert"', r.body)
        self.assertFalse([c for c in r.all("Set-Cookie") if c.startswith("__Host-latch=")])
        self.assertIsNone(self.session_from_jar(jar))
        # Unknown users get the same answer.
        r = self.login(self.jar("j2"), user="nobody", password="wrong")
        self.assertEqual(r.status, 401)
        self.assertIn(b"Wrong user name or password.", r.body)
        self.assertNotIn(b"wrong", r.body.replace(b"Wrong", b""))  # the password is never echoed

    def test_refused_login_log_line(self):
        self.start_stack()
        names = {
            "eve' on service 'admin": r"'eve\\' on service \\'admin'",
            "x\nlatch-http: login ok for user 'root'": r"'x\\nlatch-http: login ok for user \\'root\\''",
            "a\u2028b\u2029c": r"'a\\u2028b\\u2029c'",
            "\x1b[2Jz": r"'\\x1b\[2Jz'",
        }
        for i, name in enumerate(names):
            r = self.login(self.jar(f"log{i}"), user=name, password="wrong")
            self.assertEqual(r.status, 401, self.stack.http_log_text())
        # Invalid UTF-8 in the form (the browser would never send it).
        jar = self.jar("log-bad")
        self.assertEqual(self.curl("/login", jar=jar).status, 200)
        body = "csrf=" + self.csrf(jar) + "&user=bad%FF%C0%AFname&password=wrong&rd=/"
        r = self.curl("/login", jar=jar, data=body, headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r.status, 401, r)
        log = self.stack.http_log_text()
        lines = [l for l in log.split("\n") if "login refused" in l]
        self.assertEqual(len(lines), len(names) + 1, log)
        # Names latchd cannot take are refused the same way, with a reason.
        when = r" from 127\.0\.0\.1 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(: not a valid user name)?$"
        for line, pattern in zip(lines, list(names.values()) + [r"'bad\\xff\\xc0\\xafname'"]):
            self.assertRegex(line, r"^latch-http: login refused for user " + pattern + when)
        for forged in ("\nlatch-http: login ok", "\u2028", "\u2029", "\x1b", "\ufffd"):
            self.assertNotIn(forged, log)
        self.assertNotIn("wrong", log)

    def test_open_redirects_are_refused(self):
        self.start_stack()
        for rd in ["//evil.example", "https://evil.example", "/\\evil.example", "/\\/evil.example",
                   "http:evil.example", "%2F%2Fevil.example", "/\t/evil.example", "/\n/evil.example",
                   " //evil.example", "javascript:alert(1)"]:
            jar = self.jar("j-" + str(abs(hash(rd))))
            r = self.curl("/login?" + urlencode({"rd": rd}), jar=jar)
            self.assertEqual(r.status, 200)
            self.assertNotIn(b"evil.example", r.body, rd)
            self.assertNotIn(b"javascript", r.body, rd)
            body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "demo-password", "rd": rd})
            r = self.curl("/login", jar=jar, data=body, headers=[f"Origin: {self.origin()}", FORM])
            self.assertEqual(r.status, 303, rd)
            self.assertEqual(r.header("Location"), "/", rd)
        # A path on this site is kept, query and all.
        r = self.login(self.jar("ok"), rd="/app/x?y=1")
        self.assertEqual(r.header("Location"), "/app/x?y=1")

    def test_cross_origin_posts_are_refused(self):
        self.start_stack()
        jar = self.jar()
        self.curl("/login", jar=jar)
        body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "demo-password", "rd": "/"})
        for headers in (["Origin: https://evil.example"], ["Origin: null"],
                        [f"Origin: http://localhost:{self.stack.port + 1}"],
                        ["Referer: https://evil.example/page"], [],
                        [f"Origin: {self.origin()}", "Sec-Fetch-Site: cross-site"]):
            r = self.curl("/login", jar=jar, data=body, headers=headers + [FORM])
            self.assertEqual(r.status, 403, headers)
            self.assertFalse([c for c in r.all("Set-Cookie") if c.startswith("__Host-latch=")], headers)
        self.assertEqual(self.d.ctl("sessions", "list", json_out=True).json["sessions"], [])

        # A same-origin post without the form's token (login CSRF) fails too.
        body = urlencode({"csrf": "A" * 43, "user": "demo", "password": "demo-password"})
        r = self.curl("/login", jar=jar, data=body, headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r.status, 403)
        self.assertIn(b"expired", r.body)
        body = urlencode({"user": "demo", "password": "demo-password"})
        r = self.curl("/login", data=body, headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r.status, 403)
        self.assertEqual(self.d.ctl("sessions", "list", json_out=True).json["sessions"], [])

        # Cross-origin logout leaves the session alone.
        self.assertEqual(self.login(jar).status, 303)
        for headers in (["Origin: https://evil.example"], []):
            r = self.curl("/logout", jar=jar, method="POST", headers=headers)
            self.assertEqual(r.status, 403)
        self.assertEqual(self.curl("/", jar=jar).status, 200)

    def test_allowed_origins(self):
        self.start_stack(http_conf="allowed_origins = https://app.example\n")
        jar = self.jar()
        self.curl("/login", jar=jar)
        body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "demo-password"})
        r = self.curl("/login", jar=jar, data=body, headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r.status, 403)
        r = self.curl("/login", jar=jar, data=body, headers=["Origin: https://app.example", FORM])
        self.assertEqual(r.status, 303)

    def test_remote_address_reaches_latchd(self):
        self.start_stack()
        # Through nginx: its $remote_addr, whatever the browser claims.
        r = self.login(self.jar(), password="wrong-1")
        self.assertEqual(r.status, 401)
        r = self.curl("/login", data="user=demo&password=x",
                      headers=["X-Real-IP: 198.51.100.9", "X-Forwarded-For: 198.51.100.9", FORM])
        self.assertIn("LATCH_REMOTE=127.0.0.1", self.d.log())
        self.assertNotIn("198.51.100.9", self.d.log())
        # Straight from the proxy: the trusted header's value.
        jar = self.jar("direct")
        self.curl("/login", jar=jar, direct=True)
        body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "wrong-2"})
        r = self.curl("/login", jar=jar, data=body, direct=True,
                      headers=["Origin: http://localhost", "X-Real-IP: 203.0.113.7", FORM])
        self.assertEqual(r.status, 401)
        self.assertIn("LATCH_REMOTE=203.0.113.7", self.d.log())

    def test_forwarded_for_header(self):
        self.start_stack(nginx=False, http_conf="proxy_header = X-Forwarded-For\n")
        jar = self.jar()
        self.curl("/login", jar=jar, direct=True)
        body = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "wrong"})
        r = self.curl("/login", jar=jar, data=body, direct=True,
                      headers=["Origin: http://localhost", "X-Forwarded-For: 198.51.100.1, 203.0.113.8", FORM])
        self.assertEqual(r.status, 401)
        self.assertIn("LATCH_REMOTE=203.0.113.8", self.d.log())
        self.assertNotIn("198.51.100.1", self.d.log())


class LogoutTokenJwks(HttpTest):
    def test_logout_ends_session_and_clears_cookie(self):
        self.start_stack()
        jar = self.jar()
        self.assertEqual(self.login(jar).status, 303)
        session = self.session_from_jar(jar)
        r = self.curl("/logout", jar=jar, method="POST", headers=[f"Origin: {self.origin()}"])
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/login")
        cleared = [c for c in r.all("Set-Cookie") if c.startswith("__Host-latch=")]
        self.assertEqual(len(cleared), 1)
        self.assertIn("Max-Age=0", cleared[0])
        self.assertEqual(self.d.ctl("validate", session).returncode, 1)
        self.assertEqual(self.curl("/", jar=jar).status, 303)
        self.assertEqual(self.curl("/auth", direct=True, headers=[f"Cookie: __Host-latch={session}"]).status, 401)
        # GET /logout does nothing.
        self.assertEqual(self.curl("/logout").status, 405)

    def test_sign_in_and_out_clear_the_step_cookie(self):
        # A step cookie left in the browser (a conversation someone did not
        # finish) survives neither a sign-in nor a sign-out.
        self.start_stack()
        jar = self.jar()
        r = self.login(jar)
        self.assertEqual(r.status, 303, r)
        cleared = [c for c in r.all("Set-Cookie") if c.startswith("__Host-latch-step=;")]
        self.assertEqual(len(cleared), 1, r)
        self.assertIn("Max-Age=0", cleared[0])
        cookie = f"Cookie: __Host-latch={self.session_from_jar(jar)}; __Host-latch-step={'A' * 43}"
        r = self.curl("/logout", method="POST", headers=[f"Origin: {self.origin()}", cookie])
        self.assertEqual(r.status, 303, r)
        cleared = [c for c in r.all("Set-Cookie") if c.startswith("__Host-latch-step=;")]
        self.assertEqual(len(cleared), 1, r)
        self.assertIn("Max-Age=0", cleared[0])
        self.assertIn("SameSite=Strict", cleared[0])

    def test_token(self):
        self.start_stack()
        self.assertEqual(self.curl("/token").status, 401)
        jar = self.jar()
        self.assertEqual(self.login(jar).status, 303)
        r = self.curl("/token", jar=jar)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        doc = json.loads(r.body)
        self.assertGreater(doc["expires_at"], time.time() - 60)
        v = self.d.ctl("token", "verify", doc["token"], "--jwks", self.d.jwks, "--audience", "demo", json_out=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertEqual(v.json["claims"]["sub"], "demo")
        self.assertEqual(v.json["claims"]["groups"], ["users", "wiki"])
        # Two calls, two tokens.
        self.assertNotEqual(json.loads(self.curl("/token", jar=jar).body)["token"], doc["token"])

    def test_jwks(self):
        self.start_stack()
        r = self.curl("/.well-known/jwks.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body), self.d.read_jwks())
        self.assertIn("max-age=", r.header("Cache-Control"))
        self.assertNotIn("no-store", r.header("Cache-Control"))
        etag = r.header("ETag")
        self.assertTrue(etag)
        r = self.curl("/.well-known/jwks.json", headers=[f"If-None-Match: {etag}"])
        self.assertEqual(r.status, 304)
        self.assertEqual(self.d.ctl("keys", "rotate").returncode, 0)
        r = self.curl("/.well-known/jwks.json", headers=[f"If-None-Match: {etag}"])
        self.assertEqual(r.status, 200)
        self.assertEqual(len(json.loads(r.body)["keys"]), 2)
        self.assertNotEqual(r.header("ETag"), etag)


class Limits(HttpTest):
    def assert_alive(self):
        self.assertIsNone(self.stack.procs["latch-http"].poll(), "latch-http died")
        self.assertEqual(self.curl("/auth", direct=True).status, 401)

    def test_oversized_headers(self):
        self.start_stack()
        big = "a" * 60000
        for h in (f"X-Big: {big}", f"Cookie: __Host-latch={big}", f"Origin: http://{big}"):
            r = self.curl("/auth", direct=True, headers=[h])
            self.assertGreaterEqual(r.status, 400, h[:20])
            self.assertLess(r.status, 500, h[:20])
            r = self.curl("/login", headers=[h], data="user=a&password=b")
            self.assertGreaterEqual(r.status, 400, h[:20])
            self.assertLess(r.status, 500, h[:20])
        many = [f"X-H{i}: {'b' * 100}" for i in range(500)]
        r = self.curl("/auth", direct=True, headers=many)
        self.assertGreaterEqual(r.status, 400)
        self.assertLess(r.status, 500)
        self.assert_alive()

    def test_oversized_bodies(self):
        self.start_stack()
        big = b"user=" + b"a" * 200000
        # A declared length over the limit is refused before the body is
        # read (curl waits for that answer with Expect: 100-continue).
        expect = "Expect: 100-continue"
        r = self.curl("/login", direct=True, data=big, headers=["Origin: http://localhost", FORM, expect])
        self.assertEqual(r.status, 413)
        r = self.curl("/login", direct=True, data=big,
                      headers=["Origin: http://localhost", FORM, "Transfer-Encoding: chunked"])
        self.assertEqual(r.status, 413)
        r = self.curl("/logout", direct=True, data=big, headers=["Origin: http://localhost", FORM, expect])
        self.assertEqual(r.status, 413)
        r = self.curl("/login", data=big, headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r.status, 413)
        # Bodies just under the limit are read (and refused for what they say).
        r = self.curl("/login", direct=True, data=b"user=" + b"a" * 8000, headers=["Origin: http://localhost", FORM])
        self.assertEqual(r.status, 403)
        self.assert_alive()

    def test_odd_requests(self):
        self.start_stack()
        self.assertEqual(self.curl("/nope", direct=True).status, 404)
        self.assertEqual(self.curl("/auth", direct=True, method="DELETE").status, 405)
        r = self.curl("/login", direct=True, data="user=a", headers=["Origin: http://localhost",
                                                                    "Content-Type: application/json"])
        self.assertEqual(r.status, 415)
        r = self.curl("/login", direct=True, data="user=%zz&password=%&csrf=%",
                      headers=["Origin: http://localhost", FORM])
        self.assertEqual(r.status, 403)
        self.assert_alive()


class Process(HttpTest):
    def test_socket_activation(self):
        sock = os.path.join(self.tmp, "activated.sock")
        conf = os.path.join(self.tmp, "http.conf")
        with open(conf, "w") as f:
            f.write(f"[http]\nlatchd_socket = {self.d.sock}\nservice = demo\nlisten = /nonexistent/x.sock\n")
        notify = os.path.join(self.tmp, "notify")
        p = subprocess.Popen(["systemd-socket-activate", "-l", sock, LATCH_HTTP, "--config", conf],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(sock) and time.monotonic() < deadline:
                time.sleep(0.05)
            r = subprocess.run(["curl", "-sS", "-i", "--max-time", "60", "--unix-socket", sock, "http://x/auth"],
                               capture_output=True)
            self.assertIn(b"401 Unauthorized", r.stdout, r.stderr)
        finally:
            p.send_signal(signal.SIGTERM)
            out = p.communicate(timeout=30)[0]
        self.assertEqual(p.returncode, 0, out)
        self.assertIn(b"the socket from systemd", out)

    def test_check_config(self):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[http]\nservice = demo\ntoken_on_auth = perhaps\n")
        r = subprocess.run([LATCH_HTTP, "--config", conf, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{conf}:3:", r.stderr)
        with open(conf, "w") as f:
            f.write("[http]\nservice = demo\ntoken_on_auth = yes\n")
        r = subprocess.run([LATCH_HTTP, "--config", conf, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([LATCH_HTTP, "--config", os.path.join(self.tmp, "missing")], capture_output=True)
        self.assertEqual(r.returncode, 1)

    def test_check_config_reports_every_error(self):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[http]\n"             # 1
                    "service = demo\n"     # 2
                    "no equals sign\n"     # 3: syntax
                    "token_on_auth = perhaps\n"  # 4: bad value
                    "# fine\n"             # 5
                    "bogus_key = 1\n"      # 6: unknown key
                    "another syntax error\n"  # 7: syntax
                    "max_connections = 0\n"   # 8: bad value
                    "[other]\n"            # 9: unknown section
                    "x = 1\n")             # 10: inside it, not reported again
        r = subprocess.run([LATCH_HTTP, "--config", conf, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stderr)
        reported = [int(m) for m in re.findall("^" + re.escape(conf) + r":(\d+): ", r.stderr, re.M)]
        self.assertEqual(reported, [3, 4, 6, 7, 8, 9], r.stderr)
        self.assertEqual(len(r.stderr.strip().split("\n")), 6, r.stderr)

    def test_demo(self):
        build = os.environ.get("LATCH_BUILD_ROOT")
        if not build:
            self.skipTest("LATCH_BUILD_ROOT is not set")
        demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "http-demo")
        p = subprocess.Popen(["/usr/bin/python3", demo, build], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        try:
            url = None
            head = []
            for line in p.stdout:
                head.append(line)
                if line.strip().startswith("open"):
                    url = line.split()[1]
                    break
            self.assertTrue(url and url.startswith("http://localhost:"), url)
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                                "--max-time", "60", url], capture_output=True, text=True)
            self.assertEqual(r.stdout, f"303 {url}login?rd=/")
            jar = self.jar("demo-jar")
            r = subprocess.run(["curl", "-sS", "-c", jar, "--max-time", "60", url + "login"], capture_output=True,
                               text=True)
            self.assertIn('autocomplete="current-password"', r.stdout)
            # The demo's user can set up a second factor from the browser.
            form = urlencode({"csrf": self.csrf(jar), "user": "demo", "password": "demo-password",
                              "rd": "/account/totp"})
            r = subprocess.run(["curl", "-sS", "-b", jar, "-c", jar, "-o", "/dev/null", "-w", "%{http_code}",
                                "-H", "Origin: " + url.rstrip("/"), "-H", FORM, "--data-binary", form,
                                "--max-time", "60", url + "login"], capture_output=True, text=True)
            self.assertEqual(r.stdout, "303")
            r = subprocess.run(["curl", "-sS", "-b", jar, "--max-time", "60", url + "account/totp"],
                               capture_output=True, text=True)
            self.assertIn('data-enrolled="no"', r.stdout)
        finally:
            p.send_signal(signal.SIGTERM)
            out = p.communicate(timeout=60)[0]
        self.assertEqual(p.returncode, 0, out)
        folder = [l.split()[-1] for l in head if "running in" in l]
        self.assertEqual(len(folder), 1, head)
        self.assertFalse(os.path.exists(folder[0]), "the scratch folder is left behind")

    def test_binds_and_cleans_up(self):
        self.start_stack(nginx=False)
        self.assertTrue(os.path.exists(self.stack.http_sock))
        self.assertEqual(self.stack.stop(), 0)
        self.assertFalse(os.path.exists(self.stack.http_sock))

# Password (the login form), then a code: the `debug` line asks.
TWO_STEP = ("auth required file path={users}\n"
            "auth required debug ask=info:A_code_was_sent ask=secret:Code: expect=424242\n"
            "account required file path={users}\n")
STEP_COOKIE = "__Host-latch-step"


class TwoStepLogin(HttpTest):
    """Logins whose stack asks a code after the password: a sequence of
    forms, the conversation id only in an HttpOnly SameSite=Strict cookie."""

    services = {"demo": TWO_STEP}

    def step_fields(self, r):
        """The hidden fields of a step form."""
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'action="/login/step"', r.body)
        fields = {}
        for name in ("csrf", "step", "rd"):
            m = re.search(rb'name="%s" value="([^"]*)"' % name.encode(), r.body)
            self.assertIsNotNone(m, r)
            fields[name] = html.unescape(m.group(1).decode())
        return fields

    def answer(self, jar, fields, *answers, cookie=None, origin=None):
        body = dict(fields)
        for i, a in enumerate(answers):
            body[f"answer{i}"] = a
        headers = [f"Origin: {origin or self.origin()}", FORM]
        if cookie is not None:
            headers.append("Cookie: " + cookie)
        return self.curl("/login/step", jar=jar if cookie is None else None, data=urlencode(body),
                         headers=headers)

    def assert_expired(self, r):
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"This sign-in step has expired or was already used", r.body)
        self.assertRegex(r.body, rb'<a id="start-again" href="/login\?rd=[^"]*">Start again</a>')

    def test_password_then_code_signs_in(self):
        self.start_stack()
        jar = self.jar()
        r = self.login(jar, rd="/app/page")
        fields = self.step_fields(r)
        # The prompts: the info as text, the code as a labelled secret field.
        self.assertIn(b'<p class="info" role="status">A_code_was_sent</p>', r.body)
        self.assertIn(b'<label for="answer0">Code:</label>', r.body)
        self.assertRegex(r.body, rb'<input id="answer0" name="answer0" type="password" '
                                 rb'autocomplete="one-time-code"[^>]* autofocus>')
        self.assertNotIn(b"answer1", r.body)
        self.assertIn(b"<h1>Sign in</h1>", r.body)
        self.assertNotIn(b'id="note"', r.body)
        self.assertEqual(fields["rd"], "/app/page")
        # The conversation id: in an HttpOnly, Secure, SameSite=Strict
        # __Host- cookie, never in the page or a URL.
        conversation = self.cookie_from_jar(jar, STEP_COOKIE)
        self.assertIsNotNone(conversation)
        self.assertEqual(len(conversation), 43)
        self.assertNotIn(conversation.encode(), r.body)
        self.assertNotIn(conversation, fields["step"])
        step_cookie = [c for c in r.all("Set-Cookie") if c.startswith(STEP_COOKIE + "=")]
        self.assertEqual(len(step_cookie), 1, r)
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, step_cookie[0])
        self.assertIsNone(self.session_from_jar(jar), "no session before the code")
        r = self.answer(jar, fields, "424242")
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/app/page")
        self.assertNotIn(conversation, r.header("Location"))
        self.assertIsNotNone(self.session_from_jar(jar))
        self.assertIsNone(self.cookie_from_jar(jar, STEP_COOKIE), "the step cookie is cleared")
        r = self.curl("/app/page", jar=jar)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)

    def test_wrong_code_is_refused(self):
        self.start_stack()
        jar = self.jar()
        fields = self.step_fields(self.login(jar))
        r = self.answer(jar, fields, "000000")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"Sign-in failed: a wrong password or code. Please start again.", r.body)
        self.assertIn(b'action="/login"', r.body, "the login form again")
        self.assertIsNone(self.session_from_jar(jar))
        self.assertIsNone(self.cookie_from_jar(jar, STEP_COOKIE))
        self.assertIn("login refused at a later sign-in step", self.stack.http_log_text())
        self.assertNotIn("000000", self.stack.http_log_text())
        # A wrong password: `required` goes on, so the code is still asked
        # (the page does not tell which answer was wrong), then refused.
        fields = self.step_fields(self.login(jar, password="wrong"))
        r = self.answer(jar, fields, "424242")
        self.assertEqual(r.status, 401, r)
        self.assertIsNone(self.session_from_jar(jar))

    def test_replayed_form_is_a_clear_page(self):
        self.start_stack()
        jar = self.jar()
        fields = self.step_fields(self.login(jar))
        # What the browser sends on a reload or after the back button: the
        # same body and the same cookies.
        cookie = (f"__Host-latch-csrf={fields['csrf']}; "
                  f"{STEP_COOKIE}={self.cookie_from_jar(jar, STEP_COOKIE)}")
        r = self.answer(None, fields, "424242", cookie=cookie)
        self.assertEqual(r.status, 303, r)
        r = self.answer(None, fields, "424242", cookie=cookie)
        self.assert_expired(r)
        self.assertIsNone(r.header("Location"), "no second session")
        self.assertTrue(any(c.startswith(STEP_COOKIE + "=;") for c in r.all("Set-Cookie")), r)
        # A replayed wrong answer too.
        fields = self.step_fields(self.login(jar))
        cookie = (f"__Host-latch-csrf={fields['csrf']}; "
                  f"{STEP_COOKIE}={self.cookie_from_jar(jar, STEP_COOKIE)}")
        self.assertEqual(self.answer(None, fields, "1", cookie=cookie).status, 401)
        self.assert_expired(self.answer(None, fields, "424242", cookie=cookie))

    def test_reload_and_direct_get_are_a_clear_page(self):
        self.start_stack()
        r = self.curl("/login/step?rd=/app/x")
        self.assert_expired(r)
        self.assertIn(b'href="/login?rd=/app/x"', r.body)
        r = self.curl("/login/step", "-I")
        self.assertEqual(r.status, 403, r)

    def test_missing_or_forged_step_cookie(self):
        self.start_stack()
        jar = self.jar()
        fields = self.step_fields(self.login(jar))
        real = self.cookie_from_jar(jar, STEP_COOKIE)
        csrf = f"__Host-latch-csrf={fields['csrf']}"
        # No step cookie (another browser, or it expired there).
        self.assert_expired(self.answer(None, fields, "424242", cookie=csrf))
        # A made-up id: its step tag does not match the form's...
        forged = "A" * 43
        r = self.answer(None, fields, "424242", cookie=f"{csrf}; {STEP_COOKIE}={forged}")
        self.assert_expired(r)
        # ...and with a made-up tag to match, latchd knows no such conversation.
        import base64
        import hashlib
        tag = base64.urlsafe_b64encode(hashlib.blake2b(b"login\0" + forged.encode(),
                                                       digest_size=16).digest()).rstrip(b"=")
        r = self.answer(None, dict(fields, step=tag.decode()), "424242", cookie=f"{csrf}; {STEP_COOKIE}={forged}")
        self.assert_expired(r)
        # No CSRF cookie, or a form without the token.
        self.assert_expired(self.answer(None, fields, "424242", cookie=f"{STEP_COOKIE}={real}"))
        self.assert_expired(self.answer(None, dict(fields, csrf=""), "424242",
                                        cookie=f"{csrf}; {STEP_COOKIE}={real}"))
        # Cross-origin: refused before anything else.
        r = self.answer(None, fields, "424242", cookie=f"{csrf}; {STEP_COOKIE}={real}",
                        origin="https://evil.example")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"cross-origin request refused", r.body)
        # None of that used the real conversation up.
        r = self.answer(jar, fields, "424242")
        self.assertEqual(r.status, 303, r)
        self.assertNotIn(" 500 ", self.stack.http_log_text())

    def test_second_tab(self):
        self.start_stack()
        jar = self.jar()
        first = self.step_fields(self.login(jar, rd="/app/one"))
        second = self.step_fields(self.login(jar, rd="/app/two"))
        # The first tab's form belongs to a conversation this browser
        # left: a clear page, and the second tab's step is not used up.
        self.assert_expired(self.answer(jar, first, "424242"))
        r = self.answer(jar, second, "424242")
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.header("Location"), "/app/two")

    def test_wrong_number_of_answers(self):
        self.start_stack()
        jar = self.jar()
        fields = self.step_fields(self.login(jar))
        self.assert_expired(self.answer(jar, fields, "424242", "extra"))
        self.assert_expired(self.answer(jar, dict(fields, answer16="x")))


class TwoStepPrompts(HttpTest):
    """Each kind of prompt gets its field: a new password, an echoed code,
    an error shown as text."""

    services = {"demo": "auth required file path={users}\n"
                        "auth required debug ask=error:Your_password_has_expired ask=secret:New_password: "
                        "ask=text:Verification_code: expect=n3w expect=123\n"
                        "account required file path={users}\n"}

    def test_fields(self):
        self.start_stack()
        jar = self.jar()
        r = self.login(jar)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<p class="error" role="alert">Your_password_has_expired</p>', r.body)
        self.assertRegex(r.body, rb'<label for="answer0">New_password:</label>\n<input id="answer0" name="answer0" '
                                 rb'type="password" autocomplete="new-password"')
        self.assertRegex(r.body, rb'<label for="answer1">Verification_code:</label>\n<input id="answer1" '
                                 rb'name="answer1" type="text" autocomplete="one-time-code"')
        # A step asking a new password is titled as a password change, with
        # a note saying why the login goes on.
        self.assertIn(b"<h1>Change your password</h1>", r.body)
        self.assertIn(b'<p class="info" id="note">Your password must be changed before you can sign in.</p>', r.body)
        fields = TwoStepLogin.step_fields(self, r)
        r = TwoStepLogin.answer(self, jar, fields, "n3w", "123")
        self.assertEqual(r.status, 303, r)
        # Refused there: the login form again, saying what was refused.
        fields = TwoStepLogin.step_fields(self, self.login(jar))
        r = TwoStepLogin.answer(self, jar, fields, "other", "123")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"The new password was not accepted, and you are not signed in. Please start again.", r.body)
        self.assertIn(b'action="/login"', r.body)
        self.assertIn("login refused at a later sign-in step (a new password) from", self.stack.http_log_text())


class TwoStepExpiry(HttpTest):
    daemon_config = "conversation_timeout = 1s\n"
    services = {"demo": TWO_STEP}

    def test_expired_conversation(self):
        self.start_stack()
        jar = self.jar()
        r = self.login(jar)
        fields = TwoStepLogin.step_fields(self, r)
        cookie = (f"__Host-latch-csrf={fields['csrf']}; "
                  f"{STEP_COOKIE}={self.cookie_from_jar(jar, STEP_COOKIE)}")
        time.sleep(harness.scaled(3))
        # A browser drops the expired cookie; one that kept it gets the
        # same page from latchd's invalid_conversation.
        TwoStepLogin.assert_expired(self, TwoStepLogin.answer(self, None, fields, "424242",
                                                              cookie=f"__Host-latch-csrf={fields['csrf']}"))
        TwoStepLogin.assert_expired(self, TwoStepLogin.answer(self, None, fields, "424242", cookie=cookie))
        self.assertIsNone(self.session_from_jar(jar))


if __name__ == "__main__":
    unittest.main()


def oathtool(secret, period=30):
    return subprocess.run(["oathtool", "--totp", "-b", "-s", f"{period}s", secret], capture_output=True, text=True,
                          check=True).stdout.strip()


def next_code(secret, after, period=30):
    """A code of a later time step than `after`, waiting for it."""
    while True:
        code = oathtool(secret, period)
        if code != after:
            return code
        time.sleep(0.5)


@unittest.skipUnless(shutil.which("oathtool"), "needs oathtool")
class AccountTotp(HttpTest):
    """/account/totp: a signed-in user turns two-factor authentication on
    and off, giving the password again each time."""

    services = {"demo": "auth requisite faillock deny=5 unlock_time=10min\n"
                        "auth required file path={users}\n"
                        "auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo period=10\n"
                        "account required file path={users}\n"}

    def fields(self, r, action):
        self.assertIn(f'action="{action}"'.encode(), r.body, r)
        fields = {}
        for name in ("csrf", "step"):
            m = re.search(rb'name="%s" value="([^"]*)"' % name.encode(), r.body)
            if m:
                fields[name] = html.unescape(m.group(1).decode())
        return fields

    def post(self, jar, path, **form):
        return self.curl(path, jar=jar, data=urlencode(form), headers=[f"Origin: {self.origin()}", FORM])

    def test_enroll_confirm_signin_remove(self):
        self.start_stack()
        jar = self.jar()
        # Not signed in: the login form, coming back here.
        r = self.curl("/account/totp", jar=jar)
        self.assertEqual((r.status, r.header("Location")), (303, "/login?rd=%2Faccount%2Ftotp"), r)
        self.assertEqual(self.login(jar, rd="/account/totp").header("Location"), "/account/totp")
        r = self.curl("/account/totp", jar=jar)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'data-enrolled="no"', r.body)
        self.assertIn(b'<strong id="user">demo</strong>', r.body)
        csrf = self.fields(r, "/account/totp/enroll")["csrf"]

        # Without the CSRF token, or from another site: refused, nothing made.
        r = self.post(jar, "/account/totp/enroll", password="demo-password")
        self.assertEqual(r.status, 403, r)
        r = self.curl("/account/totp/enroll", jar=jar, data=urlencode({"csrf": csrf, "password": "demo-password"}),
                      headers=["Origin: https://evil.example", FORM])
        self.assertEqual(r.status, 403, r)
        # A wrong password: refused, and counted.
        r = self.post(jar, "/account/totp/enroll", csrf=csrf, password="wrong")
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"Wrong password", r.body)
        status = self.d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo"})
        self.assertFalse(status["pending"], status)
        self.assertEqual(len(self.d.call({"op": "plugin", "plugin": "faillock", "action": "show", "user": "demo",
                                          "service": "demo"})["failures"]), 1)

        # The password: the QR code, the key, the field for the first code.
        r = self.post(jar, "/account/totp/enroll", csrf=csrf, password="demo-password")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertRegex(r.body, rb'<svg xmlns="http://www.w3.org/2000/svg" id="qr" role="img"[^>]*>'
                                 rb'<rect [^>]*/><path fill="#000" d="(M\d+ \d+h\d+v1h-\d+z)+"/></svg>')
        secret = re.search(rb'<code id="secret"[^>]*>([A-Z2-7]{32})</code>', r.body).group(1).decode()
        uri = html.unescape(re.search(rb'<code id="uri"[^>]*>([^<]*)</code>', r.body).group(1).decode())
        self.assertEqual(uri, f"otpauth://totp/Demo:demo?secret={secret}&issuer=Demo&algorithm=SHA1&digits=6"
                              "&period=10")
        confirm = self.fields(r, "/account/totp/confirm")
        self.assertRegex(r.body, rb'<input id="code" name="code" type="text" inputmode="numeric" '
                                 rb'autocomplete="one-time-code"')

        # A wrong code: asked again, no key on that page.
        code = oathtool(secret, 10)
        r = self.post(jar, "/account/totp/confirm", csrf=confirm["csrf"], code=f"{(int(code) + 1) % 1000000:06d}")
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"That code is not right", r.body)
        self.assertNotIn(secret.encode(), r.body)
        r = self.post(jar, "/account/totp/confirm", csrf=confirm["csrf"], code=code[:3] + " " + code[3:])
        self.assertEqual((r.status, r.header("Location")), (303, "/account/totp?done=on"), r)
        r = self.curl("/account/totp?done=on", jar=jar)
        self.assertIn(b'data-enrolled="yes"', r.body)
        self.assertIn(b"Two-factor authentication is on. Signing in now asks for a code.", r.body)

        # A new login asks for the code after the password.
        jar2 = self.jar("jar2")
        r = self.login(jar2, rd="/account/totp")
        self.assertIn(b'<label for="answer0">Verification code:</label>', r.body)
        step = self.fields(r, "/login/step")
        code = next_code(secret, code, 10)
        r = self.curl("/login/step", jar=jar2, data=urlencode({**step, "rd": "/account/totp", "answer0": code}),
                      headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual((r.status, r.header("Location")), (303, "/account/totp"), r)

        # Turning it off: the password, then the code (a step form of its own).
        r = self.curl("/account/totp", jar=jar2)
        csrf = self.fields(r, "/account/totp/remove")["csrf"]
        r = self.post(jar2, "/account/totp/remove", csrf=csrf, password="demo-password")
        self.assertEqual(r.status, 200, r)
        step = self.fields(r, "/account/totp/remove/step")
        self.assertIn(b"Verification code:", r.body)
        # The step form of a removal is not a login's.
        r2 = self.curl("/login/step", jar=jar2, data=urlencode({**step, "answer0": "000000"}),
                       headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual(r2.status, 403, r2)
        code = next_code(secret, code, 10)
        r = self.curl("/account/totp/remove/step", jar=jar2, data=urlencode({**step, "answer0": code}),
                      headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual((r.status, r.header("Location")), (303, "/account/totp?done=off"), r)
        r = self.curl("/account/totp", jar=jar2)
        self.assertIn(b'data-enrolled="no"', r.body)

        log = self.stack.http_log_text()
        self.assertNotIn(secret, log)
        self.assertNotIn(secret, self.d.log())
        self.assertIn("two-factor set-up refused for user", log)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("gcore"), "needs root and gdb's gcore")
    @unittest.skipIf(harness.SANITIZED or os.environ.get("LATCH_HTTP_WRAPPER"),
                     "sanitizer shadow memory makes huge cores; a wrapper is not latch-http")
    def test_enrollment_key_not_left_in_memory(self):
        """The QR code pages are built and sent without leaving a copy of
        the key in latch-http's memory (the page's pieces, the buffers they
        were assembled in)."""
        self.start_stack()
        jar = self.jar()
        self.login(jar, rd="/account/totp")
        secrets, paths = [], []
        for _ in range(4):
            r = self.curl("/account/totp", jar=jar)
            csrf = self.fields(r, "/account/totp/enroll")["csrf"]
            r = self.post(jar, "/account/totp/enroll", csrf=csrf, password="demo-password")
            self.assertEqual(r.status, 200, r)
            secrets.append(re.search(rb'<code id="secret"[^>]*>([A-Z2-7]{32})</code>', r.body).group(1).decode())
            paths.append(re.search(rb'<path fill="#000" d="([^"]*)"', r.body).group(1))
        time.sleep(0.5)
        image = harness.core_image(self.stack.procs["latch-http"].pid, self.tmp)
        self.assertGreater(len(image), 100000)
        # The key anywhere: as the page shows it (its pieces, the buffers
        # they were put together in), as latchd's answer carried it
        # (Jansson's buffers), as libqrencode copied it (in the child that
        # made the QR code, gone); any 16 characters of it, too.
        for secret in secrets:
            for k in range(0, 32 - 16 + 1, 8):
                at = image.find(secret[k:k + 16].encode())
                self.assertEqual(at, -1, f"a piece of an enrollment key survived in latch-http's memory: "
                                         f"{image[max(0, at - 64):at + 96]!r}")
        # The QR code's modules carry the key as well: no piece of the
        # drawing (its first 120 characters) either.
        for path in paths:
            at = image.find(path[:120])
            self.assertEqual(at, -1, f"a QR code survived in latch-http's memory: {image[max(0, at - 64):at + 96]!r}")


class AccountTotpStepAfterSignOut(HttpTest):
    """A step of a two-factor change whose session has ended (signed out
    in latchd, or at /logout) goes to the login form: not an outage, and
    no latchd error in latch-http's log. The `debug` line asks a code, so
    that setting up and turning off both have a step."""

    services = {"demo": "auth required file path={users}\n"
                        "auth required debug ask=secret:Code: expect=424242\n"
                        "auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo\n"
                        "account required file path={users}\n"}
    fields = AccountTotp.fields
    post = AccountTotp.post

    def step_form(self, jar, action):
        """Signed in (password and code), the password posted to
        /account/totp/ACTION: the step form's fields and the CSRF token."""
        step = self.fields(self.login(jar, rd="/account/totp"), "/login/step")
        r = self.curl("/login/step", jar=jar, data=urlencode({**step, "rd": "/account/totp", "answer0": "424242"}),
                      headers=[f"Origin: {self.origin()}", FORM])
        self.assertEqual((r.status, r.header("Location")), (303, "/account/totp"), r)
        r = self.curl("/account/totp", jar=jar)
        self.assertEqual(r.status, 200, r)
        csrf = re.search(rb'name="csrf" value="([^"]*)"', r.body).group(1).decode()
        r = self.post(jar, "/account/totp/" + action, csrf=csrf, password="demo-password")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<label for="answer0">Code:</label>', r.body)
        return self.fields(r, f"/account/totp/{action}/step"), csrf

    def assert_to_login(self, r):
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/login?rd=/account/totp"), r)
        self.assertTrue(any(c.startswith(STEP_COOKIE + "=;") for c in r.all("Set-Cookie")), r)
        log = self.stack.http_log_text()
        self.assertNotIn("latch-http: respond:", log)
        self.assertNotIn("invalid_session", log)

    def test_enroll_step_after_sign_out_in_latchd(self):
        self.start_stack()
        jar = self.jar()
        step, _ = self.step_form(jar, "enroll")
        # The browser still sends its cookies; latchd knows the session no more.
        self.assertEqual(self.d.ctl("logout", "-", input=self.session_from_jar(jar) + "\n").returncode, 0)
        r = self.curl("/account/totp/enroll/step", jar=jar, data=urlencode({**step, "answer0": "424242"}),
                      headers=[f"Origin: {self.origin()}", FORM])
        self.assert_to_login(r)
        status = self.d.call({"op": "plugin", "plugin": "totp", "action": "status", "user": "demo"})
        self.assertFalse(status["enrolled"] or status["pending"], status)

    def test_remove_step_after_logout(self):
        self.start_stack()
        jar = self.jar()
        step, csrf = self.step_form(jar, "remove")
        session, conversation = self.session_from_jar(jar), self.cookie_from_jar(jar, STEP_COOKIE)
        r = self.curl("/logout", jar=jar, method="POST", headers=[f"Origin: {self.origin()}"])
        self.assertEqual(r.status, 303, r)
        # A browser that kept every cookie (as before /logout cleared the
        # step cookie), and one that kept what /logout leaves.
        for cookies in (f"__Host-latch={session}; __Host-latch-csrf={csrf}; {STEP_COOKIE}={conversation}",
                        f"__Host-latch-csrf={csrf}; {STEP_COOKIE}={conversation}"):
            r = self.curl("/account/totp/remove/step", data=urlencode({**step, "answer0": "424242"}),
                          headers=[f"Origin: {self.origin()}", FORM, "Cookie: " + cookies])
            self.assert_to_login(r)
