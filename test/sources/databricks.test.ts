import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { startDatabricksServer, type DatabricksServer } from '../support/databricks-server.js';

const ROWS = 12_345;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

async function readAll(stream: AsyncIterable<Row[]>, chunkRows?: number): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) {
    if (chunkRows !== undefined) expect(chunk.length).toBeLessThanOrEqual(chunkRows);
    rows.push(...chunk);
  }
  return rows;
}

let server: DatabricksServer;
let source: Source;

beforeAll(async () => {
  server = await startDatabricksServer({ rowsPerChunk: 1_000 });
  await server.exec(`
    create table typed (id integer, big bigint, huge hugeint, amount decimal(10,2), score double, active boolean, name varchar,
      birth date, seen timestamp, seen_tz timestamptz, tags integer[], attrs struct(a integer, b varchar), props map(varchar, integer));
    insert into typed values
      (1, 9007199254740993, 12345678901234567890123456789, 1234.50, 2.5, true, 'Ann', '1985-03-07', '2024-01-15 12:34:56.789123', '2024-01-15 12:34:56.5+02',
       [1, 2], {'a': 1, 'b': 'x'}, map {'k': 3}),
      (2, -5, 7, null, null, false, null, '1969-12-31', null, null, null, null, null);
    create table users as select i as user_id, 'user' || i || '@example.com' as email from range(${ROWS}) t(i);
    create table empty_users (user_id integer, email varchar);
  `);
  source = await openSource(server.sourceConfig(), { name: 'dbx' });
});

afterAll(async () => {
  await source?.close();
  await server?.stop();
});

describe('Databricks source', () => {
  it('maps Databricks types to plain JS, ids without losing digits', async () => {
    const rows = await readAll(source.stream('select * from typed order by id'));
    expect(rows).toEqual([
      {
        id: 1,
        big: '9007199254740993',
        huge: '12345678901234567890123456789',
        amount: 1234.5,
        score: 2.5,
        active: true,
        name: 'Ann',
        birth: new Date('1985-03-07T00:00:00Z'),
        seen: new Date('2024-01-15T12:34:56.789Z'),
        seen_tz: new Date('2024-01-15T10:34:56.500Z'),
        tags: [1, 2],
        attrs: { a: 1, b: 'x' },
        props: { k: 3 },
      },
      { id: 2, big: -5, huge: 7, amount: null, score: null, active: false, name: null, birth: new Date('1969-12-31T00:00:00Z'), seen: null, seen_tz: null, tags: null, attrs: null, props: null },
    ]);
  });

  it('describes the model without reading rows', async () => {
    expect(await source.columns('select user_id, email, 1.5::decimal(4,1) as ratio from users')).toEqual([
      { name: 'user_id', type: 'BIGINT' },
      { name: 'email', type: 'STRING' },
      { name: 'ratio', type: 'DECIMAL(4,1)' },
    ]);
    const submitted = server.submissions.at(-1)!;
    expect(submitted).toMatchObject({ disposition: 'INLINE', format: 'JSON_ARRAY', warehouse_id: server.warehouseId, catalog: server.catalog, schema: server.schema });
    expect(submitted.statement).toMatch(/\) AS `audience_sync_model` LIMIT 0$/);
  });

  for (const disposition of ['EXTERNAL_LINKS', 'INLINE'] as const) {
    it(`streams ${ROWS.toLocaleString('en-US')} rows in key-hash order from ${disposition} chunks, each fetched only when consumed`, async () => {
      const s = await openSource(server.sourceConfig(disposition), { name: 'dbx' });
      const counted = () => (server.requests.get('chunk') ?? 0) + (server.requests.get('link') ?? 0);
      const before = counted();
      const stream = s.stream('select user_id, email from users', { columns: ['EMAIL', 'user_id'], orderByKey: 'USER_ID', keyForm: 'sha256', chunkRows: 700 })[Symbol.asyncIterator]();
      const first = await stream.next();
      expect(first.value).toHaveLength(700);
      expect(counted() - before).toBeLessThanOrEqual(2);
      const rows: Row[] = [...(first.value as Row[])];
      for (let next = await stream.next(); !next.done; next = await stream.next()) {
        expect(next.value.length).toBeLessThanOrEqual(700);
        rows.push(...next.value);
      }
      expect(rows).toHaveLength(ROWS);
      // Rows are keyed by the names the config used; Databricks matches names ignoring case.
      expect(Object.keys(rows[0]!)).toEqual(['EMAIL', 'user_id', '__pk']);
      expect(rows.map((r) => r.__pk)).toEqual(Array.from({ length: ROWS }, (_, i) => sha(String(i))).sort());
      expect(rows.every((r) => r.__pk === sha(String(r.user_id)) && r.EMAIL === `user${String(r.user_id)}@example.com`)).toBe(true);
      expect(server.submissions.at(-1)).toMatchObject({ disposition, wait_timeout: '0s', on_wait_timeout: 'CONTINUE' });
      expect(server.submissions.at(-1)!.statement).toContain('sha2(cast(`user_id` as string), 256)');
      // External links are fetched with their own credential, never the Databricks token.
      expect(server.linkAuthorizations).toEqual([]);
      await s.close();
    });
  }

  it('reads an empty model as no rows', async () => {
    expect(await readAll(source.stream('select * from empty_users', { columns: ['user_id'], orderByKey: 'user_id', keyForm: 'sha256' }))).toEqual([]);
  });

  it('asks for a fresh link when an external link has expired, and fails if that one is refused too', async () => {
    const chunks = server.requests.get('chunk') ?? 0;
    server.expireNextLinks(1);
    expect(await readAll(source.stream('select * from users'))).toHaveLength(ROWS);
    // One chunk request more than the chunks after the first: the refresh of the expired link.
    expect((server.requests.get('chunk') ?? 0) - chunks).toBe(Math.ceil(ROWS / 1_000) - 1 + 1);
    server.expireNextLinks(2);
    try {
      await expect(readAll(source.stream('select * from users'))).rejects.toThrow(/cloud storage answered HTTP 403 for chunk 0 of the result/);
    } finally {
      server.expireNextLinks(0);
    }
  });

  it('fails with the grant to ask for when the principal may not read a table', async () => {
    const scoped = await startDatabricksServer();
    try {
      await scoped.exec('create table secret_people as select 1 as user_id');
      scoped.revokeGrant('secret_people');
      const s = await openSource(scoped.sourceConfig(), { name: 'dbx' });
      const error = await readAll(s.stream('select * from secret_people')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SourceError);
      expect((error as Error).message).toMatch(
        /source "dbx": Databricks could not run the model: \[INSUFFICIENT_PERMISSIONS\] Insufficient privileges: User does not have SELECT on Table 'workspace\.default\.secret_people'\..*; ask for GRANT SELECT ON TABLE workspace\.default\.secret_people TO `your user`/,
      );
      await s.close();
    } finally {
      await scoped.stop();
    }
  });

  it('fails with how to renew when the credential expired (personal access token and OAuth M2M)', async () => {
    for (const auth of ['pat', 'm2m'] as const) {
      const scoped = await startDatabricksServer({ auth });
      try {
        const s = await openSource(scoped.sourceConfig(), { name: 'dbx' });
        expect(await readAll(s.stream('select 1 as n'))).toEqual([{ n: 1 }]);
        scoped.expireCredential();
        const error = await readAll(s.stream('select 1 as n')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SourceError);
        expect((error as Error).message).toMatch(
          auth === 'pat'
            ? /Databricks did not accept the credentials: Invalid access token\. \(403\); create a new personal access token/
            : /Databricks did not issue an OAuth token for client [0-9a-f-]+: Client authentication failed; check clientId and clientSecret/,
        );
        if (auth === 'm2m') expect(scoped.requests.get('token')).toBe(2);
        await s.close();
      } finally {
        await scoped.stop();
      }
    }
  });

  it('fails when the connection is lost mid-stream, after the rows read so far', async () => {
    const scoped = await startDatabricksServer({ rowsPerChunk: 500 });
    try {
      await scoped.exec('create table users as select i as user_id from range(5000) t(i)');
      scoped.failMidStream(3);
      const s = await openSource(scoped.sourceConfig(), { name: 'dbx' });
      let seen = 0;
      const reading = (async () => {
        for await (const chunk of s.stream('select * from users', { columns: ['user_id'], orderByKey: 'user_id', keyForm: 'sha256', chunkRows: 100 })) seen += chunk.length;
      })();
      await expect(reading).rejects.toThrow(/source "dbx": lost the connection to Databricks at 127\.0\.0\.1:\d+/);
      expect(seen).toBe(1_500);
      await s.close();
    } finally {
      await scoped.stop();
    }
  });

  it('cancels the running statement when the read is aborted', async () => {
    server.slowStatements(5_000);
    try {
      const controller = new AbortController();
      const reading = readAll(source.stream('select * from users', { signal: controller.signal }));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = server.cancelled.length;
      controller.abort();
      await expect(reading).rejects.toThrow(/source "dbx": the read was stopped before the model was read to the end/);
      expect(server.cancelled.length).toBe(before + 1);
    } finally {
      server.slowStatements(0);
    }
  });

  it('retries the answers Databricks documents as transient (429, 503)', async () => {
    server.injectFailures(503, 1);
    server.injectFailures(429, 1);
    expect(await readAll(source.stream('select 2 as n'))).toEqual([{ n: 2 }]);
  });

  it('reports SQL errors with their class, keeping quoted row values out', async () => {
    await expect(readAll(source.stream('select * from customers'))).rejects.toThrow(/Databricks could not run the model: \[TABLE_OR_VIEW_NOT_FOUND\] The table or view `customers` cannot be found.*check the model's table names/);
    const error = await readAll(source.stream("select cast('bob@example.com' as integer) as n")).catch((e: unknown) => e);
    expect((error as Error).message).not.toContain('bob@example.com');
  });

  it('the test server runs DDL and DML as Databricks answers them: no columns, num_affected_rows, Spark string literals, refused writes', async () => {
    const scoped = await startDatabricksServer();
    try {
      type Answer = { status: { state: string; error?: { message: string }; sql_state?: string }; manifest?: { schema: { column_count: number; columns: Array<{ name: string; type_name: string }> } }; result?: { data_array?: string[][] } };
      const run = async (statement: string) => {
        const r = await fetch(`${scoped.url}/api/2.0/sql/statements`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${scoped.token}`, 'Content-Type': 'application/json', 'User-Agent': 'test' },
          body: JSON.stringify({ statement, warehouse_id: scoped.warehouseId, wait_timeout: '10s', disposition: 'INLINE' }),
        });
        return (await r.json()) as Answer;
      };
      const ddl = await run('CREATE SCHEMA IF NOT EXISTS `workspace`.`audience_sync`');
      expect(ddl).toMatchObject({ status: { state: 'SUCCEEDED' }, manifest: { schema: { column_count: 0, columns: [] } } });
      expect((await run('CREATE TABLE IF NOT EXISTS audience_sync.t (k STRING, n BIGINT)')).status.state).toBe('SUCCEEDED');
      const inserted = await run(String.raw`INSERT INTO workspace.audience_sync.t (k, n) VALUES ('it\'s', 1), ('it''s', 2), ('back\\slash\n', 3), ('café' ' au lait', 4), ('\%\u00e9', 5)`);
      expect(inserted.manifest?.schema.columns.map((c) => [c.name, c.type_name])).toEqual([['num_affected_rows', 'LONG'], ['num_inserted_rows', 'LONG']]);
      expect(inserted.result?.data_array).toEqual([['5', '5']]);
      // 'it''s' is two literals next to each other: 'its'. \% keeps its backslash (a LIKE pattern); \u is no escape.
      expect((await run('SELECT k FROM audience_sync.t ORDER BY n')).result?.data_array).toEqual([["it's"], ['its'], ['back\\slash\n'], ['café au lait'], ['\\%u00e9']]);
      const deleted = await run('DELETE FROM audience_sync.t WHERE n > 2');
      expect(deleted.manifest?.schema.columns.map((c) => c.name)).toEqual(['num_affected_rows']);
      expect(deleted.result?.data_array).toEqual([['3']]);
      // A schema the principal may read but not write.
      scoped.refuseWrites('audience_sync');
      expect(await run("INSERT INTO audience_sync.t (k) VALUES ('x')")).toMatchObject({
        status: { state: 'FAILED', sql_state: '42501', error: { message: "[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\nUser does not have MODIFY on Table 'workspace.audience_sync.t'. SQLSTATE: 42501" } },
      });
      expect((await run('CREATE TABLE audience_sync.u (k STRING)')).status.error?.message).toMatch(/User does not have CREATE TABLE on Schema 'workspace\.audience_sync'/);
      expect((await run('SELECT count(*) FROM audience_sync.t')).result?.data_array).toEqual([['2']]);
    } finally {
      await scoped.stop();
    }
  });

  it('asks for a token or a complete client ID and secret', () => {
    const config = (auth: string) =>
      ['version: 1', 'meta: { accessToken: t, adAccountId: "1" }', 'sources:', `  dbx: { type: databricks, host: h.cloud.databricks.com, warehouseId: w${auth} }`, 'syncs:', '  - { name: s, source: dbx, model: "select 1", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }'].join('\n');
    for (const bad of ['', ', clientId: c', ', token: t, clientId: c, clientSecret: s']) {
      expect(() => parseConfig(config(bad), '/tmp/a.yml')).toThrow(/set either token \(a personal access token\) or both clientId and clientSecret/);
    }
    expect(parseConfig(config(', clientId: c, clientSecret: s'), '/tmp/a.yml').sources.dbx).toMatchObject({ clientId: 'c', clientSecret: 's', disposition: 'EXTERNAL_LINKS' });
  });

  it('checks the warehouse for doctor, and counts the model rows', async () => {
    expect(await source.doctor('select * from users')).toEqual([
      { subject: 'sign-in', status: 'ok', message: expect.stringMatching(/signed in to 127\.0\.0\.1:\d+ as someone@example\.com; SQL warehouse a1b2c3d4e5f60718 runs statements; catalog workspace, schema default/) },
      { subject: 'rows', status: 'ok', message: `the model returns ${ROWS.toLocaleString('en-US')} rows`, rows: { rows: ROWS, estimated: false } },
    ]);
    const scoped = await startDatabricksServer();
    try {
      scoped.revokeWarehouseUsage();
      const s = await openSource(scoped.sourceConfig(), { name: 'dbx' });
      expect(await s.doctor('select * from users')).toMatchObject([{ subject: 'sign-in', status: 'fail' }]);
      await expect(readAll(s.stream('select * from users'))).rejects.toThrow(/Databricks refused the request: User is not authorized to use warehouse a1b2c3d4e5f60718\. \(PERMISSION_DENIED\); ask a workspace admin to give your user the CAN USE permission on SQL warehouse a1b2c3d4e5f60718/);
      await s.close();
    } finally {
      await scoped.stop();
    }
  });
});
