// SPDX-License-Identifier: MIT
// A strict JSON reader for token headers and claims, as latchd's (Jansson
// with duplicate rejection): one object filling the input, no duplicate
// members, no NUL or lone surrogates in strings, integers within int64 and
// told apart from reals (JSON.parse can do none of this).

const WS = new Set([' ', '\t', '\n', '\r']);
const NUM_RE = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/;
const MAX_DEPTH = 2048;

class Fail extends Error {}

/**
 * Parses `text`; returns { value, ints } where ints is the Set of the top
 * level object's member names whose value is an integer literal, or null when
 * the text is not exactly one strict JSON object (trailing blanks allowed only
 * with `document`).
 */
export function strictObject(text, document = false) {
  let i = 0;
  const ints = new Set();
  const skip = () => { while (i < text.length && WS.has(text[i])) i++; };
  const str = () => {
    if (text[i] !== '"') throw new Fail();
    let j = i + 1;
    for (;;) {
      const c = text.charCodeAt(j);
      if (Number.isNaN(c) || c < 0x20) throw new Fail();
      if (c === 0x22) break;
      j += c === 0x5c ? 2 : 1;
    }
    const s = JSON.parse(text.slice(i, j + 1));
    i = j + 1;
    if (s.includes('\0') || !s.isWellFormed()) throw new Fail();
    return s;
  };
  const value = (depth, top) => {
    if (depth > MAX_DEPTH) throw new Fail();
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const o = {};
      const seen = new Set();
      skip();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        skip();
        const k = str();
        if (seen.has(k)) throw new Fail();
        seen.add(k);
        skip();
        if (text[i++] !== ':') throw new Fail();
        skip();
        const v = value(depth + 1, false);
        if (top && typeof v === "number" && lastNumberWasInt) ints.add(k);
        Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        skip();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return o; }
        throw new Fail();
      }
    }
    if (c === '[') {
      i++;
      const a = [];
      skip();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value(depth + 1, false));
        skip();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return a; }
        throw new Fail();
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(lit, i)) { i += lit.length; return v; }
    }
    const m = NUM_RE.exec(text.slice(i, i + 400));
    if (!m) throw new Fail();
    i += m[0].length;
    lastNumberWasInt = !m[2] && !m[3];
    if (lastNumberWasInt) {
      const b = BigInt(m[0]);
      if (b > 9223372036854775807n || b < -9223372036854775808n) throw new Fail();
    }
    return Number(m[0]);
  };
  let lastNumberWasInt = false;
  try {
    skip();
    if (text[i] !== '{') return null;
    const v = value(0, true);
    if (document) skip();
    if (i !== text.length) return null;
    return { value: v, ints };
  } catch (e) {
    if (e instanceof Fail || e instanceof SyntaxError || e instanceof RangeError) return null;
    throw e;
  }
}
