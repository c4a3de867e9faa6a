# SPDX-License-Identifier: MIT
"""Shared by the latch-http tests: a real latchd (tests/e2e/harness.py),
latch-http, the sample app and nginx (examples/nginx/latchdemo.py), and
curl to drive them."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading

import harness
from latchdemo import Stack

LATCH_HTTP = os.environ.get("LATCH_HTTP", "latch-http")
CURL = shutil.which("curl")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

USERS = {"demo": ("demo-password", "users,wiki"), "bob": ("bob-password", "users")}
SERVICES = None  # harness default: the `file` stack, service "demo"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def parse_curl_output(raw):
    """The last response of `curl -i` output (no redirects followed)."""
    blocks = raw.split(b"\r\n\r\n")
    # A "100 Continue" comes first when curl sent Expect.
    while len(blocks) > 1 and re.match(rb"HTTP/[0-9.]+ 100", blocks[0]):
        blocks.pop(0)
    head, body = blocks[0], b"\r\n\r\n".join(blocks[1:])
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    return Response(status, headers, body)


class FakeLatchd:
    """A stand-in for latchd on a Unix socket at `path`: each request's
    answer is reply(request) (a subclass says what), `id` added; the ops
    asked are in `ops`."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.listen(16)
        self.ops = []
        threading.Thread(target=self.serve, daemon=True).start()

    def reply(self, req):
        return {"ok": False, "error": "unknown_op", "message": "unknown op"}

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        with conn:
            while True:
                try:
                    req = harness.read_frame(conn, timeout=120)
                except (EOFError, OSError, ValueError):
                    return
                self.ops.append(req.get("op"))
                reply = self.reply(req)
                if "id" in req:
                    reply["id"] = req["id"]
                conn.sendall(harness.frame(reply))

    def close(self):
        self.sock.close()


class HttpTest(harness.DaemonTest):
    """A latchd, and a latch-http + nginx in front of it."""

    http_conf = ""
    daemon_config = ""
    # {service: stack text}, "{users}" standing for the users file; None:
    # the `file` stack on service "demo".
    services = None

    def setUp(self):
        if not CURL:
            self.skipTest("curl is not installed")
        super().setUp()
        users = os.path.join(self.tmp, "users")
        services = {k: v.format(users=users) for k, v in self.services.items()} if self.services else None
        self.d = self.daemon(users=USERS, config_extra=self.daemon_config, services=services)
        self.stack = None

    def start_stack(self, nginx=True, http_conf=None):
        self.stack = Stack(self.tmp, LATCH_HTTP, self.d.sock, service="demo",
                           http_conf=self.http_conf if http_conf is None else http_conf,
                           wrapper=os.environ.get("LATCH_HTTP_WRAPPER", "").split())
        if nginx:
            if not NGINX:
                self.skipTest("nginx is not installed")
            self.stack.start()
        else:
            self.stack.start_http()
        return self.stack

    def tearDown(self):
        problems = []
        if self.stack:
            p = self.stack.procs.get("latch-http")
            if p is not None and p.poll() is not None:
                problems.append(f"latch-http died on its own with status {p.returncode}")
            rc = self.stack.stop()
            if rc not in (0, None) and not problems:
                problems.append(f"latch-http exited with {rc} on SIGTERM")
            log = self.stack.http_log_text()
            for m in SANITIZER_MARKERS:
                if m in log:
                    problems.append(f"{m} in latch-http's log")
            if problems:
                problems.append(log[-4000:])
        try:
            super().tearDown()
        finally:
            if problems:
                self.fail("\n".join(problems))

    def curl(self, path, *args, direct=False, jar=None, method=None, data=None, headers=(), timeout=60):
        """One request through nginx (or straight to latch-http's socket
        with direct=True), never following redirects."""
        cmd = [CURL, "-sS", "-i", "--max-time", str(timeout)]
        if direct:
            cmd += ["--unix-socket", self.stack.http_sock]
            url = "http://localhost" + path
        else:
            url = self.stack.url(path)
        if jar:
            cmd += ["-b", jar, "-c", jar]
        if method:
            cmd += ["-X", method]
        if data is not None:
            cmd += ["--data-binary", data if isinstance(data, str) else "@-"]
        for h in headers:
            cmd += ["-H", h]
        cmd += list(args) + [url]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout + 30,
                           input=data if isinstance(data, bytes) else None)
        if r.returncode != 0:
            raise AssertionError(f"curl failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        return parse_curl_output(r.stdout)

    def jar(self, name="jar"):
        return os.path.join(self.tmp, name)

    def csrf(self, jar):
        """The CSRF token curl's jar holds after GET /login."""
        with open(jar) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 7 and parts[5].endswith("-csrf"):
                    return parts[6]
        raise AssertionError("no CSRF cookie in the jar")

    def origin(self):
        return f"http://localhost:{self.stack.port}"

    def login(self, jar, user="demo", password="demo-password", rd="/", origin=None, direct=False):
        r = self.curl("/login?rd=" + rd, jar=jar, direct=direct)
        self.assertEqual(r.status, 200, r)
        from urllib.parse import urlencode
        body = urlencode({"csrf": self.csrf(jar), "user": user, "password": password, "rd": rd})
        return self.curl("/login", jar=jar, data=body, direct=direct,
                         headers=[f"Origin: {origin or (self.origin() if not direct else 'http://localhost')}",
                                  "Content-Type: application/x-www-form-urlencoded"])

    def cookie_from_jar(self, jar, name):
        return self.session_from_jar(jar, name)

    def session_from_jar(self, jar, name="__Host-latch"):
        with open(jar) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 7 and parts[5] == name:
                    return parts[6]
        return None
