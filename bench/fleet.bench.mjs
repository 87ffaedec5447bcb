// The worker fleet: syncs completed per minute with 1, 2 and 4 `audience-sync worker` processes (built
// CLI) draining one queue in a real PostgreSQL, against the emulator in its own process. Every sync is
// due every second, so the queue never runs dry; each run rebuilds its audience (mode replace), so every
// run really uploads, and each upload waits BENCH_FLEET_LATENCY_MS (default 150) the way a call to Meta
// does. Figures are runs finished (success) in the measuring window, from the run history.
// BENCH_FLEET_SECONDS sets the window (default 20), BENCH_FLEET_SYNCS the syncs (default 24).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createSyntheticWarehouse } from './lib/warehouse.mjs';
import { startEmulatorChild } from './lib/emulator.mjs';
import { startPostgres } from '../dist/devtools/postgres.js';

const WINDOW_SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? 20);
const SYNCS = Number(process.env.BENCH_FLEET_SYNCS ?? 24);
const LATENCY_MS = Number(process.env.BENCH_FLEET_LATENCY_MS ?? 150);
const ROWS = 500;
const BATCH_ROWS = 100;
const WORKER_COUNTS = [1, 2, 4];
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const ACCOUNT = '1000000000000001';

async function query(url, sql, params = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function graph(url, path, body) {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: 'Bearer emulator-token', 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

function startWorker(config, env) {
  const child = spawn(process.execPath, [CLI, 'worker', '-c', config, '--log-level', 'warn'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

/** One measurement: a fresh database (queue + state), the scheduler, `workers` workers; runs finished per minute. */
async function measure({ dir, serverUrl, emulatorUrl, warehouse, workers }) {
  const database = `fleet_${workers}`;
  await query(serverUrl, `create database ${database}`);
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const syncs = [];
  for (let i = 0; i < SYNCS; i++) {
    const { id } = await graph(emulatorUrl, `/v25.0/act_${ACCOUNT}/customaudiences`, { name: `fleet bench ${workers}/${i}`, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' });
    syncs.push({
      name: `s${i}`,
      source: 'warehouse',
      model: 'select * from customers',
      primaryKey: 'user_id',
      audience: { id },
      mode: 'replace',
      defaultPhoneCountry: 'US',
      mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' },
      schedule: '* * * * * *',
      batchRows: BATCH_ROWS,
    });
  }
  const config = join(dir, `fleet-${workers}.yml`);
  writeFileSync(
    config,
    JSON.stringify({
      version: 1,
      state: { url: url.toString() },
      meta: { accessToken: 'emulator-token', adAccountId: `act_${ACCOUNT}`, graphUrl: emulatorUrl },
      // The cap is set out of the way: this measures how the fleet scales, not Meta's limits.
      fleet: { maxConcurrentPerAdAccount: 64, jobTimeoutSeconds: 120, pollIntervalSeconds: 0.5 },
      sources: { warehouse: { type: 'duckdb', path: warehouse } },
      syncs,
    }),
  );
  const env = { ...process.env, NO_COLOR: '1' };
  const procs = [];
  try {
    // Workers first (they install the queue), then the scheduler.
    for (let i = 0; i < workers; i++) procs.push(startWorker(config, env));
    const scheduler = spawn(process.execPath, [CLI, 'serve', '--scheduler-only', '-c', config, '--log-level', 'warn'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    procs.push({ child: scheduler, exited: new Promise((resolve) => scheduler.on('close', resolve)), stderr: () => '' });
    // Warm up until runs are flowing, then count the runs that finish inside the window.
    const finished = async () => Number((await query(url.toString(), `select count(*) as n from runs where status = 'success'`).catch(() => [{ n: 0 }]))[0].n);
    const warmupDeadline = Date.now() + 60_000;
    while ((await finished()) < workers * 2) {
      if (Date.now() > warmupDeadline) throw new Error(`no runs finished within 60 s: ${procs.map((p) => p.stderr()).join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const before = await finished();
    const started = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000));
    const done = (await finished()) - before;
    const seconds = (performance.now() - started) / 1000;
    const failed = Number((await query(url.toString(), `select count(*) as n from runs where status <> 'success' and status <> 'running'`))[0].n);
    return { perMinute: (done / seconds) * 60, done, failed };
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
  }
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-bench-fleet-'));
  const emulator = await startEmulatorChild();
  let server;
  const rows = [];
  try {
    server = await startPostgres();
    await graph(emulator.url, '/_emulator/faults', { rate: 1, kinds: ['latency'], latencyMs: LATENCY_MS, paths: '/users(replace)?$' });
    const warehouse = join(dir, 'warehouse.duckdb');
    await createSyntheticWarehouse(warehouse, ROWS, { seed: 5 });
    let single;
    for (const workers of WORKER_COUNTS) {
      const m = await measure({ dir, serverUrl: server.url, emulatorUrl: emulator.url, warehouse, workers });
      single ??= m.perMinute;
      rows.push({
        metric: `${workers} worker${workers > 1 ? 's' : ''} (concurrency 1 each)`,
        value: `${Math.round(m.perMinute)} syncs/min`,
        note: `${(m.perMinute / single).toFixed(2)}x one worker; ${m.done} runs in ${WINDOW_SECONDS} s${m.failed ? `; ${m.failed} not successful` : ''}`,
      });
    }
  } finally {
    await emulator.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const perRun = Math.ceil(ROWS / BATCH_ROWS);
  return {
    title: `Worker fleet: ${SYNCS} syncs due every second, ${ROWS} rows replaced per run (${perRun} uploads × ${LATENCY_MS} ms emulated Meta latency), state and queue in PostgreSQL`,
    rows,
  };
}
