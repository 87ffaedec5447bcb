// DuckDB spill files hold model rows, and every DuckDB instance names them the same: each run must
// spill into a private folder of its own under the workspace, gone when the run ends, and the next
// run removes what a killed run left behind.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { GraphClient } from '../../src/meta/index.js';
import { openSource } from '../../src/sources/index.js';

/** Small enough that sorting the model spills, large enough that DuckDB gets going at all. */
const MEMORY_LIMIT = '32MB';
const SPILL_FILE = /^duckdb_temp/;
const HOST = hostname().replace(/[^A-Za-z0-9.]/g, '_');

let dir: string;
let warehouse: string;
let emulator: RunningEmulator;
let rows: number;

type Seen = Map<string, { mode: number; spilled: boolean }>;

/**
 * Watches the folders under `root`: their mode and whether DuckDB spilled into them. From a worker
 * thread, so a run busy encoding rows on the main thread cannot hide a short-lived spill file.
 */
function watch(root: string): { stop(): Promise<Seen> } {
  const worker = new Worker(
    `const { parentPort, workerData: { root, pattern } } = require('node:worker_threads');
    const { existsSync, readdirSync, statSync } = require('node:fs');
    const { join } = require('node:path');
    const spill = new RegExp(pattern);
    const seen = new Map();
    const look = () => {
      for (const name of existsSync(root) ? readdirSync(root) : []) {
        try {
          const folder = join(root, name);
          const mode = statSync(folder).mode & 0o777;
          const spilled = readdirSync(folder).some((f) => spill.test(f));
          seen.set(name, { mode, spilled: spilled || (seen.get(name)?.spilled ?? false) });
        } catch {
          // removed between listing and looking, or a file
        }
      }
    };
    const timer = setInterval(look, 1);
    parentPort.once('message', () => {
      clearInterval(timer);
      look();
      parentPort.postMessage([...seen]);
    });`,
    { eval: true, workerData: { root, pattern: SPILL_FILE.source } },
  );
  return {
    async stop() {
      const result = new Promise<Seen>((resolve) => worker.once('message', (entries: Array<[string, { mode: number; spilled: boolean }]>) => resolve(new Map(entries))));
      worker.postMessage('stop');
      const seen = await result;
      await worker.terminate();
      return seen;
    },
  };
}

/**
 * How many rows make one key-ordered read spill without running out of memory. DuckDB only spills a
 * sort a little larger than its memory limit (a much larger one fails with "out of memory", and where
 * depends on its thread count), so the test finds that window on this machine and takes its middle.
 */
async function spillingRowCount(): Promise<number> {
  const spilling: number[] = [];
  for (let n = 60_000; n <= 200_000; n += 5_000) {
    const source = await openSource({ type: 'duckdb', path: warehouse, memoryLimit: MEMORY_LIMIT });
    const folder = mkdtempSync(join(dir, 'probe-'));
    const watcher = watch(dir);
    let failed = false;
    try {
      for await (const _ of source.stream(modelOf(n), { orderByKey: 'user_id', keyForm: 'sha256', columns: ['email'], tempDirectory: folder })) {
        // reading to the end
      }
    } catch {
      failed = true;
    } finally {
      const spilled = (await watcher.stop()).get(folder.slice(dir.length + 1))?.spilled;
      if (spilled && !failed) spilling.push(n);
      await source.close();
      rmSync(folder, { recursive: true, force: true });
    }
    // Out of memory: DuckDB cannot spill this much here, nor more.
    if (failed && spilling.length > 0) break;
  }
  const middle = spilling[Math.floor(spilling.length / 2)];
  if (middle === undefined) throw new Error(`no model size between 60,000 and 200,000 rows makes DuckDB spill at ${MEMORY_LIMIT} without running out of memory`);
  return middle;
}

const modelOf = (n: number) => `select * from customers where cast(user_id as integer) < ${n}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-spill-'));
  warehouse = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(warehouse);
  const db = await instance.connect();
  // Not addresses: every row is rejected, so the runs send nothing and stay quick.
  await db.run(`create table customers as select cast(i as varchar) as user_id, 'not an address ' || i || repeat('x', 100) as email from range(200000) r(i)`);
  db.closeSync();
  instance.closeSync();
  rows = await spillingRowCount();
  emulator = await startEmulator({ port: 0 });
  const config = {
    version: 1,
    state: { url: 'sqlite://./state.db' },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
    sources: { warehouse: { type: 'duckdb', path: './warehouse.duckdb', memoryLimit: MEMORY_LIMIT } },
    syncs: ['one', 'two'].map((name) => ({
      name,
      source: 'warehouse',
      model: modelOf(rows),
      primaryKey: 'user_id',
      audience: { create: { name } },
      mode: 'upsert',
      mapping: { EMAIL: 'email' },
    })),
  };
  writeFileSync(join(dir, 'audience-sync.yml'), stringify(config));
}, 120_000);

afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

function workspace(): Workspace {
  const config = loadConfig(join(dir, 'audience-sync.yml'), { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN });
  return new Workspace(config, { graph: new GraphClient({ accessToken: DEFAULT_TOKEN, graphUrl: emulator.url }) });
}

describe('run folders', () => {
  const runs = () => join(dir, '.audience-sync', 'tmp');

  it('two syncs spilling at once in one process each spill into a private folder of their own, removed after the run', async () => {
    const ws = workspace();
    const watcher = watch(runs());
    try {
      const summaries = await Promise.all([ws.run('one'), ws.run('two')]);
      expect(summaries.map((s) => [s.status, s.counts.extracted, s.error])).toEqual([
        ['success', rows, undefined],
        ['success', rows, undefined],
      ]);
    } finally {
      await ws.close();
    }
    const seen = await watcher.stop();
    const spilled = [...seen].filter(([, f]) => f.spilled);
    expect(spilled.length, `folders seen: ${JSON.stringify([...seen])}`).toBe(2);
    for (const [name, { mode }] of spilled) {
      expect(name).toMatch(new RegExp(`^run-${HOST}-${process.pid}-`));
      expect(mode.toString(8)).toBe('700');
    }
    expect(readdirSync(runs())).toEqual([]);
    expect((statSync(runs()).mode & 0o777).toString(8)).toBe('700');
  }, 120_000);

  it('a run removes the folders and spools of killed runs on this host, never those of a live process', async () => {
    const dead = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', '']);
      child.on('exit', () => resolve(child.pid!));
    });
    const killed = join(runs(), `run-${HOST}-${dead}-aB3dE9`);
    const live = join(runs(), `run-${HOST}-${process.pid}-zY8xW7`);
    const elsewhere = join(runs(), `run-other.host-${dead}-qQ1wW2`);
    for (const folder of [killed, live, elsewhere]) {
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'duckdb_temp_storage_DEFAULT-0.tmp'), 'raw rows');
    }
    const looseSpool = join(runs(), `add-${dead}-1700000000000-k3j9x1.jsonl`);
    writeFileSync(looseSpool, '{}\n');

    const ws = workspace();
    try {
      expect((await ws.run('one')).status).toBe('success');
    } finally {
      await ws.close();
    }
    expect(existsSync(killed)).toBe(false);
    expect(existsSync(looseSpool)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(elsewhere)).toBe(true);
    rmSync(live, { recursive: true });
    rmSync(elsewhere, { recursive: true });
  }, 120_000);

  it('a read outside a run spills to a private folder of the source, removed when the source closes', async () => {
    // os.tmpdir() follows TMPDIR: a folder of the test's own to look into.
    const osTmp = join(dir, 'os-tmp');
    mkdirSync(osTmp);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = osTmp;
    try {
      const source = await openSource({ type: 'duckdb', path: warehouse, memoryLimit: MEMORY_LIMIT });
      const made = readdirSync(osTmp);
      try {
        expect(made).toEqual([expect.stringMatching(/^audience-sync-duckdb-/)]);
        expect((statSync(join(osTmp, made[0]!)).mode & 0o777).toString(8)).toBe('700');
        const watcher = watch(osTmp);
        for await (const _ of source.stream(modelOf(rows), { orderByKey: 'user_id', keyForm: 'sha256', columns: ['email'] })) {
          // reading to the end
        }
        expect((await watcher.stop()).get(made[0]!)?.spilled).toBe(true);
      } finally {
        await source.close();
      }
      expect(readdirSync(osTmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  }, 60_000);
});
