# SPDX-License-Identifier: MIT
"""Tokens: issuance, online and offline verification, rotation, and an
independent verifier (PyJWT) reading the JWKS latchd publishes."""

import base64
import json
import os
import time
import unittest

from harness import DaemonTest, scaled

try:
    import jwt as pyjwt
    from jwt.algorithms import OKPAlgorithm  # noqa: F401  (needs python3-cryptography)
except ImportError:  # pragma: no cover
    pyjwt = None


def b64json(seg):
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


class TestTokens(DaemonTest):
    def test_login_with_token_and_claims(self):
        d = self.daemon(config_extra="[token]\nissuer = https://latch.test\nlifetime = 2min\n")
        s = self.login(d, "demo", "demo-password", "demo", "--token")
        header_b64, payload_b64, sig = s["token"].split(".")
        header, claims = b64json(header_b64), b64json(payload_b64)
        self.assertEqual(header["alg"], "EdDSA")
        self.assertEqual(header["typ"], "JWT")
        jwks = d.read_jwks()
        self.assertEqual([k["kid"] for k in jwks["keys"]], [header["kid"]])
        self.assertEqual(claims["iss"], "https://latch.test")
        self.assertEqual(claims["sub"], "demo")
        self.assertEqual(claims["aud"], "demo")
        self.assertEqual(claims["sid"], s["handle"])
        self.assertEqual(claims["groups"], ["users"])
        self.assertEqual(claims["exp"] - claims["iat"], 120)
        self.assertEqual(claims["nbf"], claims["iat"])
        self.assertEqual(s["token_expires_at"], claims["exp"])
        self.assertTrue(claims["jti"])
        mode = os.stat(d.jwks).st_mode & 0o777
        self.assertEqual(mode, 0o644)

    def test_token_op_audience_and_session_bound_expiry(self):
        d = self.daemon(config_extra="[session]\nabsolute_timeout = 30s\n[token]\nlifetime = 1h\n"
                                     "[service.demo]\naudiences = api\n")
        s = self.login(d)
        # Only the service's own audience and the listed ones: a peer of one
        # service cannot mint tokens that another service's apps accept.
        for args in (["token", "issue", s["session"], "--audience", "admin"],
                     ["login", "demo", "demo", "--token", "--audience", "admin"]):
            r = d.ctl(*args, input="demo-password\n", json_out=True)
            self.assertEqual((r.returncode, r.json["error"]), (1, "forbidden"), args)
        r = d.ctl("token", "issue", s["session"], "--audience", "demo", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        r = d.ctl("token", "issue", s["session"], "--audience", "api", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        claims = b64json(r.json["token"].split(".")[1])
        self.assertEqual(claims["aud"], "api")
        self.assertLessEqual(claims["exp"], s["expires_at"], "a token never outlives its session")
        r = d.ctl("token", "verify", r.json["token"], "--audience", "api", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        r = d.ctl("token", "issue", "A" * 44, json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.json["error"], "invalid_session")

    def test_verify_online_offline_and_after_logout(self):
        d = self.daemon()
        s = self.login(d, "demo", "demo-password", "demo", "--token")
        tok = s["token"]
        r = d.ctl("token", "verify", tok, json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.json["claims"]["sub"], "demo")
        r = d.ctl("token", "verify", tok, "--jwks", d.jwks, json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        r = d.ctl("token", "verify", tok, "--audience", "elsewhere", json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.json["error"], "invalid_token")
        r = d.ctl("token", "verify", tok[:-2] + ("AA" if tok[-2:] != "AA" else "BA"), json_out=True)
        self.assertEqual(r.returncode, 1)
        d.ctl("logout", s["session"])
        # Online verification sees the logout; offline cannot (short lifetimes bound it).
        r = d.ctl("token", "verify", tok, json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("session", r.json["message"])
        r = d.ctl("token", "verify", tok, "--jwks", d.jwks)
        self.assertEqual(r.returncode, 0)

    def test_rotation_keeps_live_tokens_until_they_expire(self):
        d = self.daemon(config_extra=f"[token]\nlifetime = {scaled(3):.0f}s\nleeway = 0s\n")
        old = self.login(d, "demo", "demo-password", "demo", "--token")
        old_kid = b64json(old["token"].split(".")[0])["kid"]
        r = d.ctl("keys", "rotate", json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        new_kid = r.json["kid"]
        self.assertNotEqual(new_kid, old_kid)
        kids = [k["kid"] for k in d.read_jwks()["keys"]]
        self.assertEqual(sorted(kids), sorted([old_kid, new_kid]))
        self.assertEqual(d.ctl("token", "verify", old["token"]).returncode, 0)
        self.assertEqual(d.ctl("token", "verify", old["token"], "--jwks", d.jwks).returncode, 0)
        new = d.ctl("token", "issue", old["session"], json_out=True).json["token"]
        self.assertEqual(b64json(new.split(".")[0])["kid"], new_kid)
        # The rotation survives a restart.
        d.stop()
        d.start()
        self.assertEqual(d.ctl("token", "verify", new).returncode, 0)
        # After the old tokens' lifetime, the old key leaves the set.
        deadline = time.monotonic() + scaled(15)
        while time.monotonic() < deadline:
            kids = [k["kid"] for k in d.read_jwks()["keys"]]
            if old_kid not in kids:
                break
            time.sleep(0.5)
        self.assertEqual(kids, [new_kid])
        r = d.ctl("jwks", json_out=True)
        self.assertEqual([k["kid"] for k in r.json["keys"]], [new_kid])

    @unittest.skipIf(pyjwt is None, "python3-jwt with python3-cryptography is not installed")
    def test_pyjwt_verifies_latchd_tokens_from_the_published_jwks(self):
        d = self.daemon(config_extra="[token]\nissuer = latch-e2e\n")
        tok = self.login(d, "demo", "demo-password", "demo", "--token")["token"]
        jwks = d.read_jwks()
        key = pyjwt.PyJWK(jwks["keys"][0])
        claims = pyjwt.decode(tok, key.key, algorithms=["EdDSA"], audience="demo", issuer="latch-e2e")
        self.assertEqual(claims["sub"], "demo")
        with self.assertRaises(pyjwt.InvalidAudienceError):
            pyjwt.decode(tok, key.key, algorithms=["EdDSA"], audience="other")


if __name__ == "__main__":
    unittest.main()


def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TestHostileTokens(DaemonTest):
    """The daemon's verify op and liblatch (offline) refuse the same tokens
    for the same reason: they share one verifier."""

    def test_daemon_and_liblatch_agree(self):
        d = self.daemon(config_extra="[token]\nissuer = latch\n")
        tok = self.login(d, "demo", "demo-password", "demo", "--token")["token"]
        h, p, sig = tok.split(".")
        header = b64json(h)
        claims = b64json(p)
        cases = {
            "alg none": b64({**header, "alg": "none"}) + "." + p + ".",
            "alg none signed": b64({**header, "alg": "none"}) + "." + p + "." + sig,
            "alg HS256": b64({**header, "alg": "HS256"}) + "." + p + "." + sig,
            "crit": b64({**header, "crit": ["exp"]}) + "." + p + "." + sig,
            "embedded jwk": b64({**header, "jwk": {"kty": "OKP"}}) + "." + p + "." + sig,
            "unknown kid": b64({**header, "kid": "nope"}) + "." + p + "." + sig,
            "typ": b64({**header, "typ": "at+jwt"}) + "." + p + "." + sig,
            "tampered payload": h + "." + b64({**claims, "sub": "root"}) + "." + sig,
            "two segments": h + "." + p,
            "four segments": tok + ".x",
            "trailing dot": tok + ".",
            "padded": tok + "==",
            "too large": h + "." + b64({**claims, "x": "a" * 9000}) + "." + sig,
            "bad signature": h + "." + p + "." + ("A" if sig[0] != "A" else "B") + sig[1:],
        }
        for name, t in cases.items():
            online = d.ctl("token", "verify", t, json_out=True)
            offline = d.ctl("token", "verify", t, "--jwks", d.jwks, json_out=True)
            self.assertEqual(online.returncode, 1, name)
            self.assertEqual(offline.returncode, 1, name)
            self.assertEqual(online.json["error"], "invalid_token", name)
            self.assertEqual(offline.json["error"], "invalid_token", name)
            self.assertEqual(online.json["message"], offline.json["message"], name)
        # And the genuine one passes both.
        self.assertEqual(d.ctl("token", "verify", tok).returncode, 0)
        self.assertEqual(d.ctl("token", "verify", tok, "--jwks", d.jwks).returncode, 0)
