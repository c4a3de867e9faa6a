# SPDX-License-Identifier: MIT
"""The foundation: latchd on its socket, socket activation, sd_notify,
reload, --check-config, and the wire protocol under bad input."""

import json
import os
import socket
import stat
import struct
import subprocess
import threading
import time
import unittest

from harness import LATCHD, DaemonTest, frame, read_frame, scaled, wait_for


class TestStartup(DaemonTest):
    def test_hello_bound_socket(self):
        d = self.daemon()
        r = d.ctl("hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.ctl("hello", json_out=True)
        self.assertEqual(r.json["version"], 1)
        self.assertTrue(r.json["server"].startswith("latchd "))
        mode = stat.S_IMODE(os.stat(d.sock).st_mode)
        self.assertEqual(mode, 0o660)

    def test_hello_socket_activated(self):
        d = self.daemon(start=False, activation=True)
        d.start()
        # The first connection starts latchd and is answered (latchd starts
        # slowly under memcheck: longer than latchctl waits).
        r = d.call({"op": "hello"}, timeout=scaled(10))
        self.assertTrue(r.get("ok"), f"{r}\n{d.log()}")
        self.assertEqual(r["version"], 1)
        d.wait_ready()
        self.assertIn("socket-activated", d.log())

    def test_env_socket_is_used(self):
        d = self.daemon()
        env = d.env()
        r = subprocess.run([os.environ["LATCHCTL"], "hello"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        env["LATCH_SOCKET"] = os.path.join(self.tmp, "nope.sock")
        r = subprocess.run([os.environ["LATCHCTL"], "hello"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)

    def test_second_daemon_refused_and_stale_socket_replaced(self):
        d = self.daemon()
        r = subprocess.run([LATCHD, "--config", d.conf, "--socket", d.sock], capture_output=True, text=True,
                           timeout=20, cwd=self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another daemon", r.stderr)
        self.assertEqual(d.ctl("hello").returncode, 0)
        d.stop()
        # A socket file nobody listens on is stale: replaced.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(d.sock)
        s.close()
        d.start()
        self.assertEqual(d.ctl("hello").returncode, 0)

    def test_graceful_stop(self):
        d = self.daemon()
        self.assertEqual(d.ctl("hello").returncode, 0)
        d.proc.terminate()
        self.assertEqual(d.proc.wait(15), 0)
        msgs = "\n".join(d.notifications())
        self.assertIn("STOPPING=1", msgs)
        self.assertFalse(os.path.exists(d.sock), "the socket we bound is removed on stop")
        d.proc = None

    def test_listen_fds_must_be_one_unix_stream_listener(self):
        d = self.daemon(start=False)
        cases = {}
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        cases["tcp"] = [tcp.fileno()]
        u1 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u1.bind(os.path.join(self.tmp, "a.sock"))
        u1.listen()
        u2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u2.bind(os.path.join(self.tmp, "b.sock"))
        u2.listen()
        cases["two"] = [u1.fileno(), u2.fileno()]
        cases["closed"] = []
        for name, fds in cases.items():
            n = len(fds) if fds else 1

            def pre(fds=fds):
                for i, fd in enumerate(fds):
                    os.dup2(fd, 3 + i)
                    os.set_inheritable(3 + i, True)
                if not fds:
                    try:
                        os.close(3)
                    except OSError:
                        pass

            r = subprocess.run(["sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS={n} exec "$0" --config "$1"', LATCHD, d.conf],
                               preexec_fn=pre, pass_fds=(), capture_output=True, text=True, timeout=20, cwd=self.tmp)
            self.assertEqual(r.returncode, 1, f"{name}: {r.stderr}")
            self.assertIn("socket", r.stderr, name)
        for s in (tcp, u1, u2):
            s.close()


class TestCheckConfig(DaemonTest):
    def check(self, d):
        return subprocess.run([LATCHD, "--config", d.conf, "--check-config"], capture_output=True, text=True,
                              timeout=30, cwd=self.tmp)

    def test_good(self):
        d = self.daemon(start=False)
        r = self.check(d)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_config_lines_are_reported_with_file_and_line(self):
        d = self.daemon(start=False)
        d.write_config("max_frame = lots\nbogus = 1\n[session]\nidle_timeout = 5 parsecs\n[nowhere]\nx = 1\n"
                       "this line is not ini\n")
        r = self.check(d)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{d.conf}:8: max_frame", r.stderr)
        self.assertIn(f"{d.conf}:9: unknown key 'bogus'", r.stderr)
        self.assertIn(f"{d.conf}:11: idle_timeout", r.stderr)
        self.assertIn(f"{d.conf}:13: unknown section [nowhere]", r.stderr)
        self.assertIn(f"{d.conf}:14: syntax error", r.stderr)

    def test_dropins_override_in_lexical_order(self):
        d = self.daemon(start=False)
        dd = d.conf + ".d"
        os.makedirs(dd)
        with open(os.path.join(dd, "10-a.conf"), "w") as f:
            f.write("[token]\nissuer = first\n")
        with open(os.path.join(dd, "20-b.conf"), "w") as f:
            f.write("[token]\nissuer = second\n")
        with open(os.path.join(dd, "30-bad.conf"), "w") as f:
            f.write("[token]\nlifetime = never\n")
        r = self.check(d)
        self.assertEqual(r.returncode, 1)
        self.assertIn("30-bad.conf:2: lifetime", r.stderr)
        os.unlink(os.path.join(dd, "30-bad.conf"))
        d.start()
        tok = self.login(d, "demo", "demo-password", "demo", "--token")["token"]
        r = d.ctl("token", "verify", tok, json_out=True)
        self.assertEqual(r.json["claims"]["iss"], "second")

    def test_bad_stack_and_missing_plugin(self):
        d = self.daemon(start=False, services={
            "a": "auth required nosuchplugin\n",
            "b": "auth bogus permit\n",
            "c": "auth [success=ok wrong=die] permit\n",
        })
        r = self.check(d)
        self.assertEqual(r.returncode, 1)
        self.assertIn("services/a:1:", r.stderr)
        self.assertIn("nosuchplugin", r.stderr)
        self.assertIn("services/b:1:", r.stderr)
        self.assertIn("services/c:1:", r.stderr)

    def test_every_problem_of_every_file(self):
        # Bad keys in latchd.conf and a drop-in, and stacks with several bad
        # lines each (syntax, plugins, an included file): one run names them
        # all, each as FILE:LINE, in file and line order, and exits 1.
        d = self.daemon(start=False, services={
            "web": "auth required nosuchplugin\n"
                   "auth bogus permit\n"
                   "account required faillock deny=lots\n"
                   "authx required permit\n"
                   "auth include common\n"
                   "account [success=ok wrong=die] permit\n",
            "common": "auth required permit\nauth requird permit\nauth required alsomissing\n",
            "api": "auth required permit\naccount required permit\n",
        })
        d.write_config("workers = many\nbogus = 1\n[nowhere]\nx = 1\n[session]\nidle_timeout = 5 parsecs\n")
        os.makedirs(d.conf + ".d")
        with open(os.path.join(d.conf + ".d", "10-x.conf"), "w") as f:
            f.write("[token]\nlifetime = never\nnot ini\n")
        r = self.check(d)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("configuration OK", r.stdout)
        svc = os.path.join(self.tmp, "services")
        want = [
            f"{d.conf}:8: workers",
            f"{d.conf}:9: unknown key 'bogus'",
            f"{d.conf}:11: unknown section [nowhere]",
            f"{d.conf}:13: idle_timeout",
            f"{d.conf}.d/10-x.conf:2: lifetime",
            f"{d.conf}.d/10-x.conf:3: syntax error",
            f"{svc}/common:2: unknown control 'requird'",
            f"{svc}/common:3: cannot load plugin 'alsomissing'",
            f"{svc}/web:1: cannot load plugin 'nosuchplugin'",
            f"{svc}/web:2: unknown control 'bogus'",
            f"{svc}/web:3: plugin 'faillock': invalid 'deny=lots'",
            f"{svc}/web:4: unknown type 'authx'",
            f"{svc}/web:6: unknown return value 'wrong'",
        ]
        lines = r.stderr.splitlines()
        got = [next((i for i, line in enumerate(lines) if line.startswith(w)), None) for w in want]
        self.assertNotIn(None, got, "\n".join(w for w, g in zip(want, got) if g is None) + "\n---\n" + r.stderr)
        self.assertEqual(got, sorted(got), r.stderr)
        self.assertEqual(len(lines), len(want), r.stderr)


class TestReload(DaemonTest):
    def test_reload_good_then_bad(self):
        d = self.daemon()
        r = d.ctl("authenticate", "other", "demo", input="demo-password\n")
        self.assertEqual(r.returncode, 1)  # unknown_service
        d.write_service("other", "auth required permit\naccount required permit\n")
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.ctl("authenticate", "other", "demo", input="x\n")
        self.assertEqual(r.returncode, 0, r.stderr)

        # A bad config is refused and the running one stays.
        with open(d.conf, "a") as f:
            f.write("[session]\nidle_timeout = soon\n")
        r = d.ctl("reload", json_out=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{d.conf}:9: idle_timeout", d.log())
        r = d.ctl("authenticate", "other", "demo", input="x\n")
        self.assertEqual(r.returncode, 0, r.stderr)

        # So is a bad stack, by SIGHUP too.
        d.write_config()
        d.write_service("other", "auth required nosuchplugin\n")
        d.proc.send_signal(1)
        wait_for(lambda: "services/other:1:" in d.log(), 10, "the bad stack is logged")
        r = d.ctl("authenticate", "other", "demo", input="x\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.ctl("hello").returncode, 0)


BAD_INPUTS = {
    "empty frame": (struct.pack(">I", 0), "bad_request", False),
    "over max_frame": (struct.pack(">I", 1 << 31), "too_large", True),
    "4 GiB announced": (struct.pack(">I", 0xFFFFFFFF), "too_large", True),
    "invalid utf-8": (frame(b'{"op":"hello","x":"\xff\xfe"}'), "bad_request", False),
    "not json": (frame(b"hello there"), "bad_request", False),
    "array": (frame(b'["op","hello"]'), "bad_request", False),
    "string": (frame(b'"hello"'), "bad_request", False),
    "duplicate members": (frame(b'{"op":"hello","op":"stats"}'), "bad_request", False),
    "deep nesting": (frame(b'{"op":"hello","x":' + b"[" * 5000 + b"]" * 5000 + b"}"), "bad_request", False),
    "unknown op": (frame({"op": "launch-missiles"}), "unknown_op", False),
    "op not a string": (frame({"op": 7}), "bad_request", False),
    "missing op": (frame({"id": 1}), "bad_request", False),
    "wrong field type": (frame({"op": "validate", "session": 42}), "bad_request", False),
    "nul in string": (frame(b'{"op":"validate","session":"a\\u0000b"}'), "bad_request", False),
    "trailing garbage": (frame(b'{"op":"hello"} {"op":"hello"}'), "bad_request", False),
}


class TestBadInput(DaemonTest):
    def test_each_bad_input_gets_an_error(self):
        d = self.daemon()
        for name, (data, code, closes) in BAD_INPUTS.items():
            with d.connect() as s:
                s.sendall(data)
                resp = read_frame(s)
                self.assertFalse(resp["ok"], name)
                self.assertEqual(resp["error"], code, name)
                self.assertIn("message", resp)
                if closes:
                    s.settimeout(5)
                    self.assertEqual(s.recv(1), b"", f"{name}: the connection is closed")
                else:
                    # The stream stays in sync: the next request is answered.
                    s.sendall(frame({"op": "hello", "id": "next"}))
                    self.assertEqual(read_frame(s)["id"], "next", name)

    def test_malformed_json_never_echoes_its_content(self):
        d = self.daemon()
        for body in (b'{"op":"login","service":"demo","user":"u","password":"hunter2 secret',
                     b'{"op":"login","password":"hunter2 secret" "user":"u"}',
                     b'{"op":"login","password":"hunter2 secret\xff"}',
                     b'{"op":"login","password":"hunter2 secret"} trailing hunter2'):
            with d.connect() as s:
                s.sendall(frame(body))
                r = read_frame(s)
            self.assertEqual(r["error"], "bad_request")
            self.assertNotIn("hunter2", r["message"])
        self.assertNotIn("hunter2", d.log())

    def test_id_is_echoed_and_pipelining_keeps_order(self):
        d = self.daemon()
        with d.connect() as s:
            reqs = b"".join(frame({"op": "hello", "id": i}) for i in range(200))
            reqs += frame({"op": "nope", "id": {"x": [1]}})
            s.sendall(reqs)
            for i in range(200):
                self.assertEqual(read_frame(s)["id"], i)
            last = read_frame(s)
            self.assertEqual(last["id"], {"x": [1]})
            self.assertEqual(last["error"], "unknown_op")

    def test_flood_of_bad_clients_while_hello_keeps_answering(self):
        d = self.daemon()
        stop = threading.Event()
        errors = []
        answered = [0]

        def good():
            try:
                with d.connect() as s:
                    while not stop.is_set():
                        s.sendall(frame({"op": "hello"}))
                        if read_frame(s)["ok"] is not True:
                            errors.append("hello failed")
                        answered[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        def bad(n):
            items = list(BAD_INPUTS.values())
            for i in range(n):
                data, _, _ = items[i % len(items)]
                try:
                    with d.connect() as s:
                        if i % 5 == 0:
                            s.sendall(data[: max(1, len(data) // 2)])  # truncated, then gone
                        elif i % 7 == 0:
                            # Pipelines and never reads.
                            s.sendall(frame({"op": "jwks"}) * 500)
                        else:
                            s.sendall(data)
                except OSError:
                    pass

        g = threading.Thread(target=good)
        g.start()
        bads = [threading.Thread(target=bad, args=(150,)) for _ in range(8)]
        for t in bads:
            t.start()
        for t in bads:
            t.join()
        time.sleep(scaled(0.3))
        stop.set()
        g.join()
        # Every hello was answered, each within read_frame's timeout.
        self.assertEqual(errors, [])
        self.assertGreater(answered[0], 2)
        self.assertEqual(d.ctl("hello").returncode, 0)

    def test_max_connections_and_client_timeout(self):
        d = self.daemon(config_extra="max_connections = 4\nclient_timeout = 2s\n")
        socks = [d.connect() for _ in range(4)]
        time.sleep(0.2)
        extra = d.connect()
        resp = read_frame(extra)
        self.assertEqual(resp["error"], "unavailable")
        extra.close()
        # Idle ones are dropped after client_timeout, which frees the slots.
        t0 = time.monotonic()
        for s in socks:
            s.settimeout(10)
            self.assertEqual(s.recv(1), b"")
        self.assertLess(time.monotonic() - t0, 8)
        self.assertEqual(d.ctl("hello").returncode, 0)

    def test_trickling_client_is_dropped(self):
        d = self.daemon(config_extra="client_timeout = 2s\n")
        s = d.connect()
        payload = frame({"op": "hello"})
        t0 = time.monotonic()
        closed = False
        for b in payload[:-1]:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            s.setblocking(True)
        self.assertTrue(closed, "a client trickling one frame must be dropped at client_timeout")
        self.assertLess(time.monotonic() - t0, 6)

    def test_admin_ops_need_admin(self):
        d = self.daemon()
        r = d.ctl("stats", json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("requests", r.json)
        self.assertIn("connections", r.json)


if __name__ == "__main__":
    unittest.main()
