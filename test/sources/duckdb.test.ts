// What only the DuckDB source does; what every source does is in conformance/sources.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';

let dir: string;
let path: string;
let source: Source;

async function readAll(stream: AsyncIterable<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) rows.push(...chunk);
  return rows;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-'));
  path = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  await db.run(`create table typed as select * from (values
    (1, 'aece52e7-03ee-455a-b3c4-e57283966239'::uuid, 2.5::double, {'x': 1, 'y': 'b'}, 170141183460469231731687303715884105727::hugeint, time '12:34:56'),
    (2, null, null, null, -1::hugeint, null)
  ) t(id, device, score, point, huge_int, at_time)`);
  await db.run('create table users as select i as user_id from range(10) r(i)');
  db.closeSync();
  instance.closeSync();
  source = await openSource({ type: 'duckdb', path: 'warehouse.duckdb' }, { baseDir: dir, name: 'warehouse' });
});

afterAll(async () => {
  await source?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DuckDB source', () => {
  it('reads DuckDB-only types: uuid as text, structs nested, hugeints exact', async () => {
    expect(await readAll(source.stream('select * from typed order by id'))).toEqual([
      { id: 1, device: 'aece52e7-03ee-455a-b3c4-e57283966239', score: 2.5, point: { x: 1, y: 'b' }, huge_int: '170141183460469231731687303715884105727', at_time: '12:34:56' },
      { id: 2, device: null, score: null, point: null, huge_int: -1, at_time: null },
    ]);
  });

  it('opens the file read-only and refuses a missing file', async () => {
    const second = await openSource({ type: 'duckdb', path }, {});
    expect(await readAll(second.stream('select count(*) as n from users'))).toEqual([{ n: 10 }]);
    await expect(readAll(second.stream('select * from (delete from users returning *)'))).rejects.toThrow(SourceError);
    await second.close();
    await expect(openSource({ type: 'duckdb', path: join(dir, 'nope.duckdb') }, { name: 'w' })).rejects.toThrow(/does not exist/);
  });

  it('runs in memory, and refuses reads once closed', async () => {
    const memory = await openSource({ type: 'duckdb', path: ':memory:' });
    expect(await readAll(memory.stream('select 1 as a'))).toEqual([{ a: 1 }]);
    expect(await memory.doctor('select 1 as a')).toEqual([
      { subject: 'sign-in', status: 'ok', message: expect.stringMatching(/^DuckDB v\d.*, in memory$/) },
      { subject: 'rows', status: 'ok', message: 'the model returns 1 row', rows: { rows: 1, estimated: false } },
    ]);
    await memory.close();
    await expect(readAll(memory.stream('select 1'))).rejects.toThrow(/closed/);
  });

  it('reads CSV and Parquet files named relative to the config file, wherever it runs from', async () => {
    const project = mkdtempSync(join(tmpdir(), 'as-duckdb-files-'));
    try {
      writeFileSync(join(project, 'customers.csv'), 'user_id,email\n2,b@example.com\n1,a@example.com\n');
      const writer = await DuckDBInstance.create(':memory:');
      const db = await writer.connect();
      await db.run(`copy (select 3 as user_id, 'c@example.com' as email) to '${join(project, 'more.parquet')}' (format parquet)`);
      db.closeSync();
      writer.closeSync();
      writeFileSync(
        join(project, 'audience-sync.yml'),
        `version: 1
meta: { accessToken: t, adAccountId: "1" }
sources: { files: { type: duckdb, path: ":memory:" } }
syncs: [{ name: a, source: files, model: "select * from read_csv('customers.csv') union all select * from read_parquet('more.parquet')", primaryKey: user_id, audience: { id: "1" }, mapping: { EMAIL: email } }]
`,
      );
      // Loaded from elsewhere: the working directory is not the project folder.
      const config = loadConfig(join(project, 'audience-sync.yml'), {});
      const files = await openSource(config.sources.files!, { baseDir: config.baseDir, name: 'files' });
      try {
        const rows = await readAll(files.stream(config.syncs[0]!.model, { orderByKey: 'user_id' }));
        expect(rows).toEqual([
          { user_id: 1, email: 'a@example.com', __pk: '1' },
          { user_id: 2, email: 'b@example.com', __pk: '2' },
          { user_id: 3, email: 'c@example.com', __pk: '3' },
        ]);
      } finally {
        await files.close();
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
