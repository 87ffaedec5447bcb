// The fleet's parts against a real PostgreSQL: the shared per-ad-account cap, the run queue's
// one-queued-job-per-sync rule, and the refusal to run a fleet on SQLite state.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { capLockKey, fleetSettings, FleetSetupError, openAccountCap, openRunQueue, type AccountCap, type CapSlot } from '../../src/fleet/index.js';
import { runCli } from '../cli/run-cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { createDatabase } from './helpers.js';

let server: TestPostgres;
let databaseUrl: string;
const dir = mkdtempSync(join(tmpdir(), 'audience-sync-fleet-parts-'));

beforeAll(async () => {
  server = await startPostgres();
  databaseUrl = await createDatabase(server.url, 'parts');
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function configText(stateUrl: string, fleet?: Record<string, unknown>): string {
  return stringify({
    version: 1,
    state: { url: stateUrl },
    meta: { accessToken: 't', adAccountId: 'act_42', graphUrl: 'http://127.0.0.1:9' },
    sources: { w: { type: 'duckdb', path: ':memory:' } },
    syncs: [{ name: 'a', source: 'w', model: 'select 1 as id', primaryKey: 'id', audience: { id: '1' }, mapping: { EXTERN_ID: 'id' } }],
    ...(fleet ? { fleet } : {}),
  });
}

describe('fleet settings', () => {
  it('needs PostgreSQL state, with a message that says how to fix it', async () => {
    const sqlite = parseConfig(configText('sqlite://state.db'), join(dir, 'a.yml'), {});
    expect(() => fleetSettings(sqlite)).toThrow(FleetSetupError);
    expect(() => fleetSettings(sqlite)).toThrow(/needs PostgreSQL state.*set state\.url to a postgres:\/\/ URL/);

    const path = join(dir, 'sqlite.yml');
    writeFileSync(path, configText('sqlite://state.db'));
    const worker = await runCli(['worker', '-c', path], { timeoutMs: 20_000 });
    expect(worker.code).toBe(2);
    expect(worker.stderr).toMatch(/needs PostgreSQL state/);
    const scheduler = await runCli(['serve', '--scheduler-only', '-c', path], { timeoutMs: 20_000 });
    expect(scheduler.code).toBe(2);
    expect(scheduler.stderr).toMatch(/needs PostgreSQL state/);
  });

  it('applies defaults and validates the fleet section', () => {
    const defaults = fleetSettings(parseConfig(configText('postgres://u@127.0.0.1/db'), join(dir, 'b.yml'), {}));
    expect(defaults).toMatchObject({ adAccounts: { a: '42' }, maxConcurrentPerAdAccount: 2, jobTimeoutSeconds: 3600, pollIntervalSeconds: 2 });
    expect(() => parseConfig(configText('postgres://u@127.0.0.1/db', { maxConcurrentPerAdAccount: 0, jobTimeoutSeconds: 5 }), join(dir, 'c.yml'), {})).toThrow(
      /fleet\.maxConcurrentPerAdAccount.*at least 1[\s\S]*fleet\.jobTimeoutSeconds.*at least 10/,
    );
  });
});

describe('per-ad-account cap (PostgreSQL advisory locks)', () => {
  it('gives out at most maxConcurrent slots per account across processes, per account', async () => {
    const caps: AccountCap[] = [1, 2].map(() => openAccountCap({ databaseUrl, maxConcurrent: 2, maxHeld: 2 }));
    const [one, two] = caps as [AccountCap, AccountCap];
    try {
      const a = await one.acquire('42', 0);
      const b = await two.acquire('42', 0);
      expect(a && b && new Set([a.slot, b.slot]).size).toBe(2);
      expect(await one.acquire('42', 0)).toBeUndefined();
      expect(await two.acquire('42', 0)).toBeUndefined();
      // Another account has slots of its own.
      const other = await one.acquire('43', 0);
      expect(other).toBeDefined();
      await a!.release();
      await a!.release();
      const c = await two.acquire('42', 0);
      expect(c?.slot).toBe(a!.slot);
      for (const s of [b, c, other] as CapSlot[]) await s.release();
    } finally {
      await Promise.all(caps.map((c) => c.close()));
    }
  });

  it('serves waiters in arrival order: a worker that frees a slot does not take it straight back', async () => {
    const caps: AccountCap[] = [1, 2].map(() => openAccountCap({ databaseUrl, maxConcurrent: 1, maxHeld: 2 }));
    const [one, two] = caps as [AccountCap, AccountCap];
    try {
      const held = await one.acquire('9', 0);
      expect(held).toBeDefined();
      const waiting = two.acquire('9', 5000);
      await new Promise((r) => setTimeout(r, 300));
      await held!.release();
      // Back in line behind the waiter: the slot went to it.
      expect(await one.acquire('9', 300)).toBeUndefined();
      const served = await waiting;
      expect(served).toBeDefined();
      await served!.release();
      const again = await one.acquire('9', 0);
      expect(again).toBeDefined();
      await again!.release();
    } finally {
      await Promise.all(caps.map((c) => c.close()));
    }
  });

  it('frees the slots of a worker killed with SIGKILL at once', async () => {
    const capModule = new URL('../../dist/fleet/cap.js', import.meta.url).href;
    const code = `
      const { openAccountCap } = await import(${JSON.stringify(capModule)});
      const cap = openAccountCap({ databaseUrl: ${JSON.stringify(databaseUrl)}, maxConcurrent: 2, maxHeld: 2 });
      const held = [await cap.acquire('77', 0), await cap.acquire('77', 0)];
      process.stdout.write(held.every(Boolean) ? 'held\\n' : 'missing\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.on('close', resolve));
    const cap = openAccountCap({ databaseUrl, maxConcurrent: 2, maxHeld: 2 });
    try {
      const line = await new Promise<string>((resolve) => child.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d.trim())));
      expect(line).toBe('held');
      expect(await cap.acquire('77', 0)).toBeUndefined();
      child.kill('SIGKILL');
      await exited;
      // PostgreSQL notices the closed socket and drops the session's locks.
      let slot: CapSlot | undefined;
      for (let i = 0; i < 50 && !slot; i++) {
        slot = await cap.acquire('77', 0);
        if (!slot) await new Promise((r) => setTimeout(r, 100));
      }
      expect(slot).toBeDefined();
      await slot?.release();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await cap.close();
    }
  });

  it('keys slots by account and slot number', () => {
    const keys = new Set([capLockKey('42', 0), capLockKey('42', 1), capLockKey('43', 0), capLockKey('43', 1)]);
    expect(keys.size).toBe(4);
    expect(capLockKey('42', 0)).toBe(capLockKey('42', 0));
    for (const k of keys) expect(k >= -(2n ** 63n) && k < 2n ** 63n).toBe(true);
  });
});

describe('run queue (pg-boss)', () => {
  it('opens on a fresh database when several workers start at once', async () => {
    const fresh = await createDatabase(server.url, 'together');
    const settings = fleetSettings(parseConfig(configText(fresh, { jobTimeoutSeconds: 30 }), join(dir, 't.yml'), {}));
    const queues = await Promise.all(Array.from({ length: 4 }, () => openRunQueue(settings, { maxConnections: 2 })));
    try {
      expect(await queues[0]!.enqueue('a', 'test')).toBe(true);
      expect((await queues[3]!.take())?.sync).toBe('a');
    } finally {
      await Promise.all(queues.map((q) => q.stop()));
    }
  });

  it('holds one queued job per sync; a sync whose job is running can be queued again', async () => {
    const settings = fleetSettings(parseConfig(configText(databaseUrl, { jobTimeoutSeconds: 30 }), join(dir, 'q.yml'), {}));
    const queue = await openRunQueue(settings);
    try {
      expect(await queue.enqueue('a', 'schedule')).toBe(true);
      expect(await queue.enqueue('a', 'schedule')).toBe(false);
      expect(await queue.enqueue('b', 'schedule')).toBe(true);
      const first = await queue.take();
      expect(first).toMatchObject({ sync: 'a', trigger: 'schedule' });
      expect(await queue.enqueue('a', 'schedule')).toBe(true);
      const second = await queue.take();
      expect(second?.sync).toBe('b');
      await queue.complete(first!, { status: 'success' });
      await queue.fail(second!, 'the model failed');
      expect((await queue.take())?.sync).toBe('a');
      // b comes back after its retry delay, not at once.
      expect(await queue.take()).toBeUndefined();
    } finally {
      await queue.stop();
    }
  });

  it('gives a deferred job back to the queue, due a moment later, without using up a retry', async () => {
    const settings = fleetSettings(parseConfig(configText(await createDatabase(server.url, 'deferred'), { jobTimeoutSeconds: 30 }), join(dir, 'd.yml'), {}));
    const queue = await openRunQueue(settings);
    try {
      expect(await queue.enqueue('a', 'schedule:catch-up')).toBe(true);
      const first = await queue.take();
      await queue.defer(first!, 1);
      expect(await queue.take()).toBeUndefined();
      await new Promise((r) => setTimeout(r, 1500));
      const again = await queue.take();
      expect(again).toMatchObject({ sync: 'a', trigger: 'schedule:catch-up' });
      expect(again?.id).not.toBe(first?.id);
    } finally {
      await queue.stop();
    }
  });
});
