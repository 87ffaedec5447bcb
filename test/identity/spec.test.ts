// Every rule and example of docs/identity.md, and the SHA-256 vectors in it.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { normalizeKey, sha256Hex, type KeyContextInput, type KeyOutcome, type MatchKey } from '../../src/identity/index.js';

const NOW = new Date('2026-06-15T12:00:00Z');

function ok(key: MatchKey, value: unknown, ctx: KeyContextInput = {}): string | number {
  const outcome = normalizeKey(key, value, { now: NOW, ...ctx });
  if (outcome.status !== 'ok') throw new Error(`${key} ${JSON.stringify(String(value))}: expected ok, got ${JSON.stringify(outcome)}`);
  return outcome.normalized;
}
function dropped(key: MatchKey, value: unknown, ctx: KeyContextInput = {}): string {
  const outcome = normalizeKey(key, value, { now: NOW, ...ctx });
  if (outcome.status !== 'dropped') throw new Error(`${key}: expected dropped, got ${JSON.stringify(outcome)}`);
  return outcome.reason;
}

describe('SHA-256 vectors (docs/identity.md)', () => {
  const vectors: Array<[string, string]> = [
    ['mary@example.com', 'f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79'],
    ['15559876543', '1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e'],
    ['john.doe@example.com', '836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f'],
    ['442071838750', '8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417'],
    ['f', '252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111'],
    ['m', '62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a'],
    ['1985', '78e370b587b145920213731b7c7c725e512b3b6577c51c800218a7c764c532ae'],
    ['03', '0b8efa5a3bf104413a725c6ff0459a6be12b1fd33314cbb138745baf39504ae5'],
    ['07', '19b100ab7725c612f3d80ff203ca53cea5cadaafae3bf0f88f0fb4089fe08815'],
    ['john', '96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a'],
    ['doe', '799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f'],
    ['obrien', 'b4cb6cb33fe4b865868de825023a1e2790dc12ac01ecc8d7c5afe8254071c8ba'],
    ['josé', 'd994e1d001886fe5b45b1267bd1fa2b752ac50742579bd3dad7b2a2aa0ed6866'],
    ['j', '189f40034be7a199f1fa9891668ee3ab6049f82d38c68be70f596eab2e1857b7'],
    ['newyork', '350c754ba4d38897693aa077ef43072a859d23f613443133fecbbd90a3512ca5'],
    ['ca', '6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126'],
    ['94025', 'b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7'],
    ['sw1a1', '949af780a19e6f6d4b99d7044743348dbbb7ab2245fe146863573b23d02c5890'],
    ['us', '79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621'],
    ['gb', '0b407281768f0e833afef47ed464b6571d01ca4d53c12ce5c51d1462f4ad6677'],
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ];
  it.each(vectors)('sha256Hex(%j)', (input, digest) => {
    expect(sha256Hex(input)).toBe(digest);
  });

  it('josé is hashed as its UTF-8 bytes 6a 6f 73 c3 a9', () => {
    expect(sha256Hex('josé')).toBe(createHash('sha256').update(Buffer.from([0x6a, 0x6f, 0x73, 0xc3, 0xa9])).digest('hex'));
  });

  it('normalizeKey hashes the normalized value with these digests', () => {
    const cases: Array<[MatchKey, unknown, KeyContextInput, string]> = [
      ['EMAIL', '  John.Doe@Example.COM ', {}, '836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f'],
      ['EMAIL', 'Mary@Example.com', {}, 'f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79'],
      ['PHONE', '+1 (555) 987-6543', {}, '1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e'],
      ['PHONE', '+44 (0)20 7183 8750', {}, '8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417'],
      ['GEN', 'Female', {}, '252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111'],
      ['GEN', 'MALE', {}, '62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a'],
      ['DOBY', 1985, {}, '78e370b587b145920213731b7c7c725e512b3b6577c51c800218a7c764c532ae'],
      ['DOBM', 3, {}, '0b8efa5a3bf104413a725c6ff0459a6be12b1fd33314cbb138745baf39504ae5'],
      ['DOBD', 7, {}, '19b100ab7725c612f3d80ff203ca53cea5cadaafae3bf0f88f0fb4089fe08815'],
      ['FN', 'John', {}, '96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a'],
      ['LN', 'Doe', {}, '799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f'],
      ['LN', "O'Brien", {}, 'b4cb6cb33fe4b865868de825023a1e2790dc12ac01ecc8d7c5afe8254071c8ba'],
      ['FN', 'José', {}, 'd994e1d001886fe5b45b1267bd1fa2b752ac50742579bd3dad7b2a2aa0ed6866'],
      ['FN', 'Jose\u0301', {}, 'd994e1d001886fe5b45b1267bd1fa2b752ac50742579bd3dad7b2a2aa0ed6866'],
      ['FI', 'John', {}, '189f40034be7a199f1fa9891668ee3ab6049f82d38c68be70f596eab2e1857b7'],
      ['CT', 'New York', {}, '350c754ba4d38897693aa077ef43072a859d23f613443133fecbbd90a3512ca5'],
      ['ST', 'California', {}, '6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126'],
      ['ZIP', '94025-1234', {}, 'b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7'],
      ['ZIP', 'SW1A 1AA', { country: 'GB' }, '949af780a19e6f6d4b99d7044743348dbbb7ab2245fe146863573b23d02c5890'],
      ['COUNTRY', 'United States', {}, '79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621'],
      ['COUNTRY', 'United Kingdom', {}, '0b407281768f0e833afef47ed464b6571d01ca4d53c12ce5c51d1462f4ad6677'],
    ];
    for (const [key, value, ctx, digest] of cases) {
      expect(normalizeKey(key, value, ctx), `${key} ${String(value)}`).toMatchObject({ status: 'ok', hash: digest });
    }
  });
});

describe('general rules', () => {
  it('null, undefined and blank values are "no value" and are never hashed', () => {
    for (const key of ['EXTERN_ID', 'EMAIL', 'PHONE', 'FN', 'COUNTRY', 'MADID', 'LOOKALIKE_VALUE', 'DOBY'] as const) {
      for (const value of [null, undefined, '', '   ', '\u00a0\t\n', '\u200b', ' \u200b\u00a0 ']) {
        expect(normalizeKey(key, value), `${key} ${JSON.stringify(value)}`).toEqual({ status: 'empty' });
      }
    }
  });

  it('trims Unicode white space (NBSP, zero-width space) at both ends', () => {
    expect(ok('EMAIL', '\u00a0\u200bmary@example.com\u200b\u00a0')).toBe('mary@example.com');
    expect(ok('CT', '\u2003London\u3000')).toBe('london');
  });

  it('puts text in NFC before anything else', () => {
    expect(ok('FN', 'Jose\u0301')).toBe('jos\u00e9');
    expect(ok('EMAIL', 'jose\u0301@example.com')).toBe('jos\u00e9@example.com');
  });

  it('numbers and bigints become their decimal string', () => {
    expect(ok('EXTERN_ID', 1234)).toBe('1234');
    expect(ok('EXTERN_ID', 12345678901234567890n)).toBe('12345678901234567890');
    expect(ok('ZIP', 94025)).toBe('94025');
    expect(ok('DOBD', 7)).toBe('07');
  });

  it('a Date is used only by the date-of-birth keys', () => {
    const d = new Date(Date.UTC(1985, 2, 7));
    expect(ok('DOBY', d)).toBe('1985');
    expect(dropped('EMAIL', d)).toMatch(/^EMAIL: a date/);
    expect(dropped('EXTERN_ID', d)).toMatch(/^EXTERN_ID: a date/);
  });

  it('drop reasons name the key and never contain the value', () => {
    const reason = dropped('EMAIL', 'john@localhost');
    expect(reason).toBe('EMAIL: not an email address');
    expect(reason).not.toContain('john');
    expect(dropped('PHONE', '12')).not.toContain('12');
  });

  it('an already hashed value (64 hex, any case, trimmed) is lowercased and sent as is', () => {
    const digest = sha256Hex('mary@example.com');
    for (const key of ['EMAIL', 'PHONE', 'FN', 'ZIP', 'COUNTRY', 'DOBY'] as const) {
      expect(normalizeKey(key, `  ${digest.toUpperCase()} `)).toEqual({ status: 'ok', normalized: digest, hash: digest });
    }
    // Unhashed keys take 64-hex strings literally.
    expect(normalizeKey('EXTERN_ID', digest.toUpperCase())).toEqual({ status: 'ok', normalized: digest.toUpperCase(), hash: null });
    // 63 hex digits is not a hash.
    expect(normalizeKey('EMAIL', digest.slice(1)).status).toBe('dropped');
  });

  it('hashing: pre-hashed passes hashes and refuses plain values of hashed keys', () => {
    const digest = sha256Hex('john');
    expect(normalizeKey('FN', digest.toUpperCase(), { hashing: 'pre-hashed' })).toEqual({ status: 'ok', normalized: digest, hash: digest });
    expect(normalizeKey('FN', 'John', { hashing: 'pre-hashed' })).toEqual({
      status: 'dropped',
      reason: 'FN: not a SHA-256 hash (hashing is pre-hashed, so plain values are refused)',
    });
    expect(normalizeKey('FN', '  ', { hashing: 'pre-hashed' })).toEqual({ status: 'empty' });
    // Unhashed keys are unaffected.
    expect(normalizeKey('EXTERN_ID', 'crm-42', { hashing: 'pre-hashed' })).toEqual({ status: 'ok', normalized: 'crm-42', hash: null });
    expect(normalizeKey('MADID', 'AECE52E7-03EE-455A-B3C4-E57283966239', { hashing: 'pre-hashed' }).status).toBe('ok');
  });
});

describe('per key (docs/identity.md)', () => {
  it('EXTERN_ID: string form, sent exactly', () => {
    expect(normalizeKey('EXTERN_ID', 'crm-42')).toEqual({ status: 'ok', normalized: 'crm-42', hash: null });
    expect(ok('EXTERN_ID', 1234)).toBe('1234');
    expect(ok('EXTERN_ID', ' CRM-42 ')).toBe(' CRM-42 ');
  });

  it('EMAIL: trim, lowercase; one @, local part, dotted domain without spaces; dots and +tags kept', () => {
    expect(ok('EMAIL', '  John.Doe@Example.COM ')).toBe('john.doe@example.com');
    expect(ok('EMAIL', 'Mary.Ann+News@Example.co.uk')).toBe('mary.ann+news@example.co.uk');
    for (const bad of ['john@localhost', 'john', '@example.com', 'a@b@example.com', 'john@exa mple.com', 'john@']) {
      expect(dropped('EMAIL', bad), bad).toBe('EMAIL: not an email address');
    }
  });

  it('PHONE: E.164 without +, international prefixes, row country, default country', () => {
    expect(ok('PHONE', '+1 (650) 555-1212')).toBe('16505551212');
    expect(ok('PHONE', '0044 20 7183 8750')).toBe('442071838750');
    expect(ok('PHONE', '+44 (0)20 7183 8750')).toBe('442071838750');
    expect(ok('PHONE', '020 7183 8750', { country: 'gb' })).toBe('442071838750');
    expect(ok('PHONE', '(650) 555-1212', { defaultPhoneCountry: 'US' })).toBe('16505551212');
    // The row's country wins over the default.
    expect(ok('PHONE', '020 7183 8750', { country: 'United Kingdom', defaultPhoneCountry: 'US' })).toBe('442071838750');
    // An unknown row country falls back to the default.
    expect(ok('PHONE', '(650) 555-1212', { country: 'Atlantis', defaultPhoneCountry: 'US' })).toBe('16505551212');
    // "00" is international even where the IDD prefix is 011.
    expect(ok('PHONE', '0044 20 7183 8750', { country: 'us' })).toBe('442071838750');
    expect(ok('PHONE', 16505551212, { defaultPhoneCountry: 'US' })).toBe('16505551212');
  });

  it('PHONE: separators libphonenumber does not know (* _ | / \\) count as spaces', () => {
    expect(ok('PHONE', '555*123*4567', { defaultPhoneCountry: 'US' })).toBe('15551234567');
    expect(ok('PHONE', '555_123_4567', { defaultPhoneCountry: 'US' })).toBe('15551234567');
    expect(ok('PHONE', '(650)|555|1212', { defaultPhoneCountry: 'US' })).toBe('16505551212');
    expect(ok('PHONE', '650/555/1212', { defaultPhoneCountry: 'US' })).toBe('16505551212');
    expect(ok('PHONE', '650\\555\\1212', { defaultPhoneCountry: 'US' })).toBe('16505551212');
    expect(ok('PHONE', '*+44 20 7183 8750*')).toBe('442071838750');
    expect(ok('PHONE', '_0044_20_7183_8750')).toBe('442071838750');
    expect(dropped('PHONE', '*_|')).toBe('PHONE: no country to read a national phone number (map COUNTRY or set defaultPhoneCountry)');
  });

  it('PHONE: not a possible number, or national without a country, is dropped', () => {
    expect(dropped('PHONE', '+1 650 555')).toBe('PHONE: not a possible phone number');
    expect(dropped('PHONE', 'call me')).toBe('PHONE: no country to read a national phone number (map COUNTRY or set defaultPhoneCountry)');
    expect(dropped('PHONE', '(650) 555-1212')).toMatch(/^PHONE: no country/);
    expect(dropped('PHONE', '+0 123 456 789')).toBe('PHONE: not a possible phone number');
  });

  it('GEN', () => {
    for (const v of ['m', 'M', 'male', 'Man', 'BOY']) expect(ok('GEN', v)).toBe('m');
    for (const v of ['f', 'Female', 'woman', 'Girl']) expect(ok('GEN', v)).toBe('f');
    for (const v of ['x', 'unknown', 'mf', 1]) expect(dropped('GEN', v)).toMatch(/^GEN: /);
  });

  it('DOBY: four digits, 1900 to the current year; Dates and ISO dates give their year', () => {
    expect(ok('DOBY', '1985')).toBe('1985');
    expect(ok('DOBY', 1900)).toBe('1900');
    expect(ok('DOBY', '2026')).toBe('2026');
    expect(ok('DOBY', '1985-03-07')).toBe('1985');
    expect(ok('DOBY', new Date(Date.UTC(1985, 2, 7)))).toBe('1985');
    expect(dropped('DOBY', '85')).toBe('DOBY: not a four-digit year');
    expect(dropped('DOBY', '1899')).toMatch(/^DOBY: year outside 1900–2026/);
    expect(dropped('DOBY', '2027')).toMatch(/^DOBY: year outside/);
    expect(dropped('DOBY', new Date(Number.NaN))).toBe('DOBY: not a valid date');
    expect(ok('DOBY', '2027', { now: new Date('2027-01-01T00:00:00Z') })).toBe('2027');
  });

  it('DOBM: 01–12 from numbers, names, abbreviations, Dates and ISO dates', () => {
    expect(ok('DOBM', '3')).toBe('03');
    expect(ok('DOBM', '03')).toBe('03');
    expect(ok('DOBM', 3)).toBe('03');
    expect(ok('DOBM', 'March')).toBe('03');
    expect(ok('DOBM', 'mar')).toBe('03');
    expect(ok('DOBM', 'mar.')).toBe('03');
    expect(ok('DOBM', 'DEC')).toBe('12');
    expect(ok('DOBM', '1985-03-07')).toBe('03');
    expect(ok('DOBM', new Date(Date.UTC(1985, 11, 31)))).toBe('12');
    for (const bad of ['13', '0', 'Marchh', '1985-13-01', 3.5]) expect(dropped('DOBM', bad)).toMatch(/^DOBM: /);
  });

  it('DOBD: 01–31 from numbers, Dates and ISO dates', () => {
    expect(ok('DOBD', '7')).toBe('07');
    expect(ok('DOBD', 7)).toBe('07');
    expect(ok('DOBD', 31)).toBe('31');
    expect(ok('DOBD', '1985-03-07')).toBe('07');
    expect(ok('DOBD', '1985-03-07T23:30:00Z')).toBe('07');
    expect(ok('DOBD', new Date(Date.UTC(1985, 2, 7)))).toBe('07');
    for (const bad of ['32', '0', 'seventh', '1985-02-30']) expect(dropped('DOBD', bad)).toMatch(/^DOBD: /);
  });

  it('DOB parts from one date column all agree', () => {
    for (const v of [new Date(Date.UTC(1990, 0, 9)), '1990-01-09']) {
      expect([ok('DOBY', v), ok('DOBM', v), ok('DOBD', v)]).toEqual(['1990', '01', '09']);
    }
  });

  it('FN, LN: lowercase, letters and combining marks only, accents stay', () => {
    expect(ok('FN', 'Mary-Ann')).toBe('maryann');
    expect(ok('LN', "O'Brien")).toBe('obrien');
    expect(ok('FN', 'José')).toBe('josé');
    expect(ok('LN', 'van der Berg 3rd')).toBe('vanderbergrd');
    expect(ok('LN', 'Nguyễn')).toBe('nguyễn');
    expect(ok('FN', 'Анна')).toBe('анна');
    expect(ok('FN', '김민준')).toBe('김민준');
    expect(dropped('FN', '123 !!')).toBe('FN: no letters');
  });

  it('FI: first letter of the FN rule', () => {
    expect(ok('FI', 'john')).toBe('j');
    expect(ok('FI', ' Élise')).toBe('é');
    expect(ok('FI', "'Zoë")).toBe('z');
    expect(dropped('FI', '42')).toBe('FI: no letters');
  });

  it('CT: lowercase, accents removed, letters only, other scripts stay', () => {
    expect(ok('CT', 'New York')).toBe('newyork');
    expect(ok('CT', 'São Paulo')).toBe('saopaulo');
    expect(ok('CT', 'Saint-Étienne')).toBe('saintetienne');
    expect(ok('CT', 'Москва')).toBe('москва');
    expect(ok('CT', '東京')).toBe('東京');
    expect(dropped('CT', '12345')).toBe('CT: no letters');
  });

  it('CT: the Latin letters NFD cannot split are folded as CLDR Latin-ASCII does', () => {
    expect(ok('CT', 'København')).toBe('kobenhavn');
    expect(ok('CT', 'Łódź')).toBe('lodz');
    expect(ok('CT', 'Straße')).toBe('strasse');
    expect(ok('CT', 'Østfold')).toBe('ostfold');
    expect(ok('CT', 'Þórshöfn')).toBe('thorshofn');
  });

  it('ST: US states, DC and territories by name or code; others follow CT', () => {
    expect(ok('ST', 'California')).toBe('ca');
    expect(ok('ST', 'CA')).toBe('ca');
    expect(ok('ST', 'New York')).toBe('ny');
    expect(ok('ST', 'District of Columbia')).toBe('dc');
    expect(ok('ST', 'D.C.')).toBe('dc');
    expect(ok('ST', 'Puerto Rico')).toBe('pr');
    expect(ok('ST', 'U.S. Virgin Islands')).toBe('vi');
    expect(ok('ST', 'Bavaria')).toBe('bavaria');
    expect(ok('ST', 'Île-de-France')).toBe('iledefrance');
    expect(ok('ST', 'Østfold')).toBe('ostfold');
  });

  it('ST: US AP-style abbreviations become the two-letter code', () => {
    const ap: Record<string, string> = {
      'Calif.': 'ca', 'Fla.': 'fl', 'Mass.': 'ma', 'Penn.': 'pa', 'Penna.': 'pa', 'Tex.': 'tx', 'N.Y.': 'ny', 'Ala.': 'al',
      'Ariz.': 'az', 'Ark.': 'ar', 'Colo.': 'co', 'Conn.': 'ct', 'Del.': 'de', 'Ga.': 'ga', 'Ill.': 'il', 'Ind.': 'in',
      'Kan.': 'ks', 'Ky.': 'ky', 'La.': 'la', 'Md.': 'md', 'Mich.': 'mi', 'Minn.': 'mn', 'Miss.': 'ms', 'Mo.': 'mo',
      'Mont.': 'mt', 'Neb.': 'ne', 'Nev.': 'nv', 'N.H.': 'nh', 'N.J.': 'nj', 'N.M.': 'nm', 'N.C.': 'nc', 'N.D.': 'nd',
      'Okla.': 'ok', 'Ore.': 'or', 'Pa.': 'pa', 'R.I.': 'ri', 'S.C.': 'sc', 'S.D.': 'sd', 'Tenn.': 'tn', 'Vt.': 'vt',
      'Va.': 'va', 'Wash.': 'wa', 'W.Va.': 'wv', 'Wis.': 'wi', 'Wyo.': 'wy', 'D.C.': 'dc', calif: 'ca',
      'Cal.': 'ca', 'Kans.': 'ks', 'Nebr.': 'ne', 'Wisc.': 'wi', 'Washington DC': 'dc',
    };
    const got = Object.fromEntries(Object.keys(ap).map((v) => [v, ok('ST', v)]));
    expect(got).toEqual(ap);
  });

  it('ZIP: US five digits, UK outward + first inward character, others without spaces and dashes', () => {
    expect(ok('ZIP', '94025-1234')).toBe('94025');
    expect(ok('ZIP', '94025')).toBe('94025');
    expect(ok('ZIP', '940251234', { country: 'US' })).toBe('94025');
    expect(ok('ZIP', ' 94025 - 1234 ', { country: 'us' })).toBe('94025');
    expect(dropped('ZIP', '9402', { country: 'us' })).toBe('ZIP: not a US ZIP code (5 digits or ZIP+4)');
    expect(ok('ZIP', 'SW1A 1AA', { country: 'gb' })).toBe('sw1a1');
    expect(ok('ZIP', 'm1 1ae', { country: 'United Kingdom' })).toBe('m11');
    expect(ok('ZIP', 'EC1A1BB', { country: 'GB' })).toBe('ec1a1');
    expect(dropped('ZIP', '94025', { country: 'gb' })).toBe('ZIP: not a UK postcode');
    expect(ok('ZIP', 'SW1A 1AA')).toBe('sw1a1aa');
    expect(ok('ZIP', '1010-AB', { country: 'nl' })).toBe('1010ab');
    expect(ok('ZIP', '94025-1234', { country: 'de' })).toBe('940251234');
    expect(ok('ZIP', '123-4567', { country: 'jp' })).toBe('1234567');
  });

  it('COUNTRY: alpha-2, alpha-3, names in several languages, case, accents, dots and punctuation ignored', () => {
    for (const v of ['US', 'us', 'USA', 'U.S.', 'U.S.A.', 'United States', 'united states of america']) expect(ok('COUNTRY', v)).toBe('us');
    expect(ok('COUNTRY', 'United Kingdom')).toBe('gb');
    expect(ok('COUNTRY', 'GBR')).toBe('gb');
    expect(ok('COUNTRY', 'deu')).toBe('de');
    expect(ok('COUNTRY', 'Germany')).toBe('de');
    expect(ok('COUNTRY', "Côte d'Ivoire")).toBe('ci');
    expect(ok('COUNTRY', 'Syria')).toBe('sy');
    expect(ok('COUNTRY', 'Deutschland')).toBe('de');
    expect(ok('COUNTRY', 'Holy See')).toBe('va');
    expect(dropped('COUNTRY', 'Congo')).toMatch(/^COUNTRY: ambiguous/);
    expect(dropped('COUNTRY', 'Atlantis')).toMatch(/^COUNTRY: not a known country/);
    expect(dropped('COUNTRY', 'XX')).toMatch(/^COUNTRY: /);
  });

  it('MADID: trim, lowercase, must be a UUID; never hashed', () => {
    expect(normalizeKey('MADID', ' AECE52E7-03EE-455A-B3C4-E57283966239 ')).toEqual({
      status: 'ok',
      normalized: 'aece52e7-03ee-455a-b3c4-e57283966239',
      hash: null,
    });
    expect(dropped('MADID', 'aece52e7-03ee-455a-b3c4')).toMatch(/^MADID: /);
  });

  it('LOOKALIKE_VALUE: a finite number ≥ 0, as a number', () => {
    expect(normalizeKey('LOOKALIKE_VALUE', 44.5)).toEqual({ status: 'ok', normalized: 44.5, hash: null });
    expect(ok('LOOKALIKE_VALUE', '140')).toBe(140);
    expect(ok('LOOKALIKE_VALUE', 0)).toBe(0);
    expect(ok('LOOKALIKE_VALUE', ' 0.9 ')).toBe(0.9);
    expect(ok('LOOKALIKE_VALUE', 7n)).toBe(7);
    for (const bad of [-1, '-1', Number.NaN, Number.POSITIVE_INFINITY, 'abc', true]) {
      expect(dropped('LOOKALIKE_VALUE', bad)).toMatch(/^LOOKALIKE_VALUE: /);
    }
  });
});

describe('normalizeKey never throws', () => {
  it('on exotic values and contexts', () => {
    const hostile = new Proxy(new Date(), {
      get() {
        throw new Error('boom');
      },
    });
    const values: unknown[] = [Symbol('s'), () => 1, {}, [], [1, 2], new Map(), hostile, Object.create(null), true, false, -0, 1e300, 2n ** 80n];
    for (const key of ['EMAIL', 'PHONE', 'DOBY', 'DOBM', 'DOBD', 'EXTERN_ID', 'LOOKALIKE_VALUE', 'FN', 'FI', 'ZIP', 'COUNTRY', 'ST', 'CT', 'GEN', 'MADID', 'LN'] as const) {
      for (const value of values) {
        const outcome: KeyOutcome = normalizeKey(key, value, { country: hostile, defaultPhoneCountry: 'nowhere', now: hostile });
        expect(['ok', 'empty', 'dropped']).toContain(outcome.status);
      }
    }
    expect(normalizeKey('NOPE' as MatchKey, 'x').status).toBe('dropped');
  });
});
