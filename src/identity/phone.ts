/**
 * PHONE: E.164 without the "+", via libphonenumber-js ("min" metadata, which carries the possible lengths).
 *
 * libphonenumber-js costs 8–25 µs per number, mostly because it rebuilds its regular expressions on every call.
 * That alone would be several times the cost of hashing a whole row, so plain-looking numbers (ASCII digits,
 * spaces, ( ) . / - and an optional leading +) take a fast path that follows the library's own parsing steps
 * (IDD prefix, calling code, national prefix, possible lengths) with the same metadata but with regexes
 * compiled once. Whenever the fast path cannot be sure it would agree (shared calling codes whose countries
 * disagree on a length, non-geographic codes, unusual characters), it hands the value to the library.
 * test/identity/phone.test.ts checks the two agree over many generated numbers.
 */
import {
  Metadata,
  isSupportedCountry,
  parsePhoneNumberFromString,
  type CountryCode,
} from 'libphonenumber-js/core';
import metadata from 'libphonenumber-js/min/metadata';
import { nfc } from './value.js';

/** Whether libphonenumber knows this alpha-2 region (case-insensitive); returns the uppercase code. */
export function phoneRegion(alpha2: string | undefined): CountryCode | undefined {
  if (!alpha2) return undefined;
  const upper = alpha2.toUpperCase();
  return isSupportedCountry(upper as CountryCode, metadata) ? (upper as CountryCode) : undefined;
}

/** Our rule: a value starting with "00" is international, whatever the region's own IDD prefix is. */
function internationalize(text: string): string {
  return text.startsWith('00') ? '+' + text.slice(2) : text;
}

// Separators people type that libphonenumber does not know: they count as spaces.
const EXTRA_SEPARATOR = /[*_|/\\]/;
const EXTRA_SEPARATORS = /[*_|/\\]/g;

/** `text` with the separators libphonenumber does not know (`*`, `_`, `|`, `/`, `\`) as spaces, trimmed. */
export function spacedPhone(text: string): string {
  return EXTRA_SEPARATOR.test(text) ? text.replace(EXTRA_SEPARATORS, ' ').trim() : text;
}

/**
 * E.164 digits (no "+") of a possible number, or null when it does not parse as one. `text` is trimmed.
 * `region` is the default region for numbers written without a country calling code.
 */
export function normalizePhoneNumber(text: string, region: CountryCode | undefined): string | null {
  const input = internationalize(spacedPhone(text));
  const fast = fastPhoneNumber(input, region);
  return fast === UNSURE ? viaLibrary(nfc(input), region) : fast;
}

/** The library's own answer (exported for the agreement test). */
export function viaLibrary(text: string, region: CountryCode | undefined): string | null {
  const parsed = parsePhoneNumberFromString(text, region ? { defaultCountry: region } : {}, metadata);
  if (!parsed || !parsed.isPossible()) return null;
  return parsed.number.slice(1);
}

// ---- fast path -------------------------------------------------------------------------------------------

const UNSURE = undefined;
type FastResult = string | null | typeof UNSURE;

// Mirrors constants in libphonenumber-js (MIN/MAX_LENGTH_FOR_NSN, MAX_LENGTH_COUNTRY_CODE, input cap).
const MIN_NATIONAL_LENGTH = 2;
const MAX_NATIONAL_LENGTH = 17;
const MAX_CALLING_CODE_LENGTH = 3;
const MAX_INPUT_LENGTH = 250;

const PLAIN_NUMBER = /^\+?[0-9 ()./-]+$/;
const NON_DIGITS = /[^0-9]/g;

type LengthStatus = 'IS_POSSIBLE' | 'TOO_SHORT' | 'TOO_LONG' | 'INVALID_LENGTH';
const MIXED = 'MIXED';

/** One numbering plan with its patterns compiled once. */
interface Plan {
  readonly callingCode: string;
  readonly idd: RegExp | undefined;
  readonly nationalNumber: RegExp;
  readonly lengths: readonly number[] | undefined;
  readonly nationalPrefix: RegExp | undefined;
  readonly transformRule: string | undefined;
}

/** The runtime accessors of libphonenumber's NumberingPlan (its .d.ts declares only a few of them). */
interface NumberingPlanAccessors {
  callingCode(): string;
  IDDPrefix(): string | undefined;
  nationalNumberPattern(): string | undefined;
  possibleLengths(): number[] | undefined;
  nationalPrefixForParsing(): string | undefined;
  nationalPrefixTransformRule(): string | undefined;
}

const catalogue = new Metadata(metadata);
const plans = new Map<string, Plan | null>();

/** Plan of a country (alpha-2) or of a calling code's main country; null when we leave it to the library. */
function planFor(selector: string): Plan | null {
  let plan = plans.get(selector);
  if (plan !== undefined) return plan;
  catalogue.selectNumberingPlan(selector as CountryCode);
  const np = catalogue.numberingPlan as unknown as NumberingPlanAccessors | undefined;
  const pattern = np?.nationalNumberPattern();
  if (!np || !pattern) {
    plan = null;
  } else {
    const idd = np.IDDPrefix();
    const prefix = np.nationalPrefixForParsing();
    plan = {
      callingCode: np.callingCode(),
      idd: idd ? new RegExp('^(?:' + idd + ')') : undefined,
      nationalNumber: new RegExp('^(?:' + pattern + ')$'),
      lengths: np.possibleLengths(),
      nationalPrefix: prefix ? new RegExp('^(?:' + prefix + ')') : undefined,
      transformRule: np.nationalPrefixTransformRule(),
    };
  }
  plans.set(selector, plan);
  return plan;
}

/** Same classification as libphonenumber's checkNumberLength. */
function lengthStatus(lengths: readonly number[] | undefined, length: number): LengthStatus {
  if (!lengths || lengths.length === 0) return 'IS_POSSIBLE';
  const min = lengths[0]!;
  if (min === length) return 'IS_POSSIBLE';
  if (min > length) return 'TOO_SHORT';
  if (lengths[lengths.length - 1]! < length) return 'TOO_LONG';
  return lengths.indexOf(length, 1) >= 0 ? 'IS_POSSIBLE' : 'INVALID_LENGTH';
}

/**
 * The length status every country sharing `callingCode` agrees on, or MIXED. The library picks the exact
 * country (US vs CA, GB vs JE…) from the number's digits before checking lengths; when all of them agree,
 * that choice cannot change the outcome, so we skip it.
 */
const groupStatusCache = new Map<string, Array<LengthStatus | typeof MIXED>>();
function groupStatus(callingCode: string, length: number): LengthStatus | typeof MIXED {
  let byLength = groupStatusCache.get(callingCode);
  if (!byLength) {
    byLength = [];
    groupStatusCache.set(callingCode, byLength);
  }
  const cached = byLength[length];
  if (cached) return cached;
  const countries = metadata.country_calling_codes[callingCode] ?? [];
  let status: LengthStatus | typeof MIXED | undefined;
  for (const country of countries) {
    const plan = planFor(country);
    const s = plan ? lengthStatus(plan.lengths, length) : MIXED;
    if (status === undefined) status = s;
    else if (status !== s) status = MIXED;
  }
  const result = status ?? MIXED;
  if (length <= 32) byLength[length] = result;
  return result;
}

/** libphonenumber's extractNationalNumber: strip a national (trunk) prefix when that leaves a plausible number. */
function stripNationalPrefix(number: string, plan: Plan): string | typeof UNSURE {
  if (number === '' || !plan.nationalPrefix) return number;
  const match = plan.nationalPrefix.exec(number);
  if (!match) return number;
  const groups = match.length - 1;
  const captured = groups > 0 && Boolean(match[groups]);
  const national =
    plan.transformRule && captured
      ? number.replace(plan.nationalPrefix, plan.transformRule)
      : number.slice(match[0].length);
  if (national === number) return number;
  // (national checked first: it usually matches, which skips the second big regex)
  if (!plan.nationalNumber.test(national) && plan.nationalNumber.test(number)) return number;
  if (plan.lengths) {
    const status = groupStatus(plan.callingCode, national.length);
    if (status === MIXED) return UNSURE;
    if (status === 'TOO_SHORT' || status === 'INVALID_LENGTH') return number;
  }
  return national;
}

function finish(callingCode: string, plan: Plan | null, number: string): FastResult {
  if (!plan) return UNSURE;
  if (number === '') return null;
  const national = stripNationalPrefix(number, plan);
  if (national === UNSURE) return UNSURE;
  if (national.length < MIN_NATIONAL_LENGTH || national.length > MAX_NATIONAL_LENGTH) return null;
  const status = groupStatus(callingCode, national.length);
  if (status === MIXED) return UNSURE;
  return status === 'IS_POSSIBLE' ? callingCode + national : null;
}

function fromInternational(digits: string): FastResult {
  if (digits[0] === '0') return null;
  for (let i = 1; i <= MAX_CALLING_CODE_LENGTH && i <= digits.length; i++) {
    const callingCode = digits.slice(0, i);
    // Non-geographic codes (+800, +881…) have their own plans: leave them to the library.
    if (metadata.nonGeographic[callingCode]) return UNSURE;
    const countries = metadata.country_calling_codes[callingCode];
    if (countries) {
      if ((countries[0] as string) === '001') return UNSURE;
      return finish(callingCode, planFor(callingCode), digits.slice(i));
    }
  }
  return null;
}

/** The fast path alone: undefined when it leaves the value to the library (exported for tests). */
export function fastPhoneNumber(text: string, region: CountryCode | undefined): string | null | undefined {
  if (text.length > MAX_INPUT_LENGTH || !PLAIN_NUMBER.test(text)) return UNSURE;
  const digits = text.replace(NON_DIGITS, '');
  if (digits.length < 3) return UNSURE;
  if (text.charCodeAt(0) === 43 /* + */) return fromInternational(digits);
  if (!region) return null;
  const home = planFor(region);
  if (!home) return UNSURE;

  // A region's own international dialling prefix (011 in the US) also marks an international number.
  const idd = home.idd?.exec(digits);
  if (idd) {
    const rest = digits.slice(idd[0].length);
    if (rest !== '' && rest[0] !== '0') return fromInternational(rest);
  }

  // The region's calling code written without "+" (16505551212 in the US).
  const callingCode = home.callingCode;
  if (digits.startsWith(callingCode)) {
    const shorter = digits.slice(callingCode.length);
    const shorterNational = stripNationalPrefix(shorter, home);
    const national = stripNationalPrefix(digits, home);
    if (shorterNational === UNSURE || national === UNSURE) return UNSURE;
    if (
      (!home.nationalNumber.test(national) && home.nationalNumber.test(shorterNational)) ||
      lengthStatus(home.lengths, national.length) === 'TOO_LONG'
    ) {
      return finish(callingCode, planFor(callingCode), shorter);
    }
  }
  return finish(callingCode, home, digits);
}
