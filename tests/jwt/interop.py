#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# Interoperability of latch's JWTs with an independent implementation, PyJWT
# (Debian python3-jwt, with python3-cryptography for Ed25519):
#  (a) PyJWT verifies a token latch signed, with the JWKS latch wrote;
#  (b) latch verifies a token PyJWT signed with a fresh key, with a JWKS
#      written here.
# Usage: interop.py INTEROP_HELPER. Exits 77 (skip) when PyJWT or
# cryptography is missing.

import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import time

try:
    import jwt
    from jwt.algorithms import OKPAlgorithm  # noqa: F401 (only with cryptography)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

helper = sys.argv[1]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(x):
    # RFC 7638, written independently of the C code.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x},
                           separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


with tempfile.TemporaryDirectory() as tmp:
    # (a) latch signs, PyJWT verifies.
    jwks_path = f"{tmp}/jwks.json"
    out = subprocess.run([helper, "issue", tmp, jwks_path], check=True,
                         capture_output=True, text=True)
    token = out.stdout.strip()
    with open(jwks_path) as f:
        jwks = json.load(f)

    header = jwt.get_unverified_header(token)
    check(header == {"alg": "EdDSA", "typ": "JWT", "kid": header.get("kid")},
          "header is exactly alg, typ, kid")
    keys = {k["kid"]: k for k in jwks["keys"]}
    check(header["kid"] in keys, "the token's kid is in the JWKS")
    jwk = keys[header["kid"]]
    check(jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["use"] == "sig"
          and jwk["alg"] == "EdDSA", "the JWK describes an Ed25519 signing key")
    check(thumbprint(jwk["x"]) == jwk["kid"], "kid is the RFC 7638 thumbprint")

    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="interop",
                        issuer="latch", options={"require": ["exp", "iat", "nbf"]})
    check(claims["sub"] == "alice" and claims["groups"] == ["wheel", "users"],
          "PyJWT verifies latch's token and reads its claims")

    h, p, s = token.split(".")
    forged = b64url(json.dumps(dict(claims, sub="root"), separators=(",", ":")).encode())
    try:
        jwt.decode(f"{h}.{forged}.{s}", key, algorithms=["EdDSA"], audience="interop")
        check(False, "PyJWT refuses a tampered latch token")
    except jwt.InvalidSignatureError:
        check(True, "PyJWT refuses a tampered latch token")

    # (b) PyJWT signs with a fresh key, latch verifies.
    priv = Ed25519PrivateKey.generate()
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
    x = b64url(raw)
    kid = thumbprint(x)
    py_jwks_path = f"{tmp}/py-jwks.json"
    with open(py_jwks_path, "w") as f:
        json.dump({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid,
                             "use": "sig", "alg": "EdDSA"}]}, f)

    now = int(time.time())
    py_claims = {"iss": "pyjwt", "sub": "bob", "aud": ["a", "interop"], "iat": now,
                 "nbf": now, "exp": now + 120, "jti": "py-1", "groups": ["g"]}
    py_token = jwt.encode(py_claims, priv, algorithm="EdDSA", headers={"kid": kid})
    if isinstance(py_token, bytes):
        py_token = py_token.decode()

    out = subprocess.run([helper, "verify", py_jwks_path, py_token, "interop", "pyjwt"],
                         capture_output=True, text=True)
    check(out.returncode == 0, f"latch verifies PyJWT's token ({out.stderr.strip()})")
    check(json.loads(out.stdout) == py_claims, "latch reads PyJWT's claims unchanged")

    out = subprocess.run([helper, "verify", py_jwks_path, py_token, "other", "pyjwt"],
                         capture_output=True, text=True)
    check(out.returncode == 1, "latch refuses PyJWT's token for another audience")

    # Without a kid, latch has no key to try: refused.
    no_kid = jwt.encode(py_claims, priv, algorithm="EdDSA")
    if isinstance(no_kid, bytes):
        no_kid = no_kid.decode()
    out = subprocess.run([helper, "verify", py_jwks_path, no_kid, "interop", "pyjwt"],
                         capture_output=True, text=True)
    check(out.returncode == 1, "latch refuses PyJWT's token without kid")

    # latch's own JWKS does not verify PyJWT's token (a different key).
    out = subprocess.run([helper, "verify", jwks_path, py_token, "interop", "pyjwt"],
                         capture_output=True, text=True)
    check(out.returncode == 1, "latch refuses PyJWT's token under another key set")

sys.exit(0)
