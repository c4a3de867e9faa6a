# SPDX-License-Identifier: MIT
"""The Python package `latch` against the real latchd (and, for what latchd
cannot be made to do on demand, against fakelatchd.py)."""

import asyncio
import base64
import ctypes
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "bindings", "python"), os.path.join(HERE, "..", "e2e")]

import harness  # noqa: E402
import latch  # noqa: E402
from latch import cookie as lcookie  # noqa: E402
from latch import token as ltoken  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

BROKEN = "auth required debug auth=authinfo_unavail\n"


def totp_code(secret, period=30, at=None):
    """RFC 6238 with HMAC-SHA1, 6 digits: the code of a base32 secret now."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int((time.time() if at is None else at) // period)), "sha1").digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000:06d}"


def two_factor_stack(users):
    """file, then a totp line that users who are not enrolled pass."""
    return (f"auth required file path={users}\n"
            "auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo\n"
            f"account required file path={users}\n")


class Fake:
    """fakelatchd.py in a mode, on a socket in `tmp`."""

    def __init__(self, tmp, mode):
        self.sock = os.path.join(tmp, f"fake-{mode}.sock")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fakelatchd.py"), self.sock, mode],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class LiveTest(harness.DaemonTest):
    def start(self, **kw):
        users = os.path.join(self.tmp, "users")
        stack = harness.DEFAULT_STACK.format(users=users)
        services = {"demo": stack, "private": stack, "broken": BROKEN}
        return self.daemon(services=services, config_extra="[service.private]\nallow_users = nobody\n", **kw)

    def test_login_validate_token_verify_logout(self):
        d = self.start()
        c = latch.Client(d.sock)
        self.assertEqual(c.hello()["version"], 1)
        s = c.login("demo", "demo", "demo-password", remote="192.0.2.1", token=True)
        self.assertEqual((s["user"], s["service"]), ("demo", "demo"))
        self.assertEqual(len(s["session"]), 44)
        v = c.validate(s["session"], "demo")
        self.assertEqual((v["user"], v["handle"], v["claims"]["groups"]), ("demo", s["handle"], ["users"]))
        t = c.token(s["session"], audience="demo")["token"]
        # Offline, from the published file and from the jwks op; then online.
        for source in (d.jwks, c):
            claims = latch.Verifier(source, issuer="latch").verify(t, audience="demo")
            self.assertEqual((claims["sub"], claims["sid"]), ("demo", s["handle"]))
        self.assertEqual(latch.Verifier(d.jwks).verify(s["token"])["sub"], "demo")
        self.assertEqual(c.verify(t)["claims"]["sub"], "demo")
        with self.assertRaisesRegex(latch.InvalidToken, "audience"):
            latch.Verifier(d.jwks).verify(t, audience="wiki")
        c.logout(s["session"])
        with self.assertRaises(latch.InvalidSession):
            c.validate(s["session"])
        with self.assertRaisesRegex(latch.InvalidToken, "session has ended"):
            c.verify(t)
        c.close()

    def test_passwd_conversation(self):
        users = os.path.join(self.tmp, "users")
        stack = harness.DEFAULT_STACK.format(users=users) + f"password required file path={users} min_length=8\n"
        d = self.daemon(services={"demo": stack})
        c = latch.Client(d.sock)
        mine = c.login("demo", "demo", "demo-password")["session"]
        other = c.login("demo", "demo", "demo-password")["session"]
        with self.assertRaises(latch.Challenge) as first:
            c.passwd("demo", "demo", session=mine)
        self.assertEqual(first.exception.prompts, [{"style": "secret", "message": "Current password:"}])
        with self.assertRaises(latch.Challenge) as second:
            c.respond(first.exception.conversation, ["demo-password"])
        self.assertEqual(second.exception.answers_needed(), 2)
        done = c.respond(second.exception.conversation, ["a-new-passphrase"] * 2)
        self.assertEqual(done, {"user": "demo", "service": "demo", "revoked": 1})
        self.assertEqual(c.validate(mine)["user"], "demo")
        with self.assertRaises(latch.InvalidSession):
            c.validate(other)

        async def wrong():
            a = latch.AsyncClient(d.sock)
            try:
                await a.passwd("demo", "demo")
            except latch.Challenge as e:
                await a.respond(e.conversation, ["demo-password"])
            finally:
                await a.close()
        with self.assertRaises(latch.Denied):
            asyncio.run(wrong())
        c.close()

    def test_plugin_admin_and_self_service(self):
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": two_factor_stack(users)})
        c = latch.Client(d.sock)
        # An administrator's call (this test runs as an admin peer), as
        # `latchctl totp status demo`.
        st = c.plugin("totp", "status", user="demo", service="demo")
        self.assertEqual((st["user"], st["enrolled"], st["pending"]), ("demo", False, False), st)
        with self.assertRaises(latch.BadRequest):
            c.plugin("totp", "fly", user="demo")
        with self.assertRaises(TypeError):
            c.plugin("totp", "status", op="logout")

        # The user's own: status at once; enroll only re-authenticated.
        mine = c.login("demo", "demo", "demo-password")["session"]
        self.assertEqual(c.plugin("totp", "status", session=mine)["user"], "demo")
        with self.assertRaisesRegex(latch.Forbidden, "re-authenticate"):
            c.plugin("totp", "enroll", session=mine)
        with self.assertRaises(latch.Forbidden):
            c.plugin("totp", "status", session=mine, user="someone-else")
        with self.assertRaises(latch.Denied):
            c.plugin("totp", "enroll", session=mine, password="wrong-password")
        with self.assertRaises(latch.InvalidSession):
            c.plugin("totp", "status", session="A" * 44)
        enrolled = c.plugin("totp", "enroll", session=mine, password="demo-password")
        self.assertTrue(enrolled["uri"].startswith("otpauth://totp/Demo:demo?secret=" + enrolled["secret"]))
        done = c.plugin("totp", "confirm", session=mine, code=totp_code(enrolled["secret"]))
        self.assertEqual((done["user"], done["enrolled"]), ("demo", True))
        codes = c.plugin("totp", "recovery", user="demo")["codes"]

        # Re-authenticating now asks for the second factor: a conversation
        # that respond() continues, as login's, and whose last answer is
        # the action's. The async client takes the same path.
        async def remove():
            a = latch.AsyncClient(d.sock)
            try:
                self.assertTrue((await a.plugin("totp", "status", session=mine))["enrolled"])
                with self.assertRaises(latch.Challenge) as asked:
                    await a.plugin("totp", "remove", session=mine, password="demo-password", remote="192.0.2.4")
                self.assertEqual(asked.exception.prompts, [{"style": "secret", "message": "Verification code:"}])
                return await a.respond(asked.exception.conversation, [codes[0]])
            finally:
                await a.close()
        self.assertEqual(asyncio.run(remove()), {"user": "demo", "removed": True})
        self.assertFalse(c.plugin("totp", "status", user="demo")["enrolled"])
        # In a pipeline too.
        with c.pipeline() as p:
            p.plugin("totp", "status", session=mine)
            p.plugin("totp", "enroll", session=mine)
        self.assertEqual(p.results[0]["enrolled"], False)
        self.assertIsInstance(p.results[1], latch.Forbidden)
        c.close()

    def test_every_error_code(self):
        d = self.start()
        c = latch.Client(d.sock)
        s = c.login("demo", "demo", "demo-password")["session"]
        cases = [
            (latch.Denied, lambda: c.login("demo", "demo", "wrong", remote="198.51.100.9")),
            (latch.UnknownService, lambda: c.login("nope", "demo", "x")),
            (latch.Forbidden, lambda: c.login("private", "demo", "demo-password")),
            (latch.Unavailable, lambda: c.authenticate("broken", "demo", "x")),
            (latch.BadRequest, lambda: c.login("demo", "u" * 300, "x")),
            (latch.InvalidSession, lambda: c.validate("A" * 44)),
            (latch.InvalidToken, lambda: c.verify("a.b.c")),
            (latch.UnknownOp, lambda: c.call("fly")),
            (latch.TooLarge, lambda: c.call("hello", pad="x" * 70000)),
        ]
        for cls, fn in cases:
            with self.subTest(cls.__name__):
                with self.assertRaises(cls) as cm:
                    fn()
                self.assertEqual(type(cm.exception), cls)
                self.assertEqual(cm.exception.code, cls.code)
        self.assertEqual(c.validate(s)["user"], "demo", "the pool still works after a too_large")
        # internal: a reload that finds errors.
        with open(d.conf, "a") as f:
            f.write("[session]\nidle_timeout = forever\n")
        with self.assertRaises(latch.Internal):
            c.reload()
        # Client-side failures.
        with self.assertRaises(latch.Unreachable):
            latch.Client(os.path.join(self.tmp, "nothing.sock")).hello()
        with self.assertRaises(ValueError):
            c.sessions_revoke()

    def test_concurrency_threads_and_tasks(self):
        d = self.start()
        c = latch.Client(d.sock, pool_size=8)
        s = c.login("demo", "demo", "demo-password")["session"]
        results, errors = [], []

        def one():
            try:
                results.append(c.validate(s)["user"])
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=one) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual((errors, results), ([], ["demo"] * 100))

        async def tasks():
            a = latch.AsyncClient(d.sock)
            try:
                r = await asyncio.gather(*(a.validate(s) for _ in range(100)))
                bad = await a.pipeline([("validate", {"session": "A" * 44}), ("hello", {})])
                return [x["user"] for x in r], bad
            finally:
                await a.close()
        users, bad = asyncio.run(tasks())
        self.assertEqual(users, ["demo"] * 100)
        self.assertIsInstance(bad[0], latch.InvalidSession)
        self.assertEqual(bad[1]["version"], 1)
        with c.pipeline() as p:
            p.validate(s)
            p.validate("A" * 44)
            p.hello()
        self.assertEqual(p.results[0]["user"], "demo")
        self.assertIsInstance(p.results[1], latch.InvalidSession)
        self.assertEqual(p.results[2]["version"], 1)

    def test_reconnect_after_restart(self):
        d = self.start()
        c = latch.Client(d.sock, pool_size=2)
        s = c.login("demo", "demo", "demo-password")["session"]
        self.assertEqual(c.validate(s)["user"], "demo")

        async def use(a):
            return (await a.validate(s))["user"]
        loop = asyncio.new_event_loop()
        a = latch.AsyncClient(d.sock)
        self.assertEqual(loop.run_until_complete(use(a)), "demo")
        d.stop()
        with self.assertRaises(latch.Unreachable):
            c.validate(s)
        d.start()
        # The pooled connections died with the old latchd; the session lives on.
        self.assertEqual(c.validate(s)["user"], "demo")
        self.assertEqual(loop.run_until_complete(use(a)), "demo")
        loop.run_until_complete(a.close())
        loop.close()

    def test_jwks_cache_refetches_on_unknown_kid(self):
        d = self.start()
        c = latch.Client(d.sock)
        s = c.login("demo", "demo", "demo-password")["session"]
        by_file = latch.Verifier(d.jwks)
        by_op = latch.Verifier(c, min_refresh=0)
        t1 = c.token(s)["token"]
        by_file.verify(t1)
        by_op.verify(t1)
        c.keys_rotate()
        deadline = time.monotonic() + 10
        while json.loads(open(d.jwks).read())["keys"][0]["kid"] not in t1 and time.monotonic() < deadline:
            break
        t2 = c.token(s)["token"]
        self.assertNotEqual(t1.split(".")[0], t2.split(".")[0], "a new kid")
        self.assertEqual(by_file.verify(t2)["sub"], "demo")
        self.assertEqual(by_op.verify(t2)["sub"], "demo")
        self.assertEqual(by_file.verify(t1)["sub"], "demo", "the old key stays while its tokens live")

    def test_flask_app_end_to_end(self):
        try:
            import flask
        except ImportError:
            self.skipTest("python3-flask is not installed")
        from latch.flask import Latch, current_user
        d = self.start()
        app = flask.Flask("t")
        auth = Latch(app, service="demo", client=latch.Client(d.sock))

        @app.route("/")
        @auth.login_required
        def index():
            return f"hello {current_user()}; csrf={auth.csrf_token()}"

        web = app.test_client()
        base = "https://localhost"
        r = web.get("/?x=1", base_url=base)
        self.assertEqual((r.status_code, r.headers["Location"]), (303, "/login?next=%2F%3Fx%3D1"))
        r = web.get("/login?next=/%3Fx%3D1", base_url=base)
        self.assertEqual(r.status_code, 200)
        page = r.get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        self.assertIn('value="/?x=1"', page)
        form = {"user": "demo", "password": "demo-password", "csrf_token": csrf, "next": "/?x=1"}
        r = web.post("/login", base_url=base, data=dict(form, csrf_token="forged"))
        self.assertEqual(r.status_code, 403, "a wrong CSRF token")
        r = web.post("/login", base_url=base, data=form, headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status_code, 403, "a foreign Origin")
        r = web.post("/login", base_url=base, data=dict(form, password="wrong"))
        self.assertEqual(r.status_code, 401)
        self.assertIn("authentication failed", r.get_data(as_text=True))
        r = web.post("/login", base_url=base, data=dict(form, next="//evil.example/"),
                     headers={"Origin": "https://localhost"})
        self.assertEqual((r.status_code, r.headers["Location"]), (303, "/"), "no open redirect")
        set_cookie = r.headers.getlist("Set-Cookie")
        self.assertTrue(any(h.startswith("__Host-latch=") and "HttpOnly" in h and "Secure" in h
                            for h in set_cookie), set_cookie)
        r = web.get("/", base_url=base)
        self.assertEqual(r.status_code, 200)
        text = r.get_data(as_text=True)
        self.assertTrue(text.startswith("hello demo"), text)
        sid = lcookie.parse_cookie("; ".join(f"{k.name}={k.value}" for k in web.cookie_jar))
        self.assertEqual(latch.Client(d.sock).validate(sid)["user"], "demo")
        token = text.split("csrf=")[1]
        self.assertEqual(web.post("/logout", base_url=base, data={"csrf_token": "x"}).status_code, 403)
        r = web.post("/logout", base_url=base, data={"csrf_token": token})
        self.assertEqual(r.status_code, 303)
        with self.assertRaises(latch.InvalidSession):
            latch.Client(d.sock).validate(sid)
        self.assertEqual(web.get("/", base_url=base).status_code, 303)
        d.stop()
        bare = app.test_client(use_cookies=False)
        self.assertEqual(bare.get("/", base_url=base, headers={"Cookie": f"__Host-latch={sid}"}).status_code, 503)

    def test_flask_example(self):
        try:
            import flask  # noqa: F401
        except ImportError:
            self.skipTest("python3-flask is not installed")
        import importlib.util
        d = self.start()
        os.environ["LATCH_SOCKET"] = d.sock
        try:
            spec = importlib.util.spec_from_file_location(
                "flask_example", os.path.join(HERE, "..", "..", "examples", "flask", "app.py"))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        finally:
            del os.environ["LATCH_SOCKET"]
        web = mod.app.test_client()
        base = "https://localhost"
        self.assertEqual(web.get("/", base_url=base).status_code, 303)
        page = web.get("/login", base_url=base).get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = web.post("/login", base_url=base, data={"user": "demo", "password": "demo-password", "csrf_token": csrf})
        self.assertEqual(r.status_code, 303)
        r = web.get("/", base_url=base)
        self.assertIn("Hello demo (groups: users)", r.get_data(as_text=True))

    def test_wsgi_and_asgi_middleware(self):
        from latch.asgi import LatchASGIMiddleware
        from latch.wsgi import LatchMiddleware
        d = self.start()
        s = latch.Client(d.sock).login("demo", "demo", "demo-password")["session"]

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [environ["REMOTE_USER"].encode()]
        mw = LatchMiddleware(app, latch.Client(d.sock), service="demo", login_path="/login")

        def call(cookie, path="/p"):
            out = {}
            env = {"PATH_INFO": path, "QUERY_STRING": "", "HTTP_COOKIE": cookie}
            body = b"".join(mw(env, lambda st, h: out.update(status=st, headers=dict(h))))
            return out["status"], out["headers"], body
        self.assertEqual(call(f"a=b; __Host-latch={s}")[::2], ("200 OK", b"demo"))
        st, h, _ = call("__Host-latch=" + "A" * 44)
        self.assertEqual((st, h["Location"]), ("303 See Other", "/login?next=%2Fp"))

        async def asgi_app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["latch.session"]["user"].encode()})

        async def run(cookie):
            m = LatchASGIMiddleware(asgi_app, latch.AsyncClient(d.sock), service="demo")
            sent = []

            async def send(msg):
                sent.append(msg)
            await m({"type": "http", "path": "/", "headers": [(b"cookie", cookie.encode())]}, None, send)
            await m.client.close()
            return sent[0]["status"], sent[1]["body"]
        self.assertEqual(asyncio.run(run(f"__Host-latch={s}")), (200, b"demo"))
        self.assertEqual(asyncio.run(run("__Host-latch=x"))[0], 401)


class FakeTest(unittest.TestCase):
    """What the real latchd cannot be made to do on demand."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="latch-py-")
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.stop()

    def fake(self, mode):
        f = Fake(self.tmp, mode)
        self.fakes.append(f)
        return f

    def test_challenge_and_respond(self):
        f = self.fake("challenge")
        c = latch.Client(f.sock)
        with self.assertRaises(latch.Challenge) as cm:
            c.login("demo", "alice", "pw")
        ch = cm.exception
        self.assertEqual(ch.code, "challenge")
        self.assertEqual(ch.prompts, [{"style": "info", "message": "second factor"},
                                      {"style": "secret", "message": "Verification code:"}])
        self.assertEqual((ch.answers_needed(), ch.expires_at), (1, 4102444800))
        with self.assertRaises(latch.InvalidConversation):
            c.respond(ch.conversation, ["000000"])
        self.assertEqual(c.respond(ch.conversation, ["123456"])["user"], "alice")

        async def go():
            a = latch.AsyncClient(f.sock)
            try:
                await a.login("demo", "alice", "pw")
            except latch.Challenge as e:
                return (await a.respond(e.conversation, ["123456"]))["user"]
            finally:
                await a.close()
        self.assertEqual(asyncio.run(go()), "alice")

    def test_plugin_request_shape(self):
        # What goes on the wire: the action's arguments as given, None ones
        # left out, session and password only when given.
        f = self.fake("echo")
        c = latch.Client(f.sock)
        self.assertEqual(c.plugin("totp", "status", user="alice")["request"],
                         {"op": "plugin", "plugin": "totp", "action": "status", "user": "alice"})
        self.assertEqual(c.plugin("totp", "confirm", session="S" * 44, code="123456", service=None)["request"],
                         {"op": "plugin", "plugin": "totp", "action": "confirm", "session": "S" * 44,
                          "code": "123456"})
        c.close()

        async def go():
            a = latch.AsyncClient(f.sock)
            try:
                return (await a.plugin("totp", "enroll", session="S" * 44, password="pw", remote="192.0.2.1"))
            finally:
                await a.close()
        self.assertEqual(asyncio.run(go())["request"],
                         {"op": "plugin", "plugin": "totp", "action": "enroll", "session": "S" * 44,
                          "password": "pw", "remote": "192.0.2.1"})

    def test_idempotent_ops_are_resent_once_others_never(self):
        f = self.fake("drop-first")
        r = latch.Client(f.sock).validate("S" * 44)
        self.assertEqual((r["op"], r["attempt"]), ("validate", 1), "resent on a fresh connection")
        f2 = self.fake("drop-first")
        with self.assertRaises(latch.Disconnected):
            latch.Client(f2.sock).login("demo", "alice", "pw")
        f3 = self.fake("drop-first")

        async def go():
            a = latch.AsyncClient(f3.sock, connections=1)
            try:
                return (await a.validate("S" * 44))["attempt"]
            finally:
                await a.close()
        self.assertEqual(asyncio.run(go()), 1)
        f4 = self.fake("drop-first")

        async def go2():
            a = latch.AsyncClient(f4.sock, connections=1)
            try:
                await a.logout("S" * 44)
            finally:
                await a.close()
        with self.assertRaises(latch.Disconnected):
            asyncio.run(go2())

    def test_async_close_resends_nothing(self):
        silent = self.fake("silent")

        async def go():
            a = latch.AsyncClient(silent.sock, timeout=10, connections=1)
            t = asyncio.ensure_future(a.validate("S" * 44))
            await asyncio.sleep(0.3)  # connected and sent
            await a.close()
            try:
                await t
                outcome = None
            except latch.LatchError as e:
                outcome = type(e)
            await asyncio.sleep(0.3)
            return outcome, a._lanes[0]
        outcome, lane = asyncio.run(go())
        self.assertIs(outcome, latch.Disconnected)
        self.assertEqual(lane, [None], "no connection opened again for the closed client")

    def test_timeout_and_protocol_errors(self):
        silent = self.fake("silent")
        with self.assertRaises(latch.Timeout):
            latch.Client(silent.sock, timeout=0.5).hello()

        async def go():
            a = latch.AsyncClient(silent.sock, timeout=0.5)
            try:
                await a.hello()
            finally:
                await a.close()
        with self.assertRaises(latch.Timeout):
            asyncio.run(go())
        junk = self.fake("junk")
        with self.assertRaises(latch.ProtocolError):
            latch.Client(junk.sock).hello()


def liblatch():
    path = os.environ.get("LIBLATCH")
    if not path:
        return None
    lib = ctypes.CDLL(path)
    lib.latch_cookie_build.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_char_p,
                                       ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    lib.latch_cookie_parse.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    lib.latch_jwks_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.latch_token_verify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.POINTER(ctypes.c_char_p)]
    return lib


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class SameRulesAsLiblatch(unittest.TestCase):
    """Cookies and offline verification answer exactly as liblatch does."""

    @classmethod
    def setUpClass(cls):
        cls.lib = liblatch()
        if cls.lib is None:
            raise unittest.SkipTest("LIBLATCH is not set (meson sets it)")

    def c_build(self, session, exp, now, name, ss, domain):
        out = ctypes.c_char_p()
        enc = lambda s: None if s is None else s.encode()  # noqa: E731
        r = self.lib.latch_cookie_build(enc(session), exp, now, enc(name), enc(ss), enc(domain), ctypes.byref(out))
        return out.value.decode() if r == 0 else None

    def c_parse(self, header, name):
        out = ctypes.c_char_p()
        r = self.lib.latch_cookie_parse(None if header is None else header.encode(),
                                        None if name is None else name.encode(), ctypes.byref(out))
        return out.value.decode() if r == 0 else None

    def test_cookies(self):
        sessions = ["A" * 44, "abc-_09", "", "a b", "x" * 512, "x" * 513, "é", "a;b"]
        names = [None, "sid", "__Host-x", "bad name", "a=b", ""]
        for s in sessions:
            for name in names:
                for ss in (None, "strict", "NONE", "bogus"):
                    for domain in (None, "example.org", ".ex-1.org", "bad/domain"):
                        for exp, now in ((2000, 1000), (500, 1000)):
                            try:
                                py = lcookie.build_cookie(s, exp, now, name=name, same_site=ss, domain=domain)
                            except ValueError:
                                py = None
                            self.assertEqual(py, self.c_build(s, exp, now, name, ss, domain),
                                             (s, name, ss, domain))
        headers = [None, "", "__Host-latch=abc", 'a=1; __Host-latch="q_q" ;x=y', "__Host-latch=bad!; __Host-latch=ok",
                   " \t__Host-latch \t= \tv1\t ", "__Host-latch", "sid=1;sid=2", "__Host-latch=\"\"", "=x; ;;"]
        for h in headers:
            for name in (None, "sid"):
                self.assertEqual(lcookie.parse_cookie(h, name), self.c_parse(h, name), (h, name))

    def test_token_verification(self):
        key = Ed25519PrivateKey.generate()
        x = b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        kid = ltoken.thumbprint(x)
        jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig",
                                     "alg": "EdDSA"}]}).encode()
        ks_c = ctypes.c_void_p()
        self.assertEqual(self.lib.latch_jwks_parse(jwks, len(jwks), ctypes.byref(ks_c)), 0)
        ks_py = latch.KeySet(jwks)
        now = 1_800_000_000

        def tok(header=None, claims=None, raw_header=None, raw_claims=None, sig=None, segs=None):
            h = raw_header if raw_header is not None else json.dumps(
                header if header is not None else {"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode()
            p = raw_claims if raw_claims is not None else json.dumps(
                claims if claims is not None else {"sub": "u", "iat": now, "nbf": now, "exp": now + 60}).encode()
            signed = (b64(h) + "." + b64(p)).encode()
            s = sig if sig is not None else key.sign(signed)
            return segs if segs is not None else signed.decode() + "." + b64(s)
        good = tok()
        base = {"sub": "u", "exp": now + 60}
        cases = [
            good, tok(header={"alg": "Ed25519", "kid": kid}), tok(header={"alg": "none", "kid": kid}),
            tok(header={"alg": "EdDSA", "kid": kid, "crit": ["b64"]}), tok(header={"alg": "EdDSA", "kid": "other"}),
            tok(header={"alg": "EdDSA", "kid": kid, "typ": "JOSE"}),
            tok(header={"alg": "EdDSA", "kid": kid, "jwk": {"kty": "OKP"}}), tok(header={"alg": "EdDSA"}),
            tok(raw_header=('{"alg":"EdDSA","kid":"%s","alg":"EdDSA"}' % kid).encode()),
            tok(raw_header=('{"alg":"EdDSA","kid":"%s"} ' % kid).encode()),
            tok(raw_claims=b'{"sub":"u","exp":%d,"exp":%d}' % (now + 60, now + 60)),
            tok(raw_claims=b'{"sub":"u","exp":%d.0}' % (now + 60)),
            tok(raw_claims=b'{"sub":"u","exp":%d,"x":NaN}' % (now + 60)),
            tok(raw_claims=b'{"sub":"u\\u0000","exp":%d}' % (now + 60)),
            tok(raw_claims=b'{"sub":"\\ud800","exp":%d}' % (now + 60)),
            tok(raw_claims=b'{"sub":"\xff","exp":%d}' % (now + 60)),
            tok(raw_claims=b'[1]'), tok(claims={"sub": "u"}), tok(claims=dict(base, exp=now - 31)),
            tok(claims=dict(base, exp=now - 29)), tok(claims=dict(base, nbf=now + 31)),
            tok(claims=dict(base, iat=now + 29)), tok(claims=dict(base, aud=["a", "svc"])),
            tok(claims=dict(base, aud="other")), tok(claims=dict(base, aud=[1])), tok(claims=dict(base, iss="latch")),
            tok(claims=dict(base, iss="evil")), tok(claims=dict(base, sub=5)), tok(claims=dict(base, exp=True)),
            tok(claims=dict(base, pad="p" * 9000)), tok(sig=b"\0" * 64), tok(sig=b"\0" * 63),
            good + "=", good.replace(".", "..", 1), good[:-1] + ("B" if good[-1] != "B" else "C"), "a.b", "",
            good + ".x", good.replace("-", "+"),
        ]
        for aud in (None, "svc"):
            for iss in (None, "latch"):
                for t in cases:
                    reason = ctypes.c_char_p()
                    rc = self.lib.latch_token_verify(ks_c, t.encode(), aud and aud.encode(), iss and iss.encode(),
                                                     30, now, None, None, ctypes.byref(reason))
                    try:
                        ltoken.verify_token(ks_py, t, audience=aud, issuer=iss, leeway=30, now=now)
                        py = None
                    except latch.InvalidToken as e:
                        py = str(e)
                    c = None if rc == 0 else reason.value.decode()
                    self.assertEqual(py, c, (t[:120], aud, iss))


if __name__ == "__main__":
    unittest.main()
