# SPDX-License-Identifier: MIT
"""Runs the offline-verification snippets of docs/TOKENS.md, as they stand in
the document, against tokens and the key set of a real latchd, with
`[token] algorithm = EdDSA` and with `Ed25519`.

Usage: token_snippets.py pyjwt|jose

pyjwt: Debian's python3-jwt (with python3-cryptography); exits 77 (skipped)
when it is not installed. jose: installed from npm into NODE_DIR (the build
folder) on first use; exits 77 only when node or npm is not installed.

Each snippet must accept a token of the service's audience, and refuse one
whose payload was altered and one for another audience.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENS_MD = os.path.join(HERE, "..", "..", "docs", "TOKENS.md")
NODE_DIR = os.environ.get("SNIPPETS_NODE_DIR", os.path.join(HERE, "node"))
JWKS_PATH = "/run/latch/jwks.json"


def skip(why):
    print("skipping:", why)
    sys.exit(77)


def snippet(lang, marker):
    """The one ```lang block of TOKENS.md holding `marker`."""
    with open(TOKENS_MD) as f:
        text = f.read()
    blocks = [b for b in re.findall(r"^```" + lang + r"\n(.*?)^```", text, re.S | re.M) if marker in b]
    if len(blocks) != 1:
        raise SystemExit(f"expected one {lang} block with {marker!r} in TOKENS.md, found {len(blocks)}")
    if JWKS_PATH not in blocks[0]:
        raise SystemExit(f"the {lang} snippet no longer reads {JWKS_PATH}")
    return blocks[0]


def pyjwt_program(tmp):
    try:
        subprocess.run(["/usr/bin/python3", "-c", "import jwt, jwt.algorithms; jwt.algorithms.OKPAlgorithm"],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        skip("PyJWT with python3-cryptography is not installed (Debian: python3-jwt python3-cryptography)")
    code = snippet("python", "import json, jwt")
    path = os.path.join(tmp, "snippet.py")
    with open(path, "w") as f:
        f.write("import sys\ntoken = sys.argv[1]\n" + code.replace('"' + JWKS_PATH + '"', "sys.argv[2]") +
                "\nprint(json.dumps(claims))\n")
    return lambda token, jwks: ["/usr/bin/python3", path, token, jwks]


def jose_program(tmp):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        skip("node or npm is not installed")
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "jose", "package.json")):
        os.makedirs(NODE_DIR, exist_ok=True)
        r = subprocess.run([npm, "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--no-save", "jose@6"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit("cannot install jose from npm:\n" + r.stderr[-2000:])
    code = snippet("js", 'from "jose"')
    # Beside node_modules, so that `import ... from "jose"` finds it.
    path = os.path.join(NODE_DIR, f"snippet-{os.getpid()}.mjs")
    with open(path, "w") as f:
        f.write("const token = process.argv[2];\n" + code.replace('"' + JWKS_PATH + '"', "process.argv[3]") +
                "\nconsole.log(JSON.stringify(payload));\n")
    return lambda token, jwks: [node, path, token, jwks]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def check(program, algorithm):
    tmp = tempfile.mkdtemp(prefix="latch-snippets-")
    d = harness.Daemon(tmp, services={"wiki": harness.DEFAULT_STACK.format(users=os.path.join(tmp, "users"))},
                       config_extra=f"[token]\nalgorithm = {algorithm}\n"
                                    "[service.wiki]\naudiences = search\n")
    try:
        d.start()
        tokens = {}
        for aud in ("wiki", "search"):
            r = d.ctl("login", "wiki", "demo", "--token", "--audience", aud, input="demo-password\n", json_out=True)
            assert r.returncode == 0, r.stdout + r.stderr
            tokens[aud] = r.json["token"]
        header = json.loads(unb64(tokens["wiki"].split(".")[0]))
        assert header["alg"] == algorithm, header
        assert all(k["alg"] == algorithm for k in d.read_jwks()["keys"]), d.read_jwks()

        r = subprocess.run(program(tokens["wiki"], d.jwks), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"algorithm = {algorithm}: the snippet refused a good token:\n{r.stdout}{r.stderr}")
        claims = json.loads(r.stdout.strip().splitlines()[-1])
        assert claims["sub"] == "demo" and claims["aud"] == "wiki", claims
        print(f"algorithm = {algorithm}: accepted, sub={claims['sub']} aud={claims['aud']}")

        h, p, s = tokens["wiki"].split(".")
        forged = json.loads(unb64(p))
        forged["sub"] = "root"
        bad = {
            "an altered payload": f"{h}.{b64(json.dumps(forged).encode())}.{s}",
            "another audience": tokens["search"],
        }
        for why, token in bad.items():
            r = subprocess.run(program(token, d.jwks), capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                raise SystemExit(f"algorithm = {algorithm}: the snippet accepted {why}:\n{r.stdout}")
            print(f"algorithm = {algorithm}: refused {why}")
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    which = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="latch-snippet-")
    try:
        program = pyjwt_program(tmp) if which == "pyjwt" else jose_program(tmp)
        for algorithm in ("EdDSA", "Ed25519"):
            check(program, algorithm)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for f in os.listdir(NODE_DIR) if os.path.isdir(NODE_DIR) else []:
            if f == f"snippet-{os.getpid()}.mjs":
                os.unlink(os.path.join(NODE_DIR, f))


if __name__ == "__main__":
    main()
