// Worlds (test/support/world.ts) whose model lives in DuckDB or in PostgreSQL, for the tests of
// warehouse change detection: the snapshot table can be read straight from the warehouse, and the
// sync's settings rewritten between runs (a switch of change detection).
import { readFileSync, writeFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { parse, stringify } from 'yaml';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { GraphClient } from '../../src/meta/index.js';
import { createDatabase } from '../fleet/helpers.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { createWorld, CUSTOMER_COLUMNS, type Customer, type World, type WorldOptions } from './world.js';

export const WAREHOUSES = ['DuckDB', 'PostgreSQL'] as const;
export type Warehouse = (typeof WAREHOUSES)[number];
export const STATE_SCHEMA = 'audience_sync';

export interface SnapshotRow {
  pk: string;
  fingerprint: string;
  cells: Array<string | number> | null;
  filledMask: number;
  status: string;
  attempts: number;
  lastError: string | null;
}

export interface WarehouseWorld extends World {
  readonly warehouseKind: Warehouse;
  /** The sync's snapshot, read straight from the warehouse by key hash ([] when the table does not exist). */
  snapshot(sync?: string): Promise<SnapshotRow[]>;
  /** Whether the sync's snapshot table exists. */
  hasSnapshotTable(sync?: string): Promise<boolean>;
  /** Rewrites the sync's settings in the config file (changeDetection, maxAttempts, ...). */
  setSync(settings: Record<string, unknown>): void;
  /** A workspace like world.workspace(), applying the journal to the snapshot every `flushRows` writes. */
  workspaceWith(opts: { flushRows?: number }): Workspace;
  /** One run through workspaceWith(opts). */
  runWith(opts: { flushRows?: number; force?: boolean }): ReturnType<World['run']>;
}

/** Call inside a describe block: starts PostgreSQL for that warehouse kind; `prefix` names its databases. */
export function warehouseWorlds(kind: Warehouse, prefix: string): { create(opts?: WorldOptions & { changeDetection?: 'local' | 'warehouse' }): Promise<WarehouseWorld> } {
  let server: TestPostgres | undefined;
  let databases = 0;
  if (kind === 'PostgreSQL') {
    beforeAll(async () => {
      server = await startPostgres();
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
    });
  }
  return {
    async create(opts = {}) {
      const { changeDetection = 'warehouse', ...rest } = opts;
      const url = server ? await createDatabase(server.url, `${prefix}_${++databases}`) : undefined;
      const source = url ? { type: 'postgres', url: '${WAREHOUSE_URL}', stateSchema: STATE_SCHEMA } : { type: 'duckdb', path: './warehouse.duckdb', stateSchema: STATE_SCHEMA };
      const world = await createWorld({ ...rest, source, sync: { changeDetection, ...rest.sync }, env: { ...rest.env, ...(url ? { WAREHOUSE_URL: url } : {}) } });
      if (url) {
        world.setCustomers = (rows) => writePostgresCustomers(url, rows);
        await world.setCustomers([]);
      }
      const table = (sync: string) => `audience_sync_${sync.replace(/-/g, '_')}`;
      const workspaceWith = (o: { flushRows?: number }) => {
        const graph = new GraphClient({
          accessToken: DEFAULT_TOKEN,
          graphUrl: world.emulator.url,
          retry: { baseDelayMs: 5, maxDelayMs: 40 },
          maxThrottleWaitMs: 60_000,
          sleep: async (ms) => {
            world.emulator.control.advanceClock(ms);
            await new Promise((r) => setTimeout(r, Math.min(ms, 20)));
          },
        });
        return new Workspace(loadConfig(world.configPath, world.env), { graph, ...(o.flushRows ? { warehouse: { flushRows: o.flushRows } } : {}) });
      };
      return Object.assign(world, {
        warehouseKind: kind,
        snapshot: (sync = 'loyalty') => (url ? postgresSnapshot(url, table(sync)) : duckdbSnapshot(world.warehouse, table(sync))),
        async hasSnapshotTable(sync = 'loyalty') {
          const q = `select count(*) as n from information_schema.tables where table_schema = '${STATE_SCHEMA}' and table_name = '${table(sync)}'`;
          return Number((await query(url, world.warehouse, q))[0]?.n ?? 0) > 0;
        },
        setSync(settings: Record<string, unknown>) {
          const config = parse(readFileSync(world.configPath, 'utf8')) as { syncs: Array<Record<string, unknown>> };
          config.syncs[0] = { ...config.syncs[0], ...settings };
          writeFileSync(world.configPath, stringify(config));
        },
        workspaceWith,
        async runWith(o: { flushRows?: number; force?: boolean }) {
          const ws = workspaceWith(o);
          try {
            return await ws.run('loyalty', o.force === undefined ? {} : { force: o.force });
          } finally {
            await ws.close();
          }
        },
      });
    },
  };
}

async function writePostgresCustomers(url: string, rows: readonly Customer[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('drop table if exists customers');
    await client.query('create table customers (user_id text, email text, phone text, first_name text, country text, value double precision)');
    for (let i = 0; i < rows.length; i += 500) {
      const slice = rows.slice(i, i + 500);
      const values = slice.map((_, r) => `(${CUSTOMER_COLUMNS.map((__, c) => `$${r * CUSTOMER_COLUMNS.length + c + 1}`).join(', ')})`);
      await client.query(`insert into customers values ${values.join(', ')}`, slice.flatMap((r) => CUSTOMER_COLUMNS.map((c) => (r[c] === undefined || r[c] === null ? null : c === 'value' ? Number(r[c]) : String(r[c])))));
    }
  } finally {
    await client.end();
  }
}

async function query(url: string | undefined, duckdbPath: string, sql: string): Promise<Array<Record<string, unknown>>> {
  if (url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows as Array<Record<string, unknown>>;
    } finally {
      await client.end();
    }
  }
  const instance = await DuckDBInstance.create(duckdbPath, { access_mode: 'READ_ONLY' });
  const db = await instance.connect();
  try {
    return (await db.runAndReadAll(sql)).getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

const SNAPSHOT_QUERY = (table: string) => `select pk_hash, fingerprint, cells, filled_mask, status, attempts, last_error from ${STATE_SCHEMA}.${table} order by pk_hash`;

async function readSnapshot(url: string | undefined, duckdbPath: string, table: string): Promise<SnapshotRow[]> {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = await query(url, duckdbPath, SNAPSHOT_QUERY(table));
  } catch (e) {
    if (/does not exist|not exist|Catalog Error/i.test(String(e))) return [];
    throw e;
  }
  return rows.map((r) => ({
    pk: String(r.pk_hash),
    fingerprint: String(r.fingerprint),
    cells: r.cells === null ? null : (JSON.parse(String(r.cells)) as Array<string | number>),
    filledMask: Number(r.filled_mask),
    status: String(r.status),
    attempts: Number(r.attempts),
    lastError: r.last_error === null ? null : String(r.last_error),
  }));
}

const duckdbSnapshot = (path: string, table: string) => readSnapshot(undefined, path, table);
const postgresSnapshot = (url: string, table: string) => readSnapshot(url, '', table);
