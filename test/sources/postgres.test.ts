// What only the PostgreSQL source does; what every source does is in conformance/sources.test.ts.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let server: TestPostgres;
let admin: pg.Client;
let source: Source;

async function readAll(stream: AsyncIterable<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) rows.push(...chunk);
  return rows;
}

beforeAll(async () => {
  server = await startPostgres();
  admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query(`
    create table typed (id int, birth date, score float8, device uuid, names text[], seen timestamptz);
    insert into typed values
      (1, 'infinity', 2.5, 'aece52e7-03ee-455a-b3c4-e57283966239', '{"Ann","Bo b"}', '0050-03-01 00:00:00+00'),
      (2, '1985-03-07', null, null, null, null);
    create table users as select i as user_id, 'user' || i || '@example.com' as email from generate_series(0, 9999) i;
    create schema hidden;
    create table hidden.people (id int);
    create role reader login;
    grant select on users to reader;
  `);
  source = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
});

afterAll(async () => {
  await source?.close();
  await admin?.end();
  await server?.stop();
});

describe('PostgreSQL source', () => {
  it('reads PostgreSQL-only values: infinite dates stay text, uuids text, text arrays nested, years before 100', async () => {
    expect(await readAll(source.stream('select * from typed order by id'))).toEqual([
      { id: 1, birth: 'infinity', score: 2.5, device: 'aece52e7-03ee-455a-b3c4-e57283966239', names: ['Ann', 'Bo b'], seen: new Date('0050-03-01T00:00:00Z') },
      { id: 2, birth: new Date('1985-03-07T00:00:00Z'), score: null, device: null, names: null, seen: null },
    ]);
    expect((await source.doctor('select 1'))[0]).toMatchObject({ subject: 'sign-in', status: 'ok', message: expect.stringMatching(/^PostgreSQL 1\d.*, signed in as /) });
  });

  it('says to grant USAGE on a schema the user cannot enter', async () => {
    const reader = await openSource({ type: 'postgres', url: server.url.replace('postgres@', 'reader@') }, { name: 'crm' });
    try {
      await expect(reader.columns('select * from hidden.people')).rejects.toThrow(/permission denied for schema hidden; ask an admin to run: GRANT USAGE ON SCHEMA hidden TO reader/);
    } finally {
      await reader.close();
    }
  });

  it('names the server when the connection is lost mid-stream, and stays failed', async () => {
    const doomed = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
    const reading = (async () => {
      let chunks = 0;
      for await (const _ of doomed.stream('select * from users', { chunkRows: 1_000, orderByKey: 'user_id' })) {
        if (++chunks === 2) await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'audience-sync source' and state <> 'idle'`);
      }
    })();
    await expect(reading).rejects.toThrow(/source "crm": lost the connection to PostgreSQL at 127\.0\.0\.1:\d+\/postgres/);
    await expect(readAll(doomed.stream('select 1'))).rejects.toThrow(SourceError);
    await doomed.close();
  });

  it('fails to open with a message that hides the password', async () => {
    const url = `postgres://postgres:hunter2@127.0.0.1:${server.port}/no_such_db`;
    const error = await openSource({ type: 'postgres', url }, { name: 'crm' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(/cannot connect to PostgreSQL at 127\.0\.0\.1:\d+\/no_such_db: .*no_such_db/);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
