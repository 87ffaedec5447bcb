// Regression (found by the chaos run, seed 1): an add batch that Meta applied but whose answer was
// lost (dropped connection after the work, or the process killed before the commit) must leave the
// records' cells in our state, so when the rows later leave the model the run removes them.
import { afterEach, describe, expect, it } from 'vitest';
import { createWorld, customers, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('an add whose answer was lost', () => {
  it('is removed from the audience once its rows leave the model', async () => {
    world = await createWorld({ sync: { batchRows: 50 } });
    await world.setCustomers(customers(100));
    expect((await world.run()).status).toBe('success');

    // Ten newcomers: Meta applies their batch, then every answer is lost (all client retries too).
    await world.setCustomers(customers(110));
    world.emulator.control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: '/users$', seed: 1 });
    const lost = await world.run();
    world.emulator.control.setFaults({ rate: 0, kinds: [] });
    expect(lost.status).not.toBe('success');
    expect(world.memberIds()).toHaveLength(110);

    // They leave the model before the next run.
    await world.setCustomers(customers(100));
    const after = await world.run();
    expect(after.status).toBe('success');
    expect(world.memberIds()).toEqual(customers(100).map((c) => String(c.user_id)).sort());
  });
});
