# SPDX-License-Identifier: MIT
"""Conversations: challenge, respond, and their abuse (replays, foreign
peers, late and malformed answers, floods, a killed daemon)."""

import os
import subprocess
import time
import unittest

from harness import DaemonTest, frame, on_pty, read_frame, scaled

# Password then a code, through the file plugin and a prompting debug line.
STACK = ("auth required file path={users}\n"
         "auth required debug ask=info:A_code_was_sent ask=secret:Code: expect=424242\n"
         "account required file path={users}\n")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class TestConversations(DaemonTest):
    def start(self, extra=""):
        users = os.path.join(self.tmp, "users")
        return self.daemon(services={"demo": STACK.format(users=users),
                                     # No password hashing: cheap to start by the thousand.
                                     "flood": "auth required debug ask=secret:Code: expect=1\n"
                                              "account required debug\n"},
                           config_extra=extra)

    def begin(self, d, sock=None, op="login", **kw):
        req = {"op": op, "service": "demo", "user": "demo", **kw}
        r = d.call(req, sock=sock)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"], "challenge", r)
        return r

    def test_password_then_code_makes_a_session(self):
        d = self.start()
        s = d.connect()
        c1 = self.begin(d, s, id=7)
        self.assertEqual(c1["id"], 7)
        self.assertEqual(c1["prompts"], [{"style": "secret", "message": "Password:"}])
        self.assertGreaterEqual(len(c1["conversation"]), 43, "at least 256 bits, base64url")
        self.assertGreater(c1["expires_at"], time.time())
        c2 = d.call({"op": "respond", "conversation": c1["conversation"], "answers": ["demo-password"]}, sock=s)
        self.assertEqual(c2["error"], "challenge", c2)
        self.assertNotEqual(c2["conversation"], c1["conversation"], "each step gets a new id")
        self.assertEqual(c2["prompts"], [{"style": "info", "message": "A_code_was_sent"},
                                         {"style": "secret", "message": "Code:"}])
        # Answers only for secret/text prompts: one here.
        done = d.call({"op": "respond", "conversation": c2["conversation"], "answers": ["424242"]})
        self.assertTrue(done["ok"], done)
        self.assertEqual(done["user"], "demo")
        v = d.call({"op": "validate", "session": done["session"]})
        self.assertTrue(v["ok"], v)
        # A replayed step is refused, and changes nothing.
        again = d.call({"op": "respond", "conversation": c2["conversation"], "answers": ["424242"]})
        self.assertEqual(again["error"], "invalid_conversation")
        log = d.log()
        self.assertNotIn("424242", log)
        self.assertNotIn("demo-password", log)
        self.assertIn("challenge, step 2", log)

    def test_password_given_answers_the_first_prompt(self):
        d = self.start()
        c = self.begin(d, op="authenticate", password="demo-password")
        self.assertEqual(c["prompts"][-1]["message"], "Code:")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["claims"]["groups"], ["users"])

    def test_wrong_answers_are_refused_at_the_end(self):
        d = self.start()
        c = self.begin(d, op="authenticate", password="wrong")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertEqual(r["error"], "denied", r)
        c = self.begin(d, op="authenticate", password="demo-password")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["000000"]})
        self.assertEqual(r["error"], "denied", r)

    def test_bad_answers_keep_the_conversation(self):
        d = self.start()
        c = self.begin(d, op="authenticate", password="demo-password")
        cid = c["conversation"]
        for bad in ([], ["1", "2"], [5], None, "424242"):
            req = {"op": "respond", "conversation": cid}
            if bad is not None:
                req["answers"] = bad
            r = d.call(req)
            self.assertEqual(r["error"], "bad_request", (bad, r))
        for bad_id in ("", "x" * 43, cid[:-1] + ("A" if cid[-1] != "A" else "B")):
            r = d.call({"op": "respond", "conversation": bad_id, "answers": ["424242"]})
            self.assertEqual(r["error"], "invalid_conversation", r)
        r = d.call({"op": "respond", "conversation": cid, "answers": ["424242"]})
        self.assertTrue(r["ok"], r)

    def test_foreign_peer_cannot_answer(self):
        d = self.start()
        os.chmod(d.sock, 0o666)
        c = self.begin(d, op="authenticate", password="demo-password")
        # The same request from another uid.
        code = (
            "import socket,struct,json,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "b=json.dumps({'op':'respond','conversation':sys.argv[2],'answers':['424242']}).encode()\n"
            "s.sendall(struct.pack('>I',len(b))+b)\n"
            "n=struct.unpack('>I',s.recv(4,socket.MSG_WAITALL))[0]\n"
            "print(json.loads(s.recv(n,socket.MSG_WAITALL))['error'])\n")
        r = subprocess.run(["python3", "-c", code, d.sock, c["conversation"]], capture_output=True, text=True,
                           user=65534, group=65534, timeout=30)
        self.assertEqual(r.stdout.strip(), "invalid_conversation", r.stderr)
        # ...which did not end it for its owner.
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertTrue(r["ok"], r)

    def test_late_answer(self):
        d = self.start("conversation_timeout = 1s\n")
        c = self.begin(d, op="authenticate", password="demo-password")
        time.sleep(scaled(2.5))
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertEqual(r["error"], "invalid_conversation", r)
        self.assertIn("expired", d.log())

    def test_client_without_conversations_is_refused(self):
        d = self.start()
        # latchctl --json without a terminal: the challenge, exit 1.
        r = d.ctl("authenticate", "demo", "demo", input="demo-password\n", json_out=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.json["error"], "challenge")

    def test_example_plugin_asks_a_code(self):
        users = os.path.join(self.tmp, "users")
        codes = os.path.join(self.tmp, "codes")
        with open(codes, "w") as f:
            f.write("demo:731902\n")
        d = self.daemon(services={"demo": f"auth required file path={users}\n"
                                          f"auth required askcode codes={codes}\n"
                                          f"account required file path={users}\n"})
        c = self.begin(d, op="authenticate", password="demo-password")
        self.assertEqual(c["prompts"], [{"style": "info", "message": "A code is on its way."},
                                        {"style": "secret", "message": "Code:"}])
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["731902"]})
        self.assertTrue(r["ok"], r)
        c = self.begin(d, op="authenticate", password="demo-password")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["731903"]})
        self.assertEqual(r["error"], "denied", r)

    def test_faillock_counts_a_conversation_once(self):
        users = os.path.join(self.tmp, "users")
        # deny=2: counted per step, one failed two-step conversation would lock.
        d = self.daemon(services={"demo": "auth requisite faillock deny=2 unlock_time=10min\n" +
                                          STACK.format(users=users)},
                        config_extra="[throttle]\nenabled = no\n")
        c1 = self.begin(d, op="authenticate")
        c2 = d.call({"op": "respond", "conversation": c1["conversation"], "answers": ["demo-password"]})
        r = d.call({"op": "respond", "conversation": c2["conversation"], "answers": ["000000"]})
        self.assertEqual(r["error"], "denied", r)
        c = self.begin(d, op="authenticate", password="demo-password")
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertTrue(r["ok"], "one failure so far: not locked")
        # Two final failures lock, as they would without conversations.
        for _ in range(2):
            c = self.begin(d, op="authenticate", password="demo-password")
            r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["000000"]})
            self.assertEqual(r["error"], "denied", r)
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", "locked: refused before any prompt")

    def test_a_stop_ends_a_waiting_conversation_as_a_failure(self):
        # deny=1: the one failure the ending must report locks the user.
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": "auth requisite faillock deny=1 unlock_time=10min\n" +
                                          STACK.format(users=users)},
                        config_extra="[throttle]\nenabled = no\n")
        self.begin(d, op="authenticate", password="demo-password")
        self.assertEqual(d.stop(), 0)
        d.start()
        shown = d.ctl("faillock", "show", "demo", json_out=True)
        self.assertEqual(shown.returncode, 0, shown.stdout + shown.stderr)
        self.assertTrue(shown.json["locked"], shown.json)
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", "locked: refused before any prompt")
        self.assertIn("stopping: 1 conversation(s) waiting for an answer ended", d.log())

    def test_latchctl_respond_continues(self):
        d = self.start()
        r = d.ctl("login", "demo", "demo", input="demo-password\n", json_out=True)
        self.assertEqual((r.returncode, r.json["error"]), (1, "challenge"), r.stdout + r.stderr)
        self.assertEqual(r.json["prompts"][-1], {"style": "secret", "message": "Code:"})
        r = d.ctl("respond", r.json["conversation"], input="424242\n", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.json["user"], "demo")
        self.assertIn("session", r.json)

    def test_latchctl_on_a_terminal_walks_password_then_code(self):
        d = self.start()
        rc, out = on_pty([os.environ["LATCHCTL"], "--socket", d.sock, "login", "demo", "demo"],
                         [(r"Password: ?$", "demo-password"), (r"Code: ?$", "424242")], d.env(), timeout=20)
        self.assertEqual(rc, 0, out)
        self.assertIn("A_code_was_sent", out)
        self.assertIn("session", out)
        # Secret answers are not echoed.
        self.assertNotIn("demo-password", out)
        self.assertNotIn("424242", out)

    def test_one_user_has_only_a_few_conversations_waiting(self):
        # Lines before the one that asked (faillock's lock check) ran when a
        # conversation started: were there no cap per user, a client could
        # park a thousand at the code prompt and answer them all at once.
        users = os.path.join(self.tmp, "users")
        d = self.daemon(services={"demo": "auth requisite faillock deny=3 unlock_time=10min\n" +
                                          STACK.format(users=users)},
                        config_extra="[throttle]\nenabled = no\n")
        parked = [self.begin(d, op="authenticate", password="demo-password") for _ in range(4)]
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "unavailable", r)
        # Another user of the same service is not held up.
        other = d.call({"op": "authenticate", "service": "demo", "user": "eve", "password": "x"})
        self.assertEqual(other["error"], "challenge", other)
        # Wrong codes for all four: counted, and the user is locked (deny=3).
        for c in parked:
            r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["000000"]})
            self.assertEqual(r["error"], "denied", r)
        r = d.call({"op": "authenticate", "service": "demo", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", "locked: refused before any prompt")
        self.assertIn("too many conversations waiting", d.log())

    def test_abandoned_conversations_leave_memory_flat(self):
        # The throttle would (rightly) slow a flood of attempts for one user
        # down to a crawl; this is about memory.
        # Under ASan, freed memory waits in a quarantine before reuse, which
        # would grow RSS by itself: measure with the quarantine off.
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + \
            "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
        try:
            d = self.start("conversation_timeout = 2s\n[throttle]\nenabled = no\n")
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        s = d.connect(timeout=60)

        def burst(n):
            sent = 0
            while sent < n:
                batch = min(200, n - sent)
                # A user per conversation: one user may have only a few waiting.
                s.sendall(b"".join(frame({"op": "authenticate", "service": "flood", "user": f"u{sent + i}"})
                                   for i in range(batch)))
                for _ in range(batch):
                    r = read_frame(s, timeout=60)
                    self.assertIn(r.get("error"), ("challenge", "unavailable"), r)
                sent += batch

        burst(2000)
        time.sleep(scaled(3))
        before = rss_kib(d.proc.pid)
        burst(10000)
        time.sleep(scaled(3))
        after = rss_kib(d.proc.pid)
        print(f"RSS after 2,000 conversations: {before} KiB; after 10,000 more: {after} KiB")
        # Flat: no per-conversation growth (10,000 kept would be megabytes).
        self.assertLess(after - before, 2048, f"RSS grew from {before} KiB to {after} KiB")
        # The table drained, and new conversations still work.
        c = d.call({"op": "authenticate", "service": "flood", "user": "demo"})
        self.assertEqual(c["error"], "challenge", c)
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["1"]})
        self.assertTrue(r["ok"], r)
        s.close()

    def test_kill9_mid_conversation_leaves_no_session(self):
        d = self.start()
        c = self.begin(d, op="login", password="demo-password")
        d.kill9()
        d.start()
        r = d.call({"op": "respond", "conversation": c["conversation"], "answers": ["424242"]})
        self.assertEqual(r["error"], "invalid_conversation", r)
        listed = d.ctl("sessions", "list", json_out=True)
        self.assertEqual(listed.returncode, 0, listed.stdout + listed.stderr)
        self.assertEqual(listed.json["sessions"], [])


if __name__ == "__main__":
    unittest.main()
