// Writes to a DuckDB state schema run at a low memory limit (light) and again at the source's full limit
// when that is not enough: a journal application deleting 100,000 scattered records of 8M runs out of
// memory at the light limit. DuckDB short of memory in a DELETE kept some of its deletions marked after
// the rollback, and the retry failed with "Conflict on tuple deletion" until the file was opened again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, type Source } from '../../src/sources/index.js';

const RECORDS = 8_000_000;
/** One record in 80 (by a hash of its key, so scattered through the table), as an application finds them. */
const DELETE_SCATTERED = [
  'BEGIN TRANSACTION',
  'CREATE TABLE r AS SELECT rowid AS r FROM s WHERE hash(pk_hash) % 80 = 0',
  'DELETE FROM s WHERE rowid IN (SELECT r FROM r)',
  'DROP TABLE r',
  'COMMIT',
].join(';\n');

let dir: string;
let path: string;
let source: Source | undefined;
let expected: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-light-'));
  path = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(path, { temp_directory: join(dir, 'spill') });
  const db = await instance.connect();
  try {
    await db.run(
      `CREATE TABLE s AS SELECT sha256(range::VARCHAR) AS pk_hash, 'h' || hash(range)::VARCHAR || ':' || hash(range + 1)::VARCHAR AS fingerprint, 'x' || range::VARCHAR AS cells, 7 AS filled_mask, 'synced' AS status FROM range(${RECORDS})`,
    );
    await db.run('CHECKPOINT');
    const kept = await db.runAndReadAll('SELECT COUNT(*) AS n FROM s WHERE hash(pk_hash) % 80 <> 0');
    expected = Number(kept.getRowObjects()[0]?.n);
    // The premise: at the light limit this transaction runs out of memory.
    await db.run(`SET memory_limit = '64MB'`);
    await expect(db.run(DELETE_SCATTERED)).rejects.toThrow(/out of memory/i);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}, 180_000);

afterAll(async () => {
  await source?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a light write on DuckDB that runs out of memory', () => {
  it('runs again at the full limit on the file opened again, and its deletions are made once', async () => {
    source = await openSource({ type: 'duckdb', path }, { name: 'warehouse', writable: true });
    await source.snapshot!.execute(DELETE_SCATTERED, { light: true });
    for await (const rows of source.stream('SELECT COUNT(*) AS n FROM s')) expect(Number(rows[0]?.n)).toBe(expected);
    expect(expected).toBeGreaterThan(RECORDS * 0.98);
  }, 120_000);
});
