import { describe, expect, it } from 'vitest';
import { backslashLiteral, insertStatements, writtenObject } from '../../src/sources/warehouse-writes.js';

describe('INSERT statements of a bounded size', () => {
  const rows = Array.from({ length: 1000 }, (_, i) => [`key ${i}`, i, i % 2 === 0 ? null : "it's"]);

  it('cut rows into statements under the byte limit, in order, none lost', () => {
    const statements = [...insertStatements('"s"."t"', ['"k"', '"n"', '"e"'], rows, { maxBytes: 4_000, unicodeEscapes: true })];
    expect(statements.length).toBeGreaterThan(5);
    for (const s of statements) {
      expect(Buffer.byteLength(s)).toBeLessThanOrEqual(4_000);
      expect(s.startsWith('INSERT INTO "s"."t" ("k", "n", "e") VALUES\n')).toBe(true);
    }
    const tuples = statements.flatMap((s) => s.split('\n').slice(1));
    expect(tuples).toHaveLength(1000);
    expect(tuples[0]).toBe("('key 0', 0, NULL),");
    expect(tuples.at(-1)).toBe("('key 999', 999, 'it\\'s')");
  });

  it('cut at the row limit too, and put a row bigger than the limit in a statement of its own', () => {
    expect([...insertStatements('t', ['n'], rows.map((r) => [r[1]!]), { maxBytes: 1_000_000, maxRows: 300, unicodeEscapes: true })].map((s) => s.split('\n').length - 1)).toEqual([300, 300, 300, 100]);
    const big = 'x'.repeat(5_000);
    expect([...insertStatements('t', ['k'], [['a'], [big], ['b']], { maxBytes: 1_000, unicodeEscapes: true })].map((s) => s.length > 5_000)).toEqual([false, true, false]);
  });

  it('refuse a row of the wrong width and numbers that are not integers', () => {
    expect(() => [...insertStatements('t', ['a', 'b'], [['x']], { maxBytes: 1_000, unicodeEscapes: true })]).toThrow(/has 1 values where 2 columns were named/);
    expect(() => [...insertStatements('t', ['a'], [[Number.MAX_SAFE_INTEGER + 2]], { maxBytes: 1_000, unicodeEscapes: true })]).toThrow(/only integers are written/);
  });
});

describe('string literals', () => {
  it('escape quotes and backslashes with a backslash, line breaks by name, other control characters as the warehouse reads them', () => {
    expect(backslashLiteral("O'Brien \\ C:\\new", { unicodeEscapes: true })).toBe("'O\\'Brien \\\\ C:\\\\new'");
    expect(backslashLiteral('a\nb\r\tc\u0001é😀', { unicodeEscapes: true })).toBe("'a\\nb\\r\\tc\\u0001é😀'");
    expect(backslashLiteral('a\nb\u0001', { unicodeEscapes: false })).toBe("'a\\nb\u0001'");
  });
});

describe('the object a statement writes', () => {
  it('reads the table or schema of DDL and DML in each warehouse\'s quoting', () => {
    expect(writtenObject('CREATE SCHEMA IF NOT EXISTS "ANALYTICS"."AUDIENCE_SYNC"')).toEqual({ object: 'schema', conditional: true, path: ['ANALYTICS', 'AUDIENCE_SYNC'] });
    expect(writtenObject('CREATE TABLE IF NOT EXISTS `audience-test.audience_sync.t` (`k` STRING)')).toEqual({ object: 'table', conditional: true, path: ['audience-test', 'audience_sync', 't'] });
    expect(writtenObject('INSERT INTO `workspace`.`audience_sync`.`t` (`k`) VALUES (1)')).toEqual({ object: 'table', conditional: false, path: ['workspace', 'audience_sync', 't'] });
    expect(writtenObject('  -- note\nDELETE FROM "S"."T" WHERE "pk_hash" IN (SELECT 1)')).toEqual({ object: 'table', conditional: false, path: ['S', 'T'] });
    expect(writtenObject('DROP TABLE IF EXISTS t')).toEqual({ object: 'table', conditional: true, path: ['t'] });
    expect(writtenObject('SELECT * FROM t')).toBeUndefined();
    expect(writtenObject('WITH x AS (SELECT 1) SELECT * FROM x')).toBeUndefined();
  });
});
