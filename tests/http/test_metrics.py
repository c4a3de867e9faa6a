# SPDX-License-Identifier: MIT
"""Metrics: `latchctl stats --prometheus/--openmetrics`, latch-http's
/metrics listener and `latchctl status`, against the real latchd.

The Prometheus text is checked by promtool (Debian's prometheus package),
the OpenMetrics text by prometheus_client's strict OpenMetrics parser
(python3-prometheus-client); each check skips when its tool is missing.
Counters are read before and after known requests and must move by
exactly what was asked."""

import json
import os
import stat
import re
import shutil
import socket
import subprocess
import unittest

import harness
from httptest import CURL, HttpTest

PROMTOOL = shutil.which("promtool")
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
except ImportError:
    om_parse = None


def samples(text):
    """{(name, frozenset(labels)): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def get(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics(HttpTest):
    def ctl_metrics(self, fmt):
        r = self.d.ctl("stats", "--" + fmt)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def promtool(self, text):
        if not PROMTOOL:
            return
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\n" + text)
        self.assertEqual(r.stdout + r.stderr, "", text)

    def openmetrics(self, text):
        self.assertTrue(text.endswith("# EOF\n"), repr(text[-200:]))
        if not om_parse:
            return {}
        families = {f.name: f for f in om_parse(text)}
        return families

    def activity(self):
        """3 validates of unknown sessions, 2 good logins, 1 wrong password."""
        for _ in range(3):
            r = self.d.ctl("validate", "A" * 43)
            self.assertEqual(r.returncode, 1, r.stderr)
        for _ in range(2):
            harness.DaemonTest.login(self, self.d)
        r = self.d.ctl("login", "demo", "demo", input="wrong\n")
        self.assertEqual(r.returncode, 1, r.stderr)

    def test_latchctl_prometheus_and_openmetrics(self):
        text = self.ctl_metrics("prometheus")
        self.promtool(text)
        self.assertNotIn("# EOF", text)
        om = self.ctl_metrics("openmetrics")
        families = self.openmetrics(om)
        if families:
            self.assertEqual(families["latch_requests"].type, "counter")
            self.assertEqual(families["latch_request_duration_seconds"].type, "histogram")
            self.assertEqual(families["latch_request_duration_seconds"].unit, "seconds")
            self.assertEqual(families["latch_build"].type, "info")
            self.assertEqual(families["latch_sessions_stored"].type, "gauge")
            self.assertEqual(families["latch_conversations_open"].type, "gauge")
        for name in ("latch_up", "latch_build_info", "latch_requests_total", "latch_logins_total",
                     "latch_sessions_stored", "latch_sweeps_total", "latch_throttle_delayed_total",
                     "latch_faillock_refusals_total", "latch_password_changes_total",
                     "latch_expired_password_changes_total", "latch_password_change_revoked_sessions_total",
                     "latch_worker_jobs", "latch_signing_key_age_seconds",
                     "latch_store_map_bytes", "latch_conversations_open", "latch_request_duration_seconds_bucket"):
            self.assertRegex(text, r"(?m)^" + name + r"[ {]")

    def test_dashboard_queries_known_metrics(self):
        # examples/grafana-latch.json: valid JSON whose every query names
        # metrics latchd exposes (a renamed metric would blank a panel).
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "grafana-latch.json")
        with open(src) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreater(len(exprs), 10)
        harness.DaemonTest.login(self, self.d)
        self.d.ctl("validate", "A" * 43)  # an error answer, so that error series exist
        text = self.ctl_metrics("prometheus")
        names = {k[0] for k in samples(text)}
        used = set()
        for e in exprs:
            used |= set(re.findall(r"\b(latch_[a-z_]+)", e))
        self.assertEqual(sorted(n for n in used if n not in names), [])
        self.assertIn("latch_request_duration_seconds_bucket", used)

    def test_counters_move(self):
        before = samples(self.ctl_metrics("prometheus"))
        self.activity()
        text = self.ctl_metrics("prometheus")
        self.promtool(text)
        after = samples(text)

        def moved(name, **labels):
            return get(after, name, **labels) - get(before, name, **labels)

        self.assertEqual(moved("latch_requests_total", op="validate"), 3)
        self.assertEqual(moved("latch_request_errors_total", op="validate", code="invalid_session"), 3)
        self.assertEqual(moved("latch_requests_total", op="login"), 3)
        self.assertEqual(moved("latch_logins_total", outcome="ok"), 2)
        self.assertEqual(moved("latch_logins_total", outcome="denied"), 1)
        self.assertEqual(moved("latch_request_errors_total", op="login", code="denied"), 1)
        self.assertEqual(moved("latch_sessions_stored"), 2)
        # The histogram: +Inf and _count moved by the requests, buckets
        # cumulative, the sum positive.
        self.assertEqual(moved("latch_request_duration_seconds_count", op="validate"), 3)
        self.assertEqual(moved("latch_request_duration_seconds_bucket", op="login", le="+Inf"), 3)
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                         if k[0] == "latch_request_duration_seconds_bucket" and dict(k[1])["op"] == "login")
        self.assertGreater(len(buckets), 2)
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertEqual(buckets[-1][1], get(after, "latch_request_duration_seconds_count", op="login"))
        self.assertGreater(get(after, "latch_request_duration_seconds_sum", op="login"), 0)
        # The wrong password made the backoff count a delay only once it
        # applies; it tracks the user and the address.
        self.assertGreaterEqual(get(after, "latch_throttle_keys"), 1)
        self.assertEqual(get(after, "latch_up"), 1)

    def test_faillock_refusals_counted(self):
        self.d.write_service("locked", "auth requisite {faillock} deny=1 unlock_time=10min\n"
                             "auth required {file} path={users}\naccount required {file} path={users}\n"
                             .format(faillock=harness.PLUGINS.get("faillock", "faillock"),
                                     file=harness.PLUGINS.get("file", "file"), users=self.d.users))
        self.assertEqual(self.d.ctl("reload").returncode, 0)
        before = samples(self.ctl_metrics("prometheus"))
        r = self.d.ctl("authenticate", "locked", "demo", input="wrong\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        for _ in range(2):  # locked now: faillock refuses, even the right password
            r = self.d.ctl("authenticate", "locked", "demo", input="demo-password\n")
            self.assertEqual(r.returncode, 1, r.stderr)
        after = samples(self.ctl_metrics("prometheus"))
        self.assertEqual(get(after, "latch_faillock_refusals_total") - get(before, "latch_faillock_refusals_total"), 2)

    def test_password_change_counters(self):
        # The debug plugin gives each result on demand; the file plugin
        # checks the login's password.
        plug = {k: harness.PLUGINS.get(k, k) for k in ("debug", "file")}
        auth = "auth required {file} path={users}\n".format(users=self.d.users, **plug)
        account = "account required {file} path={users}\n".format(users=self.d.users, **plug)
        expired = "account required {debug} acct=new_authtok_reqd\n".format(**plug)
        password = "password required {debug} ".format(**plug)
        for name, text in (("pw", auth + account + password + "password=success\n"),
                           ("pwrefused", auth + account + password + "password_update=authtok_err\n"),
                           ("pwdown", auth + account + password + "password=authinfo_unavail\n"),
                           ("expired", auth + expired + password + "password=success\n"),
                           ("expiredrefused", auth + expired + password + "password_update=authtok_err\n")):
            self.d.write_service(name, text)
        self.assertEqual(self.d.ctl("reload").returncode, 0)
        before, stats_before = samples(self.ctl_metrics("prometheus")), self.d.ctl("stats", json_out=True).json

        def call(req):
            return self.d.call(req, timeout=60)  # refusals make the backoff wait

        def login(service="demo"):
            r = call({"op": "login", "service": service, "user": "demo", "password": "demo-password"})
            self.assertTrue(r.get("ok"), r)
            return r

        # A change through passwd revokes demo's two sessions.
        login(), login()
        r = call({"op": "passwd", "service": "pw", "user": "demo"})
        self.assertEqual((r.get("ok"), r.get("revoked")), (True, 2), r)
        # Refused: the new password is not accepted.
        self.assertEqual(call({"op": "passwd", "service": "pwrefused", "user": "demo"})["error"], "denied")
        # A backend that is down refuses nothing: not counted.
        self.assertEqual(call({"op": "passwd", "service": "pwdown", "user": "demo"})["error"], "unavailable")
        # An expired password changed inside a login: one more change, and
        # the session made before it revoked.
        login()
        r = login("expired")
        self.assertEqual((r.get("password_changed"), r.get("revoked")), (True, 1), r)
        # An expired password whose change is refused: a refusal, no login.
        r = call({"op": "login", "service": "expiredrefused", "user": "demo", "password": "demo-password"})
        self.assertEqual(r["error"], "denied", r)
        # A login and an authenticate that change nothing count nothing.
        login()
        self.assertTrue(call({"op": "authenticate", "service": "demo", "user": "demo",
                              "password": "demo-password"})["ok"])

        text = self.ctl_metrics("prometheus")
        self.promtool(text)
        after = samples(text)

        def moved(name, **labels):
            return get(after, name, **labels) - get(before, name, **labels)

        self.assertEqual(moved("latch_password_changes_total", outcome="ok"), 2)
        self.assertEqual(moved("latch_password_changes_total", outcome="refused"), 2)
        self.assertEqual(moved("latch_expired_password_changes_total"), 1)
        self.assertEqual(moved("latch_password_change_revoked_sessions_total"), 3)
        self.assertEqual(moved("latch_logins_total", outcome="ok"), 5)
        self.assertEqual(moved("latch_logins_total", outcome="denied"), 1)

        stats = self.d.ctl("stats", json_out=True).json
        self.assertEqual({k: v - stats_before["password_changes"][k] for k, v in stats["password_changes"].items()},
                         {"ok": 2, "refused": 2, "expired": 1, "revoked_sessions": 3})
        families = self.openmetrics(self.ctl_metrics("openmetrics"))
        if families:
            for name in ("latch_password_changes", "latch_expired_password_changes",
                         "latch_password_change_revoked_sessions"):
                self.assertEqual(families[name].type, "counter", name)

    def test_http_metrics_listener(self):
        if not CURL:
            self.skipTest("curl is not installed")
        port = free_port()
        sock = os.path.join(self.tmp, "metrics.sock")
        for listen in (f"127.0.0.1:{port}", sock):
            self.start_stack(nginx=False, http_conf=f"metrics_listen = {listen}\n")
            if listen == sock:
                # Group-readable only, whatever latch-http's umask.
                self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o660)
                base = ["--unix-socket", sock, "http://localhost"]
            else:
                base = [f"http://127.0.0.1:{port}"]

            def fetch(path="/metrics", *args):
                r = subprocess.run([CURL, "-sS", "-i", *args, *base[:-1], base[-1] + path],
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                head, _, body = r.stdout.decode().partition("\r\n\r\n")
                return int(head.split()[1]), head.lower(), body

            status, head, text = fetch()
            self.assertEqual(status, 200, head)
            self.assertIn("content-type: text/plain; version=0.0.4", head)
            self.promtool(text)
            before = samples(text)
            self.activity()
            status, head, text = fetch("/metrics", "-H",
                                       "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
            self.assertEqual(status, 200)
            self.assertIn("content-type: application/openmetrics-text; version=1.0.0", head)
            self.openmetrics(text)
            after = samples(text)
            self.assertEqual(get(after, "latch_requests_total", op="validate") -
                             get(before, "latch_requests_total", op="validate"), 3)
            self.assertEqual(get(after, "latch_logins_total", outcome="ok") -
                             get(before, "latch_logins_total", outcome="ok"), 2)
            # Only /metrics is there; the login site is not.
            self.assertEqual(fetch("/login")[0], 404)
            self.assertEqual(fetch("/auth")[0], 404)
            self.stack.stop()
            self.stack = None
        # And the login site has no /metrics.
        self.start_stack(nginx=False, http_conf=f"metrics_listen = 127.0.0.1:{port}\n")
        r = self.curl("/metrics", direct=True)
        self.assertEqual(r.status, 404)

    def test_metrics_off_by_default_and_loopback_only(self):
        self.start_stack(nginx=False)
        self.assertNotIn("/metrics", self.stack.http_log_text())
        conf = os.path.join(self.tmp, "m.conf")
        for bad in ("0.0.0.0:9100", "192.168.1.2:9100", "[::]:9100", "example.com:9100", "127.0.0.1:0",
                    "127.0.0.1", "relative/path.sock"):
            with open(conf, "w") as f:
                f.write(f"[http]\nmetrics_listen = {bad}\n")
            r = subprocess.run([os.environ.get("LATCH_HTTP", "latch-http"), "--config", conf, "--check-config"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(f"{conf}:2:", r.stderr)

    def test_latch_down_is_latch_up_0(self):
        port = free_port()
        self.start_stack(nginx=False, http_conf=f"metrics_listen = 127.0.0.1:{port}\n")
        self.d.stop()
        r = subprocess.run([CURL, "-sS", f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.promtool(r.stdout)
        self.assertEqual(samples(r.stdout), {("latch_up", frozenset()): 0.0})


NOBODY = 65534


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
class StatsGroups(harness.DaemonTest):
    """[access] stats_groups admits a peer to `stats` (and so to status and
    the metrics) and to nothing else of the admin ops."""

    group = "latchmon-e2e"

    def setUp(self):
        super().setUp()
        subprocess.run(["groupdel", self.group], capture_output=True)
        subprocess.run(["groupadd", "-r", self.group], check=True)
        self.gid = int(subprocess.run(["getent", "group", self.group], capture_output=True, text=True,
                                      check=True).stdout.split(":")[2])

    def tearDown(self):
        super().tearDown()
        subprocess.run(["groupdel", self.group], capture_output=True)

    def ctl_as(self, d, groups, *args):
        grp = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}"] + grp + ["--", harness.LATCHCTL, "--socket",
                                                                           d.sock] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    def test_stats_groups(self):
        d = self.daemon(config_extra=f"[access]\nstats_groups = {self.group}\n")
        os.chmod(d.sock, 0o666)
        os.chmod(self.tmp, 0o755)
        for args in (["stats"], ["status"], ["stats", "--prometheus"]):
            r = self.ctl_as(d, None, *args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn("needs an admin peer or one in [access] stats_groups", r.stderr)
            r = self.ctl_as(d, [self.gid], *args)
            self.assertEqual(r.returncode, 0, f"{args}: {r.stdout}{r.stderr}")
        for args in (["sessions", "list"], ["keys", "rotate"], ["reload"], ["sessions", "revoke", "--user", "demo"]):
            r = self.ctl_as(d, [self.gid], *args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn("needs an admin peer", r.stderr)


class Status(HttpTest):
    def test_status_screen_and_json(self):
        harness.DaemonTest.login(self, self.d)
        r = self.d.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        lines = out.splitlines()
        self.assertLessEqual(len(lines), 24, out)
        self.assertRegex(lines[0], r"^latchd \S+, up \d+s$")
        self.assertIn(f"Socket:    {self.d.sock}", out)
        self.assertRegex(out, r"(?m)^  demo +auth: file; account: file$")
        kid = self.d.ctl("stats", json_out=True).json["keys"]["current"]
        self.assertRegex(out, rf"(?m)^Keys:      current {kid}, age \d+s$")
        self.assertIn("rotated only on 'latchctl keys rotate'", out)
        self.assertRegex(out, r"(?m)^Sessions:  1 stored$")
        self.assertRegex(out, r"(?m)^Store:     [\d.]+ [KMG]iB on disk, map [\d.]+ [KMG]iB used of [\d.]+ [KMG]iB \(\d+%\)$")
        self.assertRegex(out, r"(?m)^Errors:    0 unavailable/internal in the last 15 min$")

        j = self.d.ctl("status", json_out=True)
        self.assertEqual(j.returncode, 0, j.stderr)
        s = j.json
        self.assertEqual(s["socket"], self.d.sock)
        self.assertEqual(s["services"], [{"name": "demo", "auth": ["file"], "account": ["file"], "password": []}])
        self.assertEqual(s["keys"]["current"], kid)
        self.assertIsNone(s["keys"]["next_rotation"])
        self.assertEqual(s["store"]["sessions"], 1)
        self.assertGreater(s["store"]["file_bytes"], 0)
        self.assertGreater(s["store"]["map_bytes"], 0)
        self.assertTrue(0 < s["store"]["map_used"] <= 1)
        self.assertEqual(s["recent_errors"], {"minutes": 15, "count": 0})
        self.assertRegex(s["version"], r"^\d+\.\d+")


class StatusRotation(HttpTest):
    daemon_config = "[token]\nrotate_every = 1d\n"

    def test_next_rotation(self):
        s = self.d.ctl("status", json_out=True).json
        self.assertEqual(s["keys"]["next_rotation"], s["keys"]["created_at"] + 86400)
        self.assertEqual(s["keys"]["rotate_every"], 86400)
        out = self.d.ctl("status").stdout
        self.assertRegex(out, r"next rotation \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


if __name__ == "__main__":
    unittest.main()
