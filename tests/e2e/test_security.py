# SPDX-License-Identifier: MIT
"""Security properties: who may do what, uniform and equal-time denials,
password rules, resource limits, and secrets kept out of memory images,
logs and state."""

import glob
import json
import os
import resource
import shutil
import socket
import statistics
import struct
import sys
import subprocess
import threading
import time
import unittest

from harness import LATCHCTL, SANITIZED, DaemonTest, frame, on_pty, read_frame, scaled

NOBODY = 65534


def as_user(uid, gid, groups=None):
    grp = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}"] + grp + ["--"]


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
class TestPeerAuthorization(DaemonTest):
    group = "latchadm-e2e"

    def setUp(self):
        super().setUp()
        subprocess.run(["groupdel", self.group], capture_output=True)
        subprocess.run(["groupadd", "-r", self.group], check=True)
        self.gid = int(subprocess.run(["getent", "group", self.group], capture_output=True, text=True,
                                      check=True).stdout.split(":")[2])

    def tearDown(self):
        super().tearDown()
        subprocess.run(["groupdel", self.group], capture_output=True)

    def ctl_as(self, d, uid, gid, *args, groups=None, input=None):
        cmd = as_user(uid, gid, groups) + [LATCHCTL, "--socket", d.sock, "--json"] + list(args)
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30)
        return r

    def test_admin_and_service_access(self):
        users = os.path.join(self.tmp, "users")
        stack = f"auth required file path={users}\naccount required file path={users}\n"
        d = self.daemon(config_extra=f"[access]\nadmin_groups = root, {self.group}\n"
                                     "[service.private]\nallow_users = root\n",
                        services={"demo": stack, "private": stack})
        os.chmod(d.sock, 0o666)  # let other users reach it: access is what is tested
        os.chmod(self.tmp, 0o755)
        # Anyone: hello. Not admin ops.
        self.assertEqual(self.ctl_as(d, NOBODY, NOBODY, "hello").returncode, 0)
        for args in (["stats"], ["sessions", "list"], ["keys", "rotate"], ["reload"]):
            r = self.ctl_as(d, NOBODY, NOBODY, *args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}")
            self.assertIn('"forbidden"', r.stdout)
        # A member of admin_groups may.
        r = self.ctl_as(d, NOBODY, NOBODY, "stats", groups=[self.gid])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A service without allow lists is open to any peer; a restricted one is not.
        r = self.ctl_as(d, NOBODY, NOBODY, "login", "demo", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.ctl_as(d, NOBODY, NOBODY, "login", "private", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn('"forbidden"', r.stdout)
        # Sessions of a restricted service: only its peers may validate or log out.
        s = self.login(d, "demo", "demo-password", "private")
        for args in (["validate", s["session"]], ["logout", s["session"]], ["token", "issue", s["session"]]):
            r = self.ctl_as(d, NOBODY, NOBODY, *args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}")
            self.assertIn('"forbidden"', r.stdout)
        self.assertEqual(d.ctl("validate", s["session"]).returncode, 0, "still alive")
        self.assertIn("forbidden", d.log(), "refusals are audited")

    def calls_as(self, d, uid, gid, requests):
        """Sends each request on its own connection as uid:gid; the replies."""
        script = (
            "import json, socket, struct, sys\n"
            "for line in sys.stdin:\n"
            "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "    s.connect(sys.argv[1])\n"
            "    data = line.strip().encode()\n"
            "    s.sendall(struct.pack('>I', len(data)) + data)\n"
            "    n = struct.unpack('>I', s.recv(4, socket.MSG_WAITALL))[0]\n"
            "    print(s.recv(n, socket.MSG_WAITALL).decode(), flush=True)\n"
            "    s.close()\n")
        r = subprocess.run(as_user(uid, gid) + [sys.executable, "-c", script, d.sock],
                           input="".join(json.dumps(q) + "\n" for q in requests),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_a_refused_peer_learns_nothing_but_forbidden(self):
        users = os.path.join(self.tmp, "users")
        stack = f"auth required file path={users}\naccount required file path={users}\n"
        d = self.daemon(config_extra="[throttle]\nenabled = no\n"
                                     "[service.private]\nallow_users = root\naudiences = secret-api\n"
                                     "[service.nostack]\nallow_users = root\n",
                        services={"demo": stack, "private": stack})
        os.chmod(d.sock, 0o666)
        os.chmod(self.tmp, 0o755)
        private = self.login(d, "demo", "demo-password", "private")
        demo = self.login(d, "demo", "demo-password", "demo")
        login = {"op": "login", "service": "private", "user": "demo", "password": "demo-password"}
        probes = [
            # Configured and unconfigured audiences, for login and authenticate.
            dict(login, token=True, audience="secret-api"),
            dict(login, token=True, audience="not-configured"),
            dict(login, op="authenticate"),
            dict(login, password="wrong"),
            # Arguments the service would refuse, and a restricted service
            # with no stack.
            dict(login, user="bad\u0001user"),
            dict(login, password=""),
            dict(login, service="nostack"),
            # The session's service, named or not, right or wrong.
            {"op": "validate", "session": private["session"]},
            {"op": "validate", "session": private["session"], "service": "private"},
            {"op": "validate", "session": private["session"], "service": "demo"},
            {"op": "validate", "session": demo["session"], "service": "private"},
            {"op": "validate", "session": "no-such-session", "service": "private"},
            {"op": "token", "session": private["session"], "audience": "secret-api"},
            {"op": "token", "session": private["session"], "audience": "not-configured"},
            {"op": "logout", "session": private["session"]},
        ]
        replies = self.calls_as(d, NOBODY, NOBODY, probes)
        self.assertEqual(len(replies), len(probes))
        for q, r in zip(probes, replies):
            self.assertEqual(r.get("error"), "forbidden", f"{q}: {r}")
        # One message for a service, one for a session's service: nothing
        # that tells audiences, stacks or arguments apart.
        self.assertEqual({r["message"] for r in replies},
                         {"this peer may not use this service", "this peer may not use this session's service"})
        # The refused probes changed nothing, and an allowed peer still gets
        # the real answers.
        self.assertEqual(d.ctl("validate", private["session"]).returncode, 0)
        r = d.call(dict(login, token=True, audience="not-configured"))
        self.assertEqual(r["error"], "forbidden")
        self.assertIn("audience", r["message"])
        self.assertTrue(d.call(dict(login, token=True, audience="secret-api"))["ok"])


class TestUniformDenials(DaemonTest):
    def test_password_rules(self):
        d = self.daemon(config_extra="[throttle]\nenabled = no\n")
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": ""})
        self.assertEqual(r["error"], "bad_request")
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "x" * 4097})
        self.assertEqual(r["error"], "bad_request")
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "x" * 4096})
        self.assertEqual(r["error"], "denied")
        # Any Unicode, no truncation.
        pw = "pässwörd-密码-🔑" + "z" * 100
        d.add_user("uni", pw)
        self.assertTrue(d.call({"op": "authenticate", "service": "demo", "user": "uni", "password": pw})["ok"])
        self.assertFalse(d.call({"op": "authenticate", "service": "demo", "user": "uni",
                                 "password": pw[:-1]})["ok"])

    def test_unknown_user_costs_the_same_as_a_wrong_password(self):
        d = self.daemon(config_extra="[throttle]\nenabled = no\n")

        def measure():
            known, unknown = [], []
            with d.connect() as s:
                # Warm up, then interleave so that drift hits both sides alike.
                for i in range(220):
                    user = "demo" if i % 2 == 0 else f"ghost{i}"
                    t0 = time.perf_counter()
                    s.sendall(frame({"op": "authenticate", "service": "demo", "user": user,
                                     "password": "wrong"}))
                    resp = read_frame(s)
                    dt = time.perf_counter() - t0
                    self.assertEqual(resp["error"], "denied")
                    if i >= 20:
                        (known if user == "demo" else unknown).append(dt)
            mk, mu = statistics.median(known), statistics.median(unknown)
            ratio = max(mk, mu) / min(mk, mu)
            print(f"median wrong password {mk * 1000:.1f} ms, unknown user {mu * 1000:.1f} ms, "
                  f"ratio {ratio:.3f}")
            return ratio

        # A real difference (an unknown user skipping the hash) shows in every
        # round; load from other processes on a shared machine shows in some.
        # So the property holds if one of three rounds is within 10 %.
        ratios = []
        for _ in range(3):
            ratios.append(measure())
            if ratios[-1] < 1.10:
                break
        self.assertLess(min(ratios), 1.10, f"unknown users must cost what known ones do: {ratios}")


class TestThrottle(DaemonTest):
    def test_a_delayed_denial_reaches_a_liblatch_client_as_denied(self):
        # max_delay above liblatch's old 5 s default, as an admin may set
        # it: the library's default must outwait it (tests/unit/test-defaults.c
        # holds the defaults against each other).
        d = self.daemon(config_extra="[throttle]\nmax_delay = 8s\n",
                        services={"demo": "auth required debug auth=auth_err\naccount required permit\n"})
        # Attempts in flight count like failures: a dozen at once push the
        # next attempt's delay to max_delay without waiting through the
        # backoff one failure at a time.
        socks = []
        for _ in range(12):
            s = d.connect(timeout=60)
            s.sendall(frame({"op": "authenticate", "service": "demo", "user": "victim", "password": "x"}))
            socks.append(s)
        t0 = time.monotonic()
        r = d.ctl("authenticate", "demo", "victim", input="wrong\n", json_out=True)
        elapsed = time.monotonic() - t0
        self.assertNotIn("timeout", r.stdout + r.stderr)
        self.assertEqual(r.json["error"], "denied", r.stdout + r.stderr)
        self.assertGreater(elapsed, 5.0, "the delay must exceed the old 5 s default for this test to mean anything")
        for s in socks:
            self.assertEqual(read_frame(s, 60)["error"], "denied")
            s.close()

    def test_backoff_grows_per_remote_and_user_and_spares_others(self):
        d = self.daemon(config_extra="[throttle]\nmax_delay = 4s\n",
                        services={"demo": "auth required debug auth=auth_err\naccount required permit\n",
                                  "ok": "auth required permit\naccount required permit\n"})

        def attempt(service, user, remote):
            t0 = time.monotonic()
            r = d.call({"op": "authenticate", "service": service, "user": user, "password": "x", "remote": remote})
            return r, time.monotonic() - t0

        delays = [attempt("demo", "victim", "10.0.0.1")[1] for _ in range(5)]
        self.assertLess(delays[0], scaled(0.2))
        self.assertGreater(delays[-1], 1.0, f"the delay grows with failures: {delays}")
        # Another end user of the same app is not slowed down.
        r, dt = attempt("ok", "alice", "10.0.0.2")
        self.assertTrue(r["ok"])
        self.assertLess(dt, scaled(0.5))
        # Rotating addresses (IPv6 within one /64, or IPv4) does not start
        # afresh for the same user.
        rotated = [attempt("demo", "target", f"2001:db8:1:2::{i:x}")[1] for i in range(1, 7)]
        self.assertGreater(rotated[-1], 1.0, f"rotating IPv6 addresses slipped past: {rotated}")
        spread = [attempt("demo", "target2", f"198.51.100.{i}")[1] for i in range(1, 9)]
        self.assertGreater(spread[-1], 0.4, f"rotating IPv4 addresses slipped past: {spread}")

    def test_parallel_attempts_are_counted(self):
        d = self.daemon(config_extra="[throttle]\nmax_delay = 3s\n",
                        services={"demo": "auth required debug auth=auth_err\naccount required permit\n"})
        results = []

        def one():
            t0 = time.monotonic()
            d.call({"op": "authenticate", "service": "demo", "user": "victim", "password": "x", "remote": "203.0.113.9"})
            results.append(time.monotonic() - t0)

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.sort()
        # Fired at once, they do not all slip through undelayed.
        self.assertGreater(results[-1], 1.0, results)
        self.assertLess(results[0], scaled(0.5), results)


class TestResourceLimits(DaemonTest):
    def test_announcing_4_gib_does_not_allocate(self):
        d = self.daemon()
        pid = d.proc.pid

        def rss():
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        before = rss()
        for _ in range(50):
            with d.connect() as s:
                s.sendall(struct.pack(">I", 0xFFFFFFFF) + b"{" * 1000)
                self.assertEqual(read_frame(s)["error"], "too_large")
        self.assertLess(rss() - before, 4096, "KiB: memory stays flat")

    @unittest.skipIf(SANITIZED, "sanitizers inflate memory")
    def test_200_concurrent_logins_bound_memory_and_all_answer(self):
        d = self.daemon(config_extra="[throttle]\nenabled = no\n")
        answers = []

        def login(i):
            try:
                # The daemon answers within its deadline; the client waits longer.
                r = d.call({"op": "login", "service": "demo", "user": "demo",
                            "password": "demo-password" if i % 2 else "wrong"}, timeout=60)
                answers.append(r.get("error", "ok"))
            except Exception as e:  # noqa: BLE001
                answers.append(repr(e))

        threads = [threading.Thread(target=login, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(answers), 200)
        self.assertTrue(set(answers) <= {"ok", "denied", "unavailable"}, set(answers))
        self.assertGreater(answers.count("ok"), 0)
        with open(f"/proc/{d.proc.pid}/status") as f:
            hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
        limit = 2 * 64 * 1024 + 32 * 1024  # workers = 2
        print(f"peak RSS {hwm} KiB, limit {limit} KiB")
        self.assertLess(hwm, limit)

    def test_2000_trickling_clients_are_dropped_while_others_are_served(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 8192), max(hard, 8192)))
        except (ValueError, OSError):
            self.skipTest("cannot raise the fd limit")
        d = self.daemon(config_extra="max_connections = 4096\nclient_timeout = 4s\n")
        socks = []
        for _ in range(2000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.setblocking(False)
            s.send(struct.pack(">I", 100))  # a frame that never completes
            socks.append(s)
        stop = time.monotonic() + scaled(6)
        ok = 0
        while time.monotonic() < stop:
            for s in socks[::50]:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            sess = self.login(d)
            r = d.ctl("validate", sess["session"])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            ok += 1
        time.sleep(scaled(1.5))
        closed = 0
        for s in socks:
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        self.assertGreater(ok, 2)
        self.assertEqual(closed, 2000, "every trickling client is dropped at client_timeout")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("gcore"), "needs root and gdb's gcore")
class TestSecretsInMemory(DaemonTest):
    @unittest.skipIf(SANITIZED, "sanitizer shadow memory makes huge cores")
    def test_canary_password_not_in_core_logs_or_state(self):
        canary = "Canary-7f3e9c1d-Password"
        d = self.daemon()
        d.add_user("canary", canary)
        r = d.ctl("login", "demo", "canary", input=canary + "\n", json_out=True)
        self.assertEqual(r.returncode, 0)
        d.ctl("login", "demo", "demo", input=canary + "\n")  # a wrong password too
        time.sleep(0.5)
        core = os.path.join(self.tmp, "core")
        g = subprocess.run(["gcore", "-o", core, str(d.proc.pid)], capture_output=True, text=True, timeout=120)
        files = glob.glob(core + "*")
        self.assertTrue(files, g.stdout + g.stderr)
        with open(files[0], "rb") as f:
            image = f.read()
        os.unlink(files[0])
        self.assertGreater(len(image), 100000)
        self.assertNotIn(canary.encode(), image, "the password survived in the daemon's memory")
        self.assertNotIn(r.json["session"].encode(), image, "a session id survived in the daemon's memory")
        self.assertNotIn(canary, d.log())
        for path in glob.glob(os.path.join(d.state, "**"), recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(canary.encode(), f.read())
        with open(f"/proc/{d.proc.pid}/limits") as f:
            core_limit = [l.split()[4:6] for l in f if l.startswith("Max core file size")][0]
        self.assertEqual(core_limit, ["0", "0"], "core dumps are disabled")


class FakeDaemon:
    """A socket that answers each op with a scripted reply: a latchd (or a
    plugin behind it) that says what it likes."""

    def __init__(self, tmp, replies):
        self.path = os.path.join(tmp, "fake.sock")
        self.replies = replies
        self.seen = []
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c:
                while True:
                    try:
                        req = read_frame(c, timeout=60)
                    except (EOFError, OSError):
                        break
                    self.seen.append(req)
                    c.sendall(frame({"id": req.get("id"), **self.replies[req["op"]]}))

    def close(self):
        self.srv.shutdown(socket.SHUT_RDWR)
        self.srv.close()
        self.thread.join(10)


class TestTerminal(DaemonTest):
    """latchctl shows what latchd sends (prompts, messages, results) as
    text: nothing from the socket reaches the terminal as a control
    sequence, nor reorders the line around it."""

    # ESC sequences (a new window title, a cleared screen), the 8-bit CSI
    # and OSC (C1: a terminal in UTF-8 takes them as commands too), BEL, CR,
    # a right-to-left override, an isolate, a line separator, bytes that
    # are not UTF-8.
    INFO = "\x1b]0;pwned\x07\x1b[2JWelcome\r"
    ERROR = "\u009b31mred\u009b0m \u009d0;title\u009c"
    ASK = "\u202eEnter:edoc \u2067x\u2069\u2028y"
    FINAL = "\x1b[31mno\u0085way"
    BAD = ["\x1b", "\x07", "\r", "\u009b", "\u009d", "\u009c", "\u0085", "\u202e", "\u2067", "\u2069", "\u2028"]

    def test_latchctl_escapes_what_it_shows(self):
        fake = FakeDaemon(self.tmp, {
            "login": {"ok": False, "error": "challenge", "message": "more input is needed",
                      "conversation": "c" * 43, "expires_at": int(time.time()) + 120,
                      "prompts": [{"style": "info", "message": self.INFO},
                                  {"style": "error", "message": self.ERROR},
                                  {"style": "secret", "message": self.ASK}]},
            "respond": {"ok": False, "error": "denied", "message": self.FINAL},
            "hello": {"ok": True, "version": 1, "server": "\x1b[8mhidden\x1b[0m\u202e"},
        })
        try:
            rc, out = on_pty([LATCHCTL, "--socket", fake.path, "login", "svc", "alice"],
                             [(r"edoc", "1234")], dict(os.environ))
            self.assertEqual(rc, 1, out)
            self.assertEqual(fake.seen[-1]["answers"], ["1234"])
            # The pty turns each "\n" into "\r\n": those are latchctl's own.
            shown = out.replace("\r\n", "\n")
            for c in self.BAD:
                self.assertNotIn(c, shown, repr(shown))
            self.assertIn(r"\x1b]0;pwned\x07\x1b[2JWelcome\x0d", shown)
            self.assertIn(r"\u009b31mred\u009b0m \u009d0;title\u009c", shown)
            self.assertIn(r"\u202eEnter:edoc \u2067x\u2069\u2028y", shown)
            # (liblatch blanks a message's C0 controls itself.)
            self.assertRegex(shown, r"latchctl: .\[31mno(\\u0085| {2})way")

            # Results too (a plugin's claims, a daemon's strings).
            r = subprocess.run([LATCHCTL, "--socket", fake.path, "hello"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "version: 1\nserver: \\x1b[8mhidden\\x1b[0m\\u202e\n")
            # --json is for programs: the strings stay as they are (in JSON).
            r = subprocess.run([LATCHCTL, "--socket", fake.path, "--json", "hello"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(json.loads(r.stdout)["server"], "\x1b[8mhidden\x1b[0m\u202e")
        finally:
            fake.close()


if __name__ == "__main__":
    unittest.main()
