import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/index.js';
import { createWorld, customers, type World } from '../support/world.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const KILL_IN_COMMIT = new URL('../support/kill-in-commit.mjs', import.meta.url).pathname;
let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('crash safety', () => {
  it('a sync killed with SIGKILL mid-delivery converges on the next run', async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    world = await createWorld({ sync: { batchRows: 100 } });
    const model = customers(3000);
    await world.setCustomers(model);
    // Every request takes a while, so the kill lands between batches or inside one.
    world.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 60, seed: 3 });

    const child = spawn(process.execPath, [CLI, 'sync', 'loyalty', '-c', world.configPath, '--quiet'], { env: world.env, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const deadline = Date.now() + 30_000;
    while (world.emulator.control.members(world.audienceId).length < 800 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const delivered = world.emulator.control.members(world.audienceId).length;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(3000);

    world.emulator.control.setFaults({ rate: 0, kinds: [] });
    // The killed run left its lock and a "running" run behind: the rerun takes both over.
    const rerun = await world.run();
    expect(rerun.status).toBe('success');
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());
    // Whatever was committed before the kill is not sent again (at most the batch in flight is).
    expect(rerun.counts.unchanged).toBeGreaterThanOrEqual(delivered - 200);

    const settled = await world.run();
    expect(settled.counts).toMatchObject({ unchanged: 3000, added: 0, delivered: 0 });
  });

  it('a sync killed while it commits one batch and sends the next re-sends those two batches and no other', async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    world = await createWorld({ sync: { batchRows: 100 } });
    const model = customers(1000);
    await world.setCustomers(model);
    world.emulator.control.setFlags({ uploadLatencyMs: 150 });

    // Killed inside the state transaction that commits batch 3 (test/support/kill-in-commit.mjs).
    const child = spawn(process.execPath, ['--import', KILL_IN_COMMIT, CLI, 'sync', 'loyalty', '-c', world.configPath, '--quiet'], {
      env: { ...world.env, KILL_IN_COMMIT: '3' },
      stdio: 'ignore',
    });
    expect(await new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)))).toBe('SIGKILL');
    // That commit ran while the 4th request was out (it reaches the emulator, which answers no one).
    const uploads = () => world!.emulator.control.requestLog().filter((e) => e.method === 'POST' && e.path.endsWith('/users'));
    const deadline = Date.now() + 5000;
    while (!(uploads().length >= 4 && uploads().every((e) => e.endedAt > 0)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(uploads().map((e) => e.rows)).toEqual([100, 100, 100, 100]);
    expect(world.emulator.control.members(world.audienceId)).toHaveLength(400);

    const state = await openStateStore(`sqlite://${world.statePath}`);
    try {
      const records = await state.listRecords('loyalty');
      // Batches 1-2 committed; batch 3 (its commit rolled back) and batch 4 (in flight) known by their intents.
      expect(records.filter((r) => r.status === 'synced')).toHaveLength(200);
      expect(records.filter((r) => r.status === 'pending' && r.hasCells && r.attempts === 0)).toHaveLength(200);
      expect(records).toHaveLength(400);
    } finally {
      await state.close();
    }

    world.emulator.control.setFlags({ uploadLatencyMs: 0 });
    const rerun = await world.run();
    expect(rerun.status).toBe('success');
    // Only the two batches whose outcome was not committed go out again, with the 600 rows never sent.
    expect(rerun.counts).toMatchObject({ unchanged: 200, retried: 200, added: 600, delivered: 800 });
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());
    const settled = await world.run();
    expect(settled.counts).toMatchObject({ unchanged: 1000, added: 0, delivered: 0 });
  });
});
