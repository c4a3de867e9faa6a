// SPDX-License-Identifier: MIT
// One error class per error code of the wire protocol, and the client-side
// failures liblatch also distinguishes.

export class LatchError extends Error {
  constructor(message, code) {
    super(message || code || 'latch error');
    this.name = new.target.name;
    this.code = code ?? new.target.code ?? 'unknown';
  }
}

function make(name, code, base = LatchError) {
  const cls = { [name]: class extends base {} }[name];
  cls.code = code;
  return cls;
}

export const BadRequest = make('BadRequest', 'bad_request');
export const UnknownOp = make('UnknownOp', 'unknown_op');
export const TooLarge = make('TooLarge', 'too_large');
export const Denied = make('Denied', 'denied');
export const InvalidSession = make('InvalidSession', 'invalid_session');
export const InvalidToken = make('InvalidToken', 'invalid_token');
export const Forbidden = make('Forbidden', 'forbidden');
export const UnknownService = make('UnknownService', 'unknown_service');
export const Unavailable = make('Unavailable', 'unavailable');
export const Internal = make('Internal', 'internal');
export const InvalidConversation = make('InvalidConversation', 'invalid_conversation');

/** More input needed: show `prompts`, then client.respond(conversation, answers). */
export class Challenge extends LatchError {
  constructor(message, conversation, prompts, expiresAt) {
    super(message, 'challenge');
    this.conversation = conversation;
    this.prompts = prompts;
    this.expiresAt = expiresAt;
  }
  get answersNeeded() {
    return this.prompts.filter((p) => p.style === 'secret' || p.style === 'text').length;
  }
}
Challenge.code = 'challenge';

export class ClientError extends LatchError {}
export const Unreachable = make('Unreachable', 'unreachable', ClientError);
export const Disconnected = make('Disconnected', 'disconnected', ClientError);
export const Timeout = make('Timeout', 'timeout', ClientError);
export const ProtocolError = make('ProtocolError', 'protocol', ClientError);

const byCode = Object.fromEntries([BadRequest, UnknownOp, TooLarge, Denied, InvalidSession, InvalidToken,
  Forbidden, UnknownService, Unavailable, Internal, InvalidConversation].map((c) => [c.code, c]));

// A broken or hostile daemon must not reach a terminal with escapes.
const clean = (m) => (typeof m === 'string' ? m.replace(/[\x00-\x1f\x7f]/g, ' ') : '');

/** The error for a reply with "ok": false. */
export function errorFromReply(reply) {
  const code = reply.error;
  const message = clean(reply.message);
  if (typeof code !== 'string') return new ProtocolError('malformed error response (no "error" code)');
  if (code === 'challenge') {
    const { conversation, prompts } = reply;
    if (typeof conversation !== 'string' || !Array.isArray(prompts) ||
        !prompts.every((p) => p && typeof p === 'object' && typeof p.style === 'string' &&
          (p.message === undefined || typeof p.message === 'string'))) {
      return new ProtocolError('malformed challenge');
    }
    return new Challenge(message || 'more input needed', conversation,
      prompts.map((p) => ({ style: p.style, message: clean(p.message ?? '') })),
      Number.isInteger(reply.expires_at) ? reply.expires_at : undefined);
  }
  const cls = byCode[code];
  return cls ? new cls(message || code) : new LatchError(message || code, code);
}
