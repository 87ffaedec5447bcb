// Dates of birth written as text are read in the sync's dateFormat; DATE and TIMESTAMP columns (JS Dates) are not
// affected by it, and nothing guesses between mdy and dmy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRecordEncoder, DATE_FORMATS, formatsAccepting, MappingError, normalizeKey, sha256Hex, type DateFormat, type MatchKey } from '../../src/identity/index.js';

const NOW = new Date('2026-06-15T12:00:00Z');
function parts(value: unknown, dateFormat?: DateFormat): Array<string | number> {
  return (['DOBY', 'DOBM', 'DOBD'] as const).map((key) => {
    const outcome = normalizeKey(key, value, { now: NOW, ...(dateFormat ? { dateFormat } : {}) });
    if (outcome.status !== 'ok') throw new Error(`${key} ${String(value)} (${dateFormat}): ${JSON.stringify(outcome)}`);
    return outcome.normalized;
  });
}
function reason(key: MatchKey, value: unknown, dateFormat?: DateFormat): string {
  const outcome = normalizeKey(key, value, { now: NOW, ...(dateFormat ? { dateFormat } : {}) });
  if (outcome.status !== 'dropped') throw new Error(`${key} ${String(value)}: expected dropped, got ${JSON.stringify(outcome)}`);
  return outcome.reason;
}

describe('dateFormat', () => {
  it('each format, with the separators / - . and space, and an optional time', () => {
    const march7 = ['1985', '03', '07'];
    expect(parts('1985-03-07')).toEqual(march7); // iso is the default
    expect(parts('1985-03-07T00:00:00Z', 'iso')).toEqual(march7);
    for (const v of ['03/07/1985', '3-7-1985', '3.7.1985', '03 07 1985', '03/07/1985 12:00 AM']) expect(parts(v, 'mdy'), v).toEqual(march7);
    for (const v of ['07/03/1985', '7.3.1985', '7-3-1985', '07 03 1985 00:00:00']) expect(parts(v, 'dmy'), v).toEqual(march7);
    for (const v of ['1985/03/07', '1985.3.7', '1985-03-07', '1985 3 7']) expect(parts(v, 'ymd'), v).toEqual(march7);
    expect(parts('19850307', 'yyyymmdd')).toEqual(march7);
    expect(parts(19850307, 'yyyymmdd')).toEqual(march7); // an integer column
  });

  it('the issue examples: 12/31/1990 with mdy and 19901231 with yyyymmdd', () => {
    expect(parts('12/31/1990', 'mdy')).toEqual(['1990', '12', '31']);
    expect(parts('31/12/1990', 'dmy')).toEqual(['1990', '12', '31']);
    expect(parts('19901231', 'yyyymmdd')).toEqual(['1990', '12', '31']);
  });

  it('never guesses: a value that does not fit the format is dropped, saying what to set', () => {
    expect(reason('DOBY', '12/31/1990')).toBe("DOBY: not a date in dateFormat iso (1985-03-07); set the sync's dateFormat to the column's: iso, mdy, dmy, ymd, yyyymmdd");
    expect(reason('DOBM', '19901231')).toMatch(/^DOBM: not a date in dateFormat iso/);
    expect(reason('DOBD', '1990-12-31', 'mdy')).toMatch(/^DOBD: not a date in dateFormat mdy \(03\/07\/1985\)/);
    // 31/12/1990 read as mdy has month 31: no such date, and the reason suggests the other order.
    expect(reason('DOBY', '31/12/1990', 'mdy')).toBe('DOBY: not a valid date in dateFormat mdy: no such month or day (is the column dmy?)');
    expect(reason('DOBM', '12/31/1990', 'dmy')).toBe('DOBM: not a valid date in dateFormat dmy: no such month or day (is the column mdy?)');
    expect(reason('DOBD', '1990-02-30')).toBe('DOBD: not a valid date in dateFormat iso: no such month or day');
    expect(reason('DOBD', '19900230', 'yyyymmdd')).toMatch(/^DOBD: not a valid date/);
    // Mixed separators and two-digit years are not dates in any format.
    expect(reason('DOBY', '12/31-1990', 'mdy')).toMatch(/^DOBY: not a date in dateFormat mdy/);
    expect(reason('DOBY', '12/31/90', 'mdy')).toMatch(/^DOBY: not a date in dateFormat mdy/);
    // Not date-like at all: the key's own reason.
    expect(reason('DOBY', 'abc', 'mdy')).toBe('DOBY: not a four-digit year');
    expect(reason('DOBM', 'Marchh', 'dmy')).toBe('DOBM: not a month (1–12 or a month name)');
  });

  it('a value that is ambiguous between mdy and dmy is read the way the format says, never swapped', () => {
    expect(parts('03/07/1985', 'mdy')).toEqual(['1985', '03', '07']);
    expect(parts('03/07/1985', 'dmy')).toEqual(['1985', '07', '03']);
  });

  it('the parts on their own keep working in every format: a year, a month number or name, a day', () => {
    for (const f of DATE_FORMATS) {
      expect(normalizeKey('DOBY', '1985', { dateFormat: f, now: NOW })).toMatchObject({ normalized: '1985' });
      expect(normalizeKey('DOBM', 'March', { dateFormat: f })).toMatchObject({ normalized: '03' });
      expect(normalizeKey('DOBM', '3', { dateFormat: f })).toMatchObject({ normalized: '03' });
      expect(normalizeKey('DOBD', 7, { dateFormat: f })).toMatchObject({ normalized: '07' });
    }
  });

  it('DATE and TIMESTAMP columns (Dates) are read as dates whatever the format', () => {
    for (const f of DATE_FORMATS) expect(parts(new Date(Date.UTC(1985, 2, 7)), f)).toEqual(['1985', '03', '07']);
  });

  it('property: a real date written in a format reads back in that format', () => {
    const date = fc.date({ min: new Date(Date.UTC(1900, 0, 1)), max: new Date(Date.UTC(2026, 0, 1)), noInvalidDate: true });
    const pad = (n: number) => String(n).padStart(2, '0');
    fc.assert(
      fc.property(date, fc.constantFrom(...DATE_FORMATS), fc.constantFrom('/', '-', '.', ' '), fc.boolean(), (d, format, sep, padded) => {
        const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
        const p = (n: number) => (padded ? pad(n) : String(n));
        const text = {
          iso: `${y}-${pad(m)}-${pad(day)}`,
          mdy: `${p(m)}${sep}${p(day)}${sep}${y}`,
          dmy: `${p(day)}${sep}${p(m)}${sep}${y}`,
          ymd: `${y}${sep}${p(m)}${sep}${p(day)}`,
          yyyymmdd: `${y}${pad(m)}${pad(day)}`,
        }[format];
        expect(parts(text, format)).toEqual([String(y), pad(m), pad(day)]);
        expect(formatsAccepting(text)).toContain(format);
      }),
      { numRuns: 2_000 },
    );
  });

  it('formatsAccepting: what plan counts per column', () => {
    expect(formatsAccepting('03/07/1985')).toEqual(['mdy', 'dmy']);
    expect(formatsAccepting('12/31/1990')).toEqual(['mdy']);
    expect(formatsAccepting('1985-03-07')).toEqual(['iso', 'ymd']);
    expect(formatsAccepting(19850307)).toEqual(['yyyymmdd']);
    expect(formatsAccepting('1985')).toEqual([]);
    expect(formatsAccepting(new Date())).toEqual([]);
    expect(formatsAccepting(null)).toEqual([]);
  });

  it('the encoder takes dateFormat from its options and refuses an unknown one', () => {
    const encoder = createRecordEncoder({ EXTERN_ID: 'id', DOBY: 'born', DOBM: 'born', DOBD: 'born' }, { dateFormat: 'dmy', now: NOW });
    expect(encoder.encode({ id: '1', born: '31.12.1990' }).cells).toEqual(['1', sha256Hex('1990'), sha256Hex('12'), sha256Hex('31')]);
    expect(() => createRecordEncoder({ EMAIL: 'e' }, { dateFormat: 'dd/mm/yyyy' as DateFormat })).toThrow(MappingError);
    expect(() => createRecordEncoder({ EMAIL: 'e' }, { dateFormat: 'dd/mm/yyyy' as DateFormat })).toThrow(/dateFormat must be one of iso, mdy, dmy, ymd, yyyymmdd/);
  });
});
