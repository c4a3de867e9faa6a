# SPDX-License-Identifier: MIT
"""Why the pam plugin runs in a worker outside latchd's sandbox.

latchd.service runs as an unprivileged user with NoNewPrivileges=yes. Under
that, pam_unix cannot check another user's password: /etc/shadow is not
readable, and the set-uid helper unix_chkpwd loses its privileges (and only
checks the caller's own password anyway). latch-pam-worker.socket gives each
connection a root latch-worker running the pam plugin, which latchd reaches
through [plugin.pam] worker_socket.

This test runs latchd as `nobody` under setpriv --no-new-privs, as the unit
would, and shows: in-process pam_unix refuses a correct password; through a
root worker behind a socket (systemd-socket-activate --accept --inetd
standing in for the socket unit), the same login succeeds.
"""

import os
import pwd
import shutil
import subprocess
import time
import unittest

import harness

LATCH_WORKER = os.environ.get("LATCH_WORKER_BIN", "")
USER, PASSWORD = "latchnnp", "Nnp-Pass-9"


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv") and LATCH_WORKER,
                     "needs root, setpriv and latch-worker")
class PamUnderNoNewPrivs(harness.DaemonTest):
    def setUp(self):
        super().setUp()
        self.service = f"latch-nnp-{os.getpid()}"
        self.pamfile = f"/etc/pam.d/{self.service}"
        subprocess.run(["userdel", USER], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", USER], check=True)
        subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
        with open(self.pamfile, "w") as f:
            f.write("auth required pam_unix.so\naccount required pam_unix.so\n")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        os.unlink(self.pamfile)
        subprocess.run(["userdel", USER], capture_output=True)
        super().tearDown()

    def start_as_nobody(self, d):
        """latchd as nobody with no_new_privs, as latchd.service runs it."""
        nobody = pwd.getpwnam("nobody")
        os.chmod(self.tmp, 0o777)
        os.makedirs(d.state, exist_ok=True)
        for root, dirs, files in os.walk(d.state):
            for n in dirs + files + [""]:
                os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
        os.chmod(d.state, 0o700)
        log = open(d.log_path, "ab")
        p = subprocess.Popen(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                              "--no-new-privs", "--", harness.LATCHD, "--config", d.conf, "--socket", d.sock],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.tmp, env=d.env())
        log.close()
        self.procs.append(p)
        deadline = time.monotonic() + 20
        while d.ctl("hello").returncode != 0:
            self.assertIsNone(p.poll(), "latchd exited:\n" + d.log())
            self.assertLess(time.monotonic(), deadline, "latchd did not answer:\n" + d.log())
            time.sleep(0.1)
        return p

    def stack(self):
        return {"sys": f"auth required pam service={self.service}\naccount required pam service={self.service}\n"}

    def test_in_process_pam_unix_fails_under_no_new_privs(self):
        d = harness.Daemon(self.tmp, services=self.stack(), config_extra="[plugin.pam]\nisolate = no\n")
        self.start_as_nobody(d)
        r = d.ctl("authenticate", "sys", USER, input=PASSWORD + "\n", json_out=True)
        self.assertNotEqual(r.returncode, 0, "pam_unix should not see /etc/shadow from the sandbox")
        self.assertIn(r.json["error"], ("denied", "unavailable"))

    def test_root_worker_behind_a_socket_succeeds(self):
        sock = os.path.join(self.tmp, "pam-worker.sock")
        log = open(os.path.join(self.tmp, "workers.log"), "ab")
        w = subprocess.Popen(["systemd-socket-activate", "-l", sock, "--accept", "--inetd", LATCH_WORKER,
                              "--plugin", harness.PLUGINS["pam"], f"service={self.service}"],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(w)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        # As latch-pam-worker.socket does with SocketUser=latch: only
        # latchd's user may connect.
        os.chown(sock, pwd.getpwnam("nobody").pw_uid, -1)
        os.chmod(sock, 0o600)
        d = harness.Daemon(self.tmp, services=self.stack(), config_extra=f"[plugin.pam]\nworker_socket = {sock}\n")
        self.start_as_nobody(d)
        r = d.ctl("authenticate", "sys", USER, input=PASSWORD + "\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        self.assertEqual(r.json["user"], USER)
        r = d.ctl("authenticate", "sys", USER, input="wrong\n", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "denied"))


if __name__ == "__main__":
    unittest.main()
