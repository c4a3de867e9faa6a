# SPDX-License-Identifier: MIT
"""Offline verification of latchd's tokens (compact JWS, Ed25519) against a
JWKS, with the same strict rules as latchd and liblatch, and a key set
cache that refetches when a token names a key it does not hold."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import time
from typing import Any, Callable, Dict, Optional, Union

from .errors import InvalidToken

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - reported when used
    Ed25519PublicKey = None  # type: ignore[assignment,misc]
    InvalidSignature = Exception  # type: ignore[assignment,misc]

__all__ = ["KeySet", "Verifier", "verify_token", "MAX_TOKEN"]

MAX_TOKEN = 8192
_ALGS = ("EdDSA", "Ed25519")
_EMBEDDED = ("jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256")
_B64_RE = re.compile(rb"[A-Za-z0-9_-]*\Z")
_INT64 = (-(1 << 63), (1 << 63) - 1)

# The reasons, word for word as latchd's verify answers them.
R_TOO_LARGE = "token is larger than 8 KiB"
R_FORMAT = "token is not three segments of canonical base64url"
R_HEADER = "token header is not a well-formed JSON object"
R_ALG = "token algorithm is missing or not EdDSA/Ed25519"
R_TYP = "token type is not JWT"
R_CRIT = "token has critical header parameters"
R_EMBEDDED = "token names or embeds its own key"
R_KID = "token key id is missing or not in the key set"
R_SIGNATURE = "token signature is invalid"
R_PAYLOAD = "token claims are not a well-formed JSON object"
R_EXPIRED = "token has expired or has no expiry"
R_NOT_YET = "token is not valid yet"
R_AUDIENCE = "token is not meant for this audience"
R_ISSUER = "token is not from the expected issuer"


def b64url_decode(seg: bytes) -> bytes:
    """Canonical base64url only: no padding, no other characters, no length
    of 4n+1, no non-zero trailing bits. Raises ValueError."""
    if not _B64_RE.match(seg) or len(seg) % 4 == 1:
        raise ValueError("not canonical base64url")
    raw = base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != seg:
        raise ValueError("not canonical base64url")
    return raw


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class _Strict(ValueError):
    pass


def _no_dups(pairs: Any) -> Dict[str, Any]:
    d = {}
    for k, v in pairs:
        if k in d:
            raise _Strict("duplicate member")
        d[k] = v
    return d


def _int64(s: str) -> int:
    v = int(s)
    if not _INT64[0] <= v <= _INT64[1]:
        raise _Strict("integer out of range")
    return v


def _no_const(s: str) -> Any:
    raise _Strict("not JSON: " + s)


def _clean_strings(v: Any) -> None:
    # Jansson refuses NUL and lone surrogates; Python's decoder would not.
    if isinstance(v, str):
        if "\0" in v:
            raise _Strict("NUL in string")
        v.encode("utf-8")
    elif isinstance(v, dict):
        for k, x in v.items():
            _clean_strings(k)
            _clean_strings(x)
    elif isinstance(v, list):
        for x in v:
            _clean_strings(x)


_DECODER = json.JSONDecoder(object_pairs_hook=_no_dups, parse_int=_int64, parse_constant=_no_const)


def strict_object(raw: bytes, document: bool = False) -> Optional[Dict[str, Any]]:
    """Exactly one JSON object filling all of raw (leading blanks allowed,
    nothing after it, or only blanks for a ``document`` such as a JWKS
    file), UTF-8, no duplicate members; else None."""
    try:
        text = raw.decode("utf-8")
        start = len(text) - len(text.lstrip(" \t\r\n"))
        obj, end = _DECODER.raw_decode(text, start)
        if document:
            end += len(text[end:]) - len(text[end:].lstrip(" \t\r\n"))
        if end != len(text) or not isinstance(obj, dict):
            return None
        _clean_strings(obj)
        return obj
    except (ValueError, UnicodeError, RecursionError):
        return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 key given as base64url ``x``."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())


class KeySet:
    """Ed25519 keys from a JWKS (``{"keys": [...]}``), keyed by kid. Keys
    that are not OKP/Ed25519 signing keys are skipped; a malformed Ed25519
    key, a private key or a repeated kid make the whole set invalid
    (ValueError), as in liblatch. Read-only once built: share it freely."""

    def __init__(self, jwks: Union[str, bytes, Dict[str, Any]]) -> None:
        if Ed25519PublicKey is None:
            raise RuntimeError("offline verification needs the 'cryptography' package (python3-cryptography)")
        doc = strict_object(jwks if isinstance(jwks, bytes) else jwks.encode(), True) \
            if isinstance(jwks, (str, bytes)) else jwks
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise ValueError("key set is malformed")
        self.keys: Dict[str, Any] = {}
        for jwk in doc["keys"]:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kty"), str):
                raise ValueError("key set is malformed")
            if jwk["kty"] != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            use, alg = jwk.get("use"), jwk.get("alg")
            if (use is not None and not isinstance(use, str)) or (alg is not None and not isinstance(alg, str)):
                raise ValueError("key set is malformed")
            if (use is not None and use != "sig") or (alg is not None and alg not in _ALGS):
                continue
            if "d" in jwk:
                # A private key in a published set is a misconfiguration to
                # be seen, not worked around.
                raise ValueError("key set holds a private key")
            x = jwk.get("x")
            try:
                pk = b64url_decode(x.encode()) if isinstance(x, str) else b""
            except ValueError:
                pk = b""
            if len(pk) != 32:
                raise ValueError("key set is malformed")
            kid = jwk.get("kid")
            if kid is not None and (not isinstance(kid, str) or not kid):
                raise ValueError("key set is malformed")
            if kid is None:
                kid = thumbprint(x)
            if kid in self.keys:
                raise ValueError("key set repeats a kid")
            self.keys[kid] = Ed25519PublicKey.from_public_bytes(pk)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys


def _split(token: Union[str, bytes]) -> "tuple[bytes, bytes, bytes, Dict[str, Any], bytes]":
    t = token.encode("utf-8") if isinstance(token, str) else token
    if len(t) > MAX_TOKEN:
        raise InvalidToken(R_TOO_LARGE)
    parts = t.split(b".")
    if len(parts) != 3 or not all(parts):
        raise InvalidToken(R_FORMAT)
    try:
        hraw, praw, sig = (b64url_decode(p) for p in parts)
    except (ValueError, binascii.Error):
        raise InvalidToken(R_FORMAT) from None
    header = strict_object(hraw)
    if header is None:
        raise InvalidToken(R_HEADER)
    return t[:len(parts[0]) + 1 + len(parts[1])], praw, sig, header, parts[0]


def _check_header(header: Dict[str, Any]) -> str:
    if header.get("alg") not in _ALGS or not isinstance(header.get("alg"), str):
        raise InvalidToken(R_ALG)
    if "typ" in header and header["typ"] != "JWT":
        raise InvalidToken(R_TYP)
    # No extension is understood, so any critical one is refused (this also
    # rules out "b64": false).
    if "crit" in header:
        raise InvalidToken(R_CRIT)
    # The key comes from our set, never from the token.
    if any(k in header for k in _EMBEDDED):
        raise InvalidToken(R_EMBEDDED)
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidToken(R_KID)
    return kid


def _check_claims(claims: Dict[str, Any], audience: Optional[str], issuer: Optional[str],
                  leeway: int, now: int) -> None:
    g = claims.get
    for k in ("exp", "nbf", "iat"):
        if k in claims and not _is_int(claims[k]):
            raise InvalidToken(R_PAYLOAD)
    for k in ("iss", "sub", "jti", "sid"):
        if k in claims and not isinstance(claims[k], str):
            raise InvalidToken(R_PAYLOAD)
    aud = g("aud")
    if "aud" in claims and not isinstance(aud, str) and not (
            isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        raise InvalidToken(R_PAYLOAD)
    leeway = max(leeway, 0)
    if "exp" not in claims or claims["exp"] <= now - leeway:
        raise InvalidToken(R_EXPIRED)
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise InvalidToken(R_NOT_YET)
    if "iat" in claims and claims["iat"] > now + leeway:
        raise InvalidToken(R_NOT_YET)
    if audience is not None:
        if aud is None or (aud != audience if isinstance(aud, str) else audience not in aud):
            raise InvalidToken(R_AUDIENCE)
    if issuer is not None and g("iss") != issuer:
        raise InvalidToken(R_ISSUER)


def verify_token(keyset: KeySet, token: Union[str, bytes], *, audience: Optional[str] = None,
                 issuer: Optional[str] = None, leeway: int = 30, now: Optional[int] = None) -> Dict[str, Any]:
    """Verifies a compact JWS against ``keyset`` and returns its claims.

    Accepts only Ed25519 keys of the set (never one the token names or
    embeds), ``alg`` EdDSA or Ed25519; requires ``exp``; checks
    ``nbf``/``iat``/``exp`` with ``leeway`` seconds, ``aud`` holding
    ``audience`` and ``iss`` equal to ``issuer`` when given; refuses
    ``crit``, duplicate JSON members, non-canonical base64url and tokens
    over 8 KiB. Raises InvalidToken whose message names the failed check
    (the same words as latchd's)."""
    signed, praw, sig, header, _ = _split(token)
    kid = _check_header(header)
    key = keyset.keys.get(kid)
    if key is None:
        raise InvalidToken(R_KID)
    if len(sig) != 64:
        raise InvalidToken(R_SIGNATURE)
    try:
        key.verify(sig, signed)
    except InvalidSignature:
        raise InvalidToken(R_SIGNATURE) from None
    claims = strict_object(praw)
    if claims is None:
        raise InvalidToken(R_PAYLOAD)
    _check_claims(claims, audience, issuer, leeway, int(time.time()) if not now else now)
    return claims


class Verifier:
    """Verifies tokens offline with a cached key set.

    ``source`` is the path of latchd's jwks.json (default
    /run/latch/jwks.json), a Client or AsyncClient-free callable returning
    the JWKS, or a latch.Client (asks latchd's ``jwks`` op). The set is
    loaded on first use and refetched when a token names a kid it does not
    hold (after a key rotation): for a file, when the file changed; for
    other sources at most once per ``min_refresh`` seconds, so forged kids
    cannot make it refetch on every request. Thread-safe.
    """

    def __init__(self, source: Any = "/run/latch/jwks.json", *, audience: Optional[str] = None,
                 issuer: Optional[str] = None, leeway: int = 30, min_refresh: float = 5.0) -> None:
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.min_refresh = min_refresh
        self._lock = threading.Lock()
        self._keyset: Optional[KeySet] = None
        self._stamp: Any = None
        self._fetched = float("-inf")
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            def read() -> bytes:
                with open(path, "rb") as f:
                    return f.read(1 << 20)
            self._fetch: Callable[[], Any] = read
            self._stat: Optional[Callable[[], Any]] = lambda: (lambda s: (s.st_ino, s.st_mtime_ns, s.st_size))(
                os.stat(path))
        elif hasattr(source, "jwks"):
            self._fetch = source.jwks
            self._stat = None
        elif callable(source):
            self._fetch = source
            self._stat = None
        else:
            raise TypeError("source must be a path, a Client or a callable returning a JWKS")

    def _load(self) -> KeySet:
        stamp = self._stat() if self._stat else None
        ks = KeySet(self._fetch())
        self._keyset, self._stamp, self._fetched = ks, stamp, time.monotonic()
        return ks

    def keyset(self, refresh_for: Optional[str] = None) -> KeySet:
        """The cached set; with ``refresh_for`` (a kid it lacks), refetched
        when allowed."""
        with self._lock:
            ks = self._keyset
            if ks is None:
                return self._load()
            if refresh_for is None or refresh_for in ks:
                return ks
            if self._stat is not None:
                try:
                    changed = self._stat() != self._stamp
                except OSError:
                    changed = False
                return self._load() if changed else ks
            if time.monotonic() - self._fetched >= self.min_refresh:
                return self._load()
            return ks

    def verify(self, token: Union[str, bytes], *, audience: Optional[str] = None,
               issuer: Optional[str] = None, now: Optional[int] = None) -> Dict[str, Any]:
        """The token's claims, or InvalidToken. ``audience``/``issuer``
        default to the Verifier's."""
        try:
            kid = _check_header(_split(token)[3])
        except InvalidToken:
            kid = None
        ks = self.keyset()
        if kid is not None and kid not in ks:
            ks = self.keyset(refresh_for=kid)
        return verify_token(ks, token, audience=audience if audience is not None else self.audience,
                            issuer=issuer if issuer is not None else self.issuer, leeway=self.leeway, now=now)
