import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FaultKind } from '../../src/emulator/index.js';
import { createWorld, customer, type Customer } from '../support/world.js';

const UNIVERSE = 40;
const FAULT_KINDS: FaultKind[] = ['transient', 'unknown', 'html5xx', 'drop', 'throttle'];

/** One step: which people are in the model (with which email variant) and how Meta misbehaves. */
const stepArb = fc.record({
  people: fc.uniqueArray(fc.integer({ min: 0, max: UNIVERSE - 1 }), { maxLength: UNIVERSE }),
  variant: fc.integer({ min: 0, max: 2 }),
  faultRate: fc.constantFrom(0, 0, 0.1, 0.25),
  faultKinds: fc.subarray(FAULT_KINDS, { minLength: 1 }),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});

const modelOf = (step: { people: number[]; variant: number }): Customer[] =>
  step.people.map((n) => customer(n, n % 3 === step.variant ? 1 : 0));
const idsOf = (rows: Customer[]) => rows.map((r) => String(r.user_id)).sort();

describe('convergence under model churn and Meta faults (property)', () => {
  it('mirror: after every successful run the audience equals the model exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 4 }), async (steps) => {
        const world = await createWorld({ mode: 'mirror', sync: { batchRows: 7, maxAttempts: 100 } });
        try {
          for (const step of steps) {
            const model = modelOf(step);
            await world.setCustomers(model);
            world.emulator.control.setFaults({ rate: step.faultRate, kinds: step.faultKinds, seed: step.seed });
            const run = await world.run({ force: true });
            if (run.status === 'success') expect(world.memberIds()).toEqual(idsOf(model));
          }
          // Once Meta behaves, one more run converges whatever happened before.
          world.emulator.control.setFaults({ rate: 0, kinds: [] });
          const last = await world.run({ force: true });
          expect(last.status).toBe('success');
          expect(world.memberIds()).toEqual(idsOf(modelOf(steps.at(-1)!)));
        } finally {
          await world.close();
        }
      }),
      { numRuns: 8 },
    );
  });

  it('upsert never removes anyone; delete never adds anyone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('upsert' as const, 'delete' as const), fc.array(stepArb, { minLength: 2, maxLength: 3 }), async (mode, steps) => {
        const world = await createWorld({ mode, sync: { batchRows: 9 } });
        try {
          if (mode === 'delete') {
            // People already in the audience, put there by someone else.
            await fetch(`${world.emulator.url}/v25.0/${world.audienceId}/users`, {
              method: 'POST',
              headers: { authorization: `Bearer ${world.env.META_ACCESS_TOKEN}`, 'content-type': 'application/json' },
              body: JSON.stringify({ payload: { schema: ['EXTERN_ID'], is_raw: true, data: Array.from({ length: UNIVERSE }, (_, n) => [`u${n}`]) } }),
            });
          }
          let before = world.memberIds();
          for (const step of steps) {
            await world.setCustomers(modelOf(step));
            world.emulator.control.setFaults({ rate: step.faultRate, kinds: step.faultKinds, seed: step.seed });
            await world.run({ force: true });
            const after = world.memberIds();
            if (mode === 'upsert') expect(after).toEqual(expect.arrayContaining(before));
            else expect(before).toEqual(expect.arrayContaining(after));
            before = after;
          }
        } finally {
          await world.close();
        }
      }),
      { numRuns: 6 },
    );
  });
});
