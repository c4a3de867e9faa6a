// SPDX-License-Identifier: MIT
// The client: a few connections to latchd, requests pipelined on them,
// reconnecting, and resending idempotent requests once (liblatch's rules).

import net from 'node:net';
import { Disconnected, LatchError, ProtocolError, Timeout, Unreachable, errorFromReply } from './errors.js';

export const DEFAULT_SOCKET = '/run/latch/latchd.sock';
// Ops whose repetition changes nothing that matters (validate only slides
// the idle expiry again): sent once more on a fresh connection when the
// connection drops before their answer. Every other op is never resent.
export const IDEMPOTENT_OPS = new Set(['hello', 'validate', 'verify', 'jwks', 'stats']);

// Ops that run a service's stack (argon2, PAM, a second factor) or a
// plugin's action may take a second: they go on connections of their own, so that the in-order replies
// of a pipelined connection never hold a validate behind a login.
const SLOW_OPS = new Set(['authenticate', 'login', 'respond', 'passwd', 'plugin']);

export function socketPath(p) {
  if (p) return p;
  return process.env.LATCH_SOCKET || DEFAULT_SOCKET;
}

function encode(op, args) {
  const req = { op };
  for (const [k, v] of Object.entries(args)) if (v !== undefined && v !== null) req[k] = v;
  const body = Buffer.from(JSON.stringify(req), 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

function outcome(buf) {
  let reply;
  try {
    reply = JSON.parse(buf.toString('utf8'));
  } catch {
    return new ProtocolError('malformed response (not a JSON object with "ok")');
  }
  if (!reply || typeof reply !== 'object' || Array.isArray(reply) || typeof reply.ok !== 'boolean') {
    return new ProtocolError('malformed response (not a JSON object with "ok")');
  }
  if (!reply.ok) return errorFromReply(reply);
  delete reply.ok;
  delete reply.id;
  return reply;
}

class Conn {
  constructor(client) {
    this.client = client;
    this.pending = [];
    this.buf = null;
    this.dead = false;
    this.connected = false;
    this.outbox = null;
    const path = client.socketPath;
    this.sock = net.createConnection({ path: path.startsWith('@') ? '\0' + path.slice(1) : path });
    this.sock.on('connect', () => { this.connected = true; });
    this.sock.on('data', (d) => this.data(d));
    this.sock.on('error', (e) => { this.error = e; });
    this.sock.on('close', () => this.lost());
  }

  send(p) {
    this.pending.push(p);
    if (this.pending.length === 1) this.sock.ref();
    // Requests made in the same tick leave in one write: fewer system calls
    // here and in latchd, which answers a batch with one send().
    if (this.outbox) {
      this.outbox.push(p.frame);
      return;
    }
    this.outbox = [p.frame];
    process.nextTick(() => {
      const out = this.outbox;
      this.outbox = null;
      if (!this.sock.destroyed) this.sock.write(out.length === 1 ? out[0] : Buffer.concat(out));
    });
  }

  data(chunk) {
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    const max = this.client.maxResponse;
    while (buf.length - pos >= 4) {
      const n = buf.readUInt32BE(pos);
      if (n === 0 || n > max) {
        return this.failAll(new ProtocolError(n === 0 ? 'empty response frame'
          : `response of ${n} bytes exceeds the limit of ${max} bytes`));
      }
      if (buf.length - pos - 4 < n) break;
      const frame = buf.subarray(pos + 4, pos + 4 + n);
      pos += 4 + n;
      const p = this.pending.shift();
      if (!p) return this.failAll(new ProtocolError('latchd sent more replies than requests'));
      p.settle(outcome(frame));
    }
    this.buf = pos === buf.length ? null : buf.subarray(pos);
    if (this.pending.length === 0) this.sock.unref();
  }

  failAll(err) {
    this.dead = true;
    const lost = this.pending;
    this.pending = [];
    this.sock.destroy();
    for (const p of lost) p.settle(err);
  }

  lost() {
    this.dead = true;
    const lost = this.pending;
    this.pending = [];
    const path = this.client.socketPath;
    if (this.closing) {
      // Closed by close(): what latchd did not answer before the close
      // fails; nothing is resent on a connection of the closed client.
      for (const p of lost) p.settle(new Disconnected(`the client was closed before the answer from ${path}`));
      return;
    }
    if (!this.connected) {
      // Nothing was sent: this is not a dropped request but no daemon.
      const why = this.error ? (this.error.code || this.error.message) : 'closed';
      for (const p of lost) p.settle(new Unreachable(`cannot connect to ${path}: ${why}`));
      return;
    }
    const resend = [];
    for (const p of lost) {
      if (p.done) continue;
      if (IDEMPOTENT_OPS.has(p.op) && !p.retried) {
        p.retried = true;
        resend.push(p);
      } else {
        p.settle(new Disconnected(`connection to ${path} lost before the answer` +
          (p.retried ? ' (also when retried)' : '')));
      }
    }
    if (resend.length) {
      for (const p of resend) this.client._conn(p.op).send(p);
    }
  }

  close() {
    this.dead = true;
    this.closing = true;
    this.sock.end();
  }
}

/**
 * A client of latchd. `new Client({ socketPath, timeout: 30000, connections: 1,
 * slowConnections: 2 })`: the socket is socketPath, else $LATCH_SOCKET, else
 * /run/latch/latchd.sock. Concurrent requests are pipelined on `connections`
 * connections (latchd answers each in order); ops that run a stack or a
 * plugin's action (login, authenticate, respond, passwd, plugin) use
 * `slowConnections` others, so that a slow login never holds back a validate.
 * Every op is a method returning a promise of its results (an object), or
 * rejecting with the LatchError subclass of the error code.
 */
export class Client {
  constructor(opts = {}) {
    if (typeof opts === 'string') opts = { socketPath: opts };
    this.socketPath = socketPath(opts.socketPath);
    this.timeout = opts.timeout ?? 30000; // longer than latchd may take (latch.h)
    this.maxResponse = opts.maxResponse ?? (1 << 20);
    this.conns = new Array(Math.max(1, opts.connections ?? 1)).fill(null);
    this.slow = new Array(Math.max(1, opts.slowConnections ?? 2)).fill(null);
    this.next = 0;
    this.nextSlow = 0;
  }

  _conn(op) {
    const slow = SLOW_OPS.has(op);
    const list = slow ? this.slow : this.conns;
    const i = slow ? this.nextSlow : this.next;
    if (slow) this.nextSlow = (i + 1) % list.length; else this.next = (i + 1) % list.length;
    let c = list[i];
    if (!c || c.dead) {
      c = new Conn(this);
      list[i] = c;
    }
    return c;
  }

  /** Any op by name; undefined/null arguments are left out. */
  call(op, args = {}) {
    return new Promise((resolve, reject) => {
      let frame;
      try {
        frame = encode(op, args);
      } catch (e) {
        reject(e);
        return;
      }
      const p = { op, frame, retried: false, done: false, timer: null };
      p.settle = (r) => {
        if (p.done) return;
        p.done = true;
        if (p.timer) clearTimeout(p.timer);
        if (r instanceof LatchError) reject(r); else resolve(r);
      };
      if (this.timeout) {
        p.timer = setTimeout(() => p.settle(new Timeout(`timed out waiting for ${this.socketPath}`)), this.timeout);
        p.timer.unref();
      }
      this._conn(op).send(p);
    });
  }

  hello() { return this.call('hello'); }
  authenticate(service, user, password, { remote } = {}) {
    return this.call('authenticate', { service, user, password, remote });
  }
  login(service, user, password, { remote, token, audience } = {}) {
    return this.call('login', { service, user, password, remote, token: token ? true : undefined, audience });
  }
  validate(session, service) { return this.call('validate', { session, service }); }
  logout(session) { return this.call('logout', { session }); }
  token(session, audience) { return this.call('token', { session, audience }); }
  verify(token, audience) { return this.call('verify', { token, audience }); }
  jwks() { return this.call('jwks'); }
  sessionsList({ user, service } = {}) { return this.call('sessions.list', { user, service }); }
  sessionsRevoke({ handle, user } = {}) {
    if ((handle === undefined) === (user === undefined)) {
      return Promise.reject(new TypeError('give exactly one of handle or user'));
    }
    return this.call('sessions.revoke', { handle, user });
  }
  keysRotate() { return this.call('keys.rotate'); }
  stats() { return this.call('stats'); }
  reload() { return this.call('reload'); }
  respond(conversation, answers) { return this.call('respond', { conversation, answers: [...answers] }); }
  passwd(service, user, { remote, session } = {}) { return this.call('passwd', { service, user, remote, session }); }
  /**
   * A plugin's action: `plugin('totp', 'status', { user: 'alice' })` (an
   * administrator's), or with `session` the session's user's own (and with
   * `password`, re-authenticated first: may reject with Challenge, answered
   * with respond()). The other options are the action's arguments.
   */
  plugin(plugin, action, { session, password, ...args } = {}) {
    if (Object.hasOwn(args, 'op')) return Promise.reject(new TypeError("'op' is not an argument of the plugin op"));
    return this.call('plugin', { ...args, plugin, action, session, password });
  }

  /**
   * Closes the connections: requests in flight get latchd's answer if it
   * comes before the close (latchd answers what it received before a
   * half-close), else fail with Disconnected; none is resent.
   */
  close() {
    for (const list of [this.conns, this.slow]) {
      for (let i = 0; i < list.length; i++) {
        if (list[i]) list[i].close();
        list[i] = null;
      }
    }
  }
}
