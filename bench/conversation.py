#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a conversation costs: a two-step login (the password sent, then a
code asked through a prompting `debug` line and sent with `respond`) against
the one-step login of the same stack without the prompt, and one round trip
(`hello`), on one connection, one request at a time.

    bench/conversation.py [--build build] [--count 2000] [--json]

The stacks hash nothing (debug lines), so the figure is the conversation's
own cost: the challenge, the table, the second pass through the pool. The
target: two-step ≤ one-step + one round trip (ratio ≤ 1). Starts a scratch
latchd, torn down at the end.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(s, obj):
    b = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(b)) + b)
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL))


def timed(n, fn):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {"mean_us": sum(lat) / n * 1e6, "p50_us": lat[n // 2] * 1e6, "p99_us": lat[n * 99 // 100] * 1e6}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)

    tmp = tempfile.mkdtemp(prefix="latch-bench-conv-")
    os.makedirs(os.path.join(tmp, "services"))
    os.makedirs(os.path.join(tmp, "plugins"))
    os.symlink(os.path.join(a.build, "plugins", "debug.so"), os.path.join(tmp, "plugins", "debug.so"))
    with open(os.path.join(tmp, "services", "one"), "w") as f:
        f.write("auth required debug\naccount required debug\n")
    with open(os.path.join(tmp, "services", "two"), "w") as f:
        f.write("auth required debug ask=secret:Code: expect=123456\naccount required debug\n")
    sock = os.path.join(tmp, "latchd.sock")
    with open(os.path.join(tmp, "latchd.conf"), "w") as f:
        f.write(f"[daemon]\nsocket = {sock}\nstate_dir = state\nservices_dir = services\nplugin_dir = plugins\n"
                "jwks_file = jwks.json\n[throttle]\nenabled = no\n")
    log = open(os.path.join(tmp, "latchd.log"), "w")
    d = subprocess.Popen([os.path.join(a.build, "daemon", "latchd"), "--config", os.path.join(tmp, "latchd.conf")],
                         stdout=log, stderr=log)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("latchd did not start:\n" + open(os.path.join(tmp, "latchd.log")).read())
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)

        def one():
            r = call(s, {"op": "login", "service": "one", "user": "u", "password": "pw"})
            assert r["ok"], r

        def two():
            c = call(s, {"op": "login", "service": "two", "user": "u", "password": "pw"})
            assert c["error"] == "challenge", c
            r = call(s, {"op": "respond", "conversation": c["conversation"], "answers": ["123456"]})
            assert r["ok"], r

        def hello():
            assert call(s, {"op": "hello"})["ok"]

        for fn in (one, two, hello):  # warm-up
            timed(max(1, a.count // 10), fn)
        res = {"count": a.count, "one_step": timed(a.count, one), "two_step": timed(a.count, two),
               "round_trip": timed(a.count, hello)}
        res["ratio"] = res["two_step"]["mean_us"] / (res["one_step"]["mean_us"] + res["round_trip"]["mean_us"])
        res["met"] = res["ratio"] <= 1.0
        if a.json:
            print(json.dumps(res))
        else:
            print(f"two-step login (password + code): {res['two_step']['mean_us']:.0f} µs mean, "
                  f"one-step {res['one_step']['mean_us']:.0f} µs, round trip (hello) "
                  f"{res['round_trip']['mean_us']:.0f} µs; ratio two-step / (one-step + round trip) "
                  f"{res['ratio']:.2f} (target ≤ 1: {'met' if res['met'] else 'NOT met'})")
        s.close()
    finally:
        d.terminate()
        d.wait(timeout=30)
        log.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
