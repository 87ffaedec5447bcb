import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
let admin: pg.Client;
let source: Source;

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function readAll(stream: AsyncIterable<Row[]>, chunkRows?: number): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) {
    if (chunkRows !== undefined) expect(chunk.length).toBeLessThanOrEqual(chunkRows);
    rows.push(...chunk);
  }
  return rows;
}

beforeAll(async () => {
  server = await startPostgres();
  admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query(`
    create table typed (id int, big bigint, small_big bigint, name text, birth date, seen timestamp, seen_tz timestamptz,
      amount numeric(10,2), huge numeric(38,10), active boolean, score float8, nothing text, device uuid, doc jsonb, tags int[]);
    insert into typed values
      (1, 9007199254740993, 42, 'Ann', '1985-03-07', '2024-01-15 12:34:56.789123', '2024-01-15 12:34:56.5+02', 1234.50,
       12345678901234567890.0123456789, true, 2.5, null, 'aece52e7-03ee-455a-b3c4-e57283966239', '{"a": 1}', '{1,2}'),
      (2, -5, null, 'Zoë', 'infinity', null, null, null, null, false, null, null, null, null, null);
    create table users as select i as user_id, 'user' || i || '@example.com' as email from generate_series(0, 99999) i;
    create table keys (k text);
    insert into keys values ('b'), ('B'), ('a'), ('é'), ('z'), ('😀'), ('${'\uFFFD'}'), ('10'), ('9'), (null);
  `);
  source = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
});

afterAll(async () => {
  await source?.close();
  await admin?.end();
  await server?.stop();
});

describe('PostgreSQL source', () => {
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
        seen_tz: new Date('2024-01-15T10:34:56.500Z'),
        amount: 1234.5,
        huge: '12345678901234567890.0123456789',
        active: true,
        score: 2.5,
        nothing: null,
        device: 'aece52e7-03ee-455a-b3c4-e57283966239',
        doc: '{"a": 1}',
        tags: '{1,2}',
      },
      { id: 2, big: -5, small_big: null, name: 'Zoë', birth: 'infinity', seen: null, seen_tz: null, amount: null, huge: null, active: false, score: null, nothing: null, device: null, doc: null, tags: null },
    ]);
  });

  it('describes the model columns without reading rows', async () => {
    expect(await source.columns('select id, name, amount, birth, seen_tz from typed')).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'name', type: 'text' },
      { name: 'amount', type: 'numeric(10,2)' },
      { name: 'birth', type: 'date' },
      { name: 'seen_tz', type: 'timestamp with time zone' },
    ]);
    expect(await source.columns('select user_id, 1 / (user_id - user_id) as broken from users')).toEqual([
      { name: 'user_id', type: 'integer' },
      { name: 'broken', type: 'integer' },
    ]);
  });

  it('streams 100,000 rows through a cursor, ordered by the key text in byte order', async () => {
    const rows = await readAll(source.stream('select * from users;', { chunkRows: 7_000, orderByKey: 'user_id', columns: ['email'] }), 7_000);
    expect(rows).toHaveLength(100_000);
    expect(Object.keys(rows[0]!)).toEqual(['email', '__pk']);
    const pks = rows.map((r) => r.__pk as string);
    expect(pks.slice(0, 4)).toEqual(['0', '1', '10', '100']);
    for (let i = 1; i < pks.length; i++) if (byBytes(pks[i - 1]!, pks[i]!) >= 0) throw new Error(`out of order at ${i}`);
    expect(rows.every((r) => r.email === `user${r.__pk as string}@example.com`)).toBe(true);
  });

  it('orders unicode keys by UTF-8 bytes with null keys last', async () => {
    const pks = (await readAll(source.stream('select k from keys', { orderByKey: 'k', chunkRows: 4 }), 4)).map((r) => r.__pk);
    const expected = ['b', 'B', 'a', 'é', 'z', '😀', '\uFFFD', '10', '9'].sort(byBytes);
    expect(pks).toEqual([...expected, null]);
  });

  it('throws SourceError with the SQL error text and stays usable afterwards', async () => {
    await expect(readAll(source.stream('select * from customers'))).rejects.toThrow(/source "crm": PostgreSQL could not run the model: relation "customers" does not exist/);
    await expect(source.columns('selec 1')).rejects.toThrow(SourceError);
    await expect(readAll(source.stream('select user_id, 1 / (99999 - user_id) as v from users order by user_id', { chunkRows: 1_000 }))).rejects.toThrow(
      /failed while reading the model: division by zero/,
    );
    expect(await readAll(source.stream('select count(*)::int as n from users'))).toEqual([{ n: 100_000 }]);
  });

  it('ends a stream early without leaving its transaction open', async () => {
    for await (const chunk of source.stream('select * from users', { chunkRows: 10 })) {
      expect(chunk).toHaveLength(10);
      break;
    }
    expect(await readAll(source.stream('select 1 as one'))).toEqual([{ one: 1 }]);
  });

  it('throws SourceError when the connection is lost mid-stream', async () => {
    const doomed = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
    const seen: number[] = [];
    const reading = (async () => {
      for await (const chunk of doomed.stream('select * from users', { chunkRows: 1_000, orderByKey: 'user_id' })) {
        seen.push(chunk.length);
        if (seen.length === 2) {
          await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'audience-sync source' and pid <> pg_backend_pid()`);
        }
      }
    })();
    await expect(reading).rejects.toThrow(/source "crm": lost the connection to PostgreSQL at 127\.0\.0\.1:\d+\/postgres/);
    expect(seen.length).toBeLessThan(100);
    await expect(readAll(doomed.stream('select 1'))).rejects.toThrow(SourceError);
    await doomed.close();
    // The shared source was terminated too; reopen it for any later test.
    await source.close();
    source = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
  });

  it('fails to open with a message that hides the password', async () => {
    const url = `postgres://postgres:hunter2@127.0.0.1:${server.port}/no_such_db`;
    const error = await openSource({ type: 'postgres', url }, { name: 'crm' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(/cannot connect to PostgreSQL at 127\.0\.0\.1:\d+\/no_such_db: .*no_such_db/);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
