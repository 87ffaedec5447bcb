/**
 * The per-key rules of docs/identity.md: raw warehouse value → normalized value (before hashing).
 * Pure functions; the row's country and the year come in through RuleContext.
 */
import type { CountryCode } from 'libphonenumber-js/core';
import { AmbiguousCountry, lookupCountry } from './country.js';
import { birthDay, birthMonth, birthYear, type DateFormat } from './dob.js';
import type { MatchKey } from './keys.js';
import { foldLatin } from './latin.js';
import { normalizePhoneNumber, spacedPhone } from './phone.js';
import { US_STATE_CODES } from './usStates.js';
import { decimalString, describeUnsupported, Dropped, EMPTY, isAscii, rawText, type RuleResult, toText, trimUnicode } from './value.js';

export interface RuleContext {
  /** The row's country (COUNTRY, normalized: lowercase alpha-2), if mapped and valid. */
  country: string | undefined;
  /** Default region for national phone numbers: the row's country, else the sync's defaultPhoneCountry. */
  phoneRegion: CountryCode | undefined;
  /** Upper bound for DOBY. */
  currentYear: number;
  /** How dates of birth written as text are read (DATE and TIMESTAMP columns arrive as Dates). */
  dateFormat: DateFormat;
}

export type Rule = (value: unknown, ctx: RuleContext) => RuleResult;

// ---- text keys -------------------------------------------------------------------------------------------

const HAS_SPACE = /\s/;
/** One "@", a non-empty local part, a domain with an inner dot and no white space. */
function isEmailShape(text: string): boolean {
  const at = text.indexOf('@');
  if (at <= 0 || text.indexOf('@', at + 1) !== -1) return false;
  const dot = text.indexOf('.', at + 2);
  return dot !== -1 && dot < text.length - 1 && !HAS_SPACE.test(text.slice(at + 1));
}

function email(value: unknown): RuleResult {
  const text = toText(value);
  if (typeof text !== 'string') return text;
  const lower = text.toLowerCase();
  return isEmailShape(lower) ? lower : new Dropped('not an email address');
}

function phone(value: unknown, ctx: RuleContext): RuleResult {
  // normalizePhoneNumber's fast path only takes ASCII, and applies NFC itself before the library.
  const text = rawText(value);
  if (typeof text !== 'string') return text;
  const e164 = normalizePhoneNumber(text, ctx.phoneRegion);
  if (e164 !== null) return e164;
  const spaced = spacedPhone(text);
  const international = spaced.startsWith('+') || spaced.startsWith('00');
  return new Dropped(
    international || ctx.phoneRegion
      ? 'not a possible phone number'
      : 'no country to read a national phone number (map COUNTRY or set defaultPhoneCountry)',
  );
}

const GENDERS: ReadonlyMap<string, string> = new Map([
  ['m', 'm'], ['male', 'm'], ['man', 'm'], ['boy', 'm'],
  ['f', 'f'], ['female', 'f'], ['woman', 'f'], ['girl', 'f'],
]);
function gender(value: unknown): RuleResult {
  const text = toText(value);
  if (typeof text !== 'string') return text;
  return GENDERS.get(text.toLowerCase()) ?? new Dropped('not a gender (m/male/man/boy or f/female/woman/girl)');
}

const NOT_NAME_CHAR = /[^\p{L}\p{M}]/gu;
const NOT_ASCII_LETTER = /[^a-z]/g;
const HAS_LETTER = /\p{L}/u;
const NO_LETTERS = 'no letters';

/** FN/LN: lowercase, Unicode letters and combining marks only (accents stay). `text` is trimmed, any form. */
export function personName(text: string): string | Dropped {
  let kept: string;
  if (isAscii(text)) {
    kept = text.toLowerCase().replace(NOT_ASCII_LETTER, '');
  } else {
    const lower = text.normalize('NFC').toLowerCase();
    kept = lower.replace(NOT_NAME_CHAR, '');
    // Removing a character can leave a base letter next to a combining mark that now composes.
    if (kept.length !== lower.length) kept = kept.normalize('NFC');
    // Combining marks alone are not a name.
    if (!HAS_LETTER.test(kept)) kept = '';
  }
  return kept === '' ? new Dropped(NO_LETTERS) : kept;
}

const FIRST_LETTER = /\p{L}\p{M}*/u;
/** FI: the first letter (with its combining marks) of a normalized first name. */
export function firstInitial(normalizedFirstName: string): string {
  const code = normalizedFirstName.charCodeAt(0);
  if (code >= 0x61 && code <= 0x7a) return normalizedFirstName[0]!;
  return FIRST_LETTER.exec(normalizedFirstName)?.[0] ?? '';
}

function name(value: unknown): RuleResult {
  const text = rawText(value);
  return typeof text === 'string' ? personName(text) : text;
}

function initial(value: unknown): RuleResult {
  const first = name(value);
  return typeof first === 'string' ? firstInitial(first) : first;
}

const NOT_LETTER = /[^\p{L}]/gu;
/**
 * CT: lowercase, accents removed (NFD, marks dropped), the Latin letters NFD cannot split folded to ASCII
 * (latin.ts: ø → o, ß → ss), letters only; other scripts' letters stay.
 */
export function placeName(text: string): string | Dropped {
  const kept = isAscii(text)
    ? text.toLowerCase().replace(NOT_ASCII_LETTER, '')
    : foldLatin(text.normalize('NFC').toLowerCase().normalize('NFD').replace(NOT_LETTER, '')).normalize('NFC');
  return kept === '' ? new Dropped(NO_LETTERS) : kept;
}

function city(value: unknown): RuleResult {
  const text = rawText(value);
  return typeof text === 'string' ? placeName(text) : text;
}

function state(value: unknown): RuleResult {
  const place = city(value);
  return typeof place === 'string' ? (US_STATE_CODES.get(place) ?? place) : place;
}

const WHITE_SPACE = /\s+/g;
const US_ZIP_SHAPE = /^\d{5}(?:-\d{4})?$/;
const US_ZIP = /^(\d{5})(?:-?\d{4})?$/;
const UK_POSTCODE = /^([a-z]{1,2}\d[a-z\d]?)(\d)[a-z]{2}$/;
function zip(value: unknown, ctx: RuleContext): RuleResult {
  const text = toText(value);
  if (typeof text !== 'string') return text;
  const compact = text.toLowerCase().replace(WHITE_SPACE, '');
  if (ctx.country === 'us' || (ctx.country === undefined && US_ZIP_SHAPE.test(compact))) {
    const m = US_ZIP.exec(compact);
    return m ? m[1]! : new Dropped('not a US ZIP code (5 digits or ZIP+4)');
  }
  if (ctx.country === 'gb') {
    const m = UK_POSTCODE.exec(compact);
    return m ? m[1]! + m[2]! : new Dropped('not a UK postcode');
  }
  const other = compact.replace(/-/g, '');
  return other === '' ? new Dropped('no characters left after removing spaces and dashes') : other;
}

const UNKNOWN_COUNTRY = 'not a known country (use an ISO alpha-2 or alpha-3 code, or the name in English, German, French, Spanish, Italian, Portuguese or Dutch)';
function country(value: unknown): RuleResult {
  const text = rawText(value);
  if (typeof text !== 'string') return text;
  const found = lookupCountry(text);
  if (typeof found === 'string') return found;
  if (found instanceof AmbiguousCountry) {
    return new Dropped(`ambiguous: the name fits more than one country (${found.codes.join(', ')}); use the ISO code`);
  }
  return new Dropped(UNKNOWN_COUNTRY);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function mobileAdvertiserId(value: unknown): RuleResult {
  const text = toText(value);
  if (typeof text !== 'string') return text;
  const lower = text.toLowerCase();
  return UUID.test(lower) ? lower : new Dropped('not a mobile advertiser ID (a UUID)');
}

/** EXTERN_ID is sent exactly as given (no trim, no case change) so that later removals match it. */
function externId(value: unknown): RuleResult {
  if (typeof value === 'string') return trimUnicode(value) === '' ? EMPTY : value;
  if (value === null || value === undefined) return EMPTY;
  if (typeof value === 'number' && Number.isFinite(value)) return decimalString(value);
  if (typeof value === 'bigint') return value.toString();
  return new Dropped(describeUnsupported(value));
}

const DECIMAL = /^\+?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const NOT_A_VALUE = 'not a number ≥ 0';
/** LOOKALIKE_VALUE: a finite number ≥ 0 (numeric strings too: warehouses return DECIMAL columns as text). */
export function lookalikeValue(value: unknown): number | typeof EMPTY | Dropped {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value + 0 : new Dropped(NOT_A_VALUE);
  if (typeof value === 'bigint') return value >= 0n ? Number(value) : new Dropped(NOT_A_VALUE);
  if (value === null || value === undefined) return EMPTY;
  if (typeof value !== 'string') return new Dropped(describeUnsupported(value));
  const text = trimUnicode(value);
  if (text === '') return EMPTY;
  if (!DECIMAL.test(text)) return new Dropped(NOT_A_VALUE);
  const n = Number(text);
  return Number.isFinite(n) ? n : new Dropped(NOT_A_VALUE);
}

export const RULES: Readonly<Record<MatchKey, Rule>> = {
  EXTERN_ID: externId,
  EMAIL: email,
  PHONE: phone,
  GEN: gender,
  DOBY: (value, ctx) => birthYear(value, ctx.currentYear, ctx.dateFormat),
  DOBM: (value, ctx) => birthMonth(value, ctx.dateFormat),
  DOBD: (value, ctx) => birthDay(value, ctx.dateFormat),
  LN: name,
  FN: name,
  FI: initial,
  CT: city,
  ST: state,
  ZIP: zip,
  COUNTRY: country,
  MADID: mobileAdvertiserId,
  LOOKALIKE_VALUE: lookalikeValue,
};
