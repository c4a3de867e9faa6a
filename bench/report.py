#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turns the result files of one bench/run into the table and the JSON file.

    report.py RESULTS_DIR OUT_JSON

Every figure is computed from measurements of this run only; a ratio's two
sides come from the same run.
"""

import glob
import json
import os
import statistics
import sys


def load(d, name):
    with open(os.path.join(d, name + ".json")) as f:
        return json.load(f)


def main():
    d, out = sys.argv[1], sys.argv[2]
    raw = {os.path.basename(p)[:-5]: json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, "*.json")))}
    machine = dict(raw["machine"], **raw["machine-end"])
    crypto = raw["crypto"]
    workers = machine["nproc"]
    rows = []
    figures = {}

    def fig(key, label, value, unit, target_text, met, detail=""):
        figures[key] = {"label": label, "value": value, "unit": unit, "target": target_text, "met": met,
                        "detail": detail}
        rows.append((label, value, unit, detail, target_text, met))

    def mean_of(prefix, field):
        runs = [v for k, v in raw.items() if k.startswith(prefix + "-r")]
        return statistics.mean(r[field] for r in runs), runs

    # Throughput against Redis GET, same clients, same socket family.
    for depth, name in ((1, "not pipelined"), (None, "pipelined")):
        vkeys = sorted(k for k in raw if k.startswith("validate-d") and k.endswith("-r1"))
        dk = "d1" if depth == 1 else [k.split("-")[1] for k in vkeys if k.split("-")[1] != "d1"][0]
        v, vr = mean_of("validate-" + dk, "rps")
        r, rr = mean_of("redis-" + dk, "rps")
        clients, dep = vr[0]["clients"], vr[0]["depth"]
        want = 1.0 if depth == 1 else 0.5
        fig(f"validate_throughput_{dk}", f"validate throughput, {clients} clients, {name} (depth {dep})",
            round(v), "req/s", f"≥ {want} × Redis GET", v >= want * r,
            f"Redis GET {r:.0f}/s; ratio {v / r:.2f}")
        figures[f"validate_throughput_{dk}"]["ratio"] = v / r
        figures[f"validate_throughput_{dk}"]["redis_rps"] = r

    _, vr = mean_of("validate-d1", "rps")
    p50 = max(x["p50_us"] for x in vr)
    p99 = max(x["p99_us"] for x in vr)
    _, rr = mean_of("redis-d1", "rps")
    fig("validate_latency", "validate latency p50 / p99, 16 clients (worse of 2 rounds)", round(p99),
        "µs (p99)", "p99 ≤ 1000 µs", p99 <= 1000,
        f"p50 {p50:.0f} µs; Redis GET p50 {max(x['p50_us'] for x in rr):.0f} / p99 {max(x['p99_us'] for x in rr):.0f} µs")
    figures["validate_latency"]["p50_us"] = p50

    _, vp = mean_of("validate-" + dk, "rps")
    _, rp = mean_of("redis-" + dk, "rps")
    pp99 = max(x["p99_us"] for x in vp)
    fig("validate_latency_pipelined",
        f"validate latency p99, {vp[0]['clients']} clients × {vp[0]['depth']} pipelined (worse of 2 rounds)",
        round(pp99), "µs (p99)", "p99 ≤ 5000 µs", pp99 <= 5000,
        f"p50 {max(x['p50_us'] for x in vp):.0f} µs, max {max(x['max_us'] for x in vp) / 1000:.1f} ms; "
        f"Redis GET p50 {max(x['p50_us'] for x in rp):.0f} / p99 {max(x['p99_us'] for x in rp):.0f} µs")

    # Throughput against connections, depth 1 (the plot's data).
    conns = sorted(int(k.split("-c")[1]) for k in raw if k.startswith("conns-validate-c"))
    if conns:
        pts = [(n, raw[f"conns-validate-c{n}"]["rps"], raw[f"conns-redis-c{n}"]["rps"]) for n in conns]
        fig("throughput_connections", "validate / Redis GET by connections, depth 1",
            round(min(v / r for _, v, r in pts), 2), "× (lowest)", "(plot; no target)", None,
            "; ".join(f"{n}: {v:.0f} vs {r:.0f}/s = {v / r:.2f}" for n, v, r in pts))
        figures["throughput_connections"]["points"] = [{"connections": n, "validate_rps": v, "redis_rps": r}
                                                        for n, v, r in pts]

    # Per request, counted (not timed): callgrind and perf stat.
    cnt = raw.get("counts", {})
    if cnt.get("validate_instructions") and cnt.get("validate_requests_counted"):
        per = cnt["validate_instructions"] / cnt["validate_requests_counted"]
        fig("instructions_validate", "user-space instructions per validate (callgrind, 16 clients, depth 1)",
            round(per), "instructions", "≤ 8,000", per <= 8000,
            f"{cnt['validate_instructions']:,} over {cnt['validate_requests_counted']:,} validates, loop and all")
    else:
        fig("instructions_validate", "user-space instructions per validate (callgrind)", None, "instructions",
            "≤ 8,000", False, "not counted: valgrind missing, or a sanitized build")
    if cnt.get("validate_syscalls") and cnt.get("syscalls_requests_counted"):
        per = cnt["validate_syscalls"] / cnt["syscalls_requests_counted"]
        fig("syscalls_validate", "syscalls per validate (perf stat, 16 clients, depth 1)", round(per, 2),
            "syscalls", "≤ 2.2", per <= 2.2,
            f"{cnt['validate_syscalls']:,} over {cnt['syscalls_requests_counted']:,} validates, every thread")
    else:
        fig("syscalls_validate", "syscalls per validate (perf stat)", None, "syscalls", "≤ 2.2", False,
            "not counted: perf or its raw_syscalls tracepoint unavailable")
    for op, fn, want in (("token", "crypto_sign_detached", 1.15), ("verify", "crypto_sign_verify_detached", 1.10)):
        if cnt.get(f"{op}_instructions") and cnt.get(f"{op}_requests_counted") and cnt.get(f"{fn}_instructions"):
            per = cnt[f"{op}_instructions"] / cnt[f"{op}_requests_counted"]
            raw_per = cnt[f"{fn}_instructions"] / cnt["ed25519_count"]
            fig(f"instructions_{op}", f"{op} op, instructions per request / one raw {fn}", round(per / raw_per, 3),
                "×", f"≤ {want} ×", per / raw_per <= want,
                f"{op} op {per:,.0f} instructions (callgrind, 16 clients, depth 1); {fn} {raw_per:,.0f} "
                f"({cnt.get('ed25519_bytes', 300)}-byte message: the tokens' signing input)")
            figures[f"instructions_{op}"]["ratio"] = per / raw_per
        else:
            fig(f"instructions_{op}", f"{op} op, instructions per request / one raw {fn}", None, "×",
                f"≤ {want} ×", False, "not counted: valgrind missing, or a sanitized build")

    sv, sl = raw["storm-validate"], raw["storm-login"]
    fig("validate_latency_storm", f"validate latency during a login storm ({sl['clients']} clients logging in)",
        round(sv["p99_us"]), "µs (p99)", "p99 ≤ 2000 µs", sv["p99_us"] <= 2000,
        f"p50 {sv['p50_us']:.0f} µs, {sv['rps']:.0f} validate/s; storm {sl['rps']:.1f} logins/s, "
        f"login p50 {sl['p50_us'] / 1000:.0f} ms, p99 {sl['p99_us'] / 1000:.0f} ms"
        + (f"; {sl['errors']} of {sl['requests']} logins answered `unavailable` (10 s deadline)" if sl["errors"] else ""))
    figures["validate_latency_storm"]["p50_us"] = sv["p50_us"]

    # The reference measured right before the login runs (argon2.json).
    argon = raw.get("argon2", crypto)
    t_argon = argon["argon2id_verify"]["ns"] / 1e9
    for n in (1, 2, 8):
        lg = raw[f"login-c{n}"]
        expect = min(n, workers) / t_argon
        ratio = lg["rps"] / expect
        fig(f"login_c{n}", f"login throughput, {n} client(s) (workers = {workers})", round(lg["rps"], 2),
            "logins/s", "≥ 0.9 × min(clients, workers) / argon2id time", ratio >= 0.9,
            f"expected {expect:.2f}/s (argon2id verify {t_argon * 1000:.1f} ms); ratio {ratio:.2f}; "
            f"p50 {lg['p50_us'] / 1000:.1f} ms, p99 {lg['p99_us'] / 1000:.1f} ms")
        figures[f"login_c{n}"]["ratio"] = ratio
    scale = raw["login-c2"]["rps"] / raw["login-c1"]["rps"]
    par = argon["argon2id_parallel"]
    fig("login_scaling", "login scaling, 2 clients / 1 client", round(scale, 2), "×",
        f"≈ {min(2, workers)} (scales with workers)", scale >= 0.9 * min(2, workers),
        f"in-process argon2id, {par['threads']} threads at once: {par['per_second']:.2f}/s = "
        f"{par['per_second'] * t_argon:.2f} × one thread; login at 8 clients = "
        f"{raw['login-c8']['rps'] / par['per_second']:.2f} × that")

    rs, js = crypto["raw_sign"]["ns"], crypto["jwt_sign"]["ns"]
    fig("token_issue", f"token issue in process ({crypto['claims_bytes']}-byte claims)", round(js / 1000, 2), "µs",
        "≤ 1.2 × crypto_sign_detached", js / rs <= 1.2,
        f"raw crypto_sign_detached {rs / 1000:.2f} µs; ratio {js / rs:.3f}")
    figures["token_issue"]["ratio"] = js / rs
    rv, lv, jv = crypto["raw_verify"]["ns"], crypto["latch_token_verify"]["ns"], crypto["jwt_verify"]["ns"]
    fig("token_verify", "token verify offline (latch_token_verify)", round(lv / 1000, 2), "µs",
        "≤ 1.1 × crypto_sign_verify_detached", lv / rv <= 1.1,
        f"raw verify {rv / 1000:.2f} µs; ratio {lv / rv:.3f} (jwt_verify {jv / rv:.3f}, with claims out "
        f"{crypto['latch_token_verify_claims']['ns'] / rv:.3f})")
    figures["token_verify"]["ratio"] = lv / rv

    v1, _ = mean_of("validate-d1", "rps")
    tk = raw["token"]
    fig("token_op", f"token op over the socket, {tk['clients']} clients", round(tk["rps"]), "req/s",
        "≥ 0.6 × validate", tk["rps"] / v1 >= 0.6,
        f"ratio {tk['rps'] / v1:.2f}; p50 {tk['p50_us']:.0f} µs, p99 {tk['p99_us']:.0f} µs")
    figures["token_op"]["ratio"] = tk["rps"] / v1

    big = raw["validate-1m"]
    stb = raw["stats-b"]
    stored = stb["sessions"]["stored"]
    fig("scale", f"validate throughput with {stored:,} sessions vs {raw['populate-a']['created']:,}",
        round(big["rps"]), "req/s", "≥ 0.9 ×", big["rps"] / v1 >= 0.9,
        f"ratio {big['rps'] / v1:.2f}; p50 {big['p50_us']:.0f} µs, p99 {big['p99_us']:.0f} µs")
    figures["scale"]["ratio"] = big["rps"] / v1

    used = stb["sessions"]["used_bytes"] / stored
    fbytes = raw["store-b"]["file_bytes"] / stored
    fig("store_size", "LMDB bytes per live session (used pages / sessions)", round(used), "B", "≤ 512 B",
        used <= 512, f"file size / sessions {fbytes:.0f} B ({raw['store-b']['file_bytes'] / 2**20:.0f} MiB file)")
    figures["store_size"]["file_bytes_per_session"] = fbytes

    sw = raw["sweep"]
    if sw.get("swept"):
        ok = sw["sweep_seconds"] <= 60 and sw["p99_us"] <= 5000
        fig("sweep", f"sweep of {sw['removed']:,} sessions expiring at once", round(sw["sweep_seconds"], 1), "s",
            "≤ 60 s, validate p99 ≤ 5000 µs", ok,
            f"validate during it: p50 {sw['p50_us']:.0f} µs, p99 {sw['p99_us']:.0f} µs, max "
            f"{sw['max_us'] / 1000:.0f} ms, {sw['rps']:.0f}/s")
        figures["sweep"]["p99_us"] = sw["p99_us"]
    else:
        fig("sweep", "sweep of the bulk sessions", None, "s", "≤ 60 s", False, "did not finish within the timeout")

    cold = [raw[k]["cold_start_ms"] for k in sorted(raw) if k.startswith("coldstart-") and k[10:].isdigit()]
    cm = statistics.median(cold)
    fig("cold_start", f"cold start, socket activation to first hello answer ({stored:,} sessions)", round(cm, 1),
        "ms", "≤ 50 ms", cm <= 50, "runs: " + ", ".join(f"{c:.1f}" for c in cold) + " ms (page cache warm)")

    cps = [raw[k]["cold_start_ms"] for k in sorted(raw) if k.startswith("coldstart-permit-")]
    cp = statistics.median(cps)
    fig("cold_start_permit", "cold start, same store, permit-only services (no `file` plugin)", round(cp, 1),
        "ms", "≤ 50 ms", cp <= 50,
        "runs: " + ", ".join(f"{c:.1f}" for c in cps) + " ms; the store and daemon start without the plugins' open()")

    mi, ms = raw["mem-idle"], raw["mem-storm"]
    fig("memory_idle", "daemon RSS idle", round(mi["rss_kib"] / 1024, 1), "MiB", "≤ 8 MiB",
        mi["rss_kib"] <= 8 * 1024, f"anon {mi['rss_anon_kib'] / 1024:.1f} MiB, file {mi['rss_file_kib'] / 1024:.1f} MiB")
    limit = workers * 64 + 32
    fig("memory_peak", "daemon peak RSS during the login storm (VmHWM)", round(ms["hwm_kib"] / 1024, 1), "MiB",
        f"≤ {workers} × 64 + 32 = {limit} MiB", ms["hwm_kib"] <= limit * 1024,
        f"with {stored:,} sessions: RSS {raw['store-b']['rss_kib'] / 1024:.1f} MiB "
        f"(anon {raw['store-b']['rss_anon_kib'] / 1024:.1f}, file {raw['store-b']['rss_file_kib'] / 1024:.1f})")

    stops = {k[5:]: v for k, v in raw.items() if k.startswith("stop-")}
    if stops:
        worst = max(stops, key=lambda k: stops[k]["stop_seconds"])
        fig("stop", "latchd stop, SIGTERM to exit (worst daemon of the run)", stops[worst]["stop_seconds"], "s",
            "(no target)", None, f"{worst}" + (" — killed after 60 s" if stops[worst]["killed"] else "") +
            "; all: " + ", ".join(f"{k} {v['stop_seconds']:.1f}" for k, v in sorted(stops.items())))

    errors = {k: v["errors"] for k, v in raw.items() if isinstance(v.get("errors"), int) and v["errors"]}

    result = {"machine": machine, "figures": figures, "errors": errors, "raw": raw}
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)

    print()
    print(f"latch bench: {machine['nproc']} CPUs ({machine['cpu']}), load {machine['loadavg_start']} at start, "
          f"{machine['loadavg_end']} at end; {machine['date']}; {machine['redis']}")
    w = [max(len(r[0]) for r in rows), 0, 0, 0]
    print(f"| {'figure':<{w[0]}} | measured | target | met | detail |")
    print(f"|{'-' * (w[0] + 2)}|---|---|---|---|")
    for label, value, unit, detail, target, met in rows:
        val = "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value}"
        print(f"| {label:<{w[0]}} | {val} {unit} | {target} | {'–' if met is None else 'yes' if met else 'NO'} | {detail} |")
    if errors:
        print(f"\nrequests that failed: {errors}")
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
