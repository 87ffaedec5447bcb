import { describe, expect, it } from 'vitest';
import {
  createRecordEncoder,
  MappingError,
  MISSING_LOOKALIKE_VALUE,
  NO_USABLE_IDENTIFIER,
  sha256Hex,
  type Mapping,
} from '../../src/identity/index.js';

const h = sha256Hex;

describe('createRecordEncoder: schema', () => {
  it('uses the fixed key order and leaves unmapped keys out', () => {
    const enc = createRecordEncoder({ COUNTRY: 'c', EMAIL: 'e', EXTERN_ID: 'id', ZIP: 'z', PHONE: 'p' });
    expect(enc.schema).toEqual(['EXTERN_ID', 'EMAIL', 'PHONE', 'ZIP', 'COUNTRY']);
  });

  it('derives FI when FN is mapped and FI is not', () => {
    expect(createRecordEncoder({ FN: 'first', LN: 'last' }).schema).toEqual(['LN', 'FN', 'FI']);
    expect(createRecordEncoder({ FN: 'first', FI: 'initial' }).schema).toEqual(['FN', 'FI']);
    // A pre-hashed first name has no readable initial.
    expect(createRecordEncoder({ FN: 'first' }, { hashing: 'pre-hashed' }).schema).toEqual(['FN']);
  });

  it('adds LOOKALIKE_VALUE last for value-based audiences', () => {
    expect(createRecordEncoder({ LOOKALIKE_VALUE: 'ltv', EMAIL: 'e' }, { valueBased: true }).schema).toEqual(['EMAIL', 'LOOKALIKE_VALUE']);
    expect(createRecordEncoder({ EMAIL: 'e' }, { valueBased: true, defaultLookalikeValue: 0 }).schema).toEqual(['EMAIL', 'LOOKALIKE_VALUE']);
  });
});

describe('createRecordEncoder: mapping errors', () => {
  const cases: Array<[string, Mapping, object, RegExp]> = [
    ['unknown key', { EMAIL: 'e', EMAILS: 'x' } as Mapping, {}, /Unknown match key "EMAILS".*EXTERN_ID, EMAIL/],
    ['empty column', { EMAIL: ' ' }, {}, /mapping for EMAIL must be a column name/],
    ['non-string column', { EMAIL: 3 } as unknown as Mapping, {}, /mapping for EMAIL must be a column name/],
    ['no identifier', { LOOKALIKE_VALUE: 'v' }, { valueBased: true }, /no identifier/],
    ['empty mapping', {}, {}, /no identifier/],
    ['LOOKALIKE_VALUE without value-based', { EMAIL: 'e', LOOKALIKE_VALUE: 'v' }, {}, /LOOKALIKE_VALUE is mapped but the audience is not value-based/],
    ['value-based without a value', { EMAIL: 'e' }, { valueBased: true }, /value-based.*map it to a column or set defaultLookalikeValue/],
    ['negative default value', { EMAIL: 'e' }, { valueBased: true, defaultLookalikeValue: -1 }, /defaultLookalikeValue must be a finite number/],
    ['default value when not value-based', { EMAIL: 'e' }, { defaultLookalikeValue: 1 }, /only applies to value-based/],
    ['bad phone country', { PHONE: 'p' }, { defaultPhoneCountry: 'Atlantis' }, /defaultPhoneCountry "Atlantis"/],
    ['bad hashing', { EMAIL: 'e' }, { hashing: 'sometimes' }, /hashing must be "auto" or "pre-hashed"/],
    ['not an object', null as unknown as Mapping, {}, /mapping must be an object/],
  ];
  it.each(cases)('%s', (_name, mapping, options, message) => {
    expect(() => createRecordEncoder(mapping, options)).toThrow(MappingError);
    expect(() => createRecordEncoder(mapping, options)).toThrow(message);
  });

  it('names the key on the error', () => {
    try {
      createRecordEncoder({ EMAIL: 'e', LOOKALIKE_VALUE: 'v' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(MappingError);
      expect((error as MappingError).key).toBe('LOOKALIKE_VALUE');
    }
  });

  it('accepts a country name as defaultPhoneCountry', () => {
    const enc = createRecordEncoder({ PHONE: 'p' }, { defaultPhoneCountry: 'United Kingdom' });
    expect(enc.encode({ p: '020 7183 8750' }).cells).toEqual([h('442071838750')]);
  });
});

describe('encode', () => {
  const mapping: Mapping = {
    EXTERN_ID: 'id', EMAIL: 'email', PHONE: 'phone', FN: 'first', LN: 'last', ZIP: 'zip', COUNTRY: 'country',
    DOBY: 'born', DOBM: 'born', DOBD: 'born',
  };
  const enc = createRecordEncoder(mapping, { defaultPhoneCountry: 'US', now: new Date('2026-01-01T00:00:00Z') });

  it('encodes a full row in schema order, hashing all but EXTERN_ID', () => {
    expect(enc.schema).toEqual(['EXTERN_ID', 'EMAIL', 'PHONE', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'ZIP', 'COUNTRY']);
    const r = enc.encode({
      id: 'crm-42', email: ' John.Doe@Example.COM', phone: '020 7183 8750', first: 'John', last: 'Doe',
      zip: 'SW1A 1AA', country: 'United Kingdom', born: new Date(Date.UTC(1985, 2, 7)),
    });
    expect(r).toEqual({
      cells: ['crm-42', h('john.doe@example.com'), h('442071838750'), h('1985'), h('03'), h('07'), h('doe'), h('john'), h('j'), h('sw1a1'), h('gb')],
      dropped: [],
      rejected: false,
      reasons: [],
    });
  });

  it('uses the row country for phones and ZIPs, else the default phone country', () => {
    const us = enc.encode({ id: 1, phone: '(650) 555-1212', zip: '94025-1234' });
    expect(us.cells[2]).toBe(h('16505551212'));
    expect(us.cells[9]).toBe(h('94025'));
    const de = enc.encode({ id: 2, phone: '030 123456', country: 'DEU', zip: '10115' });
    expect(de.cells[2]).toBe(h('4930123456'));
    expect(de.cells[10]).toBe(h('de'));
  });

  it('drops bad values with reasons but keeps the record when an identifier remains', () => {
    const r = enc.encode({ id: 'crm-1', email: 'nope', phone: '12', first: '42', born: '1985-02-30' });
    expect(r.rejected).toBe(false);
    expect(r.reasons).toEqual([]);
    expect(r.dropped.map((d) => d.key)).toEqual(['EMAIL', 'PHONE', 'DOBY', 'DOBM', 'DOBD', 'FN']);
    expect(r.cells).toEqual(['crm-1', '', '', '', '', '', '', '', '', '', '']);
  });

  it('rejects a record without a usable identifier, with all the reasons', () => {
    const r = enc.encode({ email: 'john@localhost', phone: null, country: 'Atlantis' });
    expect(r.rejected).toBe(true);
    expect(r.reasons).toEqual(['EMAIL: not an email address', 'COUNTRY: not a known country (use an ISO alpha-2 or alpha-3 code, or the name in English, German, French, Spanish, Italian, Portuguese or Dutch)', NO_USABLE_IDENTIFIER]);
    expect(r.cells.every((c) => c === '')).toBe(true);
  });

  it('splits one date column (ISO string) into DOB parts', () => {
    const r = enc.encode({ id: 'x', born: '1990-12-31' });
    expect(r.cells.slice(3, 6)).toEqual([h('1990'), h('12'), h('31')]);
  });

  it('separate DOB columns', () => {
    const sep = createRecordEncoder({ EMAIL: 'e', DOBY: 'y', DOBM: 'm', DOBD: 'd' });
    expect(sep.encode({ e: 'a@b.co', y: 1985, m: 'March', d: 7 }).cells).toEqual([h('a@b.co'), h('1985'), h('03'), h('07')]);
  });

  it('passes already-hashed values through and refuses plain ones when pre-hashed', () => {
    const digest = h('mary@example.com');
    const auto = createRecordEncoder({ EMAIL: 'e', PHONE: 'p' }, { defaultPhoneCountry: 'US' });
    expect(auto.encode({ e: digest.toUpperCase(), p: '650 555 1212' }).cells).toEqual([digest, h('16505551212')]);
    const pre = createRecordEncoder({ EMAIL: 'e', PHONE: 'p' }, { hashing: 'pre-hashed' });
    const r = pre.encode({ e: digest, p: '650 555 1212' });
    expect(r.cells).toEqual([digest, '']);
    expect(r.dropped).toEqual([{ key: 'PHONE', reason: 'PHONE: not a SHA-256 hash (hashing is pre-hashed, so plain values are refused)' }]);
  });

  it('value-based: LOOKALIKE_VALUE is a number; missing → default or rejected', () => {
    const vb = createRecordEncoder({ EMAIL: 'e', LOOKALIKE_VALUE: 'v' }, { valueBased: true });
    expect(vb.encode({ e: 'a@b.co', v: '44.5' }).cells).toEqual([h('a@b.co'), 44.5]);
    const missing = vb.encode({ e: 'a@b.co', v: -3 });
    expect(missing.rejected).toBe(true);
    expect(missing.reasons).toEqual(['LOOKALIKE_VALUE: not a number ≥ 0', MISSING_LOOKALIKE_VALUE]);
    const withDefault = createRecordEncoder({ EMAIL: 'e', LOOKALIKE_VALUE: 'v' }, { valueBased: true, defaultLookalikeValue: 1.5 });
    const r = withDefault.encode({ e: 'a@b.co', v: null });
    expect(r).toEqual({ cells: [h('a@b.co'), 1.5], dropped: [], rejected: false, reasons: [] });
    // A LOOKALIKE_VALUE alone is not an identifier.
    expect(withDefault.encode({ v: 3 }).reasons).toEqual([NO_USABLE_IDENTIFIER]);
  });

  it('FI derived from FN: empty when FN is dropped, no separate reason', () => {
    const r = enc.encode({ id: 'x', first: '---' });
    expect(r.cells[8]).toBe('');
    expect(r.dropped).toEqual([{ key: 'FN', reason: 'FN: no letters' }]);
  });

  it('remembered hashes of small-set keys stay right past the memo cap (FI over 6,000 distinct letters)', () => {
    const fiAt = enc.schema.indexOf('FI');
    const dobyAt = enc.schema.indexOf('DOBY');
    // CJK ideographs from U+4E00: each a letter, so each first name has its own FI; twice, so the second pass
    // reads the memo for the first 4,096 and computes the rest.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < 6000; i++) {
        const letter = String.fromCodePoint(0x4e00 + i);
        const r = enc.encode({ id: 'x', first: letter + 'x', born: `${1930 + (i % 90)}-01-02` });
        expect(r.cells[fiAt]).toBe(h(letter));
        expect(r.cells[dobyAt]).toBe(h(String(1930 + (i % 90))));
      }
    }
  });

  it('a first name of combining marks only is dropped and FI is never the hash of ""', () => {
    const r = enc.encode({ id: 'x', first: '\u{E0100}\u0301' });
    expect(r.dropped).toEqual([{ key: 'FN', reason: 'FN: no letters' }]);
    expect(r.cells[7]).toBe('');
    expect(r.cells[8]).toBe('');
  });

  it('never throws on odd rows', () => {
    const odd: unknown[] = [null, undefined, 42, 'row', [], [1, 2], new Date(), Object.create(null), { email: Symbol('x'), id: {} }];
    for (const row of odd) {
      const r = enc.encode(row as Record<string, unknown>);
      expect(r.cells).toHaveLength(enc.schema.length);
      expect(r.rejected).toBe(true);
    }
  });

  it('never puts a raw value into a reason', () => {
    const r = enc.encode({ email: 'secret.person@localhost', phone: '+1 555', first: '1234', zip: 'ZZZZZ', country: 'us' });
    for (const reason of r.reasons) expect(reason).not.toMatch(/secret|555|1234|zzzzz/i);
  });
});
