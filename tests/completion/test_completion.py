# SPDX-License-Identifier: MIT
"""latchctl's bash completion, sourced into a real bash and driven like
readline does: COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set, the
function called, COMPREPLY read back. Once on its own and once with
bash-completion's library loaded (where _init_completion exists)."""

import os
import shutil
import subprocess
import tempfile
import unittest

COMPLETION = os.environ["LATCHCTL_COMPLETION"]
BASH = shutil.which("bash")
LIBRARY = "/usr/share/bash-completion/bash_completion"


class Completion(unittest.TestCase):
    library = False

    def setUp(self):
        if not BASH:
            self.skipTest("bash is not installed")
        if self.library and not os.path.exists(LIBRARY):
            self.skipTest("bash-completion is not installed")
        self.tmp = tempfile.mkdtemp(prefix="latch-completion-")
        self.services = os.path.join(self.tmp, "services")
        os.mkdir(self.services)
        for name in ("wiki", "intranet", "webmail", ".hidden", "wiki~"):
            open(os.path.join(self.services, name), "w").close()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def complete(self, line, env=None):
        """The candidates for the cursor at the end of `line`."""
        words = line.split(" ")
        script = ""
        if self.library:
            script += f"source {LIBRARY}\n"
        script += f'source "{COMPLETION}"\n'
        script += "COMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
        script += f"COMP_CWORD={len(words) - 1}\nCOMP_LINE='{line}'\nCOMP_POINT={len(line)}\n"
        script += 'COMPREPLY=()\n_latchctl latchctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        script += 'printf "%s\\n" "${COMPREPLY[@]}"\n'
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
             "LATCH_SERVICES_DIR": self.services}
        e.update(env or {})
        r = subprocess.run([BASH, "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env=e,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(x for x in r.stdout.split("\n") if x)

    def test_commands(self):
        self.assertEqual(self.complete("latchctl "),
                         sorted("hello authenticate login passwd validate logout token jwks sessions keys stats status "
                                "reload user totp faillock".split()))
        self.assertEqual(self.complete("latchctl st"), ["stats", "status"])
        self.assertEqual(self.complete("latchctl --json se"), ["sessions"])
        self.assertEqual(self.complete("latchctl --socket /tmp/x.sock lo"), ["login", "logout"])

    def test_subcommands(self):
        self.assertEqual(self.complete("latchctl token "), ["issue", "verify"])
        self.assertEqual(self.complete("latchctl sessions r"), ["revoke"])
        self.assertEqual(self.complete("latchctl keys "), ["rotate"])
        self.assertEqual(self.complete("latchctl user "), ["add", "del", "expire", "passwd"])
        self.assertEqual(self.complete("latchctl totp "), ["confirm", "enroll", "recovery", "remove", "status"])
        self.assertEqual(self.complete("latchctl faillock "), ["reset", "show"])

    def test_options(self):
        self.assertEqual(self.complete("latchctl --"), ["--help", "--json", "--socket", "--version"])
        self.assertEqual(self.complete("latchctl stats --"), ["--json", "--openmetrics", "--prometheus"])
        self.assertEqual(self.complete("latchctl login wiki alice --"), ["--audience", "--json", "--token"])
        self.assertEqual(self.complete("latchctl token verify TOKEN --"),
                         ["--audience", "--issuer", "--json", "--jwks"])
        self.assertEqual(self.complete("latchctl sessions list --"), ["--json", "--service", "--user"])
        self.assertEqual(self.complete("latchctl totp enroll alice --"), ["--json", "--service"])
        self.assertEqual(self.complete("latchctl user add FILE alice --"), ["--expires", "--groups", "--json"])
        self.assertEqual(self.complete("latchctl user expire FILE alice --"), ["--expires", "--json"])
        self.assertEqual(self.complete("latchctl user add FILE alice --expires n"), ["never", "now"])

    def test_service_names(self):
        self.assertEqual(self.complete("latchctl login "), ["intranet", "webmail", "wiki"])
        self.assertEqual(self.complete("latchctl authenticate w"), ["webmail", "wiki"])
        self.assertEqual(self.complete("latchctl passwd "), ["intranet", "webmail", "wiki"])
        self.assertEqual(self.complete("latchctl passwd wiki "), [])
        self.assertEqual(self.complete("latchctl passwd wiki alice --"), ["--json"])
        self.assertEqual(self.complete("latchctl sessions list --service i"), ["intranet"])
        # The user is not a service.
        self.assertEqual(self.complete("latchctl login wiki "), [])

    def test_services_dir_from_latchd_conf(self):
        conf = os.path.join(self.tmp, "latchd.conf")
        os.mkdir(os.path.join(self.tmp, "stacks"))
        open(os.path.join(self.tmp, "stacks", "payroll"), "w").close()
        with open(conf, "w") as f:
            f.write("[daemon]\nsocket = /tmp/x\nservices_dir = stacks\n[session]\nidle_timeout = 1h\n")
        env = {"LATCHD_CONF": conf}
        script_env = dict(env)
        # No LATCH_SERVICES_DIR: the config file decides.
        r = self.complete_without_dir("latchctl login ", script_env)
        self.assertEqual(r, ["payroll"])

    def complete_without_dir(self, line, env):
        saved = self.services
        try:
            self.services = ""
            return self.complete(line, env)
        finally:
            self.services = saved


class CompletionWithLibrary(Completion):
    library = True


if __name__ == "__main__":
    unittest.main()
