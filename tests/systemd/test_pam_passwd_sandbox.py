# SPDX-License-Identifier: MIT
"""What the PAM worker must be allowed for pam_unix to change a password.

latch-pam-worker@.service runs latch-worker as root with only
CAP_DAC_READ_SEARCH and ProtectSystem=strict (/etc read-only). pam_unix
changing /etc/shadow writes /etc/nshadow, chowns it to root:shadow and renames
it over /etc/shadow: it needs /etc writable and CAP_CHOWN, which the shipped
unit does not give and docs/OPERATIONS.md's drop-in does.

Each test runs the workers as the unit would (systemd-socket-activate
--accept --inetd standing in for latch-pam-worker.socket), in a mount
namespace where /etc is read-only or not (ProtectSystem=strict, or
ReadWritePaths=/etc) and with a bounding set of CAP_DAC_READ_SEARCH, with or
without CAP_CHOWN (CapabilityBoundingSet=), and changes a real user's password
through the passwd op. Fenced off, pam_unix answers PAM_AUTHTOK_LOCK_BUSY (no
/etc/.pwd.lock on a read-only /etc) or PAM_AUTHTOK_ERR (no CAP_CHOWN): the
client is denied and /etc/shadow is as it was.
"""

import os
import shlex
import shutil
import subprocess
import time
import unittest

import harness

LATCH_WORKER = os.environ.get("LATCH_WORKER_BIN", "")
USER, OLD, NEW = "latchpwsb", "Sandbox-Pass-1", "Sandbox-Pass-2"


def shadow_entry(user):
    with open("/etc/shadow") as f:
        for line in f:
            if line.split(":", 1)[0] == user:
                return line
    raise AssertionError(f"{user} is not in /etc/shadow")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("unshare") and LATCH_WORKER,
                     "needs root, setpriv, unshare and latch-worker")
class PamPasswdSandbox(harness.DaemonTest):
    def setUp(self):
        super().setUp()
        self.service = f"latch-pwsb-{os.getpid()}"
        self.pamfile = f"/etc/pam.d/{self.service}"
        subprocess.run(["userdel", USER], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", USER], check=True)
        subprocess.run(["chpasswd"], input=f"{USER}:{OLD}\n", text=True, check=True)
        with open(self.pamfile, "w") as f:
            f.write("auth     required pam_unix.so\n"
                    "account  required pam_unix.so\n"
                    "password required pam_unix.so\n")
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

    def start(self, etc_writable, caps):
        """latchd with its pam lines on a worker socket whose workers run as
        latch-pam-worker@.service would, with /etc writable or not and the
        bounding set `caps`."""
        sock = os.path.join(self.tmp, "pam-worker.sock")
        worker = shlex.join(["setpriv", "--bounding-set=-all," + ",".join("+" + c for c in caps),
                             "--inh-caps=-all", "--", LATCH_WORKER, "--plugin", harness.PLUGINS["pam"],
                             f"service={self.service}"])
        mounts = "" if etc_writable else "mount --bind /etc /etc && mount -o remount,bind,ro /etc && "
        log = open(os.path.join(self.tmp, "workers.log"), "ab")
        w = subprocess.Popen(["systemd-socket-activate", "-l", sock, "--accept", "--inetd",
                              "unshare", "-m", "--propagation", "private", "sh", "-c", mounts + "exec " + worker],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(w)
        deadline = time.monotonic() + harness.scaled(10)
        while not os.path.exists(sock):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        line = f"pam service={self.service}\n"
        return self.daemon(services={"sys": "auth     required " + line + "account  required " + line +
                                            "password required " + line},
                           config_extra=f"[plugin.pam]\nworker_socket = {sock}\n[throttle]\nenabled = no\n")

    def passwd(self, d):
        c = d.call({"op": "passwd", "service": "sys", "user": USER})
        for answer in (OLD, NEW, NEW):
            self.assertEqual(c.get("error"), "challenge", str(c) + d.log())
            c = d.call({"op": "respond", "conversation": c["conversation"], "answers": [answer]})
        return c

    def worker_log(self):
        with open(os.path.join(self.tmp, "workers.log"), errors="replace") as f:
            return f.read()

    def refused(self, etc_writable, caps):
        d = self.start(etc_writable, caps)
        before = shadow_entry(USER)
        r = self.passwd(d)
        self.assertEqual(r.get("error"), "denied", r)
        self.assertEqual(before, shadow_entry(USER))
        # The worker still checks passwords: only the change is fenced off.
        r = d.ctl("authenticate", "sys", USER, input=OLD + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log() + self.worker_log())

    def test_shipped_unit_refuses_the_change(self):
        self.refused(False, ["dac_read_search"])

    def test_without_cap_chown_refused(self):
        self.refused(True, ["dac_read_search"])

    def test_with_etc_read_only_refused(self):
        self.refused(False, ["dac_read_search", "chown"])

    def test_drop_in_allows_the_change(self):
        d = self.start(True, ["dac_read_search", "chown"])
        before = shadow_entry(USER)
        r = self.passwd(d)
        self.assertTrue(r.get("ok"), str(r) + d.log() + self.worker_log())
        self.assertNotEqual(before, shadow_entry(USER))
        r = d.ctl("authenticate", "sys", USER, input=NEW + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        r = d.ctl("authenticate", "sys", USER, input=OLD + "\n")
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
