// SPDX-License-Identifier: MIT
// @latch/client against the real latchd (and fakelatchd.py for what latchd
// cannot be made to do on demand: a challenge, a dropped connection).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const L = await import(path.join(here, '..', '..', 'bindings', 'node', 'index.js'));
const { latch: latchExpress } = await import(path.join(here, '..', '..', 'bindings', 'node', 'lib', 'express.js'));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'latch-node-'));
const procs = [];
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitConnectable(sock, ms = 20000) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const ok = await new Promise((r) => {
      const s = net.createConnection({ path: sock }, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${sock} never accepted`);
}

// A latchd in a scratch folder, like tests/e2e/harness.py.
class Daemon {
  constructor(name) {
    this.dir = path.join(tmp, name);
    fs.mkdirSync(path.join(this.dir, 'services'), { recursive: true });
    fs.mkdirSync(path.join(this.dir, 'plugins'));
    for (const [k, v] of Object.entries(process.env)) {
      if (k.startsWith('LATCH_PLUGIN_')) fs.symlinkSync(v, path.join(this.dir, 'plugins', k.slice(13).toLowerCase() + '.so'));
    }
    this.sock = path.join(this.dir, 'latchd.sock');
    this.jwks = path.join(this.dir, 'jwks.json');
    const users = path.join(this.dir, 'users');
    fs.writeFileSync(path.join(this.dir, 'latchd.conf'), `[daemon]\nsocket = ${this.sock}\nstate_dir = state\n` +
      'services_dir = services\nplugin_dir = plugins\njwks_file = jwks.json\nworkers = 2\n' +
      '[service.private]\nallow_users = nobody\n');
    const stack = `auth required file path=${users}\naccount required file path=${users}\n`;
    fs.writeFileSync(path.join(this.dir, 'services', 'demo'), stack);
    fs.writeFileSync(path.join(this.dir, 'services', 'private'), stack);
    fs.writeFileSync(path.join(this.dir, 'services', 'broken'), 'auth required debug auth=authinfo_unavail\n');
    fs.writeFileSync(path.join(this.dir, 'services', 'pw'), stack + `password required file path=${users} min_length=8\n`);
    // A second factor for users who enrolled one (the plugin test's dave).
    fs.writeFileSync(path.join(this.dir, 'services', 'tf'), `auth required file path=${users}\n` +
      'auth [success=ok user_unknown=ignore default=bad] totp issuer=Demo\n' + `account required file path=${users}\n`);
    const r = spawnSync(process.env.LATCHCTL, ['user', 'add', users, 'demo', '--groups', 'users'], { input: 'demo-password\n' });
    assert.equal(r.status, 0, String(r.stderr));
    // carol's password changes (the passwd test); demo's stays for the others.
    const r2 = spawnSync(process.env.LATCHCTL, ['user', 'add', users, 'carol'], { input: 'carol-password\n' });
    assert.equal(r2.status, 0, String(r2.stderr));
    const r3 = spawnSync(process.env.LATCHCTL, ['user', 'add', users, 'dave'], { input: 'dave-password\n' });
    assert.equal(r3.status, 0, String(r3.stderr));
  }
  async start() {
    const log = fs.openSync(path.join(this.dir, 'latchd.log'), 'a');
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    delete env.LISTEN_FDS;
    this.proc = spawn(process.env.LATCHD, ['--config', path.join(this.dir, 'latchd.conf'), '--socket', this.sock],
      { cwd: this.dir, env, stdio: ['ignore', log, log] });
    procs.push(this.proc);
    await waitConnectable(this.sock);
  }
  async stop() {
    const p = this.proc;
    if (p.exitCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await done;
  }
}

async function fake(mode) {
  const sock = path.join(tmp, `fake-${mode}-${Math.random().toString(36).slice(2)}.sock`);
  const p = spawn('python3', [path.join(here, 'fakelatchd.py'), sock, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  await new Promise((r) => p.stdout.once('data', r));
  return { sock, stop: () => p.kill('SIGKILL') };
}

const d = new Daemon('main');
await d.start();
after(() => d.stop());

test('login, validate, token, offline verify, logout', async () => {
  const c = new L.Client({ socketPath: d.sock });
  assert.equal((await c.hello()).version, 1);
  const s = await c.login('demo', 'demo', 'demo-password', { remote: '192.0.2.1', token: true });
  assert.equal(s.user, 'demo');
  assert.equal(s.session.length, 44);
  const v = await c.validate(s.session, 'demo');
  assert.deepEqual([v.user, v.handle, v.claims.groups], ['demo', s.handle, ['users']]);
  const { token } = await c.token(s.session, 'demo');
  for (const source of [d.jwks, c]) {
    const claims = await new L.Verifier(source, { issuer: 'latch' }).verify(token, { audience: 'demo' });
    assert.deepEqual([claims.sub, claims.sid], ['demo', s.handle]);
  }
  assert.equal((await new L.Verifier(d.jwks).verify(s.token)).sub, 'demo');
  await assert.rejects(new L.Verifier(d.jwks).verify(token, { audience: 'wiki' }), /audience/);
  assert.equal((await c.verify(token)).claims.sub, 'demo');
  await c.logout(s.session);
  await assert.rejects(c.validate(s.session), L.InvalidSession);
  await assert.rejects(c.verify(token), /session has ended/);
  c.close();
});

test('passwd: a conversation through the file plugin; the caller\'s session is kept', async () => {
  const c = new L.Client(d.sock);
  const mine = (await c.login('pw', 'carol', 'carol-password')).session;
  const other = (await c.login('demo', 'carol', 'carol-password')).session;
  const first = await c.passwd('pw', 'carol', { session: mine }).catch((e) => e);
  assert.ok(first instanceof L.Challenge, String(first));
  assert.deepEqual(first.prompts, [{ style: 'secret', message: 'Current password:' }]);
  const second = await c.respond(first.conversation, ['carol-password']).catch((e) => e);
  assert.ok(second instanceof L.Challenge, String(second));
  assert.equal(second.answersNeeded, 2);
  assert.deepEqual(await c.respond(second.conversation, ['a-new-passphrase', 'a-new-passphrase']),
    { user: 'carol', service: 'pw', revoked: 1 });
  assert.equal((await c.validate(mine)).user, 'carol');
  await assert.rejects(c.validate(other), L.InvalidSession);
  await assert.rejects(c.login('pw', 'carol', 'carol-password'), L.Denied);
  c.close();
});

// RFC 6238, HMAC-SHA1, 6 digits: the code of a base32 secret now.
function totpCode(secret, period = 30) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / period)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

test('plugin: an administrator\'s call, and a user\'s own re-authenticated through a conversation', async () => {
  const c = new L.Client(d.sock);
  // As `latchctl totp status dave` (the tests run as an admin peer).
  const st = await c.plugin('totp', 'status', { user: 'dave', service: 'tf' });
  assert.deepEqual([st.user, st.enrolled, st.pending], ['dave', false, false]);
  await assert.rejects(c.plugin('totp', 'fly', { user: 'dave' }), L.BadRequest);
  await assert.rejects(c.plugin('totp', 'status', { op: 'logout' }), TypeError);

  const mine = (await c.login('tf', 'dave', 'dave-password')).session;
  assert.equal((await c.plugin('totp', 'status', { session: mine })).user, 'dave');
  await assert.rejects(c.plugin('totp', 'enroll', { session: mine }), /re-authenticate/);
  await assert.rejects(c.plugin('totp', 'status', { session: mine, user: 'demo' }), L.Forbidden);
  await assert.rejects(c.plugin('totp', 'enroll', { session: mine, password: 'wrong-password' }), L.Denied);
  await assert.rejects(c.plugin('totp', 'status', { session: 'A'.repeat(44) }), L.InvalidSession);
  const enrolled = await c.plugin('totp', 'enroll', { session: mine, password: 'dave-password' });
  assert.ok(enrolled.uri.startsWith(`otpauth://totp/Demo:dave?secret=${enrolled.secret}`), enrolled.uri);
  const done = await c.plugin('totp', 'confirm', { session: mine, code: totpCode(enrolled.secret) });
  assert.deepEqual([done.user, done.enrolled], ['dave', true]);
  const { codes } = await c.plugin('totp', 'recovery', { user: 'dave', service: 'tf' });

  // The re-authentication asks for the code now: respond() goes on, and its
  // last answer is the action's.
  const asked = await c.plugin('totp', 'remove', { session: mine, password: 'dave-password', remote: '192.0.2.4' })
    .catch((e) => e);
  assert.ok(asked instanceof L.Challenge, String(asked));
  assert.deepEqual(asked.prompts, [{ style: 'secret', message: 'Verification code:' }]);
  assert.deepEqual(await c.respond(asked.conversation, [codes[0]]), { user: 'dave', removed: true });
  assert.equal((await c.plugin('totp', 'status', { user: 'dave', service: 'tf' })).enrolled, false);
  c.close();
});

test('plugin: what goes on the wire (fake server)', async () => {
  const f = await fake('echo');
  const c = new L.Client(f.sock);
  assert.deepEqual((await c.plugin('totp', 'status', { user: 'alice', service: undefined })).request,
    { op: 'plugin', plugin: 'totp', action: 'status', user: 'alice' });
  assert.deepEqual((await c.plugin('totp', 'enroll', { session: 'S'.repeat(44), password: 'pw', remote: '192.0.2.1' })).request,
    { op: 'plugin', plugin: 'totp', action: 'enroll', session: 'S'.repeat(44), password: 'pw', remote: '192.0.2.1' });
  c.close();
  f.stop();
});

test('every error code maps to its class', async () => {
  const c = new L.Client(d.sock);
  const cases = [
    [L.Denied, () => c.login('demo', 'demo', 'wrong', { remote: '198.51.100.9' })],
    [L.UnknownService, () => c.login('nope', 'demo', 'x')],
    [L.Forbidden, () => c.login('private', 'demo', 'demo-password')],
    [L.Unavailable, () => c.authenticate('broken', 'demo', 'x')],
    [L.BadRequest, () => c.login('demo', 'u'.repeat(300), 'x')],
    [L.InvalidSession, () => c.validate('A'.repeat(44))],
    [L.InvalidToken, () => c.verify('a.b.c')],
    [L.UnknownOp, () => c.call('fly')],
    [L.TooLarge, () => c.call('hello', { pad: 'x'.repeat(70000) })],
    [L.Unreachable, () => new L.Client(path.join(tmp, 'nothing.sock')).hello()],
  ];
  for (const [cls, fn] of cases) {
    await assert.rejects(fn(), (e) => e.constructor === cls && e.code === cls.code && e instanceof L.LatchError, cls.name);
  }
  assert.equal((await c.hello()).version, 1, 'usable after a too_large');
  c.close();
});

test('internal: a reload that finds errors', async () => {
  const d2 = new Daemon('reload');
  await d2.start();
  const c = new L.Client(d2.sock);
  fs.appendFileSync(path.join(d2.dir, 'latchd.conf'), '[session]\nidle_timeout = forever\n');
  await assert.rejects(c.reload(), L.Internal);
  c.close();
  await d2.stop();
});

test('100 parallel validates', async () => {
  const c = new L.Client({ socketPath: d.sock, connections: 4 });
  const { session } = await c.login('demo', 'demo', 'demo-password');
  const r = await Promise.all(Array.from({ length: 100 }, () => c.validate(session)));
  assert.deepEqual(r.map((x) => x.user), Array(100).fill('demo'));
  c.close();
});

test('reconnects after latchd restarts', async () => {
  const d3 = new Daemon('restart');
  await d3.start();
  const c = new L.Client(d3.sock);
  const { session } = await c.login('demo', 'demo', 'demo-password');
  assert.equal((await c.validate(session)).user, 'demo');
  await d3.stop();
  await assert.rejects(c.validate(session), L.Unreachable);
  await d3.start();
  assert.equal((await c.validate(session)).user, 'demo');
  c.close();
  await d3.stop();
});

test('JWKS cache refetches on an unknown kid', async () => {
  const c = new L.Client(d.sock);
  const { session } = await c.login('demo', 'demo', 'demo-password');
  const byFile = new L.Verifier(d.jwks);
  const byOp = new L.Verifier(c, { minRefresh: 0 });
  const t1 = (await c.token(session)).token;
  await byFile.verify(t1);
  await byOp.verify(t1);
  await c.keysRotate();
  const t2 = (await c.token(session)).token;
  assert.notEqual(t1.split('.')[0], t2.split('.')[0]);
  assert.equal((await byFile.verify(t2)).sub, 'demo');
  assert.equal((await byOp.verify(t2)).sub, 'demo');
  c.close();
});

test('a challenge, answered with respond (fake server: latchd asks none on demand)', async () => {
  const f = await fake('challenge');
  const c = new L.Client(f.sock);
  const e = await c.login('demo', 'alice', 'pw').catch((x) => x);
  assert.ok(e instanceof L.Challenge);
  assert.equal(e.code, 'challenge');
  assert.deepEqual(e.prompts, [{ style: 'info', message: 'second factor' }, { style: 'secret', message: 'Verification code:' }]);
  assert.equal(e.answersNeeded, 1);
  await assert.rejects(c.respond(e.conversation, ['000000']), L.InvalidConversation);
  assert.equal((await c.respond(e.conversation, ['123456'])).user, 'alice');
  c.close();
  f.stop();
});

test('idempotent ops are resent once, others never; timeouts; junk', async () => {
  let f = await fake('drop-first');
  let c = new L.Client({ socketPath: f.sock, connections: 1 });
  const r = await c.validate('S'.repeat(44));
  assert.deepEqual([r.op, r.attempt], ['validate', 1]);
  c.close(); f.stop();
  f = await fake('drop-first');
  c = new L.Client({ socketPath: f.sock, connections: 1 });
  await assert.rejects(c.login('demo', 'alice', 'pw'), L.Disconnected);
  c.close(); f.stop();
  f = await fake('silent');
  c = new L.Client({ socketPath: f.sock, timeout: 500 });
  await assert.rejects(c.hello(), L.Timeout);
  c.close(); f.stop();
  f = await fake('junk');
  c = new L.Client({ socketPath: f.sock });
  await assert.rejects(c.hello(), L.ProtocolError);
  c.close(); f.stop();
});

test('close() fails what latchd did not answer, resends nothing', async () => {
  const f = await fake('silent');
  const c = new L.Client({ socketPath: f.sock, timeout: 10000 });
  const p = c.validate('S'.repeat(44));
  const q = assert.rejects(p, L.Disconnected);
  await new Promise((r) => setTimeout(r, 300)); // connected and sent
  c.close();
  await q;
  // No connection was opened again for the closed client.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(c.conns.every((x) => x === null));
  f.stop();
});

test('cookies by liblatch rules', () => {
  assert.equal(L.buildCookie('abc', 2000, { now: 1000 }),
    '__Host-latch=abc; Max-Age=1000; Path=/; Secure; HttpOnly; SameSite=Lax');
  assert.equal(L.buildCookie('abc', 500, { now: 1000, name: 'sid', sameSite: 'strict', domain: 'example.org' }),
    'sid=abc; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict; Domain=example.org');
  assert.throws(() => L.buildCookie('a b', 1), TypeError);
  assert.throws(() => L.buildCookie('abc', 1, { domain: 'example.org' }), TypeError, '__Host- and Domain');
  assert.equal(L.clearCookie(), '__Host-latch=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax');
  assert.equal(L.parseCookie('a=1; __Host-latch="q_q" ;x=y'), 'q_q');
  assert.equal(L.parseCookie('__Host-latch=bad!; __Host-latch=ok'), 'ok');
  assert.equal(L.parseCookie(' \t__Host-latch \t= \tv1\t '), 'v1');
  assert.equal(L.parseCookie('sid=1', 'other'), null);
  assert.equal(L.parseCookie(undefined), null);
});

test('offline verification refuses what liblatch refuses', () => {
  const crypto = createRequire(import.meta.url)('node:crypto');
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x;
  const kid = 'k1';
  const ks = new L.KeySet({ keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid }] });
  const now = 1800000000;
  const b = (s) => Buffer.from(s).toString('base64url');
  const tok = (h, p) => {
    const signed = b(h) + '.' + b(p);
    return signed + '.' + crypto.sign(null, Buffer.from(signed), privateKey).toString('base64url');
  };
  const H = JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid });
  const P = (o) => JSON.stringify({ sub: 'u', exp: now + 60, ...o });
  const ok = tok(H, P({}));
  const sig0 = (t, c) => { const i = t.lastIndexOf('.') + 1; return t.slice(0, i) + c + t.slice(i + 1); };
  assert.equal(L.verifyToken(ks, ok, { now }).sub, 'u');
  const R = L.REASONS;
  const cases = [
    [tok('{"alg":"none","kid":"k1"}', P({})), R.alg],
    [tok('{"alg":"EdDSA","kid":"k1","crit":["b64"]}', P({})), R.crit],
    [tok('{"alg":"EdDSA","kid":"k1","jwk":{}}', P({})), R.embedded],
    [tok('{"alg":"EdDSA","kid":"k2"}', P({})), R.kid],
    [tok('{"alg":"EdDSA","kid":"k1","kid":"k1"}', P({})), R.header],
    [tok(H, `{"sub":"u","exp":${now + 60},"exp":${now + 60}}`), R.payload],
    [tok(H, `{"sub":"u","exp":${now + 60}.0}`), R.payload],
    [tok(H, '{"sub":"u"}'), R.expired],
    [tok(H, P({ exp: now - 31 })), R.expired],
    [tok(H, P({ nbf: now + 31 })), R.notYet],
    [tok(H, P({ aud: 'other' })), R.audience, { audience: 'svc' }],
    [tok(H, P({ iss: 'evil' })), R.issuer, { issuer: 'latch' }],
    [tok(H, P({ pad: 'p'.repeat(9000) })), R.tooLarge],
    [ok + '=', R.format],
    [ok.slice(0, -10) + (ok.at(-10) === 'A' ? 'B' : 'A') + ok.slice(-9), R.signature],
    // Standard base64's '+' and '/' in place of the signature's first
    // character (a random token need not hold any '-' or '_' to swap).
    [sig0(ok, '+'), R.format],
    [sig0(ok, '/'), R.format],
  ];
  for (const [t, reason, opts] of cases) {
    assert.throws(() => L.verifyToken(ks, t, { now, ...opts }), (e) => e instanceof L.InvalidToken && e.message === reason, reason);
  }
  assert.equal(L.verifyToken(ks, tok(H, P({ exp: now - 29 })), { now }).sub, 'u', 'within the leeway');
  assert.equal(L.verifyToken(ks, tok(H, P({ aud: ['a', 'svc'] })), { now, audience: 'svc' }).sub, 'u');
});

test('an Express app protected end to end', async () => {
  const req = createRequire(path.join(process.env.LATCH_NODE_MODULES, 'x.js'));
  const express = req('express');
  const app = express();
  const auth = latchExpress({ socketPath: d.sock, service: 'demo', cookieName: 'sid' });
  app.use(auth);
  app.get('/', auth.required, (r, res) => res.send(`hello ${r.latch.user}; csrf=${auth.csrfToken(r)}`));
  const server = http.createServer(app);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  const jar = new Map();
  const go = async (p, opts = {}) => {
    const res = await fetch(base + p, { redirect: 'manual', ...opts,
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(opts.headers || {}) } });
    for (const sc of res.headers.getSetCookie()) {
      const [kv] = sc.split(';');
      const [k, v] = kv.split('=');
      if (v) jar.set(k, v); else jar.delete(k);
    }
    return res;
  };
  const form = (o) => ({ method: 'POST', body: new URLSearchParams(o), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  try {
    let r = await go('/?x=1');
    assert.deepEqual([r.status, r.headers.get('location')], [303, '/login?next=%2F%3Fx%3D1']);
    r = await go('/login?next=%2F%3Fx%3D1');
    const page = await r.text();
    const csrf = page.split('name="csrf_token" value="')[1].split('"')[0];
    assert.ok(page.includes('value="/?x=1"'));
    r = await go('/login', form({ user: 'demo', password: 'demo-password', csrf_token: 'forged', next: '/' }));
    assert.equal(r.status, 403, 'a wrong CSRF token');
    r = await go('/login', { ...form({ user: 'demo', password: 'demo-password', csrf_token: csrf }), headers: { ...form({}).headers, origin: 'http://evil.example' } });
    assert.equal(r.status, 403, 'a foreign Origin');
    r = await go('/login', form({ user: 'demo', password: 'wrong', csrf_token: csrf, next: '/' }));
    assert.equal(r.status, 401);
    r = await go('/login', form({ user: 'demo', password: 'demo-password', csrf_token: csrf, next: '//evil.example/' }));
    assert.deepEqual([r.status, r.headers.get('location')], [303, '/'], 'no open redirect');
    assert.ok(jar.get('sid'));
    r = await go('/');
    const text = await r.text();
    assert.equal(r.status, 200);
    assert.match(text, /^hello demo/);
    const token = text.split('csrf=')[1];
    assert.equal((await go('/logout', form({ csrf_token: 'x' }))).status, 403);
    const sid = jar.get('sid');
    r = await go('/logout', form({ csrf_token: token }));
    assert.equal(r.status, 303);
    await assert.rejects(new L.Client(d.sock).validate(sid), L.InvalidSession);
    assert.equal((await go('/')).status, 303);
  } finally {
    auth.client.close();
    server.close();
  }
});

test('npm pack ships the code and the declarations', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: path.join(here, '..', '..', 'bindings', 'node'), encoding: 'utf8' });
  if (r.error && r.error.code === 'ENOENT') return; // npm is not needed to use the package
  assert.equal(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout)[0].files.map((f) => f.path);
  for (const f of ['index.js', 'index.d.ts', 'express.d.ts', 'lib/client.js', 'lib/token.js', 'lib/express.js', 'package.json']) {
    assert.ok(files.includes(f), f);
  }
});

test('examples/express/app.mjs protects its page', async () => {
  // The example as a user runs it: its own folder, express and
  // @latch/client resolved from node_modules.
  const dir = fs.mkdtempSync(path.join(tmp, 'example-'));
  fs.mkdirSync(path.join(dir, 'node_modules', '@latch'), { recursive: true });
  fs.symlinkSync(path.join(process.env.LATCH_NODE_MODULES, 'express'), path.join(dir, 'node_modules', 'express'));
  fs.symlinkSync(path.join(here, '..', '..', 'bindings', 'node'), path.join(dir, 'node_modules', '@latch', 'client'));
  fs.copyFileSync(path.join(here, '..', '..', 'examples', 'express', 'app.mjs'), path.join(dir, 'app.mjs'));
  const port = await new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); });
  });
  const app = spawn(process.execPath, ['--preserve-symlinks', path.join(dir, 'app.mjs')], {
    cwd: dir, env: { ...process.env, LATCH_SOCKET: d.sock, PORT: String(port), NODE_PATH: process.env.LATCH_NODE_MODULES },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  procs.push(app);
  const base = `http://127.0.0.1:${port}`;
  try {
    let r;
    for (let i = 0; i < 200; i++) {
      r = await fetch(base + '/', { redirect: 'manual' }).catch(() => null);
      if (r) break;
      await sleep(50);
    }
    assert.equal(r.status, 303);
    r = await fetch(base + '/login');
    const csrf = (await r.text()).split('name="csrf_token" value="')[1].split('"')[0];
    const jar = r.headers.getSetCookie().map((c) => c.split(';')[0]);
    r = await fetch(base + '/login', {
      method: 'POST', redirect: 'manual', body: new URLSearchParams({ user: 'demo', password: 'demo-password', csrf_token: csrf }),
      headers: { cookie: jar.join('; '), 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(r.status, 303);
    const session = r.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith('__Host-latch='));
    r = await fetch(base + '/', { headers: { cookie: session } });
    assert.match(await r.text(), /Hello demo \(groups: users\)/);
  } finally {
    app.kill('SIGTERM');
  }
});
