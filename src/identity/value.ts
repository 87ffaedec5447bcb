/**
 * Turning a warehouse cell (string, number, bigint, boolean, Date, null, or anything else) into the text a
 * key's rule works on. Pure and allocation-light: this runs for every value of every row.
 */

/** A value that failed its key's rule. `reason` never contains the value itself (it may be personal data). */
export class Dropped {
  constructor(readonly reason: string) {}
}

/** "No value": null, undefined, or blank after trimming. The cell is sent as "" and nothing is hashed. */
export const EMPTY: unique symbol = Symbol('empty');
export type Empty = typeof EMPTY;

/** What a rule returns: the normalized value, "no value", or a drop with its reason (without the key prefix). */
export type RuleResult = string | number | Empty | Dropped;

// Invisible characters String.prototype.trim() keeps but that are white space to a person
// (zero-width space, word joiner, Mongolian vowel separator).
const EXTRA_SPACE = /^[\s\u180e\u200b\u2060]+|[\s\u180e\u200b\u2060]+$/g;
function isExtraSpace(code: number): boolean {
  return code === 0x200b || code === 0x2060 || code === 0x180e;
}

/** Removes Unicode white space (including NBSP and zero-width space) at both ends. */
export function trimUnicode(text: string): string {
  const t = text.trim();
  if (t.length === 0) return t;
  if (isExtraSpace(t.charCodeAt(0)) || isExtraSpace(t.charCodeAt(t.length - 1))) return t.replace(EXTRA_SPACE, '');
  return t;
}

// eslint-disable-next-line no-control-regex -- the whole ASCII range, control characters included
const ASCII_ONLY = /^[\x00-\x7f]*$/;
/** ASCII text is already NFC (and needs none of the Unicode-aware steps), so rules branch on this. */
export function isAscii(text: string): boolean {
  return ASCII_ONLY.test(text);
}

/** Unicode NFC, skipping the call for ASCII text (the common case). */
export function nfc(text: string): string {
  return isAscii(text) ? text : text.normalize('NFC');
}

/** Decimal string of a finite number (no exponent for integers up to 1e21, as JS prints them). */
export function decimalString(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

/** Why a non-text value cannot be used by a text rule. */
export function describeUnsupported(value: unknown): string {
  if (typeof value === 'boolean') return 'a true/false value is not usable here';
  if (value instanceof Date) return 'a date is only usable for DOBY, DOBM and DOBD';
  if (typeof value === 'number') return 'not a finite number';
  if (Array.isArray(value)) return 'a list is not usable here';
  return `a value of type ${value === null ? 'null' : typeof value} is not usable here`;
}

/**
 * The trimmed text of a value, not yet in NFC: strings as they are, numbers and bigints as their decimal
 * string. null/undefined/blank give EMPTY; booleans, Dates, objects and the like give a Dropped.
 * Rules that branch on isAscii() anyway use this and apply NFC on their non-ASCII branch (saving a scan).
 */
export function rawText(value: unknown): string | Empty | Dropped {
  if (typeof value === 'string') {
    const t = trimUnicode(value);
    return t.length === 0 ? EMPTY : t;
  }
  if (value === null || value === undefined) return EMPTY;
  if (typeof value === 'number') return Number.isFinite(value) ? decimalString(value) : new Dropped(describeUnsupported(value));
  if (typeof value === 'bigint') return value.toString();
  return new Dropped(describeUnsupported(value));
}

/** rawText() in NFC: the text every rule starts from. */
export function toText(value: unknown): string | Empty | Dropped {
  const text = rawText(value);
  return typeof text === 'string' ? nfc(text) : text;
}

/** True for a real Date (not an Invalid Date). */
export function isValidDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}
