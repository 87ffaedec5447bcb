// `audience-sync serve` as a real process (the built CLI): refusal without an admin token, and a
// graceful SIGTERM that lets a running sync finish.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { createWorld, customers, type World } from '../support/world.js';
import { CLI, runCli } from '../cli/run-cli.js';

let world: World;

beforeAll(async () => {
  world = await createWorld();
  await world.setCustomers(customers(30));
});
afterAll(() => world?.close());

describe('audience-sync serve (built CLI)', () => {
  it('refuses to bind 0.0.0.0 without AUDIENCE_SYNC_ADMIN_TOKEN', async () => {
    const r = await runCli(['serve', '-c', world.configPath, '--host', '0.0.0.0', '--port', '0'], { env: { ...world.env, AUDIENCE_SYNC_ADMIN_TOKEN: '' }, timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without an admin token/);
    expect(r.stderr).toContain('AUDIENCE_SYNC_ADMIN_TOKEN');
  });

  it('on SIGTERM waits for the running sync, then exits 0 with the run recorded as finished', async () => {
    world.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 600, paths: '/users$' });
    const child = spawn(process.execPath, [CLI, 'serve', '-c', world.configPath, '--port', '0'], { env: { ...world.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 20_000);
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const started = await fetch(`${url}/api/syncs/loyalty/runs`, { method: 'POST' });
      expect(started.status).toBe(202);
      const { runId } = (await started.json()) as { runId: number };
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toContain('SIGTERM received');
      expect(stdout).toContain('"event":"shutdown_wait"');
      expect(stdout).toContain('"event":"run_finished"');
      expect(stdout).not.toContain(String(world.env.META_ACCESS_TOKEN));
      expect(stdout).not.toMatch(/example\.com/i);

      const ws = await Workspace.open(world.configPath, world.env);
      try {
        const run = await (await ws.state()).getRun(runId);
        expect(run?.status).toBe('success');
      } finally {
        await ws.close();
      }
      expect(world.memberIds()).toHaveLength(30);
    } finally {
      world.emulator.control.setFaults({ rate: 0, kinds: [] });
      child.kill('SIGKILL');
    }
  });
});
