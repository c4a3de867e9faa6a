#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark (not a test): wrk against nginx, the same sample app with
auth_request to latch-http and without (the /open/ baseline location).
The goal: with auth at least 0.5x the requests per second of without.

Usage: bench/http.py [BUILDDIR] [--seconds N] [--connections N] [--threads N]
Prints both figures, their ratio, and one JSON line at the end.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlencode

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "examples", "nginx"))
from latchdemo import Stack  # noqa: E402


def curl(*args):
    return subprocess.run(["curl", "-sS", "-i", "--max-time", "60"] + list(args), capture_output=True, check=True)


def wrk(url, seconds, connections, threads, cookie=None):
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0, "p99": p99.group(1) if p99 else None,
            "raw": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builddir", nargs="?", default=os.path.join(SRC, "build"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    b = os.path.abspath(a.builddir)
    tmp = tempfile.mkdtemp(prefix="latch-http-bench-")
    plugins = os.path.join(tmp, "plugins")
    os.makedirs(plugins)
    os.symlink(Stack.find_plugin(b, "file"), os.path.join(plugins, "file.so"))
    latchd = stack = None
    try:
        latchd, sock = Stack.start_latchd(tmp, os.path.join(b, "daemon", "latchd"),
                                          os.path.join(b, "latchctl", "latchctl"), plugins, "demo",
                                          {"demo": ("demo-password", "users")})
        stack = Stack(tmp, os.path.join(b, "http", "latch-http"), sock).start(baseline=True, access_log=False)
        jar = os.path.join(tmp, "jar")
        curl("-c", jar, "-b", jar, stack.url("/login"))
        csrf = [l.split("\t")[6].strip() for l in open(jar) if "-csrf\t" in l][0]
        curl("-c", jar, "-b", jar, "-H", f"Origin: http://localhost:{stack.port}",
             "--data", urlencode({"csrf": csrf, "user": "demo", "password": "demo-password"}), stack.url("/login"))
        session = [l.split("\t")[6].strip() for l in open(jar) if "\t__Host-latch\t" in l][0]
        cookie = f"__Host-latch={session}"
        # (The file by its name: "/static/" would redirect internally to
        # the index, and nginx would run the auth_request twice.)
        for path in ("/app/", "/static/index.html"):
            ok = curl("-H", f"Cookie: {cookie}", stack.url(path))
            assert b" 200 " in ok.stdout.split(b"\r\n")[0], ok.stdout[:200]
            denied = curl(stack.url(path))
            assert b" 303 " in denied.stdout.split(b"\r\n")[0], denied.stdout[:200]

        # A short warm-up of both, then the measured runs.
        wrk(stack.url("/open/"), 2, a.connections, a.threads)
        wrk(stack.url("/app/"), 2, a.connections, a.threads, cookie)
        results = {"seconds": a.seconds, "connections": a.connections, "threads": a.threads}
        bad = 0
        # The sample app (a Python server) behind nginx, then a static file
        # nginx serves itself: the harshest case for the ratio.
        for label, open_path, auth_path in (("app", "/open/", "/app/"),
                                            ("static", "/open-static/index.html", "/static/index.html")):
            without = wrk(stack.url(open_path), a.seconds, a.connections, a.threads)
            with_auth = wrk(stack.url(auth_path), a.seconds, a.connections, a.threads, cookie)
            ratio = with_auth["rps"] / without["rps"]
            print(f"{label}: without auth_request {without['rps']:.0f} req/s (p99 {without['p99']}), "
                  f"with {with_auth['rps']:.0f} req/s (p99 {with_auth['p99']}): ratio {ratio:.2f} (goal >= 0.5)")
            bad += with_auth["non_2xx"] + without["non_2xx"]
            results[label] = {"without_rps": without["rps"], "with_rps": with_auth["rps"], "ratio": round(ratio, 3)}
        stub = wrk(stack.url("/stub-static/index.html"), a.seconds, a.connections, a.threads)
        print(f"ceiling: the same file behind an auth_request that nginx answers itself: {stub['rps']:.0f} req/s "
              f"(ratio {stub['rps'] / results['static']['without_rps']:.2f})")
        results["stub_rps"] = stub["rps"]
        bad += stub["non_2xx"]
        results["non_2xx"] = bad
        print(json.dumps(results))
        return 0 if bad == 0 else 1
    finally:
        if stack:
            stack.stop()
        if latchd:
            latchd.terminate()
            latchd.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
