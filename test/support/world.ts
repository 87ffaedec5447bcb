// A small, real world for engine and CLI tests: a DuckDB warehouse file, the Graph API emulator on
// 127.0.0.1, a SQLite state file and a config file pointing at all three.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { Workspace } from '../../src/app/workspace.js';
import { runCli, type CliResult } from '../cli/run-cli.js';
import { loadConfig } from '../../src/config/index.js';
import { GraphClient } from '../../src/meta/index.js';
import type { RunSummary } from '../../src/engine/index.js';

export interface Customer {
  user_id: string | number | null;
  email?: string | null;
  phone?: string | null;
  first_name?: string | null;
  country?: string | null;
  value?: number | null;
}

export const CUSTOMER_COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'country', 'value'] as const;

/** Replaces the `customers` table of a DuckDB file with these rows. */
export async function writeCustomers(path: string, rows: readonly Customer[]): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    await db.run('create or replace table customers (user_id varchar, email varchar, phone varchar, first_name varchar, country varchar, value double)');
    if (rows.length > 0) {
      const appender = await db.createAppender('customers');
      for (const r of rows) {
        for (const c of CUSTOMER_COLUMNS) {
          const v = r[c];
          if (v === null || v === undefined) appender.appendNull();
          else if (c === 'value') appender.appendDouble(Number(v));
          else appender.appendVarchar(String(v));
        }
        appender.endRow();
      }
      appender.closeSync();
    }
    await db.run('checkpoint');
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

export interface WorldOptions {
  mode?: 'upsert' | 'delete' | 'mirror' | 'replace';
  mapping?: Record<string, string>;
  sync?: Record<string, unknown>;
  model?: string;
  audience?: Record<string, unknown>;
  /** State store URL (e.g. a fresh PostgreSQL database); default a SQLite file at `statePath`. */
  stateUrl?: string;
  /** The `warehouse` source entry (default: the world's DuckDB file), and variables it reads. */
  source?: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface World {
  dir: string;
  configPath: string;
  warehouse: string;
  statePath: string;
  emulator: RunningEmulator;
  audienceId: string;
  env: NodeJS.ProcessEnv;
  setCustomers(rows: readonly Customer[]): Promise<void>;
  run(opts?: { force?: boolean }): Promise<RunSummary>;
  /** The CLI's workspace on the world's config, with short retry delays; close it after use. */
  workspace(): Workspace;
  /** EXTERN_IDs of the audience's members, sorted. */
  memberIds(): string[];
  close(): Promise<void>;
}

export async function createWorld(opts: WorldOptions = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-world-'));
  const emulator = await startEmulator({ port: 0 });
  const audienceId =
    opts.audience === undefined
      ? await createAudience(emulator.url, 'test audience')
      : '';
  const warehouse = join(dir, 'warehouse.duckdb');
  const statePath = join(dir, 'state.db');
  await writeCustomers(warehouse, []);
  const env = { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN, ...opts.env };
  const config = {
    version: 1,
    state: { url: opts.stateUrl ?? `sqlite://${statePath}` },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
    sources: { warehouse: opts.source ?? { type: 'duckdb', path: './warehouse.duckdb' } },
    syncs: [
      {
        name: 'loyalty',
        source: 'warehouse',
        model: opts.model ?? 'select * from customers',
        primaryKey: 'user_id',
        audience: opts.audience ?? { id: audienceId },
        mode: opts.mode ?? 'mirror',
        defaultPhoneCountry: 'US',
        mapping: opts.mapping ?? { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', COUNTRY: 'country' },
        ...opts.sync,
      },
    ],
  };
  const configPath = join(dir, 'audience-sync.yml');
  writeFileSync(configPath, stringify(config));

  const world: World = {
    dir,
    configPath,
    warehouse,
    statePath,
    emulator,
    audienceId,
    env,
    setCustomers: (rows) => writeCustomers(warehouse, rows),
    async run(runOpts = {}) {
      const ws = world.workspace();
      try {
        return await ws.run('loyalty', runOpts);
      } finally {
        await ws.close();
      }
    },
    workspace() {
      // Same as the CLI, but with short retry delays so fault tests don't sit in backoff.
      const config = loadConfig(configPath, env);
      const graph = new GraphClient({
        accessToken: DEFAULT_TOKEN,
        graphUrl: emulator.url,
        retry: { baseDelayMs: 5, maxDelayMs: 40 },
        maxThrottleWaitMs: 60_000,
        sleep: async (ms) => {
          // Throttle waits move the emulator's clock instead of the test's.
          emulator.control.advanceClock(ms);
          await new Promise((r) => setTimeout(r, Math.min(ms, 20)));
        },
      });
      return new Workspace(config, { graph });
    },
    memberIds() {
      return emulator.control
        .members(world.audienceId)
        .map((m) => String(m.EXTERN_ID))
        .sort();
    },
    async close() {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

async function createAudience(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v25.0/act_${DEFAULT_AD_ACCOUNT}/customaudiences`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
  });
  const body = (await res.json()) as { id: string };
  return body.id;
}

/** `count` customers with distinct, valid identifiers; ids are `u<n>`. */
export function customers(count: number, from = 0): Customer[] {
  return Array.from({ length: count }, (_, i) => customer(from + i));
}

export function customer(n: number, variant = 0): Customer {
  return {
    user_id: `u${n}`,
    email: variant === 0 ? ` User${n}@Example.com ` : `user${n}.v${variant}@example.org`,
    phone: `+1 650 ${String(2_000_000 + n)}`,
    first_name: n % 3 === 0 ? 'José' : 'Mary-Ann',
    country: 'US',
  };
}

/** Runs the built CLI on the world's config and environment; a non-zero exit is returned, not thrown. */
export function cliOn(w: World, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '-c', w.configPath], { env: w.env });
}
