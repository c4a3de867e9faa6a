#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a `totp` line adds to a whole login, through a real latchd.

Starts a scratch latchd (tests/e2e/harness.py) with three services:
`bench-permit` (auth required permit), `bench-ask` (the same, then a debug
line that asks for a code and accepts any answer: a conversation with no
check) and `bench-totp` (the same with a totp window=10 line instead). It
enrolls N users through the plugin op and logs each user in once on each
service, in turn, one login at a time on one connection: `login` with the
password; on bench-ask and bench-totp, the `challenge` it answers and
`respond` with the code. Prints the median and p90 of each, in
microseconds, and what each step adds (medians of the per-user
differences): the conversation's round trip (ask - permit) and the totp
check (totp - ask: reading the record, the codes, recording the step), the
latter next to the 50 µs budget.

With --check-bench PATH it first runs latch-bench-totp (bench/totp-check.c)
on the same disk, so that both figures come from one run. With --client
PATH it then logs every user in again the same way through
latch-bench-login (bench/login-client.c, liblatch), on the same latchd,
with the next time step's code, and prints those figures too: the Python
client's own work (JSON, a system call more per request) is in the first
table's round trip, not in the second's. That client also times the floor
of one more request in the same rhythm (right after a login's answer):
latchd's `hello` and, when redis-server is installed, a Redis PING over a
Unix socket (a scratch redis-server). A second factor asks the client, so
the totp line costs at least one such round trip; what it adds beyond one
`hello` is printed next to the 50 µs budget too.

Needs the environment meson's e2e tests get (LATCHD, LATCHCTL,
LATCH_PLUGIN_PERMIT, LATCH_PLUGIN_DEBUG, LATCH_PLUGIN_TOTP) and
PYTHONPATH=tests/e2e, e.g.:

  B=$PWD/build; LATCHD=$B/daemon/latchd LATCHCTL=$B/latchctl/latchctl \\
  LATCH_PLUGIN_PERMIT=$B/plugins/permit.so LATCH_PLUGIN_DEBUG=$B/plugins/debug.so \\
  LATCH_PLUGIN_TOTP=$B/plugins/totp/totp.so PYTHONPATH=tests/e2e \\
  python3 bench/totp-login.py --users 300 --check-bench $B/bench/latch-bench-totp \\
    --client $B/bench/latch-bench-login
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from harness import Daemon


def totp(secret_b32, step, digits=6):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    v = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return f"{v % 10 ** digits:0{digits}d}"


def start_redis(path):
    """A scratch redis-server on a Unix socket only, nothing saved."""
    p = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", path, "--save", "",
                          "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(path):
            return p
        time.sleep(0.05)
    p.terminate()
    sys.exit("redis-server did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check-bench", metavar="PATH", help="latch-bench-totp, run first on the same disk")
    ap.add_argument("--iterations", type=int, default=2000, help="latch-bench-totp's --iterations")
    ap.add_argument("--client", metavar="PATH", help="latch-bench-login: the same logins from C, after")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="latch-bench-totp-login-")
    check = None
    if a.check_bench:
        check = subprocess.run([a.check_bench, "--json", "--iterations", str(a.iterations), "--dir", tmp,
                                os.environ["LATCH_PLUGIN_TOTP"]], capture_output=True, text=True, check=True)
        check = json.loads(check.stdout)
    d = Daemon(tmp, services={"bench-permit": "auth required permit\naccount required permit\n",
                              "bench-ask": "auth required permit\nauth required debug ask=secret:Code:\n"
                                           "account required permit\n",
                              "bench-totp": "auth required permit\nauth required totp window=10\n"
                                            "account required permit\n"},
               users={})
    redis = None
    try:
        d.start()
        s = d.connect()
        secrets = {}
        step = int(time.time()) // 30
        for i in range(a.users):
            user = f"u{i}"
            e = d.call({"op": "plugin", "plugin": "totp", "action": "enroll", "user": user}, sock=s)
            secrets[user] = e["secret"]
            c = d.call({"op": "plugin", "plugin": "totp", "action": "confirm", "user": user,
                        "code": totp(e["secret"], step - 1)}, sock=s)
            assert c["ok"], c

        plain, ask, with_totp = [], [], []

        def converse(service, user, answer):
            t0 = time.perf_counter_ns()
            r = d.call({"op": "login", "service": service, "user": user, "password": "x"}, sock=s)
            assert r.get("error") == "challenge", r
            r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [answer]}, sock=s)
            t1 = time.perf_counter_ns()
            assert r["ok"], r
            return (t1 - t0) / 1000

        for user, secret in secrets.items():
            t0 = time.perf_counter_ns()
            r = d.call({"op": "login", "service": "bench-permit", "user": user, "password": "x"}, sock=s)
            t1 = time.perf_counter_ns()
            assert r["ok"], r
            plain.append((t1 - t0) / 1000)
            code = totp(secret, int(time.time()) // 30)
            ask.append(converse("bench-ask", user, code))
            with_totp.append(converse("bench-totp", user, code))

        c_rows = None
        if a.client:
            # The next step: above every step the Python client had accepted,
            # inside window=10.
            step = int(time.time()) // 30 + 1
            lines = "".join(f"{u} {totp(sec, step)}\n" for u, sec in secrets.items())
            cmd = [a.client, d.sock]
            if shutil.which("redis-server"):
                redis = start_redis(os.path.join(tmp, "redis.sock"))
                cmd.append(os.path.join(tmp, "redis.sock"))
            r = subprocess.run(cmd, input=lines, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"latch-bench-login failed: {r.stderr.strip()}")
            c_rows = [tuple(float(x) for x in line.split()) for line in r.stdout.splitlines()]
            assert len(c_rows) == len(secrets), r.stdout
    finally:
        d.stop()
        if redis:
            redis.terminate()
            redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    def fig(xs):
        xs = sorted(xs)
        return {"median_us": round(statistics.median(xs), 1), "p90_us": round(xs[int(len(xs) * 0.9)], 1)}

    def paired(xs, ys):
        return round(statistics.median(y - x for x, y in zip(xs, ys)), 1)

    def figures(plain, ask, with_totp):
        f = {"logins": len(plain), "password_only": fig(plain), "password_and_any_answer": fig(ask),
             "password_and_code": fig(with_totp)}
        f["round_trip_added_us"] = paired(plain, ask)
        f["check_added_us"] = paired(ask, with_totp)
        f["totp_line_added_us"] = paired(plain, with_totp)
        f["check_vs_50us"] = round(f["check_added_us"] / 50, 2)
        f["totp_line_vs_50us"] = round(f["totp_line_added_us"] / 50, 2)
        return f

    out = figures(plain, ask, with_totp)
    if c_rows:
        c_plain, c_ask, c_totp, c_hello, c_ping = zip(*c_rows)
        f = out["c_client"] = figures(c_plain, c_ask, c_totp)
        f["hello"] = fig(c_hello)
        if redis:
            f["redis_ping"] = fig(c_ping)
        # What the line adds beyond the request any second factor needs.
        f["totp_line_beyond_hello_us"] = paired([p + h for p, h in zip(c_plain, c_hello)], c_totp)
        f["totp_line_beyond_hello_vs_50us"] = round(f["totp_line_beyond_hello_us"] / 50, 2)
    if check:
        out["latch_bench_totp"] = check
    if a.json:
        print(json.dumps(out))
        return
    where = tmp.rsplit('/', 1)[0]
    if check:
        print(f"latch-bench-totp, {check['iterations']} checks each (state in {where}, commits synced)")
        print(f"{'':44} {'median µs':>10} {'p99 µs':>10}")
        for k, label in (("accepted", "accepted code, its own synced commit"),
                         ("refused", "refused code (a replay: no write)"),
                         ("codes", "the 3 HMAC-SHA-1 codes alone (window=1)"),
                         ("session", "a login's session write alone"),
                         ("login", "accepted code + session write, as in a login")):
            print(f"{label:44} {check[k]['median_us']:10.1f} {check[k]['p99_us']:10.1f}")
        print(f"{'added by the totp line, in process':44} {check['added_in_login_us']:10.1f}"
              f"   {check['added_in_login_us'] / 50:.2f} x the 50 µs budget")
        print()
    def table(f, client):
        print(f"through latchd from {client}, {a.users} logins each, one at a time "
              f"(state in {where}, commits synced)")
        print(f"{'':44} {'median µs':>10} {'p90 µs':>10}")
        for k, label in (("password_only", "login, permit (password only)"),
                         ("password_and_any_answer", "login + challenge + respond, debug (no check)"),
                         ("password_and_code", "login + challenge + respond, totp")):
            print(f"{label:44} {f[k]['median_us']:10.1f} {f[k]['p90_us']:10.1f}")
        print("added (median of the per-user differences):")
        print(f"{'  the conversation (debug - permit)':44} {f['round_trip_added_us']:10.1f}")
        print(f"{'  the totp check (totp - debug)':44} {f['check_added_us']:10.1f}"
              f"   {f['check_vs_50us']:.2f} x the 50 µs budget")
        print(f"{'  the whole totp line (totp - permit)':44} {f['totp_line_added_us']:10.1f}"
              f"   {f['totp_line_vs_50us']:.2f} x the 50 µs budget")
        if "hello" in f:
            print("one more request and answer, right after a login's answer:")
            print(f"{'  latchd hello':44} {f['hello']['median_us']:10.1f} {f['hello']['p90_us']:10.1f}")
            if "redis_ping" in f:
                print(f"{'  Redis PING (Unix socket)':44} {f['redis_ping']['median_us']:10.1f} "
                      f"{f['redis_ping']['p90_us']:10.1f}")
            print(f"{'  the totp line beyond one hello':44} {f['totp_line_beyond_hello_us']:10.1f}"
                  f"   {f['totp_line_beyond_hello_vs_50us']:.2f} x the 50 µs budget")

    table(out, "Python")
    if c_rows:
        print()
        table(out["c_client"], "C (liblatch)")


if __name__ == "__main__":
    sys.exit(main())
