# SPDX-License-Identifier: MIT
"""The repository's documents stand alone and match the code.

- No file refers to a document outside the repository.
- Every op of the dispatch table has its section in docs/PROTOCOL.md.
- Every configuration key conf.c accepts is described in latchd.conf(5).
- Every latchctl command of the dispatch table is in latchctl(1).
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
        outside = re.compile(r"CONTRACT(-CHANGES)?\.md|/work/shared|\bshared/STYLE")
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


if __name__ == "__main__":
    unittest.main()
