// Records that used up their attempts ("given up"): visible in plan, runs and doctor, put back in the
// queue by `retry`, retried on their own when their data changes, and located by `locate`. Real
// DuckDB, the emulator over HTTP, the built CLI, and SQLite or PostgreSQL state.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { createWorld, customer, customers, type World, cliOn } from '../support/world.js';


const cli = cliOn;

/** One run in which Meta finds the rows of these customers invalid: with maxAttempts 1 their records are given up. */
async function runWithRefusedRows(w: World, ids: string[]) {
  w.emulator.control.setFlags({ invalidCells: ids });
  const run = await w.run();
  w.emulator.control.setFlags({ invalidCells: [] });
  return run;
}

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe.each(STATE_KINDS)('given-up records with %s state', (kind) => {
  const state = stateWorlds(kind, 'given_up');
  const createWorldWithState = state.createWorld;

  it('shows them in plan, runs and doctor, and `retry` puts them back in the queue', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 1, batchRows: 4 } });
    const model = customers(10);
    await world.setCustomers(model);
    const refusedIds = ['u0', 'u1', 'u2', 'u3'];
    const refused = await runWithRefusedRows(world, refusedIds);
    expect(refused.status).toBe('partial');
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).filter((id) => !refusedIds.includes(id)).sort());

    const plan = await cli(world, 'plan', 'loyalty');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/10 rows in the model: 0 to add, .*, 4 given up\n/);
    expect(plan.stdout).toContain('given up: 4 records used up their 1 attempt and are no longer sent:');
    expect(plan.stdout).toMatch(/ {4}4 × .*invalid/i);
    expect(plan.stdout).toMatch(/sample: key sha256 [0-9a-f]{16}… \(EXTERN_ID u\d\)\n/);
    expect(plan.stdout).toContain('`audience-sync retry loyalty` puts them back in the queue');
    const planJson = JSON.parse((await cli(world, 'plan', 'loyalty', '--json')).stdout) as Array<{ givenUp: { count: number; samples: Array<{ pkHash: string; externId: string; reason: string }> } }>;
    const givenUp = planJson[0]!.givenUp;
    expect(givenUp.count).toBe(4);
    expect(givenUp.samples).toHaveLength(4);
    for (const s of givenUp.samples) {
      expect(s.pkHash).toMatch(/^[0-9a-f]{64}$/);
      expect(s.externId).toMatch(/^u\d$/);
    }
    const givenUpIds = givenUp.samples.map((s) => s.externId).sort();
    // The samples carry hashes, EXTERN_IDs and Meta's reason: no raw identifier.
    expect(JSON.stringify(planJson)).not.toMatch(/example\.com|650/i);

    const doctor = await cli(world, 'doctor');
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/✗ sync loyalty: records given up: 4 records used up their 1 attempt and are no longer sent; most often: .*\(4\)/);
    expect(doctor.stdout).toContain('fix: `audience-sync plan loyalty` shows them; fix the cause, then `audience-sync retry loyalty` puts them back in the queue');

    // A run leaves them alone: the four stay out and the run says so.
    expect(givenUpIds).toEqual(refusedIds);
    const second = await world.run();
    expect(second.counts).toMatchObject({ added: 0, failed: 4 });
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).filter((id) => !givenUpIds.includes(id)).sort());

    const runs = await cli(world, 'runs', 'loyalty');
    expect(runs.stdout).toMatch(/loyalty:\n {2}given up: 4 records used up their 1 attempt/);
    const located = await cli(world, 'locate', 'loyalty', '--given-up');
    expect(located.code).toBe(0);
    expect(located.stdout).toContain('4 given-up records; user_id of each as the model returns it now (shown here only, never stored)');
    for (const id of givenUpIds) expect(located.stdout).toMatch(new RegExp(`user_id ${id} {2}EXTERN_ID ${id} {2}`));

    const retry = await cli(world, 'retry', 'loyalty');
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain('loyalty: 4 records put back in the queue with 1 new attempt; the next run sends them');
    expect((await cli(world, 'retry', 'loyalty')).stdout).toContain('no record is given up; nothing to retry');
    expect((await cli(world, 'plan', 'loyalty')).stdout).not.toContain('given up');
    expect((await cli(world, 'doctor')).stdout).toContain('✓ sync loyalty: records given up: no record has used up its attempts');

    const third = await world.run();
    expect(third).toMatchObject({ status: 'success', counts: { retried: 4, failed: 0 } });
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());
  });

  it('retries a given-up record by itself once its data changes', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 1, batchRows: 3 } });
    const model = customers(6);
    await world.setCustomers(model);
    await runWithRefusedRows(world, ['u0', 'u1', 'u2']);
    const state = JSON.parse((await cli(world, 'plan', 'loyalty', '--json')).stdout) as Array<{ givenUp: { samples: Array<{ externId: string }> } }>;
    const [changed, ...unchanged] = state[0]!.givenUp.samples.map((s) => s.externId);
    expect(unchanged).toHaveLength(2);

    const n = Number(changed!.slice(1));
    await world.setCustomers(model.map((c) => (c.user_id === changed ? customer(n, 1) : c)));
    const run = await world.run();
    expect(run.counts).toMatchObject({ updated: 1, failed: 2 });
    expect(world.memberIds()).toContain(changed);
    for (const id of unchanged) expect(world.memberIds()).not.toContain(id);
    const after = JSON.parse((await cli(world, 'plan', 'loyalty', '--json')).stdout) as Array<{ givenUp: { count: number } }>;
    expect(after[0]!.givenUp.count).toBe(2);
  });
});

describe('locate', () => {
  it("prints the primary keys behind a run's samples on the terminal and never stores them", async () => {
    world = await createWorld({ mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' } });
    await world.setCustomers([
      ...customers(5),
      { user_id: 'twin-7q', email: 'a@example.org' },
      { user_id: 'twin-7q', email: 'b@example.org' },
      { user_id: null, email: 'c@example.org' },
    ]);
    const run = await world.run();
    expect(run.counts.rejected).toBe(3);

    const runs = await cli(world, 'runs', 'loyalty');
    expect(runs.stdout).toMatch(/sample: key sha256 [0-9a-f]{16}…: duplicate primary key/);
    expect(runs.stdout).toContain('sample: null primary key: null primary key');
    expect(runs.stdout).toContain(`\`audience-sync locate loyalty --run ${run.runId}\` prints the primary keys behind the samples on this terminal`);

    const located = await cli(world, 'locate', 'loyalty', '--run', String(run.runId));
    expect(located.code).toBe(0);
    expect(located.stdout).toContain(`loyalty, run #${run.runId}`);
    expect(located.stdout).toContain('user_id twin-7q (2 rows)  duplicate primary key');
    expect(located.stdout).toContain("1 sample is a row whose user_id is null: the model's rows where user_id is null");
    // The default is the newest run with samples; the keys were printed, never stored.
    expect((await cli(world, 'locate', 'loyalty')).stdout).toContain(`run #${run.runId}`);
    for (const file of [world.statePath, `${world.statePath}-wal`]) {
      if (existsSync(file)) expect(readFileSync(file).includes(Buffer.from('twin-7q'))).toBe(false);
    }

    // A row that left the model since the run cannot be located: it is said, with its hash.
    await world.setCustomers(customers(5));
    const gone = await cli(world, 'locate', 'loyalty', '--run', String(run.runId));
    expect(gone.stdout).toMatch(/2 samples have no row in the model now \(it left the model or its key changed\):\n {4}key sha256 [0-9a-f]{16}…: duplicate primary key/);
    expect((await cli(world, 'locate', 'loyalty', '--run', '999')).stderr).toContain('sync "loyalty" has no run #999');
  });
});
