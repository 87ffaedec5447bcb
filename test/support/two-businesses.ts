// Two businesses in one emulator: each has its own ad account, and a token (of its own app, which
// requires appsecret_proof) that reaches only that account. A config with one connection per
// business and two syncs on each, over one DuckDB warehouse and a SQLite state file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { GraphClient } from '../../src/meta/index.js';
import { writeCustomers, type Customer } from './world.js';

export const ACME = { connection: 'acme', token: 'acme-token', appSecret: 'acme-app-secret', account: '3000000000000003' } as const;
export const GLOBEX = { connection: 'globex', token: 'globex-token', appSecret: 'globex-app-secret', account: '4000000000000004' } as const;

export interface TwoBusinesses {
  dir: string;
  configPath: string;
  emulator: RunningEmulator;
  env: NodeJS.ProcessEnv;
  /** Sync name → its audience id. */
  audiences: Record<string, string>;
  syncs: { acme: string[]; globex: string[] };
  setCustomers(rows: readonly Customer[]): Promise<void>;
  /** EXTERN_IDs of a sync's audience, sorted. */
  members(sync: string): string[];
  close(): Promise<void>;
}

/**
 * `acme` names its ad account on the connection; `globex` names it on each sync. `sync` adds settings
 * to every sync (e.g. a schedule); `connection` to both connections (e.g. an appId); `top` to the top
 * level (e.g. a PostgreSQL `state` and a `fleet` section).
 */
export async function twoBusinesses(opts: { sync?: Record<string, unknown>; connection?: Record<string, unknown>; top?: Record<string, unknown> } = {}): Promise<TwoBusinesses> {
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-two-businesses-'));
  const emulator = await startEmulator({
    port: 0,
    adAccounts: [
      { id: ACME.account, name: 'Acme' },
      { id: GLOBEX.account, name: 'Globex' },
    ],
    tokens: [ACME, GLOBEX].map((b) => ({ token: b.token, userId: `${b.account.slice(0, 4)}1`, adAccounts: [b.account], appSecret: b.appSecret, scopes: ['ads_management', 'ads_read'] })),
  });
  const audiences: Record<string, string> = {};
  const syncs = { acme: ['acme-loyal', 'acme-recent'], globex: ['globex-loyal', 'globex-recent'] };
  for (const [b, names] of [
    [ACME, syncs.acme],
    [GLOBEX, syncs.globex],
  ] as const) {
    const client = new GraphClient({ accessToken: b.token, appSecret: b.appSecret, graphUrl: emulator.url });
    for (const name of names) audiences[name] = (await client.createCustomAudience(b.account, { name })).id;
  }
  const warehouse = join(dir, 'warehouse.duckdb');
  await writeCustomers(warehouse, []);
  const sync = (name: string, extra: Record<string, unknown>) => ({
    name,
    source: 'warehouse',
    model: 'select * from customers',
    primaryKey: 'user_id',
    audience: { id: audiences[name] },
    mode: 'mirror',
    defaultPhoneCountry: 'US',
    mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' },
    ...extra,
    ...opts.sync,
  });
  const config = {
    version: 1,
    state: { url: `sqlite://${join(dir, 'state.db')}` },
    connections: {
      acme: { accessToken: '${ACME_META_TOKEN}', appSecret: ACME.appSecret, adAccountId: `act_${ACME.account}`, graphUrl: emulator.url, ...opts.connection },
      globex: { accessToken: '${GLOBEX_META_TOKEN}', appSecret: GLOBEX.appSecret, graphUrl: emulator.url, ...opts.connection },
    },
    sources: { warehouse: { type: 'duckdb', path: './warehouse.duckdb' } },
    syncs: [...syncs.acme.map((n) => sync(n, { connection: 'acme' })), ...syncs.globex.map((n) => sync(n, { connection: 'globex', adAccountId: `act_${GLOBEX.account}` }))],
    ...opts.top,
  };
  const configPath = join(dir, 'audience-sync.yml');
  writeFileSync(configPath, stringify(config));
  return {
    dir,
    configPath,
    emulator,
    env: { ...process.env, ACME_META_TOKEN: ACME.token, GLOBEX_META_TOKEN: GLOBEX.token },
    audiences,
    syncs,
    setCustomers: (rows) => writeCustomers(warehouse, rows),
    members: (name) =>
      emulator.control
        .members(audiences[name]!)
        .map((m) => String(m.EXTERN_ID))
        .sort(),
    async close() {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
