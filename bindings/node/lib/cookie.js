// SPDX-License-Identifier: MIT
// The session cookie, by liblatch's rules (RFC 6265, the __Host- prefix).

export const DEFAULT_NAME = '__Host-latch';
const SESSION_RE = /^[A-Za-z0-9_-]{1,512}$/;
const DOMAIN_RE = /^[A-Za-z0-9.-]{1,253}$/;
const SAME_SITE = { strict: 'Strict', lax: 'Lax', none: 'None' };

function nameOk(n) {
  if (typeof n !== 'string' || n.length === 0 || n.length > 256) return false;
  for (const ch of n) {
    const c = ch.codePointAt(0);
    if (c <= 0x20 || c >= 0x7f || '()<>@,;:\\"/[]?={}'.includes(ch)) return false;
  }
  return true;
}

function check({ name, sameSite, domain } = {}) {
  const n = name ?? DEFAULT_NAME;
  const ss = sameSite == null ? 'Lax' : SAME_SITE[String(sameSite).toLowerCase()];
  if (!ss) throw new TypeError('sameSite must be Strict, Lax or None');
  if (!nameOk(n)) throw new TypeError('the cookie name must be an RFC 6265 token');
  if (domain != null) {
    // The browser drops a __Host- cookie carrying Domain.
    if (n.startsWith('__Host-')) throw new TypeError('a __Host- cookie cannot carry a Domain');
    if (!DOMAIN_RE.test(domain)) throw new TypeError("the domain must be letters, digits, '-' and '.'");
  }
  return [n, ss, domain];
}

const format = (n, v, maxAge, ss, d) =>
  `${n}=${v}; Max-Age=${maxAge}; Path=/; Secure; HttpOnly; SameSite=${ss}` + (d != null ? `; Domain=${d}` : '');

/**
 * The Set-Cookie value carrying `session`; Max-Age = expiresAt - now (0 once
 * expired). Options: name ("__Host-latch"), sameSite ("Lax"), domain, now.
 */
export function buildCookie(session, expiresAt, opts = {}) {
  if (typeof session !== 'string' || !SESSION_RE.test(session)) {
    throw new TypeError('the session id must be 1 to 512 base64url characters');
  }
  const [n, ss, d] = check(opts);
  const now = opts.now || Math.floor(Date.now() / 1000);
  return format(n, session, expiresAt > now ? expiresAt - now : 0, ss, d);
}

/** The Set-Cookie value that removes the cookie. */
export function clearCookie(opts = {}) {
  const [n, ss, d] = check(opts);
  return format(n, '', 0, ss, d);
}

/**
 * The session id in a Cookie header, or null: pairs split at ';', blanks
 * ignored, a quoted value unquoted, the first well-formed value of the name wins.
 */
export function parseCookie(header, name = DEFAULT_NAME) {
  if (!nameOk(name)) throw new TypeError('the cookie name must be an RFC 6265 token');
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, '');
    let v = part.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"') v = v.slice(1, -1);
    if (k === name && SESSION_RE.test(v)) return v;
  }
  return null;
}
