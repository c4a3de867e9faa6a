// SPDX-License-Identifier: MIT
// @latch/client: the Node client of latchd.

export { Client, DEFAULT_SOCKET, IDEMPOTENT_OPS } from './lib/client.js';
export { DEFAULT_NAME as COOKIE_NAME, buildCookie, clearCookie, parseCookie } from './lib/cookie.js';
export * from './lib/errors.js';
export { KeySet, Verifier, verifyToken, REASONS } from './lib/token.js';
export { latch as expressMiddleware } from './lib/express.js';
