# SPDX-License-Identifier: MIT
"""latch-http.socket and latch-http.service as systemd reads them:
systemd-analyze verify (with ExecStart= pointing at the built program, and
a broken copy that must fail) and the sandbox's exposure score."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

LATCH_HTTP = os.environ.get("LATCH_HTTP", "latch-http")
UNIT_DIR = os.environ.get("LATCH_HTTP_UNITS", "")
MAX_EXPOSURE = 1.0


@unittest.skipUnless(shutil.which("systemd-analyze") and UNIT_DIR, "systemd-analyze or the units are missing")
class Units(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="latch-http-units-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def copy_units(self, folder, exec_start=None):
        os.makedirs(folder, exist_ok=True)
        shutil.copy(os.path.join(UNIT_DIR, "latch-http.socket"), folder)
        with open(os.path.join(UNIT_DIR, "latch-http.service")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^ExecStart=/\S+/latch-http ")
        text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + (exec_start or LATCH_HTTP), text)
        with open(os.path.join(folder, "latch-http.service"), "w") as f:
            f.write(text)
        return text

    def verify(self, folder, unit):
        return subprocess.run(["systemd-analyze", "verify", "--man=no", unit], cwd=folder,
                              capture_output=True, text=True, timeout=120)

    def test_verify(self):
        self.copy_units(self.tmp)
        for unit in ("latch-http.socket", "latch-http.service"):
            r = self.verify(self.tmp, unit)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), unit)
        # A broken copy is refused: the check above can fail.
        broken = os.path.join(self.tmp, "broken")
        text = self.copy_units(broken, exec_start="/nonexistent/latch-http")
        with open(os.path.join(broken, "latch-http.service"), "w") as f:
            f.write(text.replace("ProtectSystem=", "ProtectSystme="))
        self.assertNotEqual(self.verify(broken, "latch-http.service").returncode, 0)

    def test_sandbox(self):
        text = self.copy_units(self.tmp)
        for line in ("DynamicUser=yes", "PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX",
                     "CapabilityBoundingSet=", "NoNewPrivileges=yes", "ProtectSystem=strict"):
            self.assertIn("\n" + line + "\n", text)
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                            os.path.join(self.tmp, "latch-http.service")],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        self.assertTrue(m, r.stdout + r.stderr)
        print("exposure:", m.group(1))
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)


if __name__ == "__main__":
    unittest.main()
