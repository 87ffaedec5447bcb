// The identifier-coverage safeguard: a model that loses an identifier for many rows (emails turned
// NULL while EXTERN_ID is still mapped) is refused instead of re-sending everyone with less.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { filledMask } from '../../src/engine/coverage.js';
import { filledMaskOf } from '../../src/state/records.js';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { createWorld, customers, type Customer, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const withoutEmail = (rows: Customer[], count: number) => rows.map((r, i) => (i < count ? { ...r, email: null } : r));
const uploads = (w: World) => w.emulator.control.requestLog().filter((e) => /\/users(replace)?$/.test(e.path));

async function plan(w: World) {
  const ws = new Workspace(loadConfig(w.configPath, w.env));
  try {
    return await ws.plan('loyalty');
  } finally {
    await ws.close();
  }
}

describe.each(['mirror', 'upsert', 'delete', 'replace'] as const)('%s: identifier coverage safeguard', (mode) => {
  it('refuses a run whose emails all turned NULL (plan says so too); --force sends it and moves the baseline', async () => {
    world = await createWorld({ mode });
    const rows = customers(100);
    await world.setCustomers(rows);
    expect((await world.run()).status).toBe('success');
    const membersBefore = world.emulator.control.members(world.audienceId);

    await world.setCustomers(withoutEmail(rows, 100));
    world.emulator.control.clearRequestLog();
    const refused = await world.run();
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/^refused: EMAIL is usable in 0\.0% of the model's rows \(0 of 100\), down from 100\.0% at the last successful run, below minCoverageRatio 50% of it; nothing was sent\..* rerun with --force or lower minCoverageRatio\.$/);
    expect(refused.counts.modelCoverage).toMatchObject({ rows: 100, usable: { EXTERN_ID: 100, EMAIL: 0, PHONE: 100 } });
    expect(uploads(world)).toHaveLength(0);
    expect(world.emulator.control.members(world.audienceId)).toEqual(membersBefore);
    expect((await plan(world)).refusal).toMatch(/^refused: EMAIL is usable in 0\.0%.*audience-sync sync loyalty --force/);

    const forced = await world.run({ force: true });
    expect(forced.status).toBe('success');
    // The refused run wrote no state: every row is still a change.
    expect(forced.counts.updated).toBe(100);
    const next = await world.run();
    expect(next.status).toBe('success');
    expect(next.error).toBeUndefined();
  });
});

describe.each(STATE_KINDS)('identifier coverage over the whole model, %s state', (kind) => {
  const state = stateWorlds(kind, 'coverage');
  const createWorldWithState = state.createWorld;

  it('counts unchanged rows from the state: a 60% loss is refused, a 30% loss is not', async () => {
    world = await createWorldWithState();
    const rows = customers(100);
    await world.setCustomers(rows);
    await world.run();

    // Only the changed rows are encoded; the 40 unchanged ones count by their stored cells.
    await world.setCustomers(withoutEmail(rows, 60));
    const refused = await world.run();
    expect(refused.counts.encoded).toBe(60);
    expect(refused.error).toMatch(/^refused: EMAIL is usable in 40\.0% of the model's rows \(40 of 100\), down from 100\.0%/);
    // The dry run encodes every row: the same whole-model figures.
    expect((await plan(world)).counts.modelCoverage).toEqual(refused.counts.modelCoverage);

    await world.setCustomers(withoutEmail(rows, 30));
    const fine = await world.run();
    expect(fine.error).toBeUndefined();
    expect(fine.status).toBe('success');
    expect(fine.counts.modelCoverage).toMatchObject({ rows: 100, usable: { EMAIL: 70, EXTERN_ID: 100 } });
    expect((await plan(world)).counts.modelCoverage).toEqual(fine.counts.modelCoverage);
  });

  it('minCoverageRatio sets the threshold; 0 turns the check off', async () => {
    world = await createWorldWithState({ sync: { minCoverageRatio: 0.9 } });
    const rows = customers(50);
    await world.setCustomers(rows);
    await world.run();
    await world.setCustomers(withoutEmail(rows, 10));
    const r = await world.run();
    expect(r.error).toMatch(/EMAIL is usable in 80\.0% .* below minCoverageRatio 90% of it/);
    await world.close();

    world = await createWorldWithState({ sync: { minCoverageRatio: 0 } });
    await world.setCustomers(rows);
    await world.run();
    await world.setCustomers(withoutEmail(rows, 50));
    expect((await world.run()).status).toBe('success');
  });
});

describe('filledMaskOf', () => {
  it('reads the same filled cells from the stored text as parsing it does (property)', () => {
    const cell = fc.oneof(fc.constant(''), fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('"', '\\', '\\"', ',', '],', '""'), fc.double({ noNaN: true, noDefaultInfinity: true, min: 0 }), fc.integer({ min: 0 }));
    fc.assert(
      fc.property(fc.array(cell, { maxLength: 16 }), (cells) => {
        expect(filledMaskOf(JSON.stringify(cells))).toBe(filledMask(cells));
      }),
      { numRuns: 2000 },
    );
  });
});
