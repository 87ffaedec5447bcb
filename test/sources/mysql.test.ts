// What only the MySQL source does, against a real MariaDB (test/support/mariadb.ts); what every
// source does is in conformance/sources.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/doctor/index.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { parseMySqlUrl } from '../../src/sources/mysql.js';
import { startMariaDb, type TestMariaDb } from '../support/mariadb.js';
import { createWorld, type World } from '../support/world.js';

let server: TestMariaDb;
let admin: mysql.Connection;
let dir: string;
let caFile: string;
let url: string;

async function readAll(source: Source, sql: string): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of source.stream(sql)) rows.push(...chunk);
  return rows;
}

/** Opens a source, reads one model, closes it. */
async function readWith(config: Parameters<typeof openSource>[0], sql: string): Promise<Row[]> {
  const source = await openSource(config, { name: 'shop' });
  try {
    return await readAll(source, sql);
  } finally {
    await source.close();
  }
}

const TLS_CIPHER = "select variable_value as cipher from information_schema.session_status where variable_name = 'Ssl_cipher'";

beforeAll(async () => {
  server = await startMariaDb();
  dir = mkdtempSync(join(tmpdir(), 'as-mysql-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, server.certificate);
  admin = await server.admin();
  await admin.query(`
    create database shop character set utf8mb4;
    create user 'reader'@'%' identified by 'p@ss:w/rd';
    create table shop.customers (user_id varchar(20), email text);
    insert into shop.customers values ${Array.from({ length: 25 }, (_, i) => `('u${i + 1}', 'User${i + 1}@Example.com')`).join(', ')};
    create table shop.odd (id int, flag tinyint(1), level tinyint, birth date, big bigint unsigned, ratio decimal(65,30), made year);
    insert into shop.odd values (1, 1, 7, '0000-00-00', 18446744073709551615, 0.000000000000000000000000000001, 2024), (2, 0, null, null, 3, 1.5, null);
    grant select on shop.customers to 'reader'@'%';
    grant select on shop.odd to 'reader'@'%';
  `);
  url = `mysql://reader:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${server.port}/shop`;
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('MySQL source', () => {
  it('reads MySQL-only values: TINYINT(1) as boolean, zero dates as text, unsigned BIGINTs and DECIMAL(65,30) exact', async () => {
    const source = await openSource({ type: 'mysql', url }, { name: 'shop' });
    try {
      expect(await readAll(source, 'select * from odd order by id')).toEqual([
        { id: 1, flag: true, level: 7, birth: '0000-00-00', big: '18446744073709551615', ratio: 1e-30, made: 2024 },
        { id: 2, flag: false, level: null, birth: null, big: 3, ratio: 1.5, made: null },
      ]);
      expect(await source.columns('select * from odd')).toEqual([
        { name: 'id', type: 'INT' },
        { name: 'flag', type: 'TINYINT(1)' },
        { name: 'level', type: 'TINYINT' },
        { name: 'birth', type: 'DATE' },
        { name: 'big', type: 'BIGINT UNSIGNED' },
        { name: 'ratio', type: 'DECIMAL(65,30)' },
        { name: 'made', type: 'YEAR' },
      ]);
      expect((await source.doctor('select 1'))[0]).toMatchObject({ subject: 'sign-in', status: 'ok', message: expect.stringMatching(/^MariaDB 1\d\.\d+\.\d+, signed in as `reader`@`%`$/) });
    } finally {
      await source.close();
    }
  });

  it("reads MySQL's own SQL: backslash escapes, backquotes and # comments before the trailing semicolon", async () => {
    expect(await readWith({ type: 'mysql', url }, "select 'it\\'s; -- fine' as `a;b`, \"x\" as q ; # done;")).toEqual([{ 'a;b': "it's; -- fine", q: 'x' }]);
  });

  it('speaks TLS: checked against ssl.ca, or only encrypted with ssl-mode=REQUIRED, and says what to set when the certificate is not trusted', async () => {
    const byName = url.replace('127.0.0.1', 'localhost');
    const [verified] = await readWith({ type: 'mysql', url: byName, ssl: { ca: caFile } }, TLS_CIPHER);
    expect(verified?.cipher).toMatch(/\w/);
    const [identity] = await readWith({ type: 'mysql', url: `${byName}?ssl-mode=VERIFY_IDENTITY`, ssl: { ca: caFile } }, TLS_CIPHER);
    expect(identity?.cipher).toMatch(/\w/);
    const [signed] = await readWith({ type: 'mysql', url: `${url}?ssl-mode=VERIFY_CA`, ssl: { ca: caFile } }, TLS_CIPHER);
    expect(signed?.cipher).toMatch(/\w/);
    await expect(openSource({ type: 'mysql', url, ssl: { ca: caFile } }, { name: 'shop' })).rejects.toThrow(/names the server by IP address \(127\.0\.0\.1\).*use the server's host name in the url, or add \?ssl-mode=VERIFY_CA/);
    const [encrypted] = await readWith({ type: 'mysql', url: `${url}?ssl-mode=REQUIRED` }, TLS_CIPHER);
    expect(encrypted?.cipher).toMatch(/\w/);
    const [plain] = await readWith({ type: 'mysql', url }, TLS_CIPHER);
    expect(plain?.cipher).toBe('');

    const untrusted = await openSource({ type: 'mysql', url: byName, ssl: {} }, { name: 'shop' }).catch((e: unknown) => e);
    expect(untrusted).toBeInstanceOf(SourceError);
    expect((untrusted as Error).message).toMatch(/source "shop": cannot connect to MySQL at localhost:\d+\/shop: .*certificate.*; the server's TLS certificate is not trusted: set ssl\.ca/);
    expect((untrusted as Error).message).not.toContain('p@ss');
  });

  it('refuses URLs it cannot honour, without repeating the password', () => {
    expect(parseMySqlUrl('mysql://u:p%40ss@db:3307/shop?ssl-mode=verify-ca', 'w')).toEqual({ host: 'db', port: 3307, user: 'u', password: 'p@ss', database: 'shop', sslMode: 'VERIFY_CA' });
    expect(() => parseMySqlUrl('mysql://u:secret@db/shop?ssl={"rejectUnauthorized":true}', 'w')).toThrow(/url option "ssl" is not supported; TLS settings go under ssl:/);
    expect(() => parseMySqlUrl('mysql://u:secret@db/shop?ssl-mode=maybe', 'w')).toThrow(/ssl-mode must be one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY/);
    for (const bad of ['mysql://u:secret@db/shop?ssl={}', 'mysql://u:secret@db/shop?ssl-mode=maybe']) {
      expect(() => parseMySqlUrl(bad, 'w')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('secret') }));
    }
  });

  it('reconnects when the server drops an idle connection', async () => {
    const source = await openSource({ type: 'mysql', url }, { name: 'shop' });
    try {
      expect(await readAll(source, 'select 1 as one')).toEqual([{ one: 1 }]);
      const [threads] = await admin.query<mysql.RowDataPacket[]>(`select id from information_schema.processlist where user = 'reader'`);
      for (const { id } of threads) await admin.query(`kill connection ${Number(id)}`);
      await new Promise((r) => setTimeout(r, 200));
      expect(await readAll(source, 'select 2 as two')).toEqual([{ two: 2 }]);
    } finally {
      await source.close();
    }
  });

  describe('in a sync', () => {
    let world: World;
    beforeAll(async () => {
      world = await createWorld({
        source: { type: 'mysql', url: '${SHOP_URL}', ssl: { ca: caFile } },
        env: { SHOP_URL: url.replace('127.0.0.1', 'localhost') },
        model: 'select user_id, email from customers',
        mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' },
      });
    });
    afterAll(async () => {
      await world?.close();
    });

    it('plans and runs a sync over TLS, and doctor reports the server, the rows and a missing grant', async () => {
      const ws = world.workspace();
      try {
        const plan = await ws.plan('loyalty');
        expect(plan.counts.extracted).toBe(25);
        expect(plan.toSend).toBe(25);
        expect((await ws.run('loyalty')).status).toBe('success');
        expect(world.memberIds()).toHaveLength(25);

        const healthy = await runDoctor(ws);
        expect(healthy.checks).toContainEqual(expect.objectContaining({ subject: 'source warehouse', status: 'ok', message: expect.stringMatching(/^MariaDB 1\d/) }));
        expect(healthy.checks).toContainEqual(expect.objectContaining({ subject: 'sync loyalty: rows', status: 'ok', message: 'the model returns about 25 rows (the warehouse\'s estimate)' }));

        await admin.query(`revoke select on shop.customers from 'reader'@'%'`);
        const refused = await runDoctor(ws);
        expect(refused.checks).toContainEqual(
          expect.objectContaining({
            subject: 'sync loyalty: model',
            status: 'fail',
            message: expect.stringMatching(/SELECT command denied .*; ask an admin to run: GRANT SELECT ON shop\.customers TO `reader`@`%`/),
          }),
        );
        expect(JSON.stringify(refused)).not.toContain('p@ss');
      } finally {
        await ws.close();
        await admin.query(`grant select on shop.customers to 'reader'@'%'`);
      }
    });
  });
});
