import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';

let dir: string;
let path: string;
let source: Source;

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function readAll(stream: AsyncIterable<Row[]>, chunkRows?: number): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) {
    if (chunkRows !== undefined) expect(chunk.length).toBeLessThanOrEqual(chunkRows);
    expect(chunk.length).toBeGreaterThan(0);
    rows.push(...chunk);
  }
  return rows;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-'));
  path = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  await db.run(`create table typed as select * from (values
    (1, 9007199254740993::bigint, 42::bigint, 'Ann', date '1985-03-07', timestamp '2024-01-15 12:34:56.789', 1234.50::decimal(10,2),
     12345678901234567890.0123456789::decimal(38,10), true, 2.5::double, null::varchar, 'aece52e7-03ee-455a-b3c4-e57283966239'::uuid, [1, 2]),
    (2, -5::bigint, null, 'Zoë', null, null, null, null, false, null, null, null, null)
  ) t(id, big, small_big, name, birth, seen, amount, huge, active, score, nothing, device, tags)`);
  await db.run(`create table users as select i as user_id, 'user' || i || '@example.com' as email, i % 7 as bucket from range(100000) r(i)`);
  await db.run(`create table keys as select * from (values ('b'), ('B'), ('a'), ('é'), ('z'), ('😀'), ('\uFFFD'), ('10'), ('9'), (null)) t(k)`);
  db.closeSync();
  instance.closeSync();
  source = await openSource({ type: 'duckdb', path: 'warehouse.duckdb' }, { baseDir: dir, name: 'warehouse' });
});

afterAll(async () => {
  await source?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DuckDB source', () => {
  it('converts typed columns to plain JS', async () => {
    const rows = await readAll(source.stream('select * from typed order by id'));
    expect(rows).toEqual([
      {
        id: 1,
        big: '9007199254740993',
        small_big: 42,
        name: 'Ann',
        birth: new Date('1985-03-07T00:00:00Z'),
        seen: new Date('2024-01-15T12:34:56.789Z'),
        amount: 1234.5,
        huge: '12345678901234567890.0123456789',
        active: true,
        score: 2.5,
        nothing: null,
        device: 'aece52e7-03ee-455a-b3c4-e57283966239',
        tags: [1, 2], // nested values stay nested, so identity can drop them with a reason
      },
      { id: 2, big: -5, small_big: null, name: 'Zoë', birth: null, seen: null, amount: null, huge: null, active: false, score: null, nothing: null, device: null, tags: null },
    ]);
  });

  it('describes the model columns without reading rows', async () => {
    expect(await source.columns('select id, name, amount, birth from typed')).toEqual([
      { name: 'id', type: 'INTEGER' },
      { name: 'name', type: 'VARCHAR' },
      { name: 'amount', type: 'DECIMAL(10,2)' },
      { name: 'birth', type: 'DATE' },
    ]);
    // Reading any row of this model would fail.
    expect(await source.columns(`select user_id, cast('x' || email as integer) as broken from users`)).toEqual([
      { name: 'user_id', type: 'BIGINT' },
      { name: 'broken', type: 'INTEGER' },
    ]);
  });

  it('streams 100,000 rows in chunks, ordered by the key text in byte order, projected', async () => {
    const started = performance.now();
    const rows = await readAll(source.stream('select * from users;  -- all of them', { chunkRows: 7_000, orderByKey: 'user_id', columns: ['user_id', 'email'] }), 7_000);
    const ms = performance.now() - started;
    expect(rows).toHaveLength(100_000);
    expect(Object.keys(rows[0]!)).toEqual(['user_id', 'email', '__pk']);
    const pks = rows.map((r) => r.__pk as string);
    expect(pks.slice(0, 4)).toEqual(['0', '1', '10', '100']);
    for (let i = 1; i < pks.length; i++) if (byBytes(pks[i - 1]!, pks[i]!) >= 0) throw new Error(`out of order at ${i}`);
    expect(rows.every((r) => r.__pk === String(r.user_id) && r.email === `user${r.user_id as number}@example.com`)).toBe(true);
    expect(ms).toBeLessThan(10_000);
  });

  it('orders unicode keys by UTF-8 bytes with null keys last', async () => {
    const pks = (await readAll(source.stream('select k from keys', { orderByKey: 'k', chunkRows: 3 }), 3)).map((r) => r.__pk);
    const expected = ['b', 'B', 'a', 'é', 'z', '😀', '\uFFFD', '10', '9'].sort(byBytes);
    expect(pks).toEqual([...expected, null]);
  });

  it('throws SourceError with the SQL error text, never an empty stream', async () => {
    await expect(readAll(source.stream('select * from customers'))).rejects.toThrow(/source "warehouse": DuckDB could not run the model: .*customers/);
    await expect(source.columns('selec 1')).rejects.toThrow(SourceError);
    await expect(readAll(source.stream('select * from users', { columns: ['missing_column'] }))).rejects.toThrow(/missing_column/);
    // Fails on a row far into an unordered (truly streamed) result, after chunks were already yielded:
    // DuckDB ends such a stream like a finished one, the source must notice.
    const late = source.stream(`select user_id, cast(case when user_id = 99999 then 'x' else '1' end as integer) as v from users`, { chunkRows: 1_000 });
    let seen = 0;
    await expect(
      (async () => {
        for await (const chunk of late) seen += chunk.length;
      })(),
    ).rejects.toThrow(/DuckDB stopped with an error after \d+ rows/);
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(100_000);
  });

  it('opens the file read-only and refuses a missing file', async () => {
    const second = await openSource({ type: 'duckdb', path }, {});
    expect(await readAll(second.stream('select count(*) as n from users'))).toEqual([{ n: 100_000 }]);
    await expect(readAll(second.stream('select * from (delete from users returning *)'))).rejects.toThrow(SourceError);
    await second.close();
    await expect(openSource({ type: 'duckdb', path: join(dir, 'nope.duckdb') }, { name: 'w' })).rejects.toThrow(/does not exist/);
  });

  it('accepts trailing semicolons and comments but refuses an empty model', async () => {
    expect(await readAll(source.stream("select ';' as s, 'a''b' as q ; ;\n-- done; really\n/* end; */"))).toEqual([{ s: ';', q: "a'b" }]);
    await expect(readAll(source.stream(' ; -- nothing'))).rejects.toThrow(/the model is empty/);
  });

  it('runs in memory', async () => {
    const memory = await openSource({ type: 'duckdb', path: ':memory:' });
    expect(await readAll(memory.stream('select 1 as a'))).toEqual([{ a: 1 }]);
    await memory.close();
    await expect(readAll(memory.stream('select 1'))).rejects.toThrow(/closed/);
  });
});
