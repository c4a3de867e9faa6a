#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Draws the plots of one bench/run from its JSON (the --out file).

    plot.py RESULTS_JSON DIR

Writes DIR/bench-throughput.svg (validate and Redis GET requests per second
against connections, one request in flight each) and DIR/bench-latency.svg
(the latency CDF of validate and GET at 16 connections, and validate
pipelined 16 deep beside GET the same way). Only what the run measured is
drawn; the SVGs carry no date, so a re-run on the same figures gives the
same files.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "latch-bench"
matplotlib.rcParams["font.size"] = 10

LATCH, REDIS = "#1f6feb", "#d1242f"


def subtitle(r):
    m = r["machine"]
    quick = "\nquick run: figures meaningless" if m.get("quick") else ""
    return f"{m['nproc']} CPUs, load {m['loadavg_start']} at start, {m['date']}{quick}"


def throughput(r, path):
    pts = r["figures"]["throughput_connections"]["points"]
    n = [p["connections"] for p in pts]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(n, [p["validate_rps"] for p in pts], "o-", color=LATCH, label="latch validate")
    ax.plot(n, [p["redis_rps"] for p in pts], "s--", color=REDIS, label="Redis GET")
    for p in pts:
        ax.annotate(f"{p['validate_rps'] / p['redis_rps']:.2f}×", (p["connections"], p["validate_rps"]),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8, color=LATCH)
    ax.set_xscale("log", base=2)
    ax.set_xticks(n)
    ax.set_xticklabels([str(x) for x in n])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("connections (one request in flight each)")
    ax.set_ylabel("requests per second")
    ax.set_title("Throughput against connections, Unix socket, same client\n" + subtitle(r), fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def cdf_of(run):
    pts = run["cdf"]
    return [p[1] for p in pts], [p[0] for p in pts]


def latency(r, path):
    raw = r["raw"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [
        ("validate-d1-r1", "latch validate, 16 × 1", LATCH, "-"),
        ("redis-d1-r1", "Redis GET, 16 × 1", REDIS, "-"),
        ("validate-d16-r1", "latch validate, 16 × 16 pipelined", LATCH, ":"),
        ("redis-d16-r1", "Redis GET, 16 × 16 pipelined", REDIS, ":"),
    ]
    for key, label, color, style in series:
        if key in raw and "cdf" in raw[key]:
            x, y = cdf_of(raw[key])
            ax.plot([max(v, 1) for v in x], y, style, color=color, label=label, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("latency, µs (log)")
    ax.set_ylabel("fraction of requests at or below")
    ax.set_title("Latency CDF, 16 connections (round 1)\n" + subtitle(r), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS_JSON DIR")
    r = json.load(open(sys.argv[1]))
    os.makedirs(sys.argv[2], exist_ok=True)
    throughput(r, os.path.join(sys.argv[2], "bench-throughput.svg"))
    latency(r, os.path.join(sys.argv[2], "bench-latency.svg"))
    print(f"plots: {sys.argv[2]}/bench-throughput.svg, {sys.argv[2]}/bench-latency.svg")


if __name__ == "__main__":
    main()
