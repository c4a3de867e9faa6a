# SPDX-License-Identifier: MIT
"""Isolated plugins under the real latchd, through the real latchctl.

A plugin that crashes and one that hangs, both in worker processes, cost
their own requests (`unavailable`, within the plugin's deadline) and nothing
else: the daemon keeps answering every other client promptly. Workers can
also be reached through a socket where systemd (here
systemd-socket-activate --accept --inetd) starts one per connection. A
password change and an expired password's change inside a login work with
the file plugin's lines isolated as they do in process.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import LATCHD, PLUGINS, DaemonTest, frame, read_frame, wait_for

WORKER = os.environ.get("LATCH_WORKER", "latch-worker")


def _handle_segv_off():
    # Under ASan a crashing worker should die of its signal, as in
    # production, rather than of ASan's report (which the harness would also
    # take for a daemon bug). Without ASan this changes nothing.
    asan = os.environ.get("ASAN_OPTIONS", "")
    if "handle_segv=0" not in asan:
        os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "handle_segv=0"


class TestIsolation(DaemonTest):
    def setUp(self):
        super().setUp()
        _handle_segv_off()

    def timed_ctl(self, d, *args, input=None):
        t = time.monotonic()
        r = d.ctl(*args, input=input, json_out=True, timeout=60)
        return r, time.monotonic() - t

    def test_crash_and_hang_leave_the_daemon_responsive(self):
        # An isolated call still holds one of latchd's pool threads while it
        # waits for its worker (up to the deadline): with the harness's 2,
        # one hung call and one crash being replaced would leave none for
        # the good client. 4 leaves two.
        d = self.daemon(
            config_extra="workers = 4\n"
                         "[plugin.crash]\nisolate = yes\n[plugin.hang]\nisolate = yes\ntimeout = 2s\n",
            services={
                "crash": "auth required crash\naccount required permit\n",
                "hang": "auth required hang\naccount required permit\n",
                "good": "auth required permit\naccount required permit\n",
            },
        )
        session = self.login(d, "alice", "pw", "good")["session"]

        stop = time.monotonic() + 8
        results = {"hang": [], "crash": [], "good": []}
        errors = []
        n = [0]
        lock = threading.Lock()

        def fresh_user(prefix):
            # A new user each time, so that the daemon's failure backoff
            # (per user) does not delay the attempts being timed.
            with lock:
                n[0] += 1
                return f"{prefix}{n[0]}"

        def misbehaving(service):
            try:
                while time.monotonic() < stop:
                    r, t = self.timed_ctl(d, "authenticate", service, fresh_user(service), input="pw\n")
                    results[service].append((r.returncode, (r.json or {}).get("error"), t))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        def good():
            # Over one connection, so that what is timed is latchd, not the
            # start of a client process on a loaded machine.
            try:
                sock = d.connect()
                while time.monotonic() < stop:
                    for req in ({"op": "hello"}, {"op": "validate", "session": session},
                                {"op": "authenticate", "service": "good", "user": fresh_user("g"),
                                 "password": "pw"}):
                        t = time.monotonic()
                        r = d.call(req, sock)
                        t = time.monotonic() - t
                        results["good"].append((req["op"], 0 if r.get("ok") else 1, t, repr(r)))
                sock.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=misbehaving, args=("hang",)),
                   threading.Thread(target=misbehaving, args=("crash",)),
                   threading.Thread(target=good)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

        log = d.log()
        self.assertGreaterEqual(len(results["hang"]), 2, log[-3000:])
        self.assertGreaterEqual(len(results["crash"]), 3, log[-3000:])
        self.assertGreaterEqual(len(results["good"]), 9)
        # The bounds: the other client within 1 s, the
        # misbehaving ones within their deadline (2 s; 10 s by default) + 1 s.
        for what, rc, t, out in results["good"]:
            self.assertEqual(rc, 0, f"{what}: {out}")
            self.assertLess(t, 1.0, f"{what} took {t:.2f}s")
        for rc, err, t in results["hang"]:
            self.assertEqual((rc, err), (3, "unavailable"))
            self.assertLess(t, 3.0)
        for rc, err, t in results["crash"]:
            self.assertEqual((rc, err), (3, "unavailable"))
            self.assertLess(t, 11.0)

        self.assertIn("plugin 'crash': worker crashed (signal 11); replaced", log)
        self.assertIn("plugin 'hang': worker did not answer within 2s; replaced", log)
        self.assertIsNone(d.proc.poll(), "latchd is still running")
        self.assertEqual(d.ctl("hello").returncode, 0)

    def test_conversation_ending_on_a_full_pool_is_still_counted(self):
        # One pool thread, held by a call that hangs until its deadline, and
        # its queue (64 jobs) full behind it: the conversation that expires
        # meanwhile must still reach faillock (deny=1) as a failure.
        d = self.daemon(
            config_extra="workers = 1\nconversation_timeout = 1s\n"
                         "[throttle]\nenabled = no\n[plugin.hang]\nisolate = yes\ntimeout = 10s\n",
            services={
                "demo": "auth requisite faillock deny=1 unlock_time=10min\n"
                        "auth required debug ask=secret:Code: expect=1\naccount required permit\n",
                "hang": "auth required hang\naccount required permit\n",
            },
        )
        c = d.call({"op": "authenticate", "service": "demo", "user": "demo"})
        self.assertEqual(c["error"], "challenge", c)

        def req(user):
            return {"op": "authenticate", "service": "hang", "user": user, "password": "pw"}
        held = d.connect(timeout=60)
        held.sendall(frame(req("stuck")))
        queued = [d.connect(timeout=60) for _ in range(2)]
        for i, s in enumerate(queued):
            s.sendall(b"".join(frame(req("ok")) for _ in range(32)))

        def queue_full():
            r = d.call(req("ok"))
            return r.get("error") == "unavailable" and "busy" in r.get("message", "")
        wait_for(queue_full, 5, "the pool's queue full")
        wait_for(lambda: "ended after 1 step(s): expired" in d.log(), 8, "the conversation expired")
        self.assertTrue(queue_full(), "the queue was still full when the conversation ended")

        # Everything drains once the hung call's deadline kills its worker.
        for s in [held] + queued:
            for _ in range(1 if s is held else 32):
                read_frame(s, timeout=60)
            s.close()
        wait_for(lambda: d.ctl("faillock", "show", "demo", json_out=True).json.get("locked"), 20,
                 "the expired conversation counted by faillock")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["1"]})
        self.assertEqual(r["error"], "invalid_conversation", r)

    def test_workers_inherit_no_fds_and_run_apart(self):
        d = self.daemon(config_extra="[plugin.echo]\nisolate = yes\n",
                        services={"echo": "auth required echo one two\naccount required permit\n"})
        r = d.ctl("authenticate", "echo", "alice", input="secret\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        claims = r.json["claims"]
        self.assertNotEqual(int(claims["pid"]), d.proc.pid)
        self.assertEqual(claims["fds"], ["0", "1", "2"], "no LMDB handle or socket in the worker")
        self.assertEqual(claims["password_ok"], "yes")
        self.assertEqual(claims["args"], ["one", "two"])
        self.assertIn("hello from pid", d.log())
        self.assertNotIn("secret", d.log())

    ASK = "auth required debug ask=secret:Code: expect=4242\naccount required permit\n"

    def begin(self, d, user):
        r = d.call({"op": "authenticate", "service": "ask", "user": user}, timeout=60)
        self.assertEqual(r.get("error"), "challenge", r)
        return r["conversation"]

    def answer(self, d, conversation):
        return d.call({"op": "respond", "conversation": conversation, "answers": ["4242"]}, timeout=60)

    def test_waiting_conversations_do_not_starve_the_line(self):
        # Each waiting conversation keeps the worker that asked; clients that
        # never answer must not take the workers everyone else's logins need
        # (a call finding none would give up after the line's timeout).
        d = self.daemon(config_extra="[plugin.debug]\nisolate = yes\ntimeout = 5s\n",
                        services={"ask": self.ASK})
        idle = [self.begin(d, f"idle{i}") for i in range(6)]
        for i in range(3):
            done = self.answer(d, self.begin(d, f"user{i}"))
            self.assertTrue(done["ok"], done)
        for c in idle:
            done = self.answer(d, c)
            self.assertTrue(done["ok"], done)
        self.assertNotIn("stayed busy", d.log())

    def test_max_waiting_ends_the_oldest_conversation(self):
        d = self.daemon(config_extra="[plugin.debug]\nisolate = yes\nmax_waiting = 2\n",
                        services={"ask": self.ASK})
        first, second, third = (self.begin(d, f"idle{i}") for i in range(3))
        r = self.answer(d, first)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"], "unavailable", r)
        for c in (second, third):
            done = self.answer(d, c)
            self.assertTrue(done["ok"], done)
        log = d.log()
        self.assertIn("plugin 'debug': more than 2 conversations waiting on workers of one line "
                      "(max_waiting); the oldest was ended", log)
        self.assertIn("the conversation had been ended to make room for newer ones (max_waiting 2)", log)

    FILE_PW = ("auth required file path={users}\naccount required file path={users}\n"
               "password required file path={users} min_length=8\n")

    def file_workers(self, d):
        """The latch-worker processes latchd started for the file plugin."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            plugin = argv[argv.index(b"--plugin") + 1] if b"--plugin" in argv[:-1] else b""
            if ppid == d.proc.pid and os.path.basename(plugin) == b"file.so":
                found.append(int(pid))
        return found

    def test_password_change_in_a_worker(self):
        # The file plugin's password changes, its lines isolated: the same
        # conversations and the same database changes as in latchd
        # (tests/e2e/test_passwd.py), the items crossing the worker
        # protocol (the current password the preliminary pass sets, the
        # login's password for an expired one).
        d = self.daemon(config_extra="[plugin.file]\nisolate = yes\n[throttle]\nenabled = no\n",
                        services={"demo": self.FILE_PW.format(users=os.path.join(self.tmp, "users"))})
        c = d.call({"op": "passwd", "service": "demo", "user": "demo"})
        self.assertEqual(c["prompts"], [{"style": "secret", "message": "Current password:"}], c)
        c = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["demo-password"]})
        self.assertEqual([p["message"] for p in c["prompts"]], ["New password:", "Retype new password:"], c)
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["a-new-passphrase"] * 2})
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.file_workers(d), "the file plugin ran in latch-worker processes")
        ok = lambda pw: d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": pw}).get("ok")
        self.assertTrue(ok("a-new-passphrase"))
        self.assertFalse(ok("demo-password"))

        # A wrong current password.
        c = d.call({"op": "passwd", "service": "demo", "user": "demo"})
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["demo-password"]})
        self.assertEqual(r.get("error"), "denied", r)

        # An expired password, changed inside the login: the login's password
        # is the current one (not asked again) and the session comes after.
        r = d.ctl("user", "expire", d.users, "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        c = d.call({"op": "login", "service": "demo", "user": "demo", "password": "a-new-passphrase"})
        self.assertEqual(c.get("error"), "challenge", c)
        self.assertEqual([p["message"] for p in c["prompts"]], ["New password:", "Retype new password:"], c)
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["third-passphrase"] * 2})
        self.assertTrue(r["ok"], r)
        self.assertTrue(r["password_changed"], r)
        self.assertTrue(d.call({"op": "validate", "session": r["session"]})["ok"])
        self.assertTrue(ok("third-passphrase"))
        log = d.log()
        for secret in ("demo-password", "a-new-passphrase", "third-passphrase"):
            self.assertNotIn(secret, log)

    def start_socket_worker(self, name, *fixed_args):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("needs systemd-socket-activate")
        path = os.path.join(self.tmp, name + "-worker.sock")
        cmd = ["systemd-socket-activate", "--accept", "--inetd", "-l", path]
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if var in os.environ:
                cmd += ["-E", var]
        cmd += [WORKER, "--plugin", PLUGINS[name]] + list(fixed_args)
        log = open(os.path.join(self.tmp, name + "-worker.log"), "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

        def stop():
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, "systemd-socket-activate did not bind")
            time.sleep(0.02)
        return path

    def test_worker_socket(self):
        echo = self.start_socket_worker("echo")
        crash = self.start_socket_worker("crash")
        d = self.daemon(
            config_extra=f"[plugin.echo]\nworker_socket = {echo}\n"
                         f"[plugin.crash]\nworker_socket = {os.path.basename(crash)}\n",
            services={"echo": "auth required echo\naccount required permit\n",
                      "crash": "auth required crash\naccount required permit\n"},
        )
        r = d.ctl("authenticate", "echo", "alice", input="secret\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pid = int(r.json["claims"]["pid"])
        self.assertNotEqual(pid, d.proc.pid)
        self.assertEqual(r.json["claims"]["password_ok"], "yes")
        self.assertEqual(r.json["claims"]["fds"], ["0", "1", "2"])

        for i in range(3):
            t = time.monotonic()
            r = d.ctl("authenticate", "crash", f"c{i}", input="pw\n", json_out=True)
            self.assertEqual((r.returncode, r.json["error"]), (3, "unavailable"))
            self.assertLess(time.monotonic() - t, 11.0)
        self.assertIn("plugin 'crash': worker closed the connection; replaced", d.log())

        # The other line, and the daemon, carry on.
        r = d.ctl("authenticate", "echo", "bob", input="secret\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIsNone(d.proc.poll())

    def test_worker_socket_with_fixed_arguments(self):
        # As the shipped unit runs it: the unit fixes the plugin and its
        # arguments, and a line must name the same ones.
        sock = self.start_socket_worker("echo", "one", "two")
        d = self.daemon(config_extra=f"[plugin.echo]\nworker_socket = {sock}\n",
                        services={"echo": "auth required echo one two\naccount required permit\n"})
        r = d.ctl("authenticate", "echo", "alice", input="secret\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json["claims"]["args"], ["one", "two"])

        d.write_service("other", "auth required echo three\naccount required permit\n")
        r = subprocess.run([LATCHD, "--check-config", "--config", d.conf], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("services/other:1: plugin 'echo': the line's arguments differ from those the worker was "
                      "started with", r.stderr)

    def test_worker_socket_missing_is_a_load_error(self):
        d = self.daemon(start=False, config_extra="[plugin.echo]\nworker_socket = nowhere.sock\n",
                        services={"echo": "auth required echo\naccount required permit\n"})
        d.start(wait_ready=False)
        self.assertNotEqual(d.proc.wait(30), 0)
        d.stop()  # its death was the point: not one for tearDown to report
        self.assertIn("plugin 'echo': cannot connect to worker_socket", d.log())


@unittest.skipUnless(os.geteuid() == 0, "needs root: writes /etc/pam.d and runs pam_unix")
@unittest.skipUnless("pam" in PLUGINS, "the pam plugin is not built")
class TestPamWorker(unittest.TestCase):
    """latch-worker running the pam plugin, spoken to directly as latchd
    would: the protocol's strict alternation holds around conversations."""

    def setUp(self):
        self.svc = f"latch-iso-pam-{os.getpid()}"
        self.pamfile = f"/etc/pam.d/{self.svc}"
        with open(self.pamfile, "w") as f:
            f.write("auth required pam_unix.so\naccount required pam_permit.so\n")
        self.addCleanup(os.unlink, self.pamfile)

    def start_worker(self):
        ours, theirs = socket.socketpair()
        p = subprocess.Popen([WORKER, "--plugin", PLUGINS["pam"]], stdin=theirs, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        theirs.close()
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.addCleanup(p.stderr.close)
        ours.sendall(frame({"open": {"name": "pam", "args": [f"service={self.svc}"]}}))
        m = read_frame(ours)
        while "log" in m:
            m = read_frame(ours)
        self.assertIn("ready", m)
        return p, ours

    def test_abandoned_conversation_ends_the_worker_quietly(self):
        # pam_unix asks root's password; latchd then closes the stream (the
        # client went away). The module's conversation fails as the worker
        # ends: logging that would write to the closed socket, and the
        # worker would die of it ("cannot answer latchd").
        p, sock = self.start_worker()
        sock.sendall(frame({"call": "auth", "op": "login", "service": "login", "user": "root",
                            "now": int(time.time())}))
        m = read_frame(sock)
        self.assertNotIn("log", m)
        self.assertEqual(m["result"], 31)
        self.assertEqual(m["prompts"], [{"style": 1, "message": "Password: "}])
        sock.close()
        self.assertEqual(p.wait(30), 0)
        err = p.stderr.read().decode(errors="replace")
        self.assertNotIn("cannot answer latchd", err)


if __name__ == "__main__":
    unittest.main()
