# SPDX-License-Identifier: MIT
"""Drives the real latchd, latchctl and liblatch from Python tests.

Every test gets a scratch folder holding the config, the service stacks, a
plugin folder (links to the plugins meson built), the state and the socket:
nothing outside it is touched. meson passes the paths of the built programs
in the environment (see tests/e2e/meson.build).
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

LATCHD = os.environ.get("LATCHD", "latchd")
LATCHCTL = os.environ.get("LATCHCTL", "latchctl")
# e.g. valgrind: meson test --setup=valgrind sets it.
WRAPPER = os.environ.get("LATCHD_WRAPPER", "").split()
# Memory and core sizes mean nothing under a sanitizer or memcheck.
SANITIZED = os.environ.get("LATCH_SANITIZED") == "1" or bool(WRAPPER)
# Under memcheck latchd runs many times slower: the valgrinde2e setup sets
# this factor, and tests widen by it every time window that a slow daemon
# could miss (never the bounds a fast daemon must stay under).
TIME_SCALE = float(os.environ.get("LATCH_TIME_SCALE", "1"))


def scaled(seconds):
    """`seconds`, widened for a slowed-down latchd (see TIME_SCALE)."""
    return seconds * TIME_SCALE


def wait_for(predicate, timeout, what="the condition"):
    """Polls `predicate` until it is true; fails after scaled(timeout)."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {scaled(timeout):.0f}s")
        time.sleep(0.05)
PLUGINS = {k[len("LATCH_PLUGIN_"):].lower(): v for k, v in os.environ.items() if k.startswith("LATCH_PLUGIN_")}


def on_pty(argv, answers, env, timeout=30):
    """Runs argv on a pseudo-terminal, answering each prompt (a regex) with
    its line, or with what a callable given instead returns when called
    with the pid and the text so far. Returns (exit code, everything the
    terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + scaled(timeout)
    while True:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            os.kill(pid, 9)
            raise AssertionError("no progress on the terminal: " + out.decode(errors="replace"))
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if pending and re.search(pending[0][0], out.decode(errors="replace").rsplit("\n", 1)[-1]):
            line = pending.pop(0)[1]
            if callable(line):
                try:
                    line = line(pid, out.decode(errors="replace"))
                except BaseException:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    os.close(fd)
                    raise
            os.write(fd, (line + "\n").encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def core_image(pid, tmp):
    """The memory of process pid, from a gcore dump: its PT_LOAD segments
    joined (each ended by a NUL). The notes (registers at the time of the
    dump) are left out: not memory a secret could stay in."""
    core = os.path.join(tmp, "core")
    g = subprocess.run(["gcore", "-o", core, str(pid)], capture_output=True, text=True, timeout=120)
    files = [f for f in os.listdir(tmp) if f.startswith("core.")]
    if not files:
        raise AssertionError("gcore made no core: " + g.stdout + g.stderr)
    path = os.path.join(tmp, files[0])
    with open(path, "rb") as f:
        core_bytes = f.read()
    os.unlink(path)
    phoff, = struct.unpack_from("<Q", core_bytes, 0x20)
    phnum, = struct.unpack_from("<H", core_bytes, 0x38)
    image = bytearray()
    for i in range(phnum):
        kind, _flags, off, _va, _pa, size = struct.unpack_from("<IIQQQQ", core_bytes, phoff + 56 * i)
        if kind == 1:
            image += core_bytes[off:off + size] + b"\0"
    return bytes(image)


def frame(obj_or_bytes):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return struct.pack(">I", len(data)) + data


def read_frame(sock, timeout=10):
    sock.settimeout(timeout)
    hdr = b""
    while len(hdr) < 4:
        chunk = sock.recv(4 - len(hdr))
        if not chunk:
            raise EOFError("connection closed")
        hdr += chunk
    (n,) = struct.unpack(">I", hdr)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed inside a frame")
        data += chunk
    return json.loads(data)


class Daemon:
    """A latchd in a scratch folder."""

    def __init__(self, tmp, config_extra="", services=None, users=None, activation=False):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "latchd.sock")
        self.state = os.path.join(tmp, "state")
        self.conf = os.path.join(tmp, "latchd.conf")
        self.users = os.path.join(tmp, "users")
        self.jwks = os.path.join(tmp, "jwks.json")
        self.notify_path = os.path.join(tmp, "notify.sock")
        self.activation = activation
        self.proc = None
        self.notify = None
        self.log_path = os.path.join(tmp, "latchd.log")
        os.makedirs(os.path.join(tmp, "services"), exist_ok=True)
        plugdir = os.path.join(tmp, "plugins")
        os.makedirs(plugdir, exist_ok=True)
        for name, path in PLUGINS.items():
            link = os.path.join(plugdir, name + ".so")
            if not os.path.exists(link):
                os.symlink(path, link)
        self.write_config(config_extra)
        for name, text in (services or {"demo": DEFAULT_STACK.format(users=self.users)}).items():
            self.write_service(name, text)
        for user, (password, groups) in (users or {"demo": ("demo-password", "users")}).items():
            self.add_user(user, password, groups)

    def write_config(self, extra=""):
        with open(self.conf, "w") as f:
            f.write(
                "[daemon]\n"
                f"socket = {self.sock}\n"
                "state_dir = state\n"
                "services_dir = services\n"
                "plugin_dir = plugins\n"
                "jwks_file = jwks.json\n"
                "workers = 2\n" + extra
            )

    def write_service(self, name, text):
        with open(os.path.join(self.tmp, "services", name), "w") as f:
            f.write(text)

    def add_user(self, user, password, groups=None):
        args = ["user", "add", self.users, user] + (["--groups", groups] if groups else [])
        r = self.ctl(*args, input=password + "\n")
        assert r.returncode == 0, r.stderr

    def read_jwks(self):
        with open(self.jwks) as f:
            return json.load(f)

    def env(self):
        e = dict(os.environ)
        e["LATCH_SOCKET"] = self.sock
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        e.pop("LISTEN_PID", None)
        return e

    def start(self, wait_ready=True, extra_args=()):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.notify.bind(self.notify_path)
        env = self.env()
        env["NOTIFY_SOCKET"] = self.notify_path
        log = open(self.log_path, "ab")
        if self.activation:
            cmd = ["systemd-socket-activate", "-l", self.sock, "-E", "NOTIFY_SOCKET"] + WRAPPER + \
                [LATCHD, "--config", self.conf]
        else:
            cmd = WRAPPER + [LATCHD, "--config", self.conf, "--socket", self.sock]
        self.proc = subprocess.Popen(list(cmd) + list(extra_args), env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp)
        log.close()
        if self.activation:
            # systemd-socket-activate binds first, and starts latchd on the
            # first connection.
            deadline = time.monotonic() + 10
            while not os.path.exists(self.sock):
                if time.monotonic() > deadline:
                    raise RuntimeError("systemd-socket-activate did not bind")
                time.sleep(0.02)
        elif wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60 if WRAPPER else 20):
        self.notify.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                break
            if "READY=1" in msg.split("\n"):
                return msg
        raise RuntimeError("latchd did not report READY=1; log:\n" + self.log())

    def notifications(self, timeout=0.5):
        out = []
        self.notify.settimeout(timeout)
        try:
            while True:
                out.append(self.notify.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass
        return out

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        if self.notify:
            self.notify.close()
            self.notify = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        if self.notify:
            self.notify.close()
            self.notify = None

    def ctl(self, *args, input=None, json_out=False, timeout=90):
        cmd = [LATCHCTL, "--socket", self.sock] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout)
        if json_out:
            r.json = json.loads(r.stdout) if r.stdout.strip() else None
        return r

    def connect(self, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        return s

    def call(self, obj, sock=None, timeout=10):
        own = sock is None
        s = sock or self.connect(timeout)
        try:
            s.sendall(frame(obj))
            return read_frame(s, timeout)
        finally:
            if own:
                s.close()


DEFAULT_STACK = "auth required file path={users}\naccount required file path={users}\n"


class DaemonTest(unittest.TestCase):
    """A test case with a scratch folder and a helper to make daemons."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="latch-e2e-")
        os.chmod(self.tmp, 0o755)
        self.daemons = []

    def tearDown(self):
        problems = []
        for d in self.daemons:
            died = d.proc is not None and d.proc.poll() is not None
            if died and d.proc.returncode != 0 and not d.activation:
                problems.append(f"latchd died on its own with status {d.proc.returncode}")
            running = d.proc is not None and d.proc.poll() is None
            rc = d.stop()
            if running and rc not in (0, None):
                problems.append(f"latchd exited with {rc} on SIGTERM")
            log = d.log()
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
                if marker in log:
                    problems.append(f"{marker} in the daemon's log")
        if problems:
            self.fail("; ".join(problems) + "\n" + "\n".join(d.log()[-6000:] for d in self.daemons))
        if os.environ.get("LATCH_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, start=True, **kw):
        d = Daemon(self.tmp, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def login(self, d, user="demo", password="demo-password", service="demo", *extra):
        r = d.ctl("login", service, user, *extra, input=password + "\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.json
