// A `plan` (or `sync`) told to stop while PostgreSQL or MariaDB is running its model must not leave
// the statement running on the server: the built CLI is sent SIGTERM mid-read, and the server's own
// process list must lose the statement.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { startMariaDb, type TestMariaDb } from '../support/mariadb.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { CLI } from './run-cli.js';

let emulator: RunningEmulator;
let postgres: TestPostgres;
let mariadb: TestMariaDb;
let dir: string;

beforeAll(async () => {
  [emulator, postgres, mariadb] = await Promise.all([startEmulator({ port: 0 }), startPostgres(), startMariaDb()]);
  dir = mkdtempSync(join(tmpdir(), 'as-sigterm-'));
  const admin = await mariadb.admin();
  try {
    await admin.query("create database shop; create user 'reader'@'%' identified by 'pw'; create table shop.people (id int, email text); grant select on shop.* to 'reader'@'%';");
    await admin.query(`insert into shop.people values ${Array.from({ length: 50 }, (_, i) => `(${i}, 'p${i}@example.com')`).join(', ')}`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    await client.query('create table people as select i as id, \'p\' || i || \'@example.com\' as email from generate_series(0, 49) i');
  } finally {
    await client.end();
  }
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([emulator?.close(), postgres?.stop(), mariadb?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A config whose model sleeps in the warehouse for every row, so its read runs for minutes. */
function writeConfig(name: string, source: Record<string, unknown>, model: string): string {
  const path = join(dir, `${name}.yml`);
  writeFileSync(
    path,
    stringify({
      version: 1,
      state: { url: `sqlite://${join(dir, `${name}.db`)}` },
      meta: { accessToken: DEFAULT_TOKEN, adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
      sources: { wh: source },
      syncs: [{ name: 'people', source: 'wh', model, primaryKey: 'id', audience: { create: { name: name } }, mapping: { EXTERN_ID: 'id', EMAIL: 'email' } }],
    }),
  );
  return path;
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopMidRead(config: string, running: () => Promise<number>): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'plan', 'people', '-c', config], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await waitFor('the model to be running on the server', async () => (await running()) > 0);
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    await waitFor('the statement to be gone from the server', async () => (await running()) === 0, 10_000);
  } finally {
    child.kill('SIGKILL');
  }
}

describe('SIGTERM while a SQL warehouse runs the model', () => {
  it('PostgreSQL: the statement is gone from pg_stat_activity', async () => {
    const config = writeConfig('pg', { type: 'postgres', url: postgres.url }, 'select id, email from people where pg_sleep(1) is not null');
    const probe = new pg.Client({ connectionString: postgres.url });
    await probe.connect();
    try {
      const running = async () =>
        Number((await probe.query<{ n: string }>("select count(*) as n from pg_stat_activity where state = 'active' and application_name = 'audience-sync source'")).rows[0]!.n);
      await stopMidRead(config, running);
    } finally {
      await probe.end();
    }
  });

  it('MariaDB: the statement is gone from the process list', async () => {
    const config = writeConfig('maria', { type: 'mysql', url: `mysql://reader:pw@127.0.0.1:${mariadb.port}/shop` }, 'select id, email from people where sleep(1) = 0');
    const admin = await mariadb.admin();
    try {
      const running = async () => {
        const [rows] = await admin.query("select count(*) as n from information_schema.processlist where command = 'Query' and info like '%sleep(1)%' and id <> connection_id()");
        return Number((rows as Array<{ n: number }>)[0]!.n);
      };
      await stopMidRead(config, running);
    } finally {
      await admin.end();
    }
  });
});
