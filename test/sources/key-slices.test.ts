import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { openSource } from '../../src/sources/index.js';
import { keyRanges } from '../../src/sources/sql.js';

describe('key-hash ordered reads in slices', () => {
  it('splits the hex key space into contiguous slices that cover it', () => {
    expect(keyRanges(1)).toEqual([{ from: '000' }]);
    const slices = keyRanges(7);
    expect(slices).toHaveLength(7);
    expect(slices[0]!.from).toBe('000');
    for (let i = 1; i < slices.length; i++) expect(slices[i]!.from).toBe(slices[i - 1]!.to);
    expect(slices.at(-1)!.to).toBeUndefined();
  });

  it('streams a model too big for one sort in one global key order, nothing lost or repeated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audience-sync-slices-'));
    try {
      const path = join(dir, 'w.duckdb');
      const instance = await DuckDBInstance.create(path);
      const db = await instance.connect();
      await db.run(`create table t as select i as id, 'x' || i as v from range(1600000) r(i) union all select null, 'no key'`);
      db.closeSync();
      instance.closeSync();

      const source = await openSource({ type: 'duckdb', path });
      let previous = '';
      let count = 0;
      let nulls = 0;
      for await (const chunk of source.stream('select * from t', { orderByKey: 'id', keyForm: 'sha256', columns: ['id'], chunkRows: 50_000 })) {
        for (const row of chunk) {
          const pk = row.__pk as string | null;
          if (pk === null) {
            nulls++;
            continue;
          }
          if (nulls > 0) throw new Error('a null key came before a keyed row'); // null keys come last
          if (pk <= previous) throw new Error(`out of order: ${pk} after ${previous}`);
          previous = pk;
          count++;
        }
      }
      await source.close();
      expect(count).toBe(1_600_000);
      expect(nulls).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rows per sorted slice', () => {
  it('shrinks as the read gets wider, so one sort holds about the same number of cells', async () => {
    const { rowsPerSort } = await import('../../src/sources/duckdb.js');
    expect(rowsPerSort(8)).toBe(200_000);
    expect(rowsPerSort(16)).toBeLessThan(rowsPerSort(8) * 0.6);
    expect(rowsPerSort(undefined)).toBe(rowsPerSort(16));
    expect(rowsPerSort(100_000)).toBe(10_000);
  });
});
