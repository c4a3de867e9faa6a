# SPDX-License-Identifier: MIT
"""The backup and restore of docs/OPERATIONS.md work.

While latchd runs, `mdb_copy -n -c` of state_dir/sessions.mdb and a copy of
state_dir/keys; then the state is lost, restored from the copies, and a new
latchd must accept the sessions and the tokens made before the backup.
"""

import os
import shutil
import subprocess
import unittest

import harness

MDB_COPY = shutil.which("mdb_copy")


@unittest.skipUnless(MDB_COPY, "mdb_copy (lmdb-utils) not installed")
class BackupTest(harness.DaemonTest):
    def test_backup_restore(self):
        d = self.daemon()
        a = self.login(d, "demo", "demo-password", "demo", "--token")
        b = self.login(d)

        state = os.path.join(self.tmp, "state")
        backup = os.path.join(self.tmp, "backup")
        os.makedirs(backup, mode=0o700)
        r = subprocess.run([MDB_COPY, "-n", "-c", os.path.join(state, "sessions.mdb"),
                            os.path.join(backup, "sessions.mdb")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        shutil.copytree(os.path.join(state, "keys"), os.path.join(backup, "keys"))
        # Made after the backup: must not come back.
        c = self.login(d)
        self.assertEqual(d.stop(), 0)

        # The state is lost, then restored as OPERATIONS.md says.
        shutil.rmtree(state)
        os.makedirs(state, mode=0o700)
        shutil.copy2(os.path.join(backup, "sessions.mdb"), os.path.join(state, "sessions.mdb"))
        os.chmod(os.path.join(state, "sessions.mdb"), 0o600)
        shutil.copytree(os.path.join(backup, "keys"), os.path.join(state, "keys"))
        d.start()

        for s in (a, b):
            r = d.ctl("validate", "-", input=s["session"] + "\n", json_out=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.json["handle"], s["handle"])
        r = d.ctl("validate", "-", input=c["session"] + "\n", json_out=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.json["error"], "invalid_session")
        # The restored key still verifies a token signed before the backup,
        # through latchd and offline against the JWKS it publishes again.
        r = d.ctl("token", "verify", a["token"], json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = d.ctl("token", "verify", a["token"], "--jwks", d.jwks, json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
