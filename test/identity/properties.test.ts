import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRecordEncoder, MATCH_KEYS, normalizeKey, sha256Hex, type MatchKey } from '../../src/identity/index.js';

const RUNS = { numRuns: 300 };
const HEX64 = /^[0-9a-f]{64}$/;
const NOW = new Date('2026-06-15T00:00:00Z');

/** Anything a warehouse (or a broken one) might hand us. */
const anyValue = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...' \u00a0\u200b\t-.+()@0123456789aéZ'), maxLength: 30 }),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.date({ noInvalidDate: false }),
  fc.constantFrom(null, undefined),
  fc.object(),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.anything(),
);
const anyKey = fc.constantFrom(...MATCH_KEYS);
const anyContext = fc.record(
  {
    country: fc.oneof(anyValue, fc.constantFrom('US', 'gb', 'Germany', 'fra')),
    defaultPhoneCountry: fc.oneof(fc.string(), fc.constantFrom('US', 'GB', 'DE')),
    hashing: fc.constantFrom('auto' as const, 'pre-hashed' as const),
  },
  { requiredKeys: [] },
);

describe('normalizeKey properties', () => {
  it('never throws, and every outcome is well-formed', () => {
    fc.assert(
      fc.property(anyKey, anyValue, anyContext, (key, value, ctx) => {
        const outcome = normalizeKey(key, value, { ...ctx, now: NOW });
        if (outcome.status === 'ok') {
          expect(outcome.normalized).not.toBe('');
          if (key === 'EXTERN_ID' || key === 'MADID' || key === 'LOOKALIKE_VALUE') expect(outcome.hash).toBeNull();
          else expect(outcome.hash).toMatch(HEX64);
        } else if (outcome.status === 'dropped') {
          expect(outcome.reason.startsWith(`${key}: `)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a hash is 64 lowercase hex and is the SHA-256 of the normalized value (unless it came pre-hashed)', () => {
    fc.assert(
      fc.property(anyKey, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }), (key, value) => {
        const outcome = normalizeKey(key, value, { defaultPhoneCountry: 'US', now: NOW });
        if (outcome.status !== 'ok' || outcome.hash === null) return;
        expect(outcome.hash).toMatch(HEX64);
        expect(outcome.hash).toBe(sha256Hex(String(outcome.normalized)));
      }),
      RUNS,
    );
  });

  it('the empty string is never hashed', () => {
    const emptyHash = sha256Hex('');
    fc.assert(
      fc.property(anyKey, anyValue, (key, value) => {
        const outcome = normalizeKey(key, value, { now: NOW });
        if (outcome.status === 'ok') expect(outcome.hash).not.toBe(emptyHash);
      }),
      { numRuns: 1000 },
    );
    for (const blank of ['', ' ', '\u200b', '\u00a0']) {
      for (const key of MATCH_KEYS) expect(normalizeKey(key, blank).status).toBe('empty');
    }
  });

  // Keys whose normalized value, fed back in, must come out unchanged.
  const IDEMPOTENT: MatchKey[] = ['EXTERN_ID', 'EMAIL', 'GEN', 'DOBY', 'DOBM', 'DOBD', 'FN', 'LN', 'FI', 'CT', 'ST', 'COUNTRY', 'MADID', 'LOOKALIKE_VALUE'];
  it.each(IDEMPOTENT)('%s: normalizing a normalized value gives itself', (key) => {
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 25 }),
      fc.constantFrom('John.Doe@Example.COM', 'Female', 'MARCH', '1985-03-07', "O'Brien", 'São Paulo', 'California', 'U.S.A.', 'AECE52E7-03EE-455A-B3C4-E57283966239', '44.5', '7'),
    );
    fc.assert(
      fc.property(text, (value) => {
        const first = normalizeKey(key, value, { now: NOW });
        if (first.status !== 'ok') return;
        const second = normalizeKey(key, first.normalized, { now: NOW });
        expect(second).toEqual(first);
      }),
      RUNS,
    );
  });

  it('PHONE: "+" and the normalized digits give the same digits back', () => {
    const phone = fc.tuple(fc.constantFrom('+1 650 ', '+44 20 ', '+49 30 ', '+33 6 ', '+91 98', '0044 7700 ', '+61 4'), fc.stringMatching(/^[0-9 -]{4,10}$/));
    fc.assert(
      fc.property(phone, ([prefix, rest]) => {
        const first = normalizeKey('PHONE', prefix + rest);
        if (first.status !== 'ok') return;
        expect(normalizeKey('PHONE', `+${first.normalized}`)).toEqual(first);
      }),
      RUNS,
    );
  });

  it('ZIP outside the UK is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'0123456789- abAB'), maxLength: 12 }), fc.constantFrom(undefined, 'us', 'de', 'fr'), (value, country) => {
        const first = normalizeKey('ZIP', value, { country });
        if (first.status !== 'ok') return;
        expect(normalizeKey('ZIP', first.normalized, { country })).toEqual(first);
      }),
      RUNS,
    );
  });
});

describe('encode properties', () => {
  const encoder = createRecordEncoder(
    { EXTERN_ID: 'a', EMAIL: 'b', PHONE: 'c', GEN: 'd', DOBY: 'e', DOBM: 'e', DOBD: 'f', LN: 'g', FN: 'h', CT: 'i', ST: 'j', ZIP: 'k', COUNTRY: 'l', MADID: 'm', LOOKALIKE_VALUE: 'n' },
    { valueBased: true, defaultPhoneCountry: 'US', now: NOW },
  );
  const row = fc.record(Object.fromEntries('abcdefghijklmn'.split('').map((c) => [c, anyValue])), { requiredKeys: [] });

  it('never throws; cells match the schema; hashed cells are "" or 64 hex; rejected ⇔ reasons', () => {
    fc.assert(
      fc.property(fc.oneof(row, anyValue), (r) => {
        const out = encoder.encode(r as Record<string, unknown>);
        expect(out.cells).toHaveLength(encoder.schema.length);
        encoder.schema.forEach((key, i) => {
          const cell = out.cells[i];
          if (key === 'LOOKALIKE_VALUE') expect(cell === '' || (typeof cell === 'number' && cell >= 0)).toBe(true);
          else if (key !== 'EXTERN_ID' && key !== 'MADID') expect(cell === '' || HEX64.test(String(cell))).toBe(true);
          expect(cell).not.toBe(sha256Hex(''));
        });
        expect(out.rejected).toBe(out.reasons.length > 0);
      }),
      { numRuns: 1000 },
    );
  });
});
