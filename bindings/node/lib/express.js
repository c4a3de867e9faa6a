// SPDX-License-Identifier: MIT
// Express (and plain node:http-style) middleware: session from the cookie,
// a login page with CSRF protection and conversations, logout, and a guard.

import crypto from 'node:crypto';
import { Client } from './client.js';
import { buildCookie, clearCookie, parseCookie } from './cookie.js';
import { Challenge, ClientError, Denied, Internal, InvalidConversation, InvalidSession, LatchError, Unavailable } from './errors.js';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const isUnavailable = (e) => e instanceof Unavailable || e instanceof Internal || e instanceof ClientError;

/** A local path to return to after login; never "//host" (an open redirect). */
export function safeNext(t, dflt = '/') {
  if (typeof t !== 'string' || !t.startsWith('/') || t.startsWith('//') || t.startsWith('/\\') ||
      /[\x00-\x1f]/.test(t)) return dflt;
  return t;
}

/** The default login form; replace with the `page` option. */
export function defaultLoginPage({ csrf, next, error, prompts, conversation, action }) {
  let f = `<form method="post" action="${esc(action)}"><input type="hidden" name="csrf_token" value="${esc(csrf)}">` +
    `<input type="hidden" name="next" value="${esc(next)}">`;
  if (conversation != null) {
    f += `<input type="hidden" name="conversation" value="${esc(conversation)}">`;
    let i = 0;
    for (const p of prompts) {
      if (p.style === 'secret' || p.style === 'text') {
        f += `<label>${esc(p.message)} <input type="${p.style === 'secret' ? 'password' : 'text'}" name="answer${i++}" autocomplete="off" required></label>`;
      } else f += `<p class="${esc(p.style)}">${esc(p.message)}</p>`;
    }
  } else {
    f += '<label>User <input name="user" autocomplete="username" required></label>' +
      '<label>Password <input type="password" name="password" autocomplete="current-password" required></label>';
  }
  f += '<button type="submit">Log in</button></form>';
  return '<!doctype html><html><head><meta charset=utf-8><title>Log in</title></head><body>' +
    (error ? `<p role="alert">${esc(error)}</p>` : '') + f + '</body></html>';
}

function readForm(req) {
  if (req.body && typeof req.body === 'object') return Promise.resolve(req.body);
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > 65536) { reject(new Error('form too large')); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')))));
    req.on('error', reject);
  });
}

function send(res, status, headers, body) {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(body);
}

/**
 * `const auth = latch({ service: 'wiki' }); app.use(auth); app.get('/', auth.required, ...)`.
 *
 * Every request: a live session cookie sets `req.latch` (validate's results:
 * user, claims, handle, ...). The middleware itself serves GET/POST
 * `loginPath` (a form with a double-submit CSRF token and a same-origin
 * check; challenges are shown as further forms) and POST `logoutPath`.
 * `auth.required` sends others to the login page (GET/HEAD) or answers 401;
 * latchd failing answers 503.
 * Options: client, socketPath, service, cookieName, loginPath ('/login'),
 * logoutPath ('/logout'), page (a function returning the form's HTML).
 */
export function latch(opts = {}) {
  const client = opts.client ?? new Client({ socketPath: opts.socketPath });
  const { service, cookieName } = opts;
  const loginPath = opts.loginPath ?? '/login';
  const logoutPath = opts.logoutPath ?? '/logout';
  const csrfName = opts.csrfCookieName ?? (cookieName ? cookieName + '-csrf' : '__Host-latch-csrf');
  const page = opts.page ?? defaultLoginPage;
  const csrfCookie = (v) => buildCookie(v, Math.floor(Date.now() / 1000) + 86400, { name: csrfName, sameSite: 'Strict' });

  const pathOf = (req) => (req.originalUrl ?? req.url).split('?')[0];
  const cookieOf = (req) => {
    const h = req.headers.cookie;
    return Array.isArray(h) ? h.join('; ') : h;
  };
  const csrfOk = (req, form) => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let u;
      try { u = new URL(origin); } catch { return false; }
      const proto = req.protocol ?? (req.socket.encrypted ? 'https' : 'http');
      if (u.host !== req.headers.host || u.protocol !== proto + ':') return false;
    }
    const have = parseCookie(cookieOf(req), csrfName);
    const sent = typeof form.csrf_token === 'string' ? form.csrf_token : '';
    return !!have && have.length === sent.length && crypto.timingSafeEqual(Buffer.from(have), Buffer.from(sent));
  };
  const render = (req, res, status, { error, challenge, next } = {}) => {
    let csrf = parseCookie(cookieOf(req), csrfName);
    const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY' };
    if (!csrf || csrf.length !== 43) {
      csrf = crypto.randomBytes(32).toString('base64url');
      headers['Set-Cookie'] = csrfCookie(csrf);
    }
    const nxt = safeNext(next ?? new URL(req.url, 'http://x').searchParams.get('next'));
    send(res, status, headers, page({ csrf, next: nxt, error, prompts: challenge?.prompts, conversation: challenge?.conversation, action: loginPath }));
  };

  async function login(req, res) {
    if (req.method === 'GET' || req.method === 'HEAD') return render(req, res, 200);
    const form = await readForm(req);
    if (!csrfOk(req, form)) return send(res, 403, { 'Content-Type': 'text/plain' }, 'cross-site request refused\n');
    const next = safeNext(form.next);
    let r;
    try {
      if (typeof form.conversation === 'string') {
        const answers = [];
        while (typeof form[`answer${answers.length}`] === 'string') answers.push(form[`answer${answers.length}`]);
        r = await client.respond(form.conversation, answers);
      } else {
        if (!form.user || !form.password) return render(req, res, 400, { error: 'enter a user name and a password', next });
        r = await client.login(service, String(form.user), String(form.password), { remote: req.socket.remoteAddress });
      }
    } catch (e) {
      if (e instanceof Challenge) return render(req, res, 200, { challenge: e, next });
      if (e instanceof Denied || e instanceof InvalidConversation) return render(req, res, 401, { error: 'authentication failed', next });
      if (isUnavailable(e)) return render(req, res, 503, { error: 'authentication is unavailable; try again later', next });
      if (e instanceof LatchError) return render(req, res, 400, { error: 'authentication failed', next });
      throw e;
    }
    send(res, 303, {
      Location: next, 'Cache-Control': 'no-store',
      'Set-Cookie': [buildCookie(r.session, r.expires_at, { name: cookieName }),
        csrfCookie(crypto.randomBytes(32).toString('base64url'))],
    }, '');
  }

  async function logout(req, res) {
    const form = await readForm(req);
    if (!csrfOk(req, form)) return send(res, 403, { 'Content-Type': 'text/plain' }, 'cross-site request refused\n');
    const sid = parseCookie(cookieOf(req), cookieName);
    if (sid) {
      try { await client.logout(sid); } catch (e) {
        if (isUnavailable(e)) return send(res, 503, { 'Content-Type': 'text/plain' }, 'authentication is unavailable; try again later\n');
        if (!(e instanceof InvalidSession)) throw e;
      }
    }
    send(res, 303, { Location: loginPath, 'Set-Cookie': clearCookie({ name: cookieName }) }, '');
  }

  const mw = async function latchMiddleware(req, res, next) {
    try {
      const path = pathOf(req);
      if (path === loginPath) return await login(req, res);
      if (path === logoutPath && req.method === 'POST') return await logout(req, res);
      req.latch = null;
      const sid = parseCookie(cookieOf(req), cookieName);
      if (sid) {
        try {
          req.latch = await client.validate(sid, service);
          req.latch.session = sid;
        } catch (e) {
          if (!(e instanceof InvalidSession)) {
            if (isUnavailable(e)) req.latchError = e; else throw e;
          }
        }
      }
      next();
    } catch (e) {
      next(e);
    }
  };
  mw.client = client;
  /** Route guard: only requests with a live session pass. */
  mw.required = function latchRequired(req, res, next) {
    if (req.latch) return next();
    if (req.latchError) {
      return send(res, 503, { 'Content-Type': 'text/plain', 'Retry-After': '1' }, 'authentication is unavailable; try again later\n');
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      return send(res, 303, { Location: `${loginPath}?next=${encodeURIComponent(req.originalUrl ?? req.url)}`, 'Cache-Control': 'no-store' }, 'login required\n');
    }
    send(res, 401, { 'Content-Type': 'text/plain' }, 'login required\n');
  };
  /** The CSRF token to put in a logout form (name "csrf_token"). */
  mw.csrfToken = (req) => parseCookie(cookieOf(req), csrfName);
  return mw;
}

export default latch;
