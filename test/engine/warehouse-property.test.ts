// The same answers (property): one random sequence of model churn (arrivals, departures, updates,
// identifier changes, duplicate and null keys), Meta faults (failed requests, refused rows) and
// SIGKILLed runs (some of them while the journal is being applied to the snapshot), played through
// local and through warehouse change detection, ends with the same audience in the emulator, on
// DuckDB and on PostgreSQL.
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { runSyncChild } from '../../src/chaos/child.js';
import type { FaultKind } from '../../src/emulator/index.js';
import { customer, type Customer } from '../support/world.js';
import { WAREHOUSES, warehouseWorlds, type WarehouseWorld } from '../support/warehouse-world.js';

const RUNNER = new URL('../../dist/chaos/runner.js', import.meta.url).pathname;
const UNIVERSE = 24;
// A fixed seed, so CI runs the same cases every time; set AUDIENCE_SYNC_PROPERTY_SEED to explore others.
const PROPERTY_SEED = Number(process.env.AUDIENCE_SYNC_PROPERTY_SEED ?? 20261207);
const FAULT_KINDS: FaultKind[] = ['transient', 'unknown', 'html5xx', 'drop'];

const stepArb = fc.record({
  people: fc.uniqueArray(fc.integer({ min: 0, max: UNIVERSE - 1 }), { maxLength: UNIVERSE }),
  variant: fc.integer({ min: 0, max: 2 }),
  /** People whose phone changes: an identifier change (the old one is removed first). */
  newPhone: fc.subarray([1, 5, 9, 13]),
  /** Keys the model holds twice this step. */
  twice: fc.subarray([2, 6, 10]),
  nullKey: fc.boolean(),
  faultRate: fc.constantFrom(0, 0, 0.15, 0.3),
  faultKinds: fc.subarray(FAULT_KINDS, { minLength: 1 }),
  /** People whose rows Meta refuses this step. */
  refused: fc.subarray(['u3', 'u11', 'u19']),
  /** SIGKILL the run once Meta has seen this many upload requests (0: no kill). */
  killAt: fc.constantFrom(0, 0, 1, 2, 4),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

/**
 * Found by seed -1436797995: u20 leaves (its removal killed after Meta took it), then comes back with the
 * same data. Without an intent before a departure's removal, both modes left u20 out of the audience.
 */
const RETURNING: Step[] = [{"people": [6, 13, 1, 18, 21, 16, 11, 8, 14], "variant": 0, "newPhone": [], "twice": [10], "nullKey": true, "faultRate": 0, "faultKinds": ["transient", "unknown", "html5xx", "drop"], "refused": ["u3", "u19"], "killAt": 1, "seed": 549661}, {"people": [3, 12, 2, 21, 10, 6, 16, 15, 9, 20], "variant": 2, "newPhone": [13], "twice": [6, 10], "nullKey": false, "faultRate": 0.15, "faultKinds": ["html5xx", "drop"], "refused": [], "killAt": 0, "seed": 277528}, {"people": [14, 18], "variant": 2, "newPhone": [1], "twice": [2, 6, 10], "nullKey": true, "faultRate": 0.15, "faultKinds": ["unknown"], "refused": ["u3", "u11"], "killAt": 4, "seed": 908603}, {"people": [1, 11, 13, 23, 6, 20], "variant": 2, "newPhone": [1, 5, 9, 13], "twice": [], "nullKey": true, "faultRate": 0, "faultKinds": ["transient", "unknown", "html5xx", "drop"], "refused": ["u3"], "killAt": 4, "seed": 799524}];

function modelOf(step: Step): Customer[] {
  const rows = step.people.map((n) => {
    const c = customer(n, n % 3 === step.variant ? 1 : 0);
    return step.newPhone.includes(n) ? { ...c, phone: `+1 650 ${String(3_000_000 + n)}` } : c;
  });
  for (const n of step.twice) if (step.people.includes(n)) rows.push(customer(n, 2));
  if (step.nullKey) rows.push({ ...customer(UNIVERSE + 1), user_id: null });
  return rows;
}

const step = (s: Partial<Step>): Step => ({ people: [], variant: 0, newPhone: [], twice: [], nullKey: false, faultRate: 0, faultKinds: ['transient'], refused: [], killAt: 0, seed: 1, ...s });
const EXAMPLE: Step[] = [
  step({ people: Array.from({ length: UNIVERSE }, (_, n) => n), killAt: 2, refused: ['u3'] }),
  step({ people: Array.from({ length: UNIVERSE - 4 }, (_, n) => n), variant: 1, newPhone: [1, 5], twice: [2], nullKey: true, faultRate: 0.3, faultKinds: ['transient', 'drop'], killAt: 1, seed: 7 }),
  step({ people: Array.from({ length: UNIVERSE - 2 }, (_, n) => n + 2), variant: 2, faultRate: 0.15, seed: 11 }),
];

let open: WarehouseWorld[] = [];
afterEach(async () => {
  for (const w of open) await w.close();
  open = [];
});

describe.each(WAREHOUSES)('warehouse and local change detection give the same audience on %s (property)', (kind) => {
  const make = warehouseWorlds(kind, `wprop_${kind.toLowerCase()}`);

  let kills = 0;
  async function play(w: WarehouseWorld, step: Step): Promise<void> {
    await w.setCustomers(modelOf(step));
    w.emulator.control.setFaults({ rate: step.faultRate, kinds: step.faultKinds, seed: step.seed });
    w.emulator.control.setFlags({ invalidCells: step.refused });
    if (step.killAt === 0) {
      await w.runWith({ flushRows: 4, force: true });
      return;
    }
    const before = w.emulator.control.requestLog().filter((e) => e.path.endsWith('/users')).length;
    const outcome = await runSyncChild({
      via: 'runner',
      configPath: w.configPath,
      sync: 'loyalty',
      emulatorUrl: w.emulator.url,
      // Small journal applications, so kills land in them too.
      env: { ...w.env, AUDIENCE_SYNC_SNAPSHOT_FLUSH_ROWS: '4' },
      kill: { kind: 'users-request', n: before + step.killAt },
      usersRequests: () => w.emulator.control.requestLog().filter((e) => e.path.endsWith('/users')).length,
      timeoutMs: 60_000,
    });
    if (outcome.killed) kills++;
  }

  it('after the same churn, faults and kills, one clean run leaves both audiences equal', async () => {
    expect(existsSync(RUNNER), 'run `npm run build` first').toBe(true);
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 4 }), async (steps) => {
        const local = await make.create({ changeDetection: 'local', sync: { batchRows: 3, maxAttempts: 100, maxRemovalShare: 1 } });
        const warehouse = await make.create({ changeDetection: 'warehouse', sync: { batchRows: 3, maxAttempts: 100, maxRemovalShare: 1 } });
        open.push(local, warehouse);
        try {
          for (const step of steps) for (const w of [local, warehouse]) await play(w, step);
          const last = steps.at(-1)!;
          for (const w of [local, warehouse]) {
            w.emulator.control.setFaults({ rate: 0, kinds: [] });
            const settled = await w.runWith({ force: true });
            expect(settled.status, settled.error).toMatch(/success|partial/);
          }
          expect(warehouse.memberIds()).toEqual(local.memberIds());
          // And that audience is the model's: everyone with one row, nobody who left (Meta refusing a row, its add or its removal, aside).
          const members = new Set(warehouse.memberIds());
          const model = modelOf(last);
          const once = last.people.filter((n) => !last.twice.includes(n)).map((n) => `u${n}`);
          for (const id of once) expect(members.has(id) || last.refused.includes(id), `${id} missing`).toBe(true);
          for (const id of members) expect(model.some((c) => c.user_id === id) || last.refused.includes(id), `${id} left the model`).toBe(true);
        } finally {
          for (const w of [local, warehouse]) await w.close();
          open = [];
        }
      }),
      // No shrinking: each run takes seconds; the counterexample printed is replayable as it is. The
      // example always runs: kills mid-run on both sides, a departure, refused rows and duplicates.
      { numRuns: 4, endOnFailure: true, examples: [[EXAMPLE], [RETURNING]], seed: PROPERTY_SEED },
    );
    expect(kills).toBeGreaterThan(0);
  }, 600_000);
});
