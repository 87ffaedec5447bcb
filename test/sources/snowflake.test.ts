import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { parseConfig } from '../../src/config/index.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { startSnowflakeServer, type SnowflakeServer } from '../support/snowflake-server.js';

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

let server: SnowflakeServer;
let source: Source;

beforeAll(async () => {
  server = await startSnowflakeServer({ rowsPerPartition: 1_000, columnTypes: { SEEN_TZ: 'TIMESTAMP_TZ' } });
  await server.exec(`
    create table typed (id integer, big decimal(38,0), amount decimal(10,2), score double, active boolean, name varchar,
      birth date, seen timestamp, seen_ltz timestamptz, seen_tz timestamptz, at_time time, doc json, tags integer[], attrs struct(a integer, b varchar), raw blob);
    insert into typed values
      (1, 12345678901234567890123456789, 1234.50, 2.5, true, 'Ann', '1985-03-07', '2024-01-15 12:34:56.789123', '2024-01-15 12:34:56.5+02', '2024-01-15 12:34:56.5+02', '12:34:56.5',
       '{"a": 1}', [1, 2], {'a': 1, 'b': 'x'}, '\\xAB\\x01'::blob),
      (2, -5, null, null, false, null, '1969-12-31', '1969-12-31 23:59:58.5', null, null, null, null, null, null, null);
    create table users as select i as user_id, 'user' || i || '@example.com' as email from range(${ROWS}) t(i);
    create table empty_users (user_id integer, email varchar);
  `);
  source = await openSource(server.sourceConfig(), { name: 'sf' });
});

afterAll(async () => {
  await source?.close();
  await server?.stop();
});

describe('Snowflake source', () => {
  it('maps Snowflake types to plain JS, ids without losing digits', async () => {
    const rows = await readAll(source.stream('select * from typed order by id'));
    expect(rows).toEqual([
      {
        ID: 1,
        BIG: '12345678901234567890123456789',
        AMOUNT: 1234.5,
        SCORE: 2.5,
        ACTIVE: true,
        NAME: 'Ann',
        BIRTH: new Date('1985-03-07T00:00:00Z'),
        SEEN: new Date('2024-01-15T12:34:56.789Z'),
        SEEN_LTZ: new Date('2024-01-15T10:34:56.500Z'),
        SEEN_TZ: new Date('2024-01-15T10:34:56.500Z'),
        AT_TIME: '12:34:56.5',
        DOC: { a: 1 },
        TAGS: [1, 2],
        ATTRS: { a: 1, b: 'x' },
        RAW: 'AB01',
      },
      { ID: 2, BIG: -5, AMOUNT: null, SCORE: null, ACTIVE: false, NAME: null, BIRTH: new Date('1969-12-31T00:00:00Z'), SEEN: new Date('1969-12-31T23:59:58.500Z'), SEEN_LTZ: null, SEEN_TZ: null, AT_TIME: null, DOC: null, TAGS: null, ATTRS: null, RAW: null },
    ]);
  });

  it('describes the model without reading rows: unquoted names upper-case, quoted ones as written', async () => {
    const before = server.requests.get('partition') ?? 0;
    expect(await source.columns('select user_id, email as "email", 1.5::decimal(4,1) as ratio from users')).toEqual([
      { name: 'USER_ID', type: 'NUMBER(38,0)' },
      { name: 'email', type: 'VARCHAR' },
      { name: 'RATIO', type: 'NUMBER(4,1)' },
    ]);
    expect(server.requests.get('partition') ?? 0).toBe(before);
    expect(server.statements.at(-1)).toMatch(/LIMIT 0$/);
  });

  it(`streams ${ROWS.toLocaleString('en-US')} rows across partitions in key-hash order, fetching each partition only when consumed`, async () => {
    const before = server.requests.get('partition') ?? 0;
    const stream = source.stream('select user_id, email from users;', { columns: ['email', 'user_id'], orderByKey: 'user_id', keyForm: 'sha256', chunkRows: 700 })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value).toHaveLength(700);
    // Partition 0 came with the result; at most the next one was needed for the first chunk.
    expect((server.requests.get('partition') ?? 0) - before).toBeLessThanOrEqual(1);
    const rows: Row[] = [...(first.value as Row[])];
    for (let next = await stream.next(); !next.done; next = await stream.next()) {
      expect(next.value.length).toBeLessThanOrEqual(700);
      rows.push(...next.value);
    }
    expect(rows).toHaveLength(ROWS);
    expect((server.requests.get('partition') ?? 0) - before).toBe(Math.ceil(ROWS / 1_000) - 1);
    // Rows are keyed by the names the config used, although Snowflake calls the columns USER_ID and EMAIL.
    expect(Object.keys(rows[0]!)).toEqual(['email', 'user_id', '__pk']);
    const expected = Array.from({ length: ROWS }, (_, i) => sha(String(i))).sort();
    expect(rows.map((r) => r.__pk)).toEqual(expected);
    expect(rows.every((r) => r.__pk === sha(String(r.user_id)) && r.email === `user${String(r.user_id)}@example.com`)).toBe(true);
    expect(server.statements.at(-1)).toContain('SHA2(TO_VARCHAR("USER_ID"), 256)');
  });

  it('reads an empty model as no rows', async () => {
    expect(await readAll(source.stream('select * from empty_users', { columns: ['user_id', 'email'], orderByKey: 'user_id', keyForm: 'sha256' }))).toEqual([]);
  });

  it('signs each request with an RS256 JWT whose claims name the account, user and key fingerprint', async () => {
    await source.columns('select 1 as one');
    const claims = server.lastJwtClaims!;
    const qualified = `TESTORG-TESTACCOUNT.${server.user}`;
    expect(claims.sub).toBe(qualified);
    expect(claims.iss).toMatch(new RegExp(`^${qualified}\\.SHA256:[A-Za-z0-9+/]{43}=$`));
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(3600);
    expect(Math.abs((claims.iat as number) - Date.now() / 1000)).toBeLessThan(120);
  });

  it('reads the private key from privateKeyFile, and says when an encrypted key has no passphrase', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-key-'));
    writeFileSync(join(dir, 'rsa_key.p8'), server.privateKeyPem);
    const config = parseConfig(
      ['version: 1', 'meta: { accessToken: t, adAccountId: "1" }', 'sources:', '  sf:', '    type: snowflake', `    account: ${server.account}`, `    user: ${server.user}`, '    privateKeyFile: rsa_key.p8', `    url: ${server.url}`, 'syncs:', '  - { name: s, source: sf, model: "select 1", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }'].join('\n'),
      join(dir, 'audience-sync.yml'),
    );
    const fromFile = await openSource(config.sources.sf!, { name: 'sf' });
    expect(await readAll(fromFile.stream('select 7 as n'))).toEqual([{ N: 7 }]);
    await fromFile.close();
    const { createPrivateKey } = await import('node:crypto');
    const encrypted = createPrivateKey(server.privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }).toString();
    await expect(openSource({ ...server.sourceConfig(), privateKey: encrypted }, { name: 'sf' })).rejects.toThrow(/the key is encrypted: set privateKeyPassphrase/);
    const withPassphrase = await openSource({ ...server.sourceConfig(), privateKey: encrypted, privateKeyPassphrase: 'secret' }, { name: 'sf' });
    expect(await readAll(withPassphrase.stream('select 1 as n'))).toEqual([{ N: 1 }]);
    await withPassphrase.close();
  });

  it('fails with the grant to ask for when the role may not read a table, never as an empty model', async () => {
    const scoped = await startSnowflakeServer();
    try {
      await scoped.exec('create table secret_people as select 1 as user_id');
      scoped.revokeGrant('secret_people');
      const s = await openSource(scoped.sourceConfig(), { name: 'sf' });
      const error = await readAll(s.stream('select * from secret_people', { columns: ['user_id'], orderByKey: 'user_id', keyForm: 'sha256' })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SourceError);
      expect((error as Error).message).toMatch(/source "sf": Snowflake could not run the model: SQL compilation error: Object 'ANALYTICS\.PUBLIC\.SECRET_PEOPLE' does not exist or not authorized\. \(002003\); check the model's table names, or grant SELECT on ANALYTICS\.PUBLIC\.SECRET_PEOPLE to role ANALYST/);
      await s.close();
    } finally {
      await scoped.stop();
    }
  });

  it('fails with how to renew when the credential expired (key pair and programmatic access token)', async () => {
    for (const auth of ['keypair', 'pat'] as const) {
      const scoped = await startSnowflakeServer({ auth });
      try {
        const s = await openSource(scoped.sourceConfig(), { name: 'sf' });
        expect(await readAll(s.stream('select 1 as n'))).toEqual([{ N: 1 }]);
        scoped.expireCredential();
        const error = await readAll(s.stream('select 1 as n')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SourceError);
        expect((error as Error).message).toMatch(
          auth === 'keypair'
            ? /Snowflake did not accept the credentials: JWT token is invalid\. \[…?.*\] \(390144\); check that user AUDIENCE_SYNC still has this key's public key/
            : /Snowflake did not accept the credentials: Programmatic access token has expired\. \(394401\); generate a new programmatic access token for AUDIENCE_SYNC/,
        );
        await s.close();
      } finally {
        await scoped.stop();
      }
    }
  });

  it('fails when the connection is lost mid-stream, after the rows read so far', async () => {
    const scoped = await startSnowflakeServer({ rowsPerPartition: 500 });
    try {
      await scoped.exec('create table users as select i as user_id from range(5000) t(i)');
      scoped.failMidStream(3);
      const s = await openSource(scoped.sourceConfig(), { name: 'sf' });
      let seen = 0;
      const reading = (async () => {
        for await (const chunk of s.stream('select * from users', { columns: ['user_id'], orderByKey: 'user_id', keyForm: 'sha256', chunkRows: 100 })) seen += chunk.length;
      })();
      await expect(reading).rejects.toThrow(/source "sf": lost the connection to Snowflake at 127\.0\.0\.1:\d+/);
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
      await expect(reading).rejects.toThrow(/source "sf": the read was stopped before the model was read to the end/);
      expect(server.cancelled.length).toBe(before + 1);
    } finally {
      server.slowStatements(0);
    }
  });

  it('reports a statement timeout with what to change', async () => {
    server.slowStatements(3_000);
    try {
      const s = await openSource({ ...server.sourceConfig(), statementTimeoutSeconds: 1 }, { name: 'sf' });
      await expect(readAll(s.stream('select 1 as n'))).rejects.toThrow(/cancelled the model's statement when it ran past its timeout.*raise statementTimeoutSeconds/);
      await s.close();
    } finally {
      server.slowStatements(0);
    }
  });

  it('retries the answers Snowflake documents as transient (429, 503), resubmitting with the same requestId and retry=true', async () => {
    const resubmits = server.requests.get('resubmit') ?? 0;
    const submits = server.statements.length;
    server.injectFailures(503, 1);
    server.injectFailures(429, 1);
    expect(await readAll(source.stream('select 2 as n'))).toEqual([{ N: 2 }]);
    expect((server.requests.get('resubmit') ?? 0) - resubmits).toBe(2);
    expect(server.statements.length - submits).toBe(1);
  });

  it('keeps quoted row values out of SQL error messages', async () => {
    const error = await readAll(source.stream("select cast('bob@example.com' as integer) as n")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).not.toContain('bob@example.com');
    expect((error as Error).message).toMatch(/Snowflake could not run the model: .*'<redacted>'/);
  });

  it('checks the settings and grants for doctor, and counts the model rows', async () => {
    expect(await source.doctor('select * from users')).toEqual([
      { subject: 'sign-in', status: 'ok', message: expect.stringMatching(/signed in to 127\.0\.0\.1:\d+ as AUDIENCE_SYNC with role ANALYST; warehouse COMPUTE_WH, database ANALYTICS, schema PUBLIC/) },
      { subject: 'rows', status: 'ok', message: `the model returns ${ROWS.toLocaleString('en-US')} rows`, rows: { rows: ROWS, estimated: false } },
    ]);
    const scoped = await startSnowflakeServer();
    try {
      scoped.revokeWarehouseUsage();
      const s = await openSource(scoped.sourceConfig(), { name: 'sf' });
      expect(await s.doctor('select * from users')).toEqual([
        {
          subject: 'sign-in',
          status: 'fail',
          message: expect.stringMatching(/role ANALYST cannot use warehouse COMPUTE_WH: grant USAGE on warehouse COMPUTE_WH to role ANALYST/),
          fix: expect.stringMatching(/^grant USAGE on warehouse COMPUTE_WH to role ANALYST/),
        },
      ]);
      await expect(readAll(s.stream('select * from users'))).rejects.toThrow(/No active warehouse.*\(000606\); grant USAGE on warehouse COMPUTE_WH to role ANALYST/);
      await s.close();
    } finally {
      await scoped.stop();
    }
  });

  it('the test server runs DDL and DML as Snowflake answers them: status lines, row counts and stats, string escapes, the VALUES limit, refused writes', async () => {
    const scoped = await startSnowflakeServer({ auth: 'pat' });
    try {
      type Answer = { code: string; message: string; data?: string[][]; resultSetMetaData?: { rowType: Array<{ name: string; type: string }> }; stats?: Record<string, number> };
      const run = async (statement: string) => {
        const r = await fetch(`${scoped.url}/api/v2/statements`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${scoped.token}`, 'X-Snowflake-Authorization-Token-Type': 'PROGRAMMATIC_ACCESS_TOKEN', 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': 'test' },
          body: JSON.stringify({ statement }),
        });
        return { status: r.status, body: (await r.json()) as Answer };
      };
      const status = async (statement: string) => {
        const { body } = await run(statement);
        expect(body.resultSetMetaData?.rowType.map((c) => [c.name, c.type])).toEqual([['status', 'TEXT']]);
        return body.data;
      };
      expect(await status('CREATE SCHEMA IF NOT EXISTS "ANALYTICS"."AUDIENCE_SYNC"')).toEqual([['Schema AUDIENCE_SYNC successfully created.']]);
      expect(await status('CREATE SCHEMA IF NOT EXISTS audience_sync')).toEqual([['AUDIENCE_SYNC already exists, statement succeeded.']]);
      expect(await status('CREATE TABLE IF NOT EXISTS audience_sync.t (k VARCHAR, n BIGINT)')).toEqual([['Table T successfully created.']]);
      const inserted = await run(String.raw`INSERT INTO ANALYTICS.AUDIENCE_SYNC.T (k, n) VALUES ('it''s', 1), ('it\'s', 2), ('back\\slash\n', 3), ('\u00e9', 4)`);
      expect(inserted.body).toMatchObject({ data: [['4']], stats: { numRowsInserted: 4 } });
      expect(inserted.body.resultSetMetaData?.rowType.map((c) => [c.name, c.type])).toEqual([['number of rows inserted', 'FIXED']]);
      expect((await run('SELECT k FROM audience_sync.t ORDER BY n')).body.data).toEqual([["it's"], ["it's"], ['back\\slash\n'], ['é']]);
      expect((await run('DELETE FROM audience_sync.t WHERE n > 2')).body).toMatchObject({ data: [['2']], stats: { numRowsDeleted: 2 } });
      expect(await status('DROP TABLE IF EXISTS audience_sync.nope')).toEqual([['Drop statement executed successfully (NOPE already dropped).']]);
      // One VALUES clause takes at most 16,384 rows.
      const tooMany = await run(`INSERT INTO audience_sync.t (n) VALUES ${Array.from({ length: 16_385 }, (_, i) => `(${i})`).join(', ')}`);
      expect(tooMany).toMatchObject({ status: 422, body: { code: '001795', message: expect.stringMatching(/expected at most 16,384, got 16,385/) } });
      // A schema the role may read but not write.
      scoped.refuseWrites('audience_sync');
      expect(await run("INSERT INTO audience_sync.t (k) VALUES ('x')")).toMatchObject({ status: 422, body: { code: '003001', message: "SQL access control error:\nInsufficient privileges to operate on table 'T'" } });
      expect(await run('CREATE TABLE audience_sync.u (k VARCHAR)')).toMatchObject({ status: 422, body: { code: '003001', message: "SQL access control error:\nInsufficient privileges to operate on schema 'AUDIENCE_SYNC'" } });
      expect((await run('SELECT COUNT(*) FROM audience_sync.t')).body.data).toEqual([['2']]);
    } finally {
      await scoped.stop();
    }
  });

  it('asks for exactly one way to sign in', () => {
    const config = (auth: string) =>
      ['version: 1', 'meta: { accessToken: t, adAccountId: "1" }', 'sources:', `  sf: { type: snowflake, account: a, user: u${auth} }`, 'syncs:', '  - { name: s, source: sf, model: "select 1", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }'].join('\n');
    expect(() => parseConfig(config(''), '/tmp/a.yml')).toThrow(/sources\.sf.*set exactly one of privateKeyFile, privateKey \(key-pair authentication\) or token/);
    expect(() => parseConfig(config(', privateKey: k, token: t'), '/tmp/a.yml')).toThrow(/set exactly one of privateKeyFile, privateKey/);
    expect(parseConfig(config(', token: t, tokenType: OAUTH'), '/tmp/a.yml').sources.sf).toMatchObject({ token: 't', tokenType: 'OAUTH' });
  });

  it('lets a mapping say user_id for the USER_ID column (validate agrees with the read)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-ws-'));
    const yaml = [
      'version: 1',
      'state: { url: "sqlite::memory:" }',
      'meta: { accessToken: t, adAccountId: "1" }',
      'sources:',
      '  sf:',
      '    type: snowflake',
      `    account: ${server.account}`,
      `    user: ${server.user}`,
      '    privateKey: "${SF_KEY}"',
      `    url: ${server.url}`,
      'syncs:',
      '  - { name: people, source: sf, model: "select user_id, email from users", primaryKey: user_id, audience: { id: "1" }, mapping: { EMAIL: email, EXTERN_ID: user_id, PHONE: phone } }',
    ].join('\n');
    const ws = new Workspace(parseConfig(yaml, join(dir, 'audience-sync.yml'), { SF_KEY: server.privateKeyPem.replace(/\n/g, '\\n') }));
    try {
      const issues = await ws.checkSync('people');
      expect(issues).toEqual([{ path: 'syncs[0].mapping.PHONE (people)', message: expect.stringMatching(/PHONE column "phone" is not in the model's result \(columns: USER_ID, EMAIL\)/) }]);
    } finally {
      await ws.close();
    }
  });
});
