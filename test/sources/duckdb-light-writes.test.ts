// Writes to a DuckDB state schema run at a low memory limit (light) and again at the source's full limit
// when that is not enough: a journal application's DELETE of 100,000 keys (400,000 entries) from a table of millions runs
// out of memory at the light limit. The failed attempt must end its transaction (closing its connection
// did not always: its deletions stayed marked and the retry failed with "Conflict on tuple deletion").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, type Source } from '../../src/sources/index.js';

const RECORDS = 4_000_000;
const REPLACED = 100_000;
/** Replaces every 40th record by its newest entry in `j` (four a key, as a journal's), in one transaction: the same table after each run. */
const REPLACE = [
  'BEGIN TRANSACTION',
  'DELETE FROM s WHERE pk_hash IN (SELECT pk_hash FROM j)',
  'INSERT INTO s SELECT pk_hash, fingerprint, cells FROM j WHERE seq = 3',
  'COMMIT',
].join(';\n');

let dir: string;
let path: string;
let source: Source | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-light-'));
  path = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    await db.run(`CREATE TABLE s AS SELECT sha256(range::VARCHAR) AS pk_hash, md5(range::VARCHAR) AS fingerprint, repeat('x', 100) AS cells FROM range(${RECORDS})`);
    await db.run(
      `CREATE TABLE j AS SELECT sha256((range % ${REPLACED} * 40)::VARCHAR) AS pk_hash, md5(range::VARCHAR) AS fingerprint, repeat('y', 100) AS cells, range // ${REPLACED} AS seq FROM range(${REPLACED * 4})`,
    );
    await db.run('CHECKPOINT');
    // The premise: at the light limit this transaction runs out of memory.
    await db.run(`SET memory_limit = '64MB'`);
    await expect(db.run(REPLACE)).rejects.toThrow(/out of memory/i);
    await db.run('ROLLBACK');
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}, 120_000);

afterAll(async () => {
  await source?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function count(sql: string): Promise<number> {
  for await (const rows of source!.stream(sql)) return Number(rows[0]?.n);
  return -1;
}

describe('a light write on DuckDB that runs out of memory', () => {
  it('runs again at the full limit, ending the failed attempt first, as often as it happens', async () => {
    source = await openSource({ type: 'duckdb', path }, { name: 'warehouse', writable: true });
    // Whether the failed attempt had marked deletions when memory ran out depends on its threads: a few tries.
    for (let i = 0; i < 3; i++) await source.snapshot!.execute(REPLACE, { light: true });
    expect(await count('SELECT COUNT(*) AS n FROM s')).toBe(RECORDS);
    expect(await count(`SELECT COUNT(*) AS n FROM s WHERE cells LIKE 'y%'`)).toBe(REPLACED);
  }, 120_000);
});
