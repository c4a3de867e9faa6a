# SPDX-License-Identifier: MIT
"""Runs latchd, latch-http, the sample app and nginx in one scratch folder.

Used by tools/http-demo (the demo), tests/http (the end-to-end tests) and
bench/http-bench (wrk). Nothing outside the scratch folder is touched: the
sockets, the state, nginx's pid file, logs and temp folders all live there.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, what, timeout=30, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = ""
    if log and os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = f.read()[-3000:]
    raise RuntimeError(f"{what} did not start\n{tail}")


def can_connect_unix(path):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
        return True
    except OSError:
        return False


def can_connect_tcp(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


class Stack:
    """latch-http + sample app + nginx around an already running latchd (or
    one started by start_latchd()). Call stop() at the end."""

    def __init__(self, tmp, latch_http, latchd_socket, service="demo", http_conf="", wrapper=()):
        self.tmp = tmp
        os.chmod(tmp, 0o755)  # nginx's workers (nobody when run as root) reach the sockets here
        self.latch_http = latch_http
        self.latchd_socket = latchd_socket
        self.service = service
        self.http_conf_extra = http_conf
        self.wrapper = list(wrapper)
        self.http_sock = os.path.join(tmp, "http.sock")
        self.http_conf = os.path.join(tmp, "latch-http.conf")
        self.http_log = os.path.join(tmp, "latch-http.log")
        self.procs = {}
        self.port = None
        self.app_port = None

    # -- latchd, for the demo (the tests use tests/e2e/harness.py) --------
    @staticmethod
    def find_plugin(builddir, name):
        """The plugin NAME.so meson built under builddir/plugins."""
        for root, _dirs, files in os.walk(os.path.join(builddir, "plugins")):
            if name + ".so" in files and not root.endswith(".p"):
                return os.path.join(root, name + ".so")
        raise FileNotFoundError(f"{name}.so is not built in {builddir}/plugins")

    @staticmethod
    def start_latchd(tmp, latchd, latchctl, plugin_dir, service, users, second_factor=False):
        """Starts latchd with a `file` stack for `service` (auth, account and
        password lines; with second_factor, after the password an optional
        `totp` line: plugin_dir must hold totp.so) and the users {name:
        (password, groups)}; returns (process, socket path)."""
        sock = os.path.join(tmp, "latchd.sock")
        users_file = os.path.join(tmp, "users")
        os.makedirs(os.path.join(tmp, "services"), exist_ok=True)
        with open(os.path.join(tmp, "latchd.conf"), "w") as f:
            f.write(f"[daemon]\nsocket = {sock}\nstate_dir = state\nservices_dir = services\n"
                    f"plugin_dir = {plugin_dir}\njwks_file = jwks.json\nworkers = 2\n")
        with open(os.path.join(tmp, "services", service), "w") as f:
            f.write(f"auth required file path={users_file}\n" +
                    ("auth [success=ok user_unknown=ignore default=bad] totp issuer=latch-demo\n"
                     if second_factor else "") +
                    f"account required file path={users_file}\n"
                    f"password required file path={users_file}\n")
        for name, (password, groups) in users.items():
            subprocess.run([latchctl, "user", "add", users_file, name, "--groups", groups],
                           input=password + "\n", text=True, check=True, capture_output=True)
        log = open(os.path.join(tmp, "latchd.log"), "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        proc = subprocess.Popen([latchd, "--config", os.path.join(tmp, "latchd.conf")], cwd=tmp, env=env,
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(lambda: can_connect_unix(sock), "latchd", proc=proc, log=os.path.join(tmp, "latchd.log"))
        return proc, sock

    # -- latch-http ------------------------------------------------------
    def write_http_conf(self):
        with open(self.http_conf, "w") as f:
            f.write("[http]\n"
                    f"listen = {self.http_sock}\n"
                    f"latchd_socket = {self.latchd_socket}\n"
                    f"service = {self.service}\n"
                    "proxy_header = X-Real-IP\n" + self.http_conf_extra)

    def start_http(self):
        self.write_http_conf()
        log = open(self.http_log, "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        p = subprocess.Popen(self.wrapper + [self.latch_http, "--config", self.http_conf], env=env,
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.tmp)
        log.close()
        self.procs["latch-http"] = p
        wait_for(lambda: can_connect_unix(self.http_sock), "latch-http", proc=p, log=self.http_log)

    # -- the sample app --------------------------------------------------
    def start_app(self):
        self.app_port = free_port()
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        p = subprocess.Popen([python, os.path.join(HERE, "whoami.py"), str(self.app_port)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs["app"] = p
        wait_for(lambda: can_connect_tcp(self.app_port), "the sample app", proc=p)

    # -- nginx -----------------------------------------------------------
    def write_nginx_conf(self, baseline=False, access_log=True):
        with open(os.path.join(HERE, "latch-upstream.conf")) as f:
            upstream = f.read().replace("/run/latch/http.sock", self.http_sock)
        with open(os.path.join(self.tmp, "latch-upstream.conf"), "w") as f:
            f.write(upstream)
        with open(os.path.join(HERE, "demo-nginx.conf.in")) as f:
            text = f.read()
        if not baseline:
            start, end = text.index("        # baseline-begin"), text.index("        # baseline-end\n")
            text = text[:start] + text[end + len("        # baseline-end\n"):]
        text = (text.replace("@TMP@", self.tmp).replace("@PORT@", str(self.port))
                .replace("@APP_PORT@", str(self.app_port)).replace("@EXAMPLES@", HERE)
                .replace("@ACCESS_LOG@", os.path.join(self.tmp, "nginx-access.log") if access_log else "off"))
        if baseline:
            os.makedirs(os.path.join(self.tmp, "static"), exist_ok=True)
            with open(os.path.join(self.tmp, "static", "index.html"), "w") as f:
                f.write("<!DOCTYPE html><title>static</title><p>static page</p>\n")
            os.chmod(os.path.join(self.tmp, "static", "index.html"), 0o644)
        path = os.path.join(self.tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_nginx(self, port=None, baseline=False, access_log=True):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = port or free_port()
        conf = self.write_nginx_conf(baseline, access_log)
        log = os.path.join(self.tmp, "nginx-error.log")
        r = subprocess.run([nginx, "-t", "-q", "-p", self.tmp, "-e", log, "-c", conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("nginx refused its config:\n" + r.stderr)
        with open(os.path.join(self.tmp, "nginx.out"), "ab") as out:
            p = subprocess.Popen([nginx, "-p", self.tmp, "-e", log, "-c", conf], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=out)
        self.procs["nginx"] = p
        wait_for(lambda: can_connect_tcp(self.port), "nginx", proc=p, log=log)

    def url(self, path="/"):
        return f"http://localhost:{self.port}{path}"

    def start(self, port=None, baseline=False, access_log=True):
        self.start_http()
        self.start_app()
        self.start_nginx(port, baseline, access_log)
        return self

    def http_log_text(self):
        try:
            with open(self.http_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        """Stops everything; returns latch-http's exit status (None if it
        was not running)."""
        rc = None
        for name in ("nginx", "app", "latch-http"):
            p = self.procs.pop(name, None)
            if not p:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if name == "latch-http":
                rc = p.returncode
        return rc
