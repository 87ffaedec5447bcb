/**
 * Byte-level fast paths of the EMAIL, FN/LN, CT and ZIP rules: they write the normalized value straight into
 * UTF-8 bytes, ready to hash, without making the intermediate strings (trimmed, NFC, lowercased, filtered) that
 * dominate the string rules' cost.
 *
 * A fast path only takes text whose every character lies in COVERED: Latin letters and symbols, none of which
 * composes with a neighbour under NFC, so each character can be mapped on its own. The per-character tables are
 * derived at load time from the string rules themselves (rules.ts), never typed by hand. Anything a fast path is
 * not sure about (another script, a combining mark, a value it would drop or leave empty) returns UNSURE and the
 * string rule decides, so the string rules stay the single definition of a key's normalization and of every
 * drop reason. test/identity/byteRules.test.ts checks the two agree.
 */
import type { MatchKey } from './keys.js';
import { personName, placeName } from './rules.js';
import type { RuleContext } from './rules.js';
import { trimUnicode } from './value.js';

/** Returned when the string rule must decide. */
export const UNSURE = -1;

/**
 * Writes the normalized value of `text` (a raw string shorter than MAX_TEXT_LENGTH) into `out` as UTF-8 and
 * returns its length in bytes (≥ 1), or UNSURE.
 */
export type ByteRule = (text: string, out: Uint8Array, ctx: RuleContext) => number;

/**
 * Longer values take the string path (a value of 64 characters or more may be an already-hashed digest). Each
 * covered UTF-16 unit becomes at most 3 UTF-8 bytes.
 */
export const MAX_TEXT_LENGTH = 64;
export const MAX_OUTPUT_BYTES = 3 * MAX_TEXT_LENGTH;

/**
 * Latin, Latin-1, Latin Extended-A/B, IPA and spacing modifiers (all below the combining marks at U+0300),
 * Greek and Coptic, Cyrillic, and Latin Extended Additional (Vietnamese). No character here is the second half
 * of a canonical composition, so NFC, NFD and lowercasing act on each one alone; byteRules.test.ts checks every
 * pair. Combining marks inside these blocks (Cyrillic titlo…) are left out when the tables are built.
 */
const COVERED: ReadonlyArray<readonly [number, number]> = [
  [0x0000, 0x02ff],
  [0x0370, 0x04ff],
  [0x1e00, 0x1eff],
];
/** Σ lowercases to σ or, at the end of a word, ς: it depends on its neighbours, so the string rules handle it. */
const CONTEXT_SENSITIVE = new Set([0x03a3]);
const TABLE_SIZE = 0x1f00;
/** In a table: the character is not covered, or its rule gives more than a table entry holds. */
const NOT_MAPPED = 0xffff;
/** In a letter table: the character is removed. */
const REMOVED = 0xfffe;

const MARK = /\p{M}/u;
/**
 * A table over COVERED. An entry holds one UTF-16 unit, or two in its low and high halves (CT folds ß to "ss").
 * Combining marks stay unmapped (they attach to neighbours), as do CONTEXT_SENSITIVE ones.
 */
function buildTable(map: (char: string) => number): Uint32Array {
  const table = new Uint32Array(TABLE_SIZE).fill(NOT_MAPPED);
  for (const [from, to] of COVERED) {
    for (let code = from; code <= to; code++) {
      const char = String.fromCharCode(code);
      table[code] = MARK.test(char) || CONTEXT_SENSITIVE.has(code) ? NOT_MAPPED : map(char);
    }
  }
  return table;
}

/** One UTF-16 unit as a table entry; longer results (İ lowercases to i + U+0307) are left to the string rule. */
function single(text: string): number {
  return text.length === 1 ? text.charCodeAt(0) : NOT_MAPPED;
}

/**
 * Up to two UTF-16 units as a table entry, while they take at most 3 UTF-8 bytes (what MAX_OUTPUT_BYTES allows
 * per input unit): two ASCII letters, or one character.
 */
function upToTwo(text: string): number {
  if (text.length === 2 && text.charCodeAt(0) < 0x80 && text.charCodeAt(1) < 0x80) return text.charCodeAt(0) | (text.charCodeAt(1) << 16);
  return single(text);
}

/** White space as trimUnicode (and /\s/) sees it. */
const SPACE = buildTable((char) => (trimUnicode(char) === '' ? 1 : 0));
/** EMAIL: NFC then lowercase. */
const EMAIL_CHAR = buildTable((char) => single(char.normalize('NFC').toLowerCase()));
/** FN/LN and CT: what the rule keeps of the character, or REMOVED. */
function letterTable(rule: (text: string) => unknown): Uint32Array {
  return buildTable((char) => {
    const kept = rule(char);
    return typeof kept === 'string' ? upToTwo(kept) : REMOVED;
  });
}
const NAME_CHAR = letterTable(personName);
const PLACE_CHAR = letterTable(placeName);

/** Appends one BMP code unit (never a surrogate here) as UTF-8; returns the new length. */
function putUtf8(out: Uint8Array, at: number, code: number): number {
  if (code < 0x80) {
    out[at] = code;
    return at + 1;
  }
  if (code < 0x800) {
    out[at] = 0xc0 | (code >> 6);
    out[at + 1] = 0x80 | (code & 0x3f);
    return at + 2;
  }
  out[at] = 0xe0 | (code >> 12);
  out[at + 1] = 0x80 | ((code >> 6) & 0x3f);
  out[at + 2] = 0x80 | (code & 0x3f);
  return at + 3;
}

/** The first character of UTF-8 bytes written by putUtf8, as a string. */
export function firstCharacter(bytes: Uint8Array): string {
  const b0 = bytes[0]!;
  if (b0 < 0x80) return String.fromCharCode(b0);
  if (b0 < 0xe0) return String.fromCharCode(((b0 & 0x1f) << 6) | (bytes[1]! & 0x3f));
  return String.fromCharCode(((b0 & 0x0f) << 12) | ((bytes[1]! & 0x3f) << 6) | (bytes[2]! & 0x3f));
}

const AT = 0x40;
const DOT = 0x2e;
const DASH = 0x2d;

/** EMAIL: trimmed, lowercased, and the same shape check as the string rule (isEmailShape). */
function emailBytes(text: string, out: Uint8Array): number {
  let start = 0;
  let end = text.length;
  while (start < end) {
    const code = text.charCodeAt(start);
    if (code >= TABLE_SIZE || SPACE[code] !== 1) break;
    start++;
  }
  while (end > start) {
    const code = text.charCodeAt(end - 1);
    if (code >= TABLE_SIZE || SPACE[code] !== 1) break;
    end--;
  }
  // Positions count characters of the trimmed text, as the string rule's indexOf does (one unit each here).
  let at = -1;
  let dot = -1;
  let length = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= TABLE_SIZE) return UNSURE;
    const lower = EMAIL_CHAR[code]!;
    if (lower === NOT_MAPPED) return UNSURE;
    const position = i - start;
    if (lower === AT) {
      if (at !== -1) return UNSURE; // a second "@"
      at = position;
    } else if (at !== -1) {
      if (lower === DOT && dot === -1 && position >= at + 2) dot = position;
      else if (SPACE[code] === 1) return UNSURE; // white space in the domain
    }
    length = putUtf8(out, length, lower);
  }
  const chars = end - start;
  return at > 0 && dot !== -1 && dot < chars - 1 ? length : UNSURE;
}

/** FN/LN (table NAME_CHAR) and CT (PLACE_CHAR): each character mapped alone, removed ones skipped. */
function lettersBytes(table: Uint32Array, text: string, out: Uint8Array): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= TABLE_SIZE) return UNSURE;
    const kept = table[code]!;
    if (kept === REMOVED) continue;
    if (kept === NOT_MAPPED) return UNSURE;
    if (kept > 0xffff) {
      // Two ASCII letters (a folded ß, æ, þ…).
      out[length++] = kept & 0xffff;
      out[length++] = kept >>> 16;
    } else length = putUtf8(out, length, kept);
  }
  return length === 0 ? UNSURE : length;
}

const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39;
const isLetter = (byte: number) => byte >= 0x61 && byte <= 0x7a;
function allDigits(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isDigit(bytes[i]!)) return false;
  return true;
}

/** US ZIP in `bytes[0, n)`: 5 digits, then optionally 4 more (after a dash when `dashRequired`). */
function isUsZip(bytes: Uint8Array, n: number, dashRequired: boolean): boolean {
  if ((n !== 5 && n !== 9 && n !== 10) || !allDigits(bytes, 0, 5)) return false;
  if (n === 5) return true;
  if (n === 10) return bytes[5] === DASH && allDigits(bytes, 6, 10);
  return n === 9 && !dashRequired && allDigits(bytes, 5, 9);
}

/** UK postcode without spaces: outward code [a-z]{1,2}\d[a-z\d]?, then a digit and two letters. */
function isUkPostcode(bytes: Uint8Array, n: number): boolean {
  if (n < 5 || n > 7 || !isLetter(bytes[n - 1]!) || !isLetter(bytes[n - 2]!) || !isDigit(bytes[n - 3]!)) return false;
  const outward = n - 3;
  if (!isLetter(bytes[0]!)) return false;
  const digitAt = isLetter(bytes[1]!) ? 2 : 1;
  if (digitAt >= outward || !isDigit(bytes[digitAt]!)) return false;
  const rest = outward - digitAt - 1;
  return rest === 0 || (rest === 1 && (isLetter(bytes[outward - 1]!) || isDigit(bytes[outward - 1]!)));
}

/** ZIP (ASCII only): lowercase without white space, then the US, UK or other rule of the row's country. */
function zipBytes(text: string, out: Uint8Array, ctx: RuleContext): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0x80) return UNSURE;
    if (SPACE[code] === 1) continue;
    if (code >= 0x41 && code <= 0x5a) code |= 0x20;
    out[n++] = code;
  }
  if (n === 0) return UNSURE;
  if (ctx.country === 'us' || (ctx.country === undefined && isUsZip(out, n, true))) return isUsZip(out, n, false) ? 5 : UNSURE;
  if (ctx.country === 'gb') return isUkPostcode(out, n) ? n - 2 : UNSURE;
  let kept = 0;
  for (let i = 0; i < n; i++) if (out[i] !== DASH) out[kept++] = out[i]!;
  return kept === 0 ? UNSURE : kept;
}

const BYTE_RULES: Partial<Record<MatchKey, ByteRule>> = {
  EMAIL: emailBytes,
  FN: (text, out) => lettersBytes(NAME_CHAR, text, out),
  LN: (text, out) => lettersBytes(NAME_CHAR, text, out),
  CT: (text, out) => lettersBytes(PLACE_CHAR, text, out),
  ZIP: zipBytes,
};

/** Whether the fast paths map this UTF-16 code unit (for tests: the tables may still refuse it, e.g. a mark). */
export function isCovered(code: number): boolean {
  return COVERED.some(([from, to]) => code >= from && code <= to) && !CONTEXT_SENSITIVE.has(code);
}

/** The byte-level fast path of a key, if it has one. */
export function byteRuleFor(key: MatchKey): ByteRule | undefined {
  return BYTE_RULES[key];
}
