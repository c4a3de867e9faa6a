# SPDX-License-Identifier: MIT
"""The PAM worker design of latch-pam-worker.socket, with a stand-in plugin.

latch-pam-worker.socket (Accept=yes) makes systemd start one latch-worker per
connection, the connection on fd 0, the plugin and its arguments fixed on the
worker's command line. systemd-socket-activate --accept --inetd does the
same here, for the `debug` plugin. latchd, told `worker_socket =` for the
plugin, must run the plugin's lines through that socket; and since the
worker's command line fixes the plugin's arguments, a stack line asking for
other arguments must be refused when latchd loads the stacks (in latchd's
own process, the line would simply run).
"""

import os
import signal
import subprocess
import time
import unittest

import harness

LATCH_WORKER = os.environ.get("LATCH_WORKER_BIN", "")
ARGS = ["auth=success", "account=success"]
STACK = "auth required debug {args}\naccount required debug {args}\n"


@unittest.skipUnless(LATCH_WORKER, "latch-worker is not built")
class WorkerSocketTest(harness.DaemonTest):
    def start_workers(self, path, *args):
        log = open(os.path.join(self.tmp, "workers.log"), "ab")
        p = subprocess.Popen(["systemd-socket-activate", "-l", path, "--accept", "--inetd", LATCH_WORKER,
                              "--plugin", harness.PLUGINS["debug"], *args],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.addCleanup(lambda: p.poll() is not None or (p.kill(), p.wait()))
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, "systemd-socket-activate did not bind")
            time.sleep(0.02)
        return p

    def test_worker_runs_the_lines(self):
        sock = os.path.join(self.tmp, "pam-worker.sock")
        workers = self.start_workers(sock, *ARGS)
        d = self.daemon(start=False, config_extra=f"[plugin.debug]\nworker_socket = {sock}\n",
                        services={"demo": STACK.format(args=" ".join(ARGS))})
        d.start()
        r = d.ctl("authenticate", "demo", "bob", input="pw\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        self.assertEqual(r.json["user"], "bob")
        self.assertEqual(d.stop(), 0)

        # The same worker, a stack asking for other (valid) arguments:
        # refused at load.
        d.write_service("demo", STACK.format(args="account=success auth=success"))
        d.start(wait_ready=False)
        try:
            rc = d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("latchd started with a stack whose arguments differ from the worker's: "
                      "the lines did not go to the worker socket\n" + d.log())
        self.assertEqual(rc, 1, d.log())
        d.proc = None
        workers.send_signal(signal.SIGTERM)
        workers.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
