// The demo: the whole job on this machine with no Meta account and no network. A synthetic warehouse,
// the Graph API emulator in-process, a config written beside them, two mirror runs around a day of
// data changes, and what Meta would report about the audience afterwards.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../config/index.js';
import { Workspace } from '../app/workspace.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator } from '../emulator/index.js';
import type { EngineEvent, RunSummary } from '../engine/index.js';
import type { AudienceInfo } from '../meta/index.js';
import { changeCustomers, createSyntheticWarehouse, type CustomerChanges } from './warehouse.js';

export const DEMO_SYNC = 'demo-customers';
export const DEFAULT_DEMO_ROWS = 100_000;
export const DEFAULT_DEMO_DIR = join('.audience-sync', 'demo');

/** Files the demo writes into its folder (and removes again unless kept). */
const DEMO_FILES = ['audience-sync.yml', 'warehouse.duckdb', 'warehouse.duckdb.wal', 'state.db', 'state.db-wal', 'state.db-shm', '.audience-sync'];

export interface DemoOptions {
  rows?: number;
  /** Folder for the warehouse, config and state; default `.audience-sync/demo`. */
  dir?: string;
  /** Keep the files afterwards (they are removed by default). */
  keep?: boolean;
  seed?: number;
  /** Step-by-step narration ("creating the warehouse…"). */
  log?: (line: string) => void;
  /** Progress of each run, e.g. the CLI's progress bars. */
  progress?: (label: string) => { onEvent(e: EngineEvent): void; stop(): void };
}

/**
 * Run 2 explained: every row it sent is a removal or an add, and each has its cause. A customer whose
 * email changed is sent twice: the old email is removed first (else Meta keeps matching the person
 * by it), then the record is added with the new one.
 */
export interface SecondRunStory {
  /** Model rows: before run 2, then who left, who joined, and the count now. */
  model: { before: number; left: number; joined: number; now: number; unchanged: number; changed: number };
  removals: { total: number; departed: number; identifierChanged: number };
  adds: { total: number; joined: number; changed: number; retried: number };
  /** Rows Meta acknowledged: removals.total + adds.total. */
  sent: number;
}

export interface DemoReport {
  dir: string;
  kept: boolean;
  rows: number;
  changes: CustomerChanges;
  /** The first run (everyone added) and the run after the data changed. */
  runs: [RunSummary, RunSummary];
  /** As the Graph API reports it after the second run. */
  audience: AudienceInfo;
  /** Members the emulator holds: the model's rows that carry at least one usable identifier. */
  members: number;
  /** What run 2 sent and why, so its counts can be checked against each other. */
  secondRun: SecondRunStory;
  seconds: { warehouse: number; firstRun: number; change: number; secondRun: number; total: number };
}

/** Runs the demo end to end. Throws when a run does not succeed (the report would be misleading). */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoReport> {
  const rows = opts.rows ?? DEFAULT_DEMO_ROWS;
  if (!Number.isSafeInteger(rows) || rows < 100) throw new RangeError(`the demo needs at least 100 rows, got ${rows}`);
  const dir = resolve(opts.dir ?? DEFAULT_DEMO_DIR);
  const log = opts.log ?? (() => undefined);
  const started = performance.now();
  const lap = (() => {
    let last = started;
    return () => {
      const now = performance.now();
      const secs = (now - last) / 1000;
      last = now;
      return secs;
    };
  })();

  mkdirSync(dir, { recursive: true });
  removeDemoFiles(dir);
  const emulator = await startEmulator({ port: 0 });
  try {
    const warehouse = join(dir, 'warehouse.duckdb');
    log(`creating a DuckDB warehouse of ${rows.toLocaleString('en-US')} synthetic, messy customers in ${warehouse}`);
    await createSyntheticWarehouse(warehouse, rows, { seed: opts.seed ?? 1 });
    const warehouseSecs = lap();

    const configPath = join(dir, 'audience-sync.yml');
    writeFileSync(configPath, demoConfig(emulator.url));
    log(`Graph API emulator on ${emulator.url}; config written to ${configPath}`);
    // The token of the emulator is no secret; a real config reads it from the environment the same way.
    const env = { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN };

    const runOnce = async (label: string): Promise<{ summary: RunSummary; ws: Workspace; planned: Planned }> => {
      const ws = new Workspace(loadConfig(configPath, env));
      const progress = opts.progress?.(label);
      let planned: Planned = { toRemove: 0, toSend: 0 };
      const onEvent = (e: EngineEvent) => {
        if (e.type === 'planned') planned = { toRemove: e.toRemove, toSend: e.toSend };
        progress?.onEvent(e);
      };
      try {
        const summary = await ws.run(DEMO_SYNC, { trigger: 'demo', onEvent });
        progress?.stop();
        if (summary.status !== 'success') {
          throw new Error(`the demo's ${label} ended ${summary.status}${summary.error ? `: ${summary.error}` : ''}`);
        }
        return { summary, ws, planned };
      } catch (e) {
        progress?.stop();
        await ws.close();
        throw e;
      }
    };

    log('run 1: a mirror sync creates the audience and adds every customer with a usable identifier');
    const first = await runOnce('run 1');
    await first.ws.close(); // the warehouse file is written next: no reader may hold it open
    const firstSecs = lap();

    log('changing the data: some customers leave, some change their email, new ones arrive');
    const changes = await changeCustomers(warehouse, { seed: opts.seed ?? 1, round: 1 });
    const changeSecs = lap();

    log('run 2: the mirror sync sends only what changed');
    const second = await runOnce('run 2');
    let audience: AudienceInfo;
    try {
      const audienceId = second.summary.audienceId ?? first.summary.audienceId;
      if (!audienceId) throw new Error('the demo run reported no audience id');
      audience = await second.ws.graph().getAudience(audienceId);
    } finally {
      await second.ws.close();
    }
    const secondSecs = lap();
    const members = emulator.control.members(audience.id).length;
    return {
      dir,
      kept: opts.keep === true,
      rows,
      changes,
      runs: [first.summary, second.summary],
      audience,
      members,
      secondRun: explainSecondRun(first.summary, second.summary, second.planned),
      seconds: { warehouse: warehouseSecs, firstRun: firstSecs, change: changeSecs, secondRun: secondSecs, total: (performance.now() - started) / 1000 },
    };
  } finally {
    await emulator.close();
    if (opts.keep !== true) removeDemoFiles(dir);
  }
}

type Planned = { toRemove: number; toSend: number };

/** Run 2's counts and its plan (what it was about to send) as one story whose parts add up. */
export function explainSecondRun(first: RunSummary, second: RunSummary, planned: Planned): SecondRunStory {
  const c = second.counts;
  const departed = c.removedFromAudience;
  return {
    model: { before: first.counts.extracted, left: c.deleted, joined: c.added, now: c.extracted, unchanged: c.unchanged, changed: c.updated },
    removals: { total: planned.toRemove, departed, identifierChanged: planned.toRemove - departed },
    adds: { total: planned.toSend, joined: c.added, changed: c.updated, retried: c.retried },
    sent: c.delivered,
  };
}

/** The config the demo syncs with: one mirror sync of every customer into a new audience. */
export function demoConfig(graphUrl: string): string {
  const config = {
    version: 1,
    state: { url: 'sqlite://./state.db' },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl },
    sources: { warehouse: { type: 'duckdb', path: './warehouse.duckdb' } },
    syncs: [
      {
        name: DEMO_SYNC,
        source: 'warehouse',
        model: 'select * from customers',
        primaryKey: 'user_id',
        audience: { create: { name: 'audience-sync demo: all customers', description: 'Created by `audience-sync demo` against the emulator' } },
        mode: 'mirror',
        defaultPhoneCountry: 'US',
        mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', LN: 'last_name', CT: 'city', ZIP: 'zip', COUNTRY: 'country' },
      },
    ],
  };
  return `# Written by \`audience-sync demo\`: the Graph API emulator it points at is gone once the demo ends.\n${stringify(config)}`;
}

function removeDemoFiles(dir: string): void {
  for (const f of DEMO_FILES) rmSync(join(dir, f), { recursive: true, force: true });
}
