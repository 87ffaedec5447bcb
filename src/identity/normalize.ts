/**
 * One value of one key: the key's rule plus the hashing policy (already-hashed values, `hashing: pre-hashed`).
 */
import type { CountryCode } from 'libphonenumber-js/core';
import { countryCode } from './country.js';
import { type DateFormat, isDateFormat } from './dob.js';
import { sha256Hex, isSha256Hex } from './hash.js';
import { isHashedKey, isMatchKey, type MatchKey } from './keys.js';
import { phoneRegion } from './phone.js';
import { RULES, type RuleContext } from './rules.js';
import { Dropped, EMPTY, type Empty, toText, trimUnicode } from './value.js';

export type Hashing = 'auto' | 'pre-hashed';

export interface ValueContext extends RuleContext {
  hashing: Hashing;
}

/** A hashed key's value that arrived as a SHA-256 hex digest: sent as is (lowercased), never hashed again. */
export class AlreadyHashed {
  constructor(readonly hash: string) {}
}

/**
 * The normalized value of `key` (not yet hashed), an AlreadyHashed digest, EMPTY, or a Dropped whose reason
 * starts with the key ("EMAIL: not an email address"). Never throws.
 */
export function normalizeValue(
  key: MatchKey,
  value: unknown,
  ctx: ValueContext,
  hashed: boolean = isHashedKey(key),
): string | number | AlreadyHashed | Empty | Dropped {
  try {
    if (hashed) {
      if (typeof value === 'string' && value.length >= 64) {
        const t = trimUnicode(value);
        if (isSha256Hex(t)) return new AlreadyHashed(t.toLowerCase());
      }
      if (ctx.hashing === 'pre-hashed') {
        const text = toText(value);
        return text === EMPTY ? EMPTY : new Dropped(`${key}: not a SHA-256 hash (hashing is pre-hashed, so plain values are refused)`);
      }
    }
    const result = RULES[key](value, ctx);
    if (result instanceof Dropped) return new Dropped(`${key}: ${result.reason}`);
    // Rules never return "", but an empty string must never be hashed, so make sure.
    return result === '' ? new Dropped(`${key}: nothing left after normalizing`) : result;
  } catch {
    // e.g. a Proxy or an exotic object whose accessors throw: drop the value, never the batch.
    return new Dropped(`${key}: unreadable value`);
  }
}

// ---- the public single-value API ------------------------------------------------------------------------

export type KeyOutcome =
  | { status: 'ok'; normalized: string | number; hash: string | null }
  | { status: 'empty' }
  | { status: 'dropped'; reason: string };

export interface KeyContextInput {
  /** The row's raw COUNTRY value: the phone default region and the ZIP rule's country. */
  country?: unknown;
  /** Alpha-2 (or any country spelling COUNTRY accepts) for national phone numbers without a row country. */
  defaultPhoneCountry?: string;
  hashing?: Hashing;
  /** How dates of birth written as text are read; default 'iso'. */
  dateFormat?: DateFormat;
  now?: Date;
}

/** A country value (any spelling COUNTRY accepts) as lowercase alpha-2, or undefined. */
export function countryOf(value: unknown): string | undefined {
  const text = toText(value);
  return typeof text === 'string' ? countryCode(text) : undefined;
}

// Keyed by alpha-2 code (a few hundred at most), never by a person's value.
const regionByCountry = new Map<string, CountryCode | null>();
/** Default phone region: the row's country when libphonenumber knows it, else the sync's default. */
export function regionFor(rowCountry: string | undefined, fallback: CountryCode | undefined): CountryCode | undefined {
  if (rowCountry === undefined) return fallback;
  let region = regionByCountry.get(rowCountry);
  if (region === undefined) {
    region = phoneRegion(rowCountry) ?? null;
    regionByCountry.set(rowCountry, region);
  }
  return region ?? fallback;
}

/** Normalizes and hashes one value of one key. Never throws, whatever `value` is. */
export function normalizeKey(key: MatchKey, value: unknown, ctx: KeyContextInput = {}): KeyOutcome {
  if (!isMatchKey(key)) return { status: 'dropped', reason: `unknown key: use one of the Meta match keys (EMAIL, PHONE, …)` };
  let context: ValueContext;
  try {
    const country = countryOf(ctx.country);
    const now = ctx.now instanceof Date && !Number.isNaN(ctx.now.getTime()) ? ctx.now : new Date();
    context = {
      country,
      phoneRegion: regionFor(country, phoneRegion(countryOf(ctx.defaultPhoneCountry))),
      currentYear: now.getUTCFullYear(),
      hashing: ctx.hashing === 'pre-hashed' ? 'pre-hashed' : 'auto',
      dateFormat: isDateFormat(ctx.dateFormat) ? ctx.dateFormat : 'iso',
    };
  } catch {
    return { status: 'dropped', reason: `${key}: unreadable context` };
  }
  const result = normalizeValue(key, value, context);
  if (result === EMPTY) return { status: 'empty' };
  if (result instanceof Dropped) return { status: 'dropped', reason: result.reason };
  if (result instanceof AlreadyHashed) return { status: 'ok', normalized: result.hash, hash: result.hash };
  const hash = isHashedKey(key) && typeof result === 'string' ? sha256Hex(result) : null;
  return { status: 'ok', normalized: result, hash };
}
