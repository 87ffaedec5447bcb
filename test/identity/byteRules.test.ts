// The byte-level fast paths must give exactly the string rules' bytes whenever they answer, and must answer for
// the common case (otherwise they would be dead code and these tests vacuous).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteRuleFor, firstCharacter, isCovered, MAX_OUTPUT_BYTES, MAX_TEXT_LENGTH, UNSURE } from '../../src/identity/byteRules.js';
import { createRecordEncoder, normalizeKey, type MatchKey } from '../../src/identity/index.js';
import { normalizeValue } from '../../src/identity/normalize.js';
import { personName, placeName } from '../../src/identity/rules.js';

const FAST_KEYS = ['EMAIL', 'FN', 'LN', 'CT', 'ZIP'] as const;
const COUNTRIES = ['us', 'gb', 'de', 'fr', undefined] as const;
const out = new Uint8Array(MAX_OUTPUT_BYTES);
const decode = (length: number) => Buffer.from(out.subarray(0, length)).toString('utf8');

/** The byte rule's text, or UNSURE. */
function fast(key: MatchKey, text: string, country?: string): string | typeof UNSURE {
  const rule = byteRuleFor(key)!;
  const length = rule(text, out, { country, phoneRegion: undefined, currentYear: 2026, dateFormat: 'iso' as const });
  if (length !== UNSURE && !(length > 0)) throw new Error(`a byte rule returned ${length}`);
  return length === UNSURE ? UNSURE : decode(length);
}

/** The string rule's normalized value (before hashing). */
function slow(key: MatchKey, text: string, country?: string): unknown {
  return normalizeValue(key, text, { country, phoneRegion: undefined, currentYear: 2026, hashing: 'auto', dateFormat: 'iso' });
}

const COVERED_CODES = Array.from({ length: 0x2000 }, (_, i) => i).filter(isCovered);

describe('byte rules: the covered characters map one by one', () => {
  it('no pair of covered characters composes, decomposes or lowercases differently together than apart', () => {
    const chars = COVERED_CODES.map((code) => String.fromCharCode(code));
    const nfc = chars.map((c) => c.normalize('NFC'));
    const nfd = chars.map((c) => c.normalize('NFD'));
    const lower = chars.map((c) => c.toLowerCase());
    let bad = 0;
    for (let a = 0; a < chars.length; a++) {
      for (let b = 0; b < chars.length; b++) {
        const pair = chars[a]! + chars[b]!;
        if (pair.normalize('NFC') !== nfc[a]! + nfc[b]!) bad++;
        if (pair.normalize('NFD') !== nfd[a]! + nfd[b]!) bad++;
        if (pair.toLowerCase() !== lower[a]! + lower[b]!) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it('FN/LN and CT over every pair of covered characters (and every single one) equal the string rules', () => {
    const chars = COVERED_CODES.map((code) => String.fromCharCode(code));
    const texts = [...chars];
    // Every pair whose first character is a letter or a space; a stride over the rest.
    for (let a = 0; a < chars.length; a++) {
      const stride = /[\p{L} ]/u.test(chars[a]!) ? 1 : 7;
      for (let b = 0; b < chars.length; b += stride) texts.push(chars[a]! + chars[b]!);
    }
    let answered = 0;
    const wrong: string[] = [];
    for (const text of texts) {
      for (const [key, rule] of [['FN', personName], ['CT', placeName]] as const) {
        const got = fast(key, text);
        if (got === UNSURE) continue;
        answered++;
        if (got !== rule(text.trim())) wrong.push(`${key} ${JSON.stringify(text)}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(answered).toBeGreaterThan(texts.length); // most of them, for both keys
  });
});

// Characters the fast paths take, the ones that shape each key, and some they must leave to the string rules.
const covered = fc.integer({ min: 0, max: COVERED_CODES.length - 1 }).map((i) => String.fromCharCode(COVERED_CODES[i]!));
const shaping = fc.constantFrom(...' \t\u00a0@@..--+\'0123456789aAzZéÉßİøØæÞþŁıđʻǆ');
const foreign = fc.constantFrom('\u0301', '\u0130', 'Σ', '\u200b', '\ufeff', '中', '😀', '\u1100', '\u2c65', 'ﬁ');
const text = fc.string({ unit: fc.oneof({ weight: 6, arbitrary: shaping }, { weight: 3, arbitrary: covered }, { weight: 1, arbitrary: foreign }), maxLength: MAX_TEXT_LENGTH + 4 });
const emailLike = fc
  .tuple(fc.string({ unit: fc.oneof(covered, shaping), minLength: 1, maxLength: 20 }), fc.string({ unit: fc.oneof(covered, shaping), maxLength: 12 }), fc.constantFrom('com', 'CO.UK', 'org '))
  .map(([local, domain, tld]) => ` ${local}@${domain}.${tld}`);
const zipLike = fc.oneof(
  fc.stringMatching(/^ ?\d{5}(-?\d{4})? ?$/),
  fc.stringMatching(/^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$/),
  fc.stringMatching(/^[A-Za-z\d]{1,5} ?\d[A-Za-z]{2}$/), // UK near-misses
  fc.string({ unit: fc.constantFrom(...'0123456789-  aBé'), maxLength: 12 }),
);

describe('byte rules agree with the string rules', () => {
  const hits = new Map<string, number>();
  const agree = (key: MatchKey, value: string, country?: string) => {
    const got = fast(key, value, country);
    if (got === UNSURE) return;
    hits.set(key, (hits.get(key) ?? 0) + 1);
    expect(got, `${key} ${JSON.stringify(value)} (${country})`).toBe(slow(key, value, country));
  };

  it('on random text, for every fast key and row country', () => {
    fc.assert(
      fc.property(text, fc.constantFrom(...FAST_KEYS), fc.constantFrom(...COUNTRIES), (value, key, country) => agree(key, value, country)),
      { numRuns: 20_000 },
    );
  });

  it('on email-shaped and ZIP-shaped text', () => {
    fc.assert(fc.property(emailLike, (value) => agree('EMAIL', value)), { numRuns: 5_000 });
    fc.assert(fc.property(zipLike, fc.constantFrom(...COUNTRIES), (value, country) => agree('ZIP', value, country)), { numRuns: 5_000 });
    // Not vacuous: the fast paths answered for a good share of these.
    for (const key of FAST_KEYS) expect(hits.get(key) ?? 0, key).toBeGreaterThan(1000);
  });

  it('examples: what the fast path answers, and what it leaves to the string rule', () => {
    expect(fast('EMAIL', '  José.García+7@Example.COM ')).toBe('josé.garcía+7@example.com');
    expect(fast('EMAIL', 'a@b@c.com')).toBe(UNSURE); // dropped: the string rule says why
    expect(fast('EMAIL', 'a@b .com')).toBe(UNSURE);
    expect(fast('FN', " D'Angelo-Zoë ")).toBe('dangelozoë');
    expect(fast('LN', 'Nguyễn')).toBe('nguyễn');
    expect(fast('LN', 'Ngu\u0301yen')).toBe(UNSURE); // a combining mark
    expect(fast('LN', 'İpek')).toBe(UNSURE); // İ lowercases to two characters
    expect(fast('CT', 'Saint-Étienne')).toBe('saintetienne');
    expect(fast('CT', 'Đà Nẵng')).toBe('danang');
    // Latin letters NFD cannot split are folded as CLDR's Latin-ASCII does, one or two letters each.
    expect(fast('CT', 'København')).toBe('kobenhavn');
    expect(fast('CT', 'Łódź')).toBe('lodz');
    expect(fast('CT', 'Straße')).toBe('strasse');
    expect(fast('CT', 'STRAẞE')).toBe('strasse');
    expect(fast('CT', 'Þórshöfn')).toBe('thorshofn');
    expect(fast('CT', 'Hawaiʻi')).toBe('hawaii'); // a modifier letter that folds to an apostrophe
    expect(fast('CT', 'ʻʻ')).toBe(UNSURE); // nothing left: the string rule says why
    expect(fast('LN', 'Łukasiewicz')).toBe('łukasiewicz'); // names are not folded
    expect(fast('FN', 'Ёлка')).toBe('ёлка');
    expect(fast('CT', 'Αθήνα')).toBe('αθηνα');
    expect(fast('LN', 'ΟΔΥΣΣΕΑΣ')).toBe(UNSURE); // Σ: σ or final ς depends on the neighbours
    expect(fast('LN', 'Оди́н')).toBe(UNSURE); // a combining acute
    expect(fast('FN', '   ')).toBe(UNSURE); // empty: the string rule returns EMPTY
    expect(fast('ZIP', ' 94105-1234', 'us')).toBe('94105');
    expect(fast('ZIP', '941051234', undefined)).toBe('941051234'); // no country: not US-shaped without the dash
    expect(fast('ZIP', 'sw1a 1aa', 'gb')).toBe('sw1a1');
    expect(fast('ZIP', '75-001', 'fr')).toBe('75001');
    expect(fast('ZIP', '9410', 'us')).toBe(UNSURE);
    expect(fast('ZIP', 'A1BC 1AA', 'gb')).toBe(UNSURE); // not a UK postcode
  });

  it('firstCharacter reads back the first character of 1-, 2- and 3-byte UTF-8', () => {
    for (const char of ['a', 'é', 'ß', 'ẽ', 'ⱥ']) {
      const bytes = Buffer.from(char + 'xyz');
      expect(firstCharacter(bytes)).toBe(char);
    }
  });
});

describe('the encoder with fast paths gives the same cells as normalizeKey', () => {
  const MAPPING = { EMAIL: 'e', PHONE: 'p', FN: 'f', LN: 'l', CT: 'c', ZIP: 'z', COUNTRY: 'k' } as const;
  const country = fc.constantFrom('US', 'gb', 'Germany', 'fra', '', 'Atlantis');
  const row = fc.record({ e: fc.oneof(emailLike, text), p: fc.constantFrom('+1 415 555 0100', '020 7946 0958'), f: text, l: text, c: text, z: fc.oneof(zipLike, text), k: country });

  it('for every key, FI derived from FN included', () => {
    const encoder = createRecordEncoder(MAPPING, { defaultPhoneCountry: 'US' });
    fc.assert(
      fc.property(row, (r) => {
        const record = encoder.encode(r);
        encoder.schema.forEach((key, i) => {
          const column = key === 'FI' ? 'f' : MAPPING[key as keyof typeof MAPPING];
          // FI is derived from FN: normalizeKey('FI', first name) applies the same rule to the same column.
          const outcome = normalizeKey(key, r[column as keyof typeof r], { country: r.k, defaultPhoneCountry: 'US' });
          const want = outcome.status === 'ok' ? String(outcome.hash) : '';
          expect(record.cells[i], `${key} of ${JSON.stringify(r)}`).toBe(want);
        });
      }),
      { numRuns: 3_000 },
    );
  });
});
