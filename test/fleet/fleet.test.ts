// The worker fleet end to end: one PostgreSQL server (state + queue), the emulator in this process, one
// `serve --scheduler-only` and three `worker` processes of the built CLI, 20 syncs ticking every second
// over their own DuckDB files. One worker is killed with SIGKILL in the middle of a run.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { openStateStore, type RunRecord } from '../../src/state/index.js';
import { CLI } from '../cli/run-cli.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { customers, writeCustomers, type Customer } from '../support/world.js';
import { createAudience, createDatabase, waitFor } from './helpers.js';

const SYNCS = 20;
const CAP = 2;
const name = (i: number) => `s${String(i).padStart(2, '0')}`;
const index = (sync: unknown) => Number(String(sync).slice(1));

/** A CLI child process whose stdout is pino JSON lines. */
interface Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  stderr: string;
}

function startCli(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const proc: Proc = { child, events: [], stderr: '', exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) proc.events.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (proc.stderr += d));
  return proc;
}

let server: TestPostgres;
let emulator: RunningEmulator;
let dir: string;
let databaseUrl: string;
let configPath: string;
const audiences: string[] = [];
const models: Customer[][] = [];
const procs: Proc[] = [];

/** Swaps a sync's warehouse file atomically, so a worker reading the old one is never disturbed. */
async function setModel(i: number, rows: Customer[]): Promise<void> {
  const next = join(dir, `${name(i)}.next.duckdb`);
  rmSync(next, { force: true });
  await writeCustomers(next, rows);
  renameSync(next, join(dir, `${name(i)}.duckdb`));
  models[i] = rows;
}

function converged(i: number): boolean {
  const members = emulator.control
    .members(audiences[i]!)
    .map((m) => String(m.EXTERN_ID))
    .sort();
  const expected = models[i]!.map((c) => String(c.user_id)).sort();
  return members.length === expected.length && members.every((m, k) => m === expected[k]);
}

/**
 * Waits for a worker to start a run that has changes to deliver, and kills that worker with SIGKILL
 * as soon as the run's first upload reached the emulator (the rest of its batches still to go);
 * returns the worker and the run's `run_started` event.
 */
async function killMidRun(workers: Proc[]): Promise<{ victim: Proc; run: Record<string, unknown> }> {
  const seen = new Set<unknown>();
  const ended = (w: Proc, jobId: unknown) => w.events.some((e) => e.event !== 'run_started' && e.jobId === jobId);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const found = workers
      .flatMap((w) => w.events.map((e) => ({ w, e })))
      .find(({ w, e }) => e.event === 'run_started' && !seen.has(e.jobId) && !ended(w, e.jobId) && !converged(index(e.sync)));
    if (!found) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    seen.add(found.e.jobId);
    const path = `/${audiences[index(found.e.sync)]}/users`;
    const since = Number(found.e.time);
    while (!ended(found.w, found.e.jobId) && Date.now() < deadline) {
      if (emulator.control.requestLog().some((r) => r.path.endsWith(path) && r.startedAt >= since)) {
        found.w.child.kill('SIGKILL');
        return { victim: found.w, run: found.e };
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  throw new Error(`no worker ran a sync with changes long enough to be killed mid-run; last events: ${JSON.stringify(workers.map((w) => w.events.slice(-4)))}`);
}

beforeAll(async () => {
  server = await startPostgres();
  databaseUrl = await createDatabase(server.url, 'fleet');
  emulator = await startEmulator({ port: 0 });
  // Every upload takes a little while, so runs overlap and one can be caught mid-delivery.
  emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 40, paths: '/users$' });
  dir = mkdtempSync(join(tmpdir(), 'audience-sync-fleet-'));
  const sources: Record<string, unknown> = {};
  const syncs: unknown[] = [];
  for (let i = 0; i < SYNCS; i++) {
    audiences.push(await createAudience(emulator.url, `fleet ${name(i)}`));
    await setModel(i, customers(150, i * 10_000));
    sources[name(i)] = { type: 'duckdb', path: `./${name(i)}.duckdb` };
    syncs.push({
      name: name(i),
      source: name(i),
      model: 'select * from customers',
      primaryKey: 'user_id',
      audience: { id: audiences[i] },
      mode: 'mirror',
      defaultPhoneCountry: 'US',
      mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' },
      schedule: '* * * * * *',
      batchRows: 25,
      maxRemovalShare: 1,
    });
  }
  configPath = join(dir, 'audience-sync.yml');
  writeFileSync(
    configPath,
    stringify({
      version: 1,
      state: { url: '${STATE_URL}' },
      meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
      fleet: { maxConcurrentPerAdAccount: CAP, jobTimeoutSeconds: 10, pollIntervalSeconds: 0.5 },
      sources,
      syncs,
    }),
  );
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await emulator?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('worker fleet on pg-boss (built CLI)', () => {
  it('20 syncs on a 1 s schedule, 3 workers, one SIGKILLed mid-run: every audience converges, no overlap, cap kept', async () => {
    const env = { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN, STATE_URL: databaseUrl };
    const workers = [0, 1, 2].map(() => startCli(['worker', '-c', configPath, '--concurrency', '2', '--shutdown-timeout', '20'], env));
    const scheduler = startCli(['serve', '--scheduler-only', '-c', configPath, '--log-level', 'debug'], env);
    procs.push(...workers, scheduler);

    // First pass: every audience filled from its model.
    await waitFor(() => models.every((_, i) => converged(i)), 60_000, () => `first pass; errors: ${[...new Set(workers.flatMap((w) => w.events.map((e) => e.error).filter(Boolean)))].join(' | ')}; stderr: ${[...workers, scheduler].map((w) => w.stderr).join('\n')}`);

    // Second pass: every model changes; kill the victim while it delivers one of them.
    for (let i = 0; i < SYNCS; i++) await setModel(i, [...models[i]!.slice(60), ...customers(90, i * 10_000 + 5_000)]);
    const { victim, run: killedRun } = await killMidRun(workers);
    expect(await victim.exited).toBeNull();
    const survivors = workers.filter((w) => w !== victim);
    const killedJob = String(killedRun.jobId);
    const killedSync = String(killedRun.sync);

    // Everything converges, and the killed job comes back (after the 10 s job timeout) on another worker.
    const jobState = async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ state: string; retry_count: number }>('select state, retry_count from pgboss.job where id = $1', [killedJob]);
        return rows[0];
      } finally {
        await client.end();
      }
    };
    let retried: { state: string; retry_count: number } | undefined;
    await waitFor(
      async () => {
        retried = await jobState();
        return models.every((_, i) => converged(i)) && retried?.state === 'completed';
      },
      60_000,
      () => `second pass: killed job ${killedJob} is ${JSON.stringify(retried)}; unconverged: ${models.map((_, i) => (converged(i) ? '' : name(i))).join(' ')}`,
    );
    expect(retried?.retry_count).toBeGreaterThanOrEqual(1);
    expect(survivors.some((w) => w.events.some((e) => e.event !== 'run_started' && e.jobId === killedJob)), 'a survivor finished the killed job').toBe(true);

    // Graceful stop.
    for (const p of [scheduler, ...survivors]) p.child.kill('SIGTERM');
    expect(await Promise.all([scheduler, ...survivors].map((p) => p.exited))).toEqual([0, 0, 0]);
    for (const p of [scheduler, ...survivors]) expect(p.stderr).toBe('');

    // The cap held across workers: never more than CAP Graph requests of the account at once.
    const peak = emulator.control.peakConcurrency(DEFAULT_AD_ACCOUNT);
    expect(peak).toBeLessThanOrEqual(CAP);
    expect(peak).toBe(CAP);
    // Both surviving workers did real work.
    for (const w of survivors) expect(w.events.some((e) => e.event === 'run_finished' && Number(e.delivered) > 0), `worker ${w.child.pid} delivered`).toBe(true);

    // The run history: no two runs of a sync overlapped; the killed run was closed as abandoned.
    const state = await openStateStore(databaseUrl);
    try {
      const abandoned: RunRecord[] = [];
      for (let i = 0; i < SYNCS; i++) {
        const runs = (await state.listRuns({ sync: name(i), limit: 10_000 })).sort((a, b) => a.id - b.id);
        expect(runs.length).toBeGreaterThanOrEqual(2);
        for (const [k, run] of runs.entries()) {
          expect(run.finishedAt, `${name(i)} run ${run.id} never finished`).not.toBeNull();
          const next = runs[k + 1];
          if (next) expect(run.finishedAt!.getTime(), `${name(i)} runs ${run.id} and ${next.id} overlap`).toBeLessThanOrEqual(next.startedAt.getTime());
        }
        abandoned.push(...runs.filter((r) => r.status === 'failed' && /stopped before the run finished/.test(r.error ?? '')));
      }
      // The killed run (and whatever else the victim was running) was closed by the next run of its sync.
      expect(abandoned.map((r) => r.sync)).toContain(killedSync);
    } finally {
      await state.close();
    }
  }, 180_000);
});
