// changeDetection: warehouse, end to end on a real DuckDB file and a real PostgreSQL, against the
// emulator over HTTP: the same counts and audience as local change detection, a no-change rerun
// reading nothing out of the warehouse, the journal applied to the snapshot, given-up records in
// the snapshot, switching modes without re-sending anyone, a lost state store, reset.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/index.js';
import type { RunCounts, RunSummary } from '../../src/engine/index.js';
import { customer, customers, type Customer } from '../support/world.js';
import { WAREHOUSES, warehouseWorlds, type WarehouseWorld } from '../support/warehouse-world.js';

let worlds: WarehouseWorld[] = [];
afterEach(async () => {
  for (const w of worlds) await w.close();
  worlds = [];
});

/** The counts that must not depend on where the changes were found. */
function comparable(c: RunCounts) {
  const { extracted, added, updated, deleted, unchanged, retried, rejected, rejectedByReason, delivered, failed, removedFromAudience, modelCoverage } = c;
  return { extracted, added, updated, deleted, unchanged, retried, rejected, rejectedByReason, delivered, failed, removedFromAudience, modelCoverage };
}

const ids = (rows: readonly Customer[]) => [...new Set(rows.filter((r) => r.user_id !== null).map((r) => String(r.user_id)))].sort();
const usersRequests = (w: WarehouseWorld) => w.emulator.control.requestLog().filter((e) => e.path.endsWith('/users')).length;

describe.each(WAREHOUSES)('warehouse change detection on %s', (kind) => {
  const make = warehouseWorlds(kind, `wcd_${kind.toLowerCase()}`);
  const world = async (opts: Parameters<typeof make.create>[0] = {}) => {
    const w = await make.create(opts);
    worlds.push(w);
    return w;
  };

  it('gives the counts and the audience local change detection gives, through churn, null keys and an identifier change', async () => {
    const [local, warehouse] = [await world({ changeDetection: 'local' }), await world()];
    const steps: Customer[][] = [
      [...customers(30), { ...customer(99), user_id: null }],
      [...customers(30), { ...customer(99), user_id: null }],
      // Updates (a new e-mail), departures, arrivals, an identifier changed (stale removal), a name only re-cased.
      [...customers(20).map((c, i) => (i % 4 === 0 ? customer(i, 1) : c)), ...customers(5, 40), { ...customer(7), phone: '+1 650 5550000' }, { ...customer(8), first_name: 'MARY-ANN' }],
      [...customers(20).map((c, i) => (i % 4 === 0 ? customer(i, 1) : c)), ...customers(5, 40)],
    ];
    for (const [i, model] of steps.entries()) {
      const runs: RunSummary[] = [];
      for (const w of [local, warehouse]) {
        await w.setCustomers(model);
        runs.push(await w.run());
      }
      const [l, wh] = runs as [RunSummary, RunSummary];
      expect(wh.status, `step ${i}: ${wh.error}`).toBe('success');
      expect(comparable(wh.counts), `step ${i}`).toEqual(comparable(l.counts));
      expect(warehouse.memberIds(), `step ${i}`).toEqual(local.memberIds());
      expect(warehouse.memberIds()).toEqual(ids(model));
    }
    // The snapshot holds what Meta acknowledged; our state holds no records for it.
    expect((await warehouse.snapshot()).map((r) => r.status)).toEqual(Array(25).fill('synced'));
    const state = await openStateStore(`sqlite://${warehouse.statePath}`);
    try {
      expect(await state.countRecords('loyalty')).toMatchObject({ total: 0 });
      expect(await state.journalSize('loyalty')).toEqual({ entries: 0, lastSeq: 0 });
    } finally {
      await state.close();
    }
  });

  it('a rerun without changes takes no row out of the warehouse and sends nothing', async () => {
    const w = await world();
    await w.setCustomers(customers(40));
    const first = await w.run();
    expect(first.counts).toMatchObject({ added: 40, delivered: 40, changeSetRows: 40 });
    w.emulator.control.clearRequestLog();
    const rerun = await w.run();
    expect(rerun.status).toBe('success');
    expect(rerun.counts).toMatchObject({ extracted: 40, unchanged: 40, added: 0, delivered: 0, changeSetRows: 0 });
    // The coverage safeguard still sees the whole model: from the snapshot's filled cells.
    expect(rerun.counts.modelCoverage).toEqual(first.counts.modelCoverage);
    expect(usersRequests(w)).toBe(0);
  });

  it('a key the model holds twice is rejected as in local mode, also when its snapshot record did not change', async () => {
    const [local, warehouse] = [await world({ changeDetection: 'local' }), await world()];
    const model = customers(10);
    const twice = [...model, customer(3), customer(12), customer(12, 1)];
    for (const step of [model, twice, twice, model]) {
      const runs: RunSummary[] = [];
      for (const w of [local, warehouse]) {
        await w.setCustomers(step);
        runs.push(await w.run());
      }
      const [l, wh] = runs as [RunSummary, RunSummary];
      expect(comparable(wh.counts)).toEqual(comparable(l.counts));
      expect(warehouse.memberIds()).toEqual(local.memberIds());
    }
    // u3 stayed in the audience throughout: its record was left as it was.
    expect(warehouse.memberIds()).toContain('u3');
    expect(warehouse.memberIds()).not.toContain('u12');
  });

  it('applies the journal to the snapshot as it goes and keeps failures there: retried, given up, put back in the queue', async () => {
    const w = await world({ sync: { batchRows: 5, maxAttempts: 2 } });
    await w.setCustomers(customers(23));
    // Meta refuses the rows of u4 and u17.
    w.emulator.control.setFlags({ invalidCells: ['u4', 'u17'] });
    const first = await w.runWith({ flushRows: 7 });
    expect(first.status).toBe('partial');
    const pending = (await w.snapshot()).filter((r) => r.status !== 'synced');
    expect(pending).toHaveLength(2);
    expect(pending.every((r) => r.status === 'pending' && r.attempts === 1 && /invalid/.test(r.lastError ?? ''))).toBe(true);
    const second = await w.runWith({ flushRows: 7 });
    expect(second.counts).toMatchObject({ retried: 2, failed: 2, changeSetRows: 2 });
    expect((await w.snapshot()).filter((r) => r.status === 'failed')).toHaveLength(2);

    const ws = w.workspace();
    try {
      const givenUp = await ws.givenUp('loyalty');
      expect(givenUp).toMatchObject({ count: 2, maxAttempts: 2 });
      expect(givenUp.samples.map((s) => s.externId).sort()).toEqual(['u17', 'u4']);
      expect(givenUp.reasons[0]?.reason).toMatch(/invalid/);
      w.emulator.control.setFlags({ invalidCells: [] });
      expect(await ws.retryGivenUp('loyalty')).toBe(2);
      expect((await ws.givenUp('loyalty')).count).toBe(0);
    } finally {
      await ws.close();
    }
    expect((await w.snapshot()).filter((r) => r.status === 'pending').map((r) => r.attempts)).toEqual([0, 0]);
    const third = await w.run();
    expect(third.counts).toMatchObject({ retried: 2, delivered: 2, failed: 0 });
    expect(w.memberIds()).toEqual(ids(customers(23)));
  });

  it('switching local → warehouse → local re-sends nobody and keeps the audience', async () => {
    const w = await world({ changeDetection: 'local' });
    const model = customers(30);
    await w.setCustomers(model);
    expect((await w.run()).counts.delivered).toBe(30);

    w.setSync({ changeDetection: 'warehouse' });
    w.emulator.control.clearRequestLog();
    const toWarehouse = await w.run();
    expect(toWarehouse.status).toBe('success');
    expect(toWarehouse.warnings.join('\n')).toMatch(/switched to warehouse change detection: 30 records moved/);
    // Every row is read once (the fingerprints differ), its cells found equal: state writes only.
    expect(toWarehouse.counts).toMatchObject({ changeSetRows: 30, unchanged: 30, delivered: 0 });
    expect(usersRequests(w)).toBe(0);
    expect(await w.snapshot()).toHaveLength(30);
    const again = await w.run();
    expect(again.counts).toMatchObject({ changeSetRows: 0, unchanged: 30 });

    w.setSync({ changeDetection: 'local' });
    const toLocal = await w.run();
    expect(toLocal.status).toBe('success');
    expect(toLocal.warnings.join('\n')).toMatch(/switched to local change detection: 30 records moved .* \(dropped\)/);
    expect(toLocal.counts).toMatchObject({ unchanged: 30, delivered: 0 });
    expect(usersRequests(w)).toBe(0);
    expect(await w.hasSnapshotTable()).toBe(false);
    expect(w.memberIds()).toEqual(ids(model));
    const state = await openStateStore(`sqlite://${w.statePath}`);
    try {
      expect((await state.countRecords('loyalty')).synced).toBe(30);
    } finally {
      await state.close();
    }
  });

  it('a state store lost (or new) takes up the snapshot left in the warehouse, with a warning', async () => {
    const w = await world();
    await w.setCustomers(customers(12));
    await w.run();
    rmSync(w.statePath, { force: true });
    w.emulator.control.clearRequestLog();
    const run = await w.run();
    expect(run.status).toBe('success');
    expect(run.warnings.join('\n')).toMatch(/adopted the snapshot .* \(12 records\)/);
    expect(run.counts).toMatchObject({ unchanged: 12, changeSetRows: 0 });
    expect(usersRequests(w)).toBe(0);
  });

  it('reset forgets the snapshot too: the next run sends every row again', async () => {
    const w = await world();
    await w.setCustomers(customers(6));
    await w.run();
    const ws = w.workspace();
    try {
      await ws.resetSync('loyalty');
    } finally {
      await ws.close();
    }
    expect(await w.hasSnapshotTable()).toBe(false);
    const run = await w.run();
    expect(run.counts).toMatchObject({ added: 6, delivered: 6 });
  });
});
