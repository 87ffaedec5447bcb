import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorld, customers, type World } from '../support/world.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
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
});
