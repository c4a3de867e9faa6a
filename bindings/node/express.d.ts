// SPDX-License-Identifier: MIT
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Client, Prompt, SessionInfo } from './index.js';

export interface LatchOptions {
  client?: Client;
  socketPath?: string;
  service?: string;
  cookieName?: string;
  csrfCookieName?: string;
  loginPath?: string;
  logoutPath?: string;
  page?: (p: { csrf: string; next: string; error?: string; prompts?: Prompt[]; conversation?: string; action: string }) => string;
}
export type Next = (err?: unknown) => void;
export interface LatchMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: Next): Promise<void>;
  client: Client;
  required(req: IncomingMessage, res: ServerResponse, next: Next): void;
  csrfToken(req: IncomingMessage): string | null;
}
export function latch(opts?: LatchOptions): LatchMiddleware;
export function safeNext(target: unknown, dflt?: string): string;
export default latch;

declare module 'node:http' {
  interface IncomingMessage { latch?: (SessionInfo & { session: string }) | null; }
}
