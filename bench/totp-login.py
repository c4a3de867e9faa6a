#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a `totp` line adds to a whole login, through a real latchd.

Starts a scratch latchd (tests/e2e/harness.py) with two services that differ
only by a totp line, `bench-permit` (auth required permit) and `bench-totp`
(the same, then auth required totp window=10), enrolls N users through the
plugin op, and logs each user in once on each service, one login at a time
on one connection: `login` with the password on bench-permit; on bench-totp
`login`, the `challenge` it answers, and `respond` with the code. Prints the
median and p90 of each, in microseconds, and their difference.

Needs the environment meson's e2e tests get (LATCHD, LATCHCTL,
LATCH_PLUGIN_PERMIT, LATCH_PLUGIN_TOTP) and PYTHONPATH=tests/e2e, e.g.:

  B=$PWD/build; LATCHD=$B/daemon/latchd LATCHCTL=$B/latchctl/latchctl \\
  LATCH_PLUGIN_PERMIT=$B/plugins/permit.so LATCH_PLUGIN_TOTP=$B/plugins/totp/totp.so \\
  PYTHONPATH=tests/e2e python3 bench/totp-login.py --users 300
"""

import argparse
import base64
import hashlib
import hmac
import json
import shutil
import statistics
import struct
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="latch-bench-totp-login-")
    d = Daemon(tmp, services={"bench-permit": "auth required permit\naccount required permit\n",
                              "bench-totp": "auth required permit\nauth required totp window=10\n"
                                            "account required permit\n"},
               users={})
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

        plain, with_totp = [], []
        for user, secret in secrets.items():
            t0 = time.perf_counter_ns()
            r = d.call({"op": "login", "service": "bench-permit", "user": user, "password": "x"}, sock=s)
            t1 = time.perf_counter_ns()
            assert r["ok"], r
            plain.append((t1 - t0) / 1000)

            code = totp(secret, int(time.time()) // 30)
            t0 = time.perf_counter_ns()
            r = d.call({"op": "login", "service": "bench-totp", "user": user, "password": "x"}, sock=s)
            assert r.get("error") == "challenge", r
            r = d.call({"op": "respond", "conversation": r["conversation"], "answers": [code]}, sock=s)
            t1 = time.perf_counter_ns()
            assert r["ok"], r
            with_totp.append((t1 - t0) / 1000)
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def fig(xs):
        xs = sorted(xs)
        return {"median_us": round(statistics.median(xs), 1), "p90_us": round(xs[int(len(xs) * 0.9)], 1)}

    out = {"logins": a.users, "password_only": fig(plain), "password_and_code": fig(with_totp)}
    out["added_median_us"] = round(out["password_and_code"]["median_us"] - out["password_only"]["median_us"], 1)
    if a.json:
        print(json.dumps(out))
        return
    print(f"{a.users} logins each, one at a time (state on {tmp.rsplit('/', 1)[0]}, commits synced)")
    print(f"{'':44} {'median µs':>10} {'p90 µs':>10}")
    print(f"{'login, permit (password only)':44} {out['password_only']['median_us']:10.1f} "
          f"{out['password_only']['p90_us']:10.1f}")
    print(f"{'login + challenge + respond, permit + totp':44} {out['password_and_code']['median_us']:10.1f} "
          f"{out['password_and_code']['p90_us']:10.1f}")
    print(f"{'added by the totp line (medians)':44} {out['added_median_us']:10.1f}")


if __name__ == "__main__":
    sys.exit(main())
