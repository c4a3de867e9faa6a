#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Validate throughput of the Python and Node clients at N concurrent
callers, beside liblatch doing the same and each language's Redis client
doing a GET of a 200-byte value, in one run on one machine.

    bench/bindings.py [--build build] [--duration 5] [--callers 16] [--json]

Starts a scratch latchd (as the e2e tests do) and a redis-server on a Unix
socket of its own, both torn down at the end. Rows:
  python Client (threads)    16 threads sharing one latch.Client
  python AsyncClient (tasks) 16 asyncio tasks sharing one latch.AsyncClient
  redis-py (threads/tasks)   the same with redis.Redis / redis.asyncio GET
  liblatch (C threads)       16 POSIX threads, one latch_client each, calling
                             latch_validate() (bench/bindings-liblatch.c)
  node Client                16 concurrent async loops on one @latch/client
  node-redis                 the same with node-redis GET
Needs python3-redis and, for the Node rows, node and npm's redis package
(tests/bindings/run-node-tests fetches it into ~/.cache/latch-node).
"""

import argparse
import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure_threads(n, duration, make_call):
    """Ops per second of n threads, each calling its own make_call() result,
    counted over `duration` seconds after a warm-up of a tenth of it."""
    calls = [make_call() for _ in range(n)]
    stop = threading.Event()
    counts = [0] * n

    def worker(i):
        call = calls[i]
        while not stop.is_set():
            call()
            counts[i] += 1
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    time.sleep(duration * 0.1)
    base, t0 = sum(counts), time.monotonic()
    time.sleep(duration)
    done, t1 = sum(counts), time.monotonic()
    stop.set()
    for t in ts:
        t.join()
    return (done - base) / (t1 - t0)


def measure_tasks(n, duration, make_coro_fn, setup=None, teardown=None):
    """The same with n asyncio tasks in one loop."""
    async def run():
        ctx = await setup() if setup else None
        fn = make_coro_fn(ctx)
        stop = False
        counts = [0] * n

        async def worker(i):
            while not stop:
                await fn()
                counts[i] += 1
        tasks = [asyncio.ensure_future(worker(i)) for i in range(n)]
        await asyncio.sleep(duration * 0.1)
        base, t0 = sum(counts), time.monotonic()
        await asyncio.sleep(duration)
        done, t1 = sum(counts), time.monotonic()
        stop = True
        await asyncio.gather(*tasks)
        if teardown:
            await teardown(ctx)
        return (done - base) / (t1 - t0)
    return asyncio.run(run())


NODE_BENCH = r"""
const [,, libDir, modules, sock, redisSock, session, callers, duration] = process.argv;
const L = await import(libDir + '/index.js');
const { createRequire } = await import('node:module');
async function run(call) {
  let stop = false, count = 0;
  const loop = async () => { while (!stop) { await call(); count++; } };
  const ps = Array.from({ length: +callers }, loop);
  await new Promise((r) => setTimeout(r, +duration * 100));
  const base = count, t0 = performance.now();
  await new Promise((r) => setTimeout(r, +duration * 1000));
  const done = count, t1 = performance.now();
  stop = true;
  await Promise.all(ps);
  return (done - base) / ((t1 - t0) / 1000);
}
const out = {};
const c = new L.Client({ socketPath: sock, connections: 2 });
out.node_latch = await run(() => c.validate(session));
c.close();
try {
  const redis = createRequire(modules + '/x.js')('redis');
  const r = redis.createClient({ socket: { path: redisSock } });
  await r.connect();
  out.node_redis = await run(() => r.get('k'));
  await r.quit();
} catch (e) { out.node_redis_error = String(e.message || e); }
console.log(JSON.stringify(out));
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--callers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2,
                    help="each latch/Redis pair runs in the order latch, Redis, Redis, latch this many times / 2")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ.setdefault("LATCHD", os.path.join(build, "daemon", "latchd"))
    os.environ.setdefault("LATCHCTL", os.path.join(build, "latchctl", "latchctl"))
    for so in glob.glob(os.path.join(build, "plugins", "**", "*.so"), recursive=True):
        os.environ.setdefault("LATCH_PLUGIN_" + os.path.basename(so)[:-3].upper(), so)
    sys.path[:0] = [os.path.join(TOP, "bindings", "python"), os.path.join(TOP, "tests", "e2e")]
    import harness
    import latch
    try:
        import redis
        import redis.asyncio
    except ImportError:
        redis = None
        print("# python3-redis is not installed: no redis-py rows", file=sys.stderr)

    tmp = tempfile.mkdtemp(prefix="latch-bindings-bench-")
    d = harness.Daemon(tmp)
    rsock = os.path.join(tmp, "redis.sock")
    rproc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", rsock, "--save", "", "--appendonly", "no",
                              "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = {}
    try:
        d.start()
        deadline = time.monotonic() + 10
        while not os.path.exists(rsock) and time.monotonic() < deadline:
            time.sleep(0.05)
        r = redis.Redis(unix_socket_path=rsock, max_connections=a.callers * 2) if redis else None
        if r:
            r.set("k", "v" * 200)
        else:
            subprocess.run(["redis-cli", "-s", rsock, "set", "k", "v" * 200], check=True, stdout=subprocess.DEVNULL)
        c = latch.Client(d.sock, pool_size=a.callers)
        session = c.login("demo", "demo", "demo-password")["session"]
        n, dur = a.callers, a.duration

        def pair(name_a, fa, name_b, fb):
            # The machine is shared and noisy: alternate, then average.
            if redis is None:
                rows[name_a] = fa()
                return
            ra, rb = [], []
            for i in range(max(1, a.rounds)):
                if i % 2 == 0:
                    ra.append(fa())
                    rb.append(fb())
                else:
                    rb.append(fb())
                    ra.append(fa())
            rows[name_a] = sum(ra) / len(ra)
            rows[name_b] = sum(rb) / len(rb)

        pair("python Client (threads)", lambda: measure_threads(n, dur, lambda: (lambda: c.validate(session))),
             "redis-py GET (threads)", lambda: measure_threads(n, dur, lambda: (lambda: r.get("k"))))

        async def lsetup():
            return latch.AsyncClient(d.sock)

        async def lclose(x):
            await x.close()

        async def rsetup():
            return redis.asyncio.Redis(unix_socket_path=rsock, max_connections=n * 2)

        async def rclose(x):
            await x.close()
        pair("python AsyncClient (tasks)",
             lambda: measure_tasks(n, dur, lambda x: (lambda: x.validate(session)), lsetup, lclose),
             "redis-py asyncio GET (tasks)",
             lambda: measure_tasks(n, dur, lambda x: (lambda: x.get("k")), rsetup, rclose))

        helper = os.path.join(build, "bench", "bindings-liblatch")
        lib_runs = []
        for _ in range(max(1, a.rounds)):
            out = subprocess.run([helper, d.sock, session, str(n), str(dur)], capture_output=True, text=True,
                                 check=True, timeout=dur * 10 + 60)
            lib_runs.append(json.loads(out.stdout)["ops_per_s"])
        rows["liblatch (C threads)"] = sum(lib_runs) / len(lib_runs)

        node = shutil.which("node")
        modules = os.environ.get("LATCH_NODE_MODULES") or os.path.expanduser("~/.cache/latch-node/node_modules")
        if node:
            script = os.path.join(tmp, "bench.mjs")
            with open(script, "w") as f:
                f.write(NODE_BENCH)
            runs = []
            for _ in range(max(1, a.rounds)):
                out = subprocess.run([node, script, os.path.join(TOP, "bindings", "node"), modules, d.sock, rsock,
                                      session, str(n), str(dur)], capture_output=True, text=True,
                                     timeout=dur * 10 + 60)
                runs.append(json.loads(out.stdout) if out.returncode == 0 else {"node_error": out.stderr[-400:]})
            res = runs[-1]
            for k in ("node_latch", "node_redis"):
                vals = [x[k] for x in runs if k in x]
                if vals:
                    res[k] = sum(vals) / len(vals)
            if "node_latch" in res:
                rows["node Client"] = res["node_latch"]
            if "node_redis" in res:
                rows["node-redis GET"] = res["node_redis"]
            for k in ("node_redis_error", "node_error"):
                if k in res:
                    print(f"# {k}: {res[k]}", file=sys.stderr)
        c.close()
    finally:
        d.stop()
        rproc.terminate()
        rproc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    pairs = [("python Client (threads)", "redis-py GET (threads)"),
             ("python AsyncClient (tasks)", "redis-py asyncio GET (tasks)"),
             ("node Client", "node-redis GET")]
    if a.json:
        print(json.dumps({"callers": a.callers, "duration": a.duration, "ops_per_s": rows}))
        return
    print(f"validate vs GET, {a.callers} concurrent callers, {a.duration:g} s per row (ops/s)")
    lib_rate = rows.get("liblatch (C threads)")
    for name, peer in pairs:
        if name in rows:
            mine = rows[name]
            other = rows.get(peer)
            ratio = f"{mine / other:.2f} x {peer}" if other else "(no redis figure)"
            vs_lib = f"{mine / lib_rate:.2f} x liblatch" if lib_rate else ""
            print(f"  {name:30s} {mine:10.0f}   {ratio:40s} {vs_lib}")
    for name in ("redis-py GET (threads)", "redis-py asyncio GET (tasks)", "node-redis GET",
                 "liblatch (C threads)"):
        if name in rows:
            print(f"  {name:30s} {rows[name]:10.0f}")


if __name__ == "__main__":
    main()
