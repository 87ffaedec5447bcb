import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { SyncBusyError } from '../../src/engine/index.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { openStateStore } from '../../src/state/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { createWorld, customers, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('engine extras', () => {
  it('refuses to start a second run of a sync while one holds its lock', async () => {
    world = await createWorld();
    await world.setCustomers(customers(5));
    const state = await openStateStore(`sqlite://${world.statePath}`);
    try {
      // A live run elsewhere (another host: its process cannot be checked, so its lock is honoured).
      expect(await state.acquireLock('loyalty', 'other-host:4242:abcd', 60_000)).toBe(true);
      await expect(world.run()).rejects.toBeInstanceOf(SyncBusyError);
      expect(world.memberIds()).toHaveLength(0);
      await state.releaseLock('loyalty', 'other-host:4242:abcd');
    } finally {
      await state.close();
    }
    const after = await world.run();
    expect(after.error).toBeUndefined();
    expect(after.status).toBe('success');
  });

  it('a model that fails while it is read sends nothing and leaves no spool files behind', async () => {
    // DESCRIBE accepts the model; the cast only fails once rows are read.
    world = await createWorld({ model: "select user_id, cast(email as integer) as email, phone, first_name, country from customers" });
    await world.setCustomers(customers(50));
    const r = await world.run();
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/DuckDB/);
    expect(world.emulator.control.requestLog().filter((e) => e.path.includes('/users'))).toHaveLength(0);
    const tmp = join(world.dir, '.audience-sync', 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });

  it('value-based audiences carry LOOKALIKE_VALUE as a number; a row without one is rejected', async () => {
    world = await createWorld({
      audience: { create: { name: 'LTV', valueBased: true } },
      mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', LOOKALIKE_VALUE: 'value' },
    });
    const rows = customers(4).map((c, i) => ({ ...c, value: i === 3 ? null : 10.5 * (i + 1) }));
    await world.setCustomers(rows);
    const r = await world.run();
    expect(r.error).toBeUndefined();
    world.audienceId = r.audienceId!;
    expect(r.counts.rejected).toBe(1);
    const members = world.emulator.control.members(world.audienceId);
    expect(members.map((m) => m.LOOKALIKE_VALUE).sort()).toEqual([10.5, 21, 31.5]);
    expect(world.emulator.control.audience(world.audienceId)?.isValueBased).toBe(true);
  });
});

describe('engine over a PostgreSQL warehouse', () => {
  let server: TestPostgres;
  let emulator: RunningEmulator;
  let dir: string;
  beforeAll(async () => {
    [server, emulator] = await Promise.all([startPostgres(), startEmulator({ port: 0 })]);
    dir = mkdtempSync(join(tmpdir(), 'audience-sync-pgsource-'));
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), emulator?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('mirrors a model read through a server-side cursor, with integer keys', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query('create table crm_users (id bigint primary key, email text, phone text, country text)');
    await client.query(
      `insert into crm_users select i, 'person' || i || '@Example.org', '+44 20 7183 ' || lpad((1000 + i)::text, 4, '0'), 'United Kingdom' from generate_series(1, 2500) i`,
    );
    const audience = await fetch(`${emulator.url}/v25.0/act_${DEFAULT_AD_ACCOUNT}/customaudiences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'crm', subtype: 'CUSTOM' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const configPath = join(dir, 'audience-sync.yml');
    writeFileSync(
      configPath,
      stringify({
        version: 1,
        state: { url: `sqlite://${join(dir, 'state.db')}` },
        meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: DEFAULT_AD_ACCOUNT, graphUrl: emulator.url },
        sources: { crm: { type: 'postgres', url: '${CRM_DATABASE_URL}' } },
        syncs: [{ name: 'crm', source: 'crm', model: 'select id, email, phone, country from crm_users', primaryKey: 'id', audience: { id: audience.id }, mode: 'mirror', mapping: { EXTERN_ID: 'id', EMAIL: 'email', PHONE: 'phone', COUNTRY: 'country' } }],
      }),
    );
    const env = { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN, CRM_DATABASE_URL: server.url };
    const run = async () => {
      const ws = new Workspace(loadConfig(configPath, env));
      try {
        return await ws.run('crm');
      } finally {
        await ws.close();
      }
    };
    const first = await run();
    expect(first.error).toBeUndefined();
    expect(first.counts).toMatchObject({ extracted: 2500, added: 2500, rejected: 0 });
    const members = emulator.control.members(audience.id);
    expect(members).toHaveLength(2500);
    // The row country drives the phone's region: a UK number, hashed in E.164 form.
    expect(members.every((m) => typeof m.PHONE === 'string' && /^[0-9a-f]{64}$/.test(m.PHONE))).toBe(true);

    await client.query('delete from crm_users where id <= 100');
    await client.query(`update crm_users set email = 'new' || id || '@example.org' where id between 101 and 150`);
    const second = await run();
    expect(second.counts).toMatchObject({ deleted: 100, updated: 50, unchanged: 2350 });
    expect(emulator.control.members(audience.id).map((m) => Number(m.EXTERN_ID)).sort((a, b) => a - b)).toEqual(Array.from({ length: 2400 }, (_, i) => i + 101));
    await client.end();
  });
});
