// SPDX-License-Identifier: MIT
// Offline verification of latchd's tokens (compact JWS, Ed25519) with the
// same strict rules as latchd and liblatch, and a key set cache that
// refetches when a token names a key it does not hold.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { InvalidToken } from './errors.js';
import { strictObject } from './strictjson.js';

export const MAX_TOKEN = 8192;
const ALGS = ['EdDSA', 'Ed25519'];
const EMBEDDED = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'];
const B64_RE = /^[A-Za-z0-9_-]*$/;

// The reasons, word for word as latchd's verify answers them.
export const REASONS = {
  tooLarge: 'token is larger than 8 KiB',
  format: 'token is not three segments of canonical base64url',
  header: 'token header is not a well-formed JSON object',
  alg: 'token algorithm is missing or not EdDSA/Ed25519',
  typ: 'token type is not JWT',
  crit: 'token has critical header parameters',
  embedded: 'token names or embeds its own key',
  kid: 'token key id is missing or not in the key set',
  signature: 'token signature is invalid',
  payload: 'token claims are not a well-formed JSON object',
  expired: 'token has expired or has no expiry',
  notYet: 'token is not valid yet',
  audience: 'token is not meant for this audience',
  issuer: 'token is not from the expected issuer',
};

/** Canonical base64url only (no padding, no 4n+1 length, no stray bits); null otherwise. */
export function b64urlDecode(s) {
  if (!B64_RE.test(s) || s.length % 4 === 1) return null;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : null;
}

const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isObj = (o) => o !== null && typeof o === 'object' && !Array.isArray(o);

export function thumbprint(x) {
  return crypto.createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
}

/**
 * Ed25519 keys of a JWKS by kid. Keys that are not OKP/Ed25519 signing keys
 * are skipped; a malformed Ed25519 key, a private key or a repeated kid make
 * the set invalid (TypeError), as in liblatch.
 */
export class KeySet {
  constructor(jwks) {
    let doc = jwks;
    if (typeof jwks === 'string' || Buffer.isBuffer(jwks)) {
      const r = strictObject(jwks.toString('utf8'), true);
      doc = r && r.value;
    }
    if (!isObj(doc) || !Array.isArray(doc.keys)) throw new TypeError('key set is malformed');
    this.keys = new Map();
    for (const jwk of doc.keys) {
      if (!isObj(jwk) || typeof jwk.kty !== 'string') throw new TypeError('key set is malformed');
      if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') continue;
      const { use, alg } = jwk;
      if ((use !== undefined && typeof use !== 'string') || (alg !== undefined && typeof alg !== 'string')) {
        throw new TypeError('key set is malformed');
      }
      if ((use !== undefined && use !== 'sig') || (alg !== undefined && !ALGS.includes(alg))) continue;
      // A private key in a published set is a misconfiguration to be seen.
      if (has(jwk, 'd')) throw new TypeError('key set holds a private key');
      const pk = typeof jwk.x === 'string' ? b64urlDecode(jwk.x) : null;
      if (!pk || pk.length !== 32) throw new TypeError('key set is malformed');
      let kid = jwk.kid;
      if (kid !== undefined && (typeof kid !== 'string' || !kid)) throw new TypeError('key set is malformed');
      if (kid === undefined) kid = thumbprint(jwk.x);
      if (this.keys.has(kid)) throw new TypeError('key set repeats a kid');
      this.keys.set(kid, crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }));
    }
  }

  get size() { return this.keys.size; }
  has(kid) { return this.keys.has(kid); }
}

function split(token) {
  if (typeof token !== 'string') throw new InvalidToken(REASONS.format);
  if (Buffer.byteLength(token, 'utf8') > MAX_TOKEN) throw new InvalidToken(REASONS.tooLarge);
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) throw new InvalidToken(REASONS.format);
  const dec = parts.map(b64urlDecode);
  if (dec.some((d) => d === null)) throw new InvalidToken(REASONS.format);
  const h = strictObject(dec[0].toString('utf8'));
  // Invalid UTF-8 decodes to U+FFFD: compare to refuse it as Jansson does.
  if (!h || !Buffer.from(dec[0].toString('utf8'), 'utf8').equals(dec[0])) throw new InvalidToken(REASONS.header);
  return { signed: parts[0] + '.' + parts[1], payload: dec[1], sig: dec[2], header: h.value };
}

function checkHeader(h) {
  if (typeof h.alg !== 'string' || !ALGS.includes(h.alg)) throw new InvalidToken(REASONS.alg);
  if (has(h, 'typ') && h.typ !== 'JWT') throw new InvalidToken(REASONS.typ);
  // No extension is understood, so any critical one is refused.
  if (has(h, 'crit')) throw new InvalidToken(REASONS.crit);
  // The key comes from our set, never from the token.
  if (EMBEDDED.some((k) => has(h, k))) throw new InvalidToken(REASONS.embedded);
  if (typeof h.kid !== 'string') throw new InvalidToken(REASONS.kid);
  return h.kid;
}

function checkClaims(c, ints, { audience, issuer, leeway, now }) {
  for (const k of ['exp', 'nbf', 'iat']) if (has(c, k) && !ints.has(k)) throw new InvalidToken(REASONS.payload);
  for (const k of ['iss', 'sub', 'jti', 'sid']) {
    if (has(c, k) && typeof c[k] !== 'string') throw new InvalidToken(REASONS.payload);
  }
  const aud = c.aud;
  if (has(c, 'aud') && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    throw new InvalidToken(REASONS.payload);
  }
  const lw = Math.max(leeway, 0);
  if (!has(c, 'exp') || c.exp <= now - lw) throw new InvalidToken(REASONS.expired);
  if (has(c, 'nbf') && c.nbf > now + lw) throw new InvalidToken(REASONS.notYet);
  if (has(c, 'iat') && c.iat > now + lw) throw new InvalidToken(REASONS.notYet);
  if (audience != null && (!has(c, 'aud') || (typeof aud === 'string' ? aud !== audience : !aud.includes(audience)))) {
    throw new InvalidToken(REASONS.audience);
  }
  if (issuer != null && c.iss !== issuer) throw new InvalidToken(REASONS.issuer);
}

/**
 * Verifies a compact JWS against `keyset` and returns its claims; throws
 * InvalidToken naming the failed check. Options: audience, issuer,
 * leeway (30 s), now (Unix seconds).
 */
export function verifyToken(keyset, token, { audience, issuer, leeway = 30, now } = {}) {
  const { signed, payload, sig, header } = split(token);
  const key = keyset.keys.get(checkHeader(header));
  if (!key) throw new InvalidToken(REASONS.kid);
  if (sig.length !== 64 || !crypto.verify(null, Buffer.from(signed, 'latin1'), key, sig)) {
    throw new InvalidToken(REASONS.signature);
  }
  const text = payload.toString('utf8');
  const c = Buffer.from(text, 'utf8').equals(payload) ? strictObject(text) : null;
  if (!c) throw new InvalidToken(REASONS.payload);
  checkClaims(c.value, c.ints, { audience, issuer, leeway, now: now || Math.floor(Date.now() / 1000) });
  return c.value;
}

/**
 * Verifies tokens offline with a cached key set. `source`: the path of
 * latchd's jwks.json (default /run/latch/jwks.json), a Client (asks the
 * `jwks` op) or a function returning (a promise of) a JWKS. An unknown kid
 * refetches: for a file when it changed, otherwise at most once per
 * minRefresh ms, so forged kids cannot make it fetch on every request.
 */
export class Verifier {
  constructor(source = '/run/latch/jwks.json', { audience, issuer, leeway = 30, minRefresh = 5000 } = {}) {
    this.opts = { audience, issuer, leeway };
    this.minRefresh = minRefresh;
    this.keyset = null;
    this.fetchedAt = -Infinity;
    this.stamp = null;
    this.loading = null;
    if (typeof source === 'string') {
      this.fetch = async () => fs.promises.readFile(source);
      this.stat = async () => { const s = await fs.promises.stat(source); return `${s.ino}:${s.mtimeMs}:${s.size}`; };
    } else if (source && typeof source.jwks === 'function') {
      this.fetch = () => source.jwks();
    } else if (typeof source === 'function') {
      this.fetch = source;
    } else {
      throw new TypeError('source must be a path, a Client or a function returning a JWKS');
    }
  }

  async _load() {
    if (!this.loading) {
      this.loading = (async () => {
        try {
          const stamp = this.stat ? await this.stat() : null;
          const ks = new KeySet(await this.fetch());
          this.keyset = ks;
          this.stamp = stamp;
          this.fetchedAt = performance.now();
          return ks;
        } finally {
          this.loading = null;
        }
      })();
    }
    return this.loading;
  }

  async _keysetFor(kid) {
    if (!this.keyset) return this._load();
    if (kid === null || this.keyset.has(kid)) return this.keyset;
    if (this.stat) {
      let changed = false;
      try { changed = (await this.stat()) !== this.stamp; } catch { /* keep what we have */ }
      return changed ? this._load() : this.keyset;
    }
    return performance.now() - this.fetchedAt >= this.minRefresh ? this._load() : this.keyset;
  }

  /** The token's claims, or rejects with InvalidToken. */
  async verify(token, opts = {}) {
    let kid = null;
    try { kid = checkHeader(split(token).header); } catch { /* verifyToken reports it */ }
    const ks = await this._keysetFor(kid);
    return verifyToken(ks, token, { ...this.opts, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v != null)) });
  }
}
