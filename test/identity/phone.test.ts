import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { getCountries, getExampleNumber } from 'libphonenumber-js/core';
import metadata from 'libphonenumber-js/min/metadata';
import examples from 'libphonenumber-js/examples.mobile.json';
import { fastPhoneNumber, normalizePhoneNumber, phoneRegion, viaLibrary } from '../../src/identity/phone.js';

const internationalize = (t: string) => (t.startsWith('00') ? '+' + t.slice(2) : t);
const REGIONS = getCountries(metadata);

describe('phone fast path agrees with libphonenumber-js', () => {
  it('every region example, national and international, in several layouts', () => {
    let checked = 0;
    for (const region of REGIONS) {
      const example = getExampleNumber(region, examples, metadata);
      if (!example) continue;
      const nat = example.formatNational();
      const intl = example.formatInternational();
      const layouts = [nat, intl, example.number, intl.replace(/ /g, '-'), nat.replace(/\D/g, ''), '00' + example.number.slice(1),
        `${example.countryCallingCode}${example.nationalNumber}`, `(${nat.slice(0, 3)}) ${nat.slice(3)}`];
      for (const text of layouts) {
        for (const def of [region, 'US', 'GB', 'DE', undefined] as const) {
          expect(normalizePhoneNumber(text, def), `${text} @${def}`).toBe(viaLibrary(internationalize(text), def));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(5000);
  });

  it('random plain-looking numbers', () => {
    const digit = fc.constantFrom(...'0123456789');
    const sep = fc.constantFrom('', '', '', ' ', '-', '.', '(', ')', '/');
    const piece = fc.tuple(digit, sep).map(([d, s]) => d + s);
    const body = fc.array(piece, { minLength: 0, maxLength: 18 }).map((a) => a.join(''));
    const lead = fc.constantFrom('', '+', '00', '+1', '+44', '+44 (0)', '+7', '+61', '+599', '+290', '011', '0', '1', '+800 ', '+262');
    fc.assert(
      fc.property(lead, body, fc.constantFrom(...REGIONS, undefined), (l, b, region) => {
        const text = l + b;
        expect(normalizePhoneNumber(text, region)).toBe(viaLibrary(internationalize(text), region));
      }),
      { numRuns: 20000 },
    );
  });

  it('the fast path decides the common layouts itself', () => {
    const cases: Array<[string, 'US' | 'GB' | 'DE' | undefined, string]> = [
      ['+1 (650) 555-1212', undefined, '16505551212'],
      ['(650) 555-1212', 'US', '16505551212'],
      ['+44 (0)20 7183 8750', undefined, '442071838750'],
      ['+44 20 7183 8750', undefined, '442071838750'],
      ['020 7183 8750', 'GB', '442071838750'],
      ['030 123456', 'DE', '4930123456'],
      ['+49 30 123456', 'US', '4930123456'],
      ['011 44 20 7183 8750', 'US', '442071838750'],
    ];
    for (const [text, region, expected] of cases) expect(fastPhoneNumber(text, region), text).toBe(expected);
  });

  it('phoneRegion accepts only regions libphonenumber knows', () => {
    expect(phoneRegion('gb')).toBe('GB');
    expect(phoneRegion('AQ')).toBeUndefined();
    expect(phoneRegion(undefined)).toBeUndefined();
  });
});
