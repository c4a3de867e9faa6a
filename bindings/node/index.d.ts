// SPDX-License-Identifier: MIT
// Type declarations of @latch/client.

export const DEFAULT_SOCKET: string;
export const IDEMPOTENT_OPS: ReadonlySet<string>;
export const COOKIE_NAME: string;

export interface ClientOptions {
  /** The socket; default $LATCH_SOCKET, else /run/latch/latchd.sock. '@name' is abstract. */
  socketPath?: string;
  /** Milliseconds a call may take (0: no limit). Default 30000. */
  timeout?: number;
  /** Connections requests are pipelined over, round robin. Default 1. */
  connections?: number;
  /** Connections of their own for login, authenticate, respond, passwd, plugin. Default 2. */
  slowConnections?: number;
  /** Largest reply accepted, in bytes. Default 1 MiB. */
  maxResponse?: number;
}

export interface Claims { iss?: string; sub?: string; aud?: string | string[]; iat?: number; nbf?: number;
  exp?: number; jti?: string; sid?: string; groups?: string[]; [claim: string]: unknown; }

export interface LoginResult { session: string; handle: string; user: string; service: string;
  expires_at: number; idle_expires_at: number; token?: string; token_expires_at?: number; }
export interface SessionInfo { user: string; service: string; handle: string; created_at: number;
  expires_at: number; idle_expires_at: number; claims: Record<string, unknown>; }
export interface SessionListing { handle: string; user: string; service: string; created_at: number;
  last_seen_at: number; expires_at: number; idle_expires_at: number; }
export interface Prompt { style: 'secret' | 'text' | 'info' | 'error' | string; message: string; }
export interface Jwk { kty: string; crv?: string; x?: string; kid?: string; use?: string; alg?: string; }
export interface Jwks { keys: Jwk[]; }

export interface PluginOptions { session?: string; password?: string; user?: string; service?: string;
  remote?: string; code?: string; [arg: string]: unknown; }

export class Client {
  constructor(opts?: ClientOptions | string);
  readonly socketPath: string;
  timeout: number;
  call(op: string, args?: Record<string, unknown>): Promise<Record<string, any>>;
  hello(): Promise<{ version: number; server: string }>;
  authenticate(service: string, user: string, password?: string, opts?: { remote?: string }):
    Promise<{ user: string; claims: Record<string, unknown> }>;
  login(service: string, user: string, password?: string,
    opts?: { remote?: string; token?: boolean; audience?: string }): Promise<LoginResult>;
  validate(session: string, service?: string): Promise<SessionInfo>;
  logout(session: string): Promise<{}>;
  token(session: string, audience?: string): Promise<{ token: string; expires_at: number }>;
  verify(token: string, audience?: string): Promise<{ claims: Claims }>;
  jwks(): Promise<Jwks>;
  sessionsList(filter?: { user?: string; service?: string }): Promise<{ sessions: SessionListing[]; truncated: boolean }>;
  sessionsRevoke(which: { handle?: string; user?: string }): Promise<{ revoked: number }>;
  keysRotate(): Promise<{ kid: string }>;
  stats(): Promise<Record<string, any>>;
  reload(): Promise<{}>;
  respond(conversation: string, answers: Iterable<string>): Promise<Record<string, any>>;
  /** Always a conversation (rejects with Challenge first); resolves to { user, service, revoked }.
   *  `session`, the caller's own session of that user and service, is kept. */
  passwd(service: string, user: string, opts?: { remote?: string; session?: string }): Promise<Record<string, any>>;
  /** A plugin's action (`totp` status/enroll/confirm/recovery/remove, `faillock` show/reset): an
   *  administrator's without `session`; with it, the session's user's own, re-authenticated first
   *  with `password` (may reject with Challenge: answer with respond()). Other options are the
   *  action's arguments. Resolves to the action's answer. */
  plugin(plugin: string, action: string, opts?: PluginOptions): Promise<Record<string, any>>;
  close(): void;
}

export class LatchError extends Error { code: string; }
export class BadRequest extends LatchError {}
export class UnknownOp extends LatchError {}
export class TooLarge extends LatchError {}
export class Denied extends LatchError {}
export class InvalidSession extends LatchError {}
export class InvalidToken extends LatchError {}
export class Forbidden extends LatchError {}
export class UnknownService extends LatchError {}
export class Unavailable extends LatchError {}
export class Internal extends LatchError {}
export class InvalidConversation extends LatchError {}
export class Challenge extends LatchError {
  conversation: string;
  prompts: Prompt[];
  expiresAt?: number;
  readonly answersNeeded: number;
}
export class ClientError extends LatchError {}
export class Unreachable extends ClientError {}
export class Disconnected extends ClientError {}
export class Timeout extends ClientError {}
export class ProtocolError extends ClientError {}
export function errorFromReply(reply: Record<string, unknown>): LatchError;

export interface CookieOptions { name?: string; sameSite?: 'Strict' | 'Lax' | 'None' | string; domain?: string; }
export function buildCookie(session: string, expiresAt: number, opts?: CookieOptions & { now?: number }): string;
export function clearCookie(opts?: CookieOptions): string;
export function parseCookie(header: string | undefined | null, name?: string): string | null;

export interface VerifyOptions { audience?: string; issuer?: string; leeway?: number; now?: number; }
export class KeySet {
  constructor(jwks: string | Buffer | Jwks);
  readonly size: number;
  has(kid: string): boolean;
}
export function verifyToken(keyset: KeySet, token: string, opts?: VerifyOptions): Claims;
export const REASONS: Record<string, string>;
export class Verifier {
  constructor(source?: string | Client | (() => Jwks | string | Buffer | Promise<Jwks | string | Buffer>),
    opts?: { audience?: string; issuer?: string; leeway?: number; minRefresh?: number });
  verify(token: string, opts?: { audience?: string; issuer?: string; now?: number }): Promise<Claims>;
}

export { latch as expressMiddleware } from './express.js';
