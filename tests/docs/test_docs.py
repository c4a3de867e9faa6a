# SPDX-License-Identifier: MIT
"""The repository's documents stand alone and match the code, and the code
keeps its shape.

- No file refers to a document outside the repository, and none speaks of
  how the work on it was organised.
- Every op of the dispatch table has its section in docs/PROTOCOL.md.
- Every configuration key conf.c accepts is described in latchd.conf(5).
- Every latchctl command of the dispatch table is in latchctl(1).
- Every file docs/ARCHITECTURE.md's map names exists.
- No C file outside tests is over about 1,000 lines (1,100), but stack.c
  and store.c.
- The only include cycle between latchd's modules is the reply path
  (a connection and its requests).
"""

import os
import re
import subprocess
import unittest

TOP = os.environ.get("LATCH_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def read(rel):
    with open(os.path.join(TOP, rel), encoding="utf-8") as f:
        return f.read()


def tracked_files():
    """The files of the source tree (git's list when it is a checkout)."""
    try:
        out = subprocess.run(["git", "-C", TOP, "ls-files", "-z"], check=True,
                             capture_output=True).stdout
        return [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(TOP):
            dirs[:] = [d for d in dirs if d != ".git" and not d.startswith("build")]
            files += [os.path.relpath(os.path.join(root, n), TOP) for n in names]
        return files


class StandAlone(unittest.TestCase):
    def test_no_outside_documents(self):
        # A path of the machine the work was done on is outside too.
        outside = re.compile(r"CONTRACT(-CHANGES)?\.md|/work/|\bshared/STYLE|"
                             r"\b(by|in|per) the contract\b|\bthe contract (allows|says|requires)\b")
        me = os.path.relpath(__file__, TOP)
        bad = []
        for rel in tracked_files():
            if rel == me or not os.path.isfile(os.path.join(TOP, rel)):
                continue
            try:
                text = read(rel)
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if outside.search(line):
                    bad.append(f"{rel}:{n}: {line.strip()}")
        self.assertEqual(bad, [])


    def test_no_words_about_how_the_work_was_organised(self):
        organised = re.compile(r"\bthe task\b|\btask's\b|\bthe issue (asks|says)\b|\bstore task\b|"
                               r"\bthe brief\b", re.I)
        me = os.path.relpath(__file__, TOP)
        bad = []
        for rel in tracked_files():
            if rel == me or not os.path.isfile(os.path.join(TOP, rel)):
                continue
            try:
                text = read(rel)
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if organised.search(line):
                    bad.append(f"{rel}:{n}: {line.strip()}")
        self.assertEqual(bad, [])


class MatchesCode(unittest.TestCase):
    def test_every_op_is_documented(self):
        ops = re.findall(r'\{\s*"([a-z.]+)",\s*OP_(?:ANYONE|SERVICE|ADMIN|MONITOR)', read("daemon/dispatch.c"))
        self.assertGreater(len(ops), 10)
        protocol = read("docs/PROTOCOL.md")
        missing = [op for op in ops if f"\n### {op}\n" not in protocol]
        self.assertEqual(missing, [])

    def test_every_config_key_is_documented(self):
        keys = set(re.findall(r'streq\(name, "([a-z_]+)"\)', read("daemon/conf.c")))
        self.assertGreater(len(keys), 20)
        page = read("man/latchd.conf.5.scd")
        missing = sorted(k for k in keys if not re.search(r"\*" + k + r" =\*|\*" + k + r" =\*,|" + k + r" =\*", page))
        self.assertEqual(missing, [])

    def test_every_latchctl_command_is_documented(self):
        src = read("latchctl/latchctl.c")
        cmds = re.findall(r'\{\s*"([a-z]+)",\s*(?:"([a-z]+)"|NULL),.*cmd_', src)
        self.assertGreater(len(cmds), 10)
        page = read("man/latchctl.1.scd")
        missing = sorted(" ".join(c).strip() for c in cmds
                         if not re.search(r"^\*" + c[0] + r"[ *]", page, re.M)
                         or (c[1] and not re.search(r"[* |]" + c[1] + r"\*", page)))
        self.assertEqual(missing, [])


def modules(folders):
    """latchd's modules (X.c and X.h, with X-internal.h) and what each
    includes."""
    deps = {}
    for folder in folders:
        for name in sorted(os.listdir(os.path.join(TOP, folder))):
            if not name.endswith((".c", ".h")):
                continue
            mod = os.path.splitext(name)[0].replace("-internal", "")
            text = read(os.path.join(folder, name))
            incs = re.findall(r'#include "([^"]+)"', text)
            deps.setdefault(mod, set()).update(
                os.path.splitext(os.path.basename(i))[0].replace("-internal", "") for i in incs)
    return {m: {d for d in v if d in deps and d != m} for m, v in deps.items()}


def cycles(graph):
    """The strongly connected components of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


class Shape(unittest.TestCase):
    def test_architecture_map_names_real_files(self):
        text = read("docs/ARCHITECTURE.md")
        named = set(re.findall(r"`((?:[a-z-]+/)*[a-z0-9_-]+\.[ch])`", text))
        self.assertGreater(len(named), 30)
        roots = ["", "daemon", "daemon/worker", "common", "libclient", "latchctl", "http", "include/latch",
                 "bench"] + [os.path.join("plugins", p) for p in os.listdir(os.path.join(TOP, "plugins"))]
        missing = sorted(n for n in named
                         if not any(os.path.isfile(os.path.join(TOP, r, n)) for r in roots))
        self.assertEqual(missing, [])

    def test_file_sizes(self):
        big = []
        for rel in tracked_files():
            if not rel.endswith(".c") or rel.startswith("tests/") or "/test-" in rel:
                continue
            if rel in ("daemon/stack.c", "daemon/store.c"):
                continue
            n = read(rel).count("\n")
            if n > 1100:  # "about 1,000"
                big.append(f"{rel}: {n} lines")
        self.assertEqual(big, [])

    def test_only_the_reply_path_cycles(self):
        reply_path = {"conn", "request", "dispatch", "fastpath", "ops-common"}
        found = cycles(modules(["daemon", "daemon/worker", "common"]))
        self.assertEqual([c for c in found if not c <= reply_path], [])


if __name__ == "__main__":
    unittest.main()
