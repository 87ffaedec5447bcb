// SIGKILL with warehouse change detection: the real CLI killed mid-delivery and in the middle of
// applying its journal to the snapshot (after the old records were deleted, before the new rows
// were in); the next run loses nobody, sends nobody twice and counts nobody twice.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/index.js';
import { customers } from '../support/world.js';
import { STATE_SCHEMA, warehouseWorlds, type Warehouse, type WarehouseWorld } from '../support/warehouse-world.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const ROWS = 3000;
let world: WarehouseWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** Starts `audience-sync sync` on the world; applies the journal every `flushRows` writes. */
function startSync(w: WarehouseWorld, flushRows = 350) {
  const child = spawn(process.execPath, [CLI, 'sync', 'loyalty', '-c', w.configPath, '--quiet'], { env: { ...w.env, AUDIENCE_SYNC_SNAPSHOT_FLUSH_ROWS: String(flushRows) }, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  return { child, exited };
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** After a kill: the rerun completes the audience, resending at most what was in flight; the next one finds nothing to do. */
async function recovers(w: WarehouseWorld, membersAtKill: number): Promise<void> {
  w.emulator.control.setFaults({ rate: 0, kinds: [] });
  const rerun = await w.run();
  expect(rerun.status, rerun.error).toBe('success');
  expect(w.memberIds()).toEqual(customers(ROWS).map((c) => String(c.user_id)).sort());
  // Everything Meta acknowledged before the kill is known (from the snapshot or the journal kept for
  // it): only the batch in flight and the one whose commit overlapped it (2 × 100 rows) are sent again.
  expect(rerun.counts.unchanged).toBeGreaterThanOrEqual(membersAtKill - 200);
  expect(rerun.counts.retried).toBeLessThanOrEqual(200);
  expect(rerun.counts.added + rerun.counts.retried + rerun.counts.unchanged).toBe(ROWS);
  const settled = await w.run();
  expect(settled.counts).toMatchObject({ unchanged: ROWS, added: 0, retried: 0, delivered: 0, changeSetRows: 0 });
  expect((await w.snapshot()).filter((r) => r.status === 'synced')).toHaveLength(ROWS);
  const state = await openStateStore(`sqlite://${w.statePath}`);
  try {
    expect(await state.journalSize('loyalty')).toMatchObject({ entries: 0 });
    expect((await state.countRecords('loyalty')).total).toBe(0);
  } finally {
    await state.close();
  }
}

describe.each(['DuckDB', 'PostgreSQL'] as Warehouse[])('SIGKILL with warehouse change detection on %s', (kind) => {
  const make = warehouseWorlds(kind, `wcrash_${kind.toLowerCase()}`);

  it('a sync killed mid-delivery loses nobody and counts nobody twice', async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    world = await make.create({ sync: { batchRows: 100 } });
    const w = world;
    await w.setCustomers(customers(ROWS));
    w.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 40, seed: 3 });
    const { child, exited } = startSync(w);
    await until(() => w.emulator.control.members(w.audienceId).length >= 1200, '1200 members');
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const members = w.emulator.control.members(w.audienceId).length;
    expect(members).toBeLessThan(ROWS);
    await recovers(w, members);
  });

  it('a sync killed mid-delivery, then switched to local change detection, takes along what the killed run left to apply', async () => {
    world = await make.create({ sync: { batchRows: 100 } });
    const w = world;
    await w.setCustomers(customers(ROWS));
    w.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 40, seed: 4 });
    // No application before the kill: every write the run made is left in the journal.
    const { child, exited } = startSync(w, 1_000_000);
    await until(() => w.emulator.control.members(w.audienceId).length >= 1200, '1200 members');
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const members = w.emulator.control.members(w.audienceId).length;
    w.emulator.control.setFaults({ rate: 0, kinds: [] });
    // A plan first applies what the killed run left (as a run would): it shows only the rows Meta has not acknowledged.
    const ws = w.workspace();
    try {
      const plan = await ws.plan('loyalty');
      expect(plan.toSend).toBeLessThanOrEqual(ROWS - members + 200);
      expect(plan.counts.unchanged).toBeGreaterThanOrEqual(members - 200);
    } finally {
      await ws.close();
    }
    w.setSync({ changeDetection: 'local' });
    const rerun = await w.run();
    expect(rerun.status, rerun.error).toBe('success');
    expect(rerun.warnings.join('\n')).toMatch(/switched to local change detection/);
    expect(w.memberIds()).toEqual(customers(ROWS).map((c) => String(c.user_id)).sort());
    // Only the batch in flight and the one whose commit overlapped it come again; the rest is known.
    expect(rerun.counts.added + rerun.counts.retried).toBeLessThanOrEqual(ROWS - members + 200);
    expect(await w.hasSnapshotTable()).toBe(false);
    const settled = await w.run();
    expect(settled.counts).toMatchObject({ unchanged: ROWS, added: 0, retried: 0, delivered: 0 });
  });
});

// PostgreSQL only: a trigger holds the append after the old records were deleted.
describe('SIGKILL with warehouse change detection on PostgreSQL, inside an application of the journal', () => {
  const make = warehouseWorlds('PostgreSQL', 'wcrash_apply');

  it('a sync killed while its journal is being applied (old records deleted, new rows not yet in) loses nobody', async () => {
    world = await make.create({ sync: { batchRows: 100 } });
    const w = world;
    await w.setCustomers(customers(ROWS));
    const admin = new pg.Client({ connectionString: w.env.WAREHOUSE_URL });
    await admin.connect();
    try {
      // The snapshot made ahead of the run (as prepare would), with a trigger that holds every append for a while.
      await admin.query(`create schema ${STATE_SCHEMA}`);
      await admin.query(`create table ${STATE_SCHEMA}.audience_sync_loyalty (pk_hash text, fingerprint text, cells text, filled_mask bigint, status text, attempts bigint, last_error text)`);
      await admin.query(`create function slow_append() returns trigger language plpgsql as $$ begin perform pg_sleep(3); return null; end $$`);
      await admin.query(`create trigger slow before insert on ${STATE_SCHEMA}.audience_sync_loyalty for each statement execute function slow_append()`);
      const { child, exited } = startSync(w);
      const count = async () => Number((await admin.query(`select count(*) as n from ${STATE_SCHEMA}.audience_sync_loyalty`)).rows[0].n);
      // An application after the first: its deletes hit records an earlier one wrote (the pending intents of the batch then in flight).
      const appending = async () =>
        (await admin.query(`select 1 from pg_stat_activity where state = 'active' and query like '%INSERT INTO "${STATE_SCHEMA}"."audience_sync_loyalty" (%'`)).rowCount! > 0 && (await count()) > 0;
      await until(appending, 'an application of the journal after the first');
      // The application's transaction deleted the records it replaces; their new rows wait behind the trigger.
      const held = Number((await admin.query(`select count(*) as n from ${STATE_SCHEMA}.audience_sync_loyalty where status = 'synced'`)).rows[0].n);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      const members = w.emulator.control.members(w.audienceId).length;
      expect(members).toBeGreaterThan(held);
      await admin.query(`drop trigger slow on ${STATE_SCHEMA}.audience_sync_loyalty`);
      await recovers(w, members);
    } finally {
      await admin.end();
    }
  });
});
