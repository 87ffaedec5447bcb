// A quick measure of warehouse change detection against local (issue #17), not the final bench: a DuckDB
// model of BENCH_ROWS rows (default 1M), synced by the real CLI in a process of its own per run, once
// with changeDetection: local and once with warehouse; the first sync and a no-change rerun of each,
// with wall time (the run's own, lock to commit), rows out of the warehouse and peak RSS.
//   npm run build && node bench/warehouse-quick.mjs
// BENCH_SKIP_FIRST_LOCAL=1 skips the local first sync (the no-change rerun then has no state to compare with: it is skipped too).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSyntheticWarehouse } from './lib/warehouse.mjs';
import { startEmulatorChild } from './lib/emulator.mjs';

const execFileAsync = promisify(execFile);
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const MAPPED = { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', LN: 'last_name', CT: 'city', ZIP: 'zip', COUNTRY: 'country' };
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
const RSS_PROBE = new URL('../dist/chaos/rss-probe.js', import.meta.url).pathname;
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function createAudience(url, name) {
  const res = await fetch(`${url}/v25.0/act_1000000000000001/customaudiences`, {
    method: 'POST',
    headers: { authorization: 'Bearer emulator-token', 'content-type': 'application/json' },
    body: JSON.stringify({ name, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
  });
  return (await res.json()).id;
}

async function sync(config) {
  const rssFile = `${config}.rss`;
  rmSync(rssFile, { force: true });
  const { stdout } = await execFileAsync(process.execPath, ['--import', RSS_PROBE, CLI, 'sync', 'bench', '--json', '--force', '-c', config], { maxBuffer: 1 << 26, env: { ...process.env, CHAOS_RSS_FILE: rssFile } });
  const summary = JSON.parse(stdout);
  if (summary.status !== 'success') throw new Error(`sync ended ${summary.status}: ${summary.error}`);
  return { seconds: (Date.parse(summary.finishedAt) - Date.parse(summary.startedAt)) / 1000, rss: Number(readFileSync(rssFile, 'utf8').trim()), counts: summary.counts, timings: summary.timings };
}

const emulator = await startEmulatorChild();
const dir = mkdtempSync(join(tmpdir(), 'audience-sync-warehouse-quick-'));
try {
  const warehouse = join(dir, 'warehouse.duckdb');
  await createSyntheticWarehouse(warehouse, ROWS, { seed: 11 });
  const configs = {};
  for (const mode of ['local', 'warehouse']) {
    const config = join(dir, `${mode}.yml`);
    const audienceId = await createAudience(emulator.url, `quick ${mode}`);
    writeFileSync(
      config,
      JSON.stringify({
        version: 1,
        state: { url: `sqlite://${join(dir, `${mode}-state.db`)}` },
        meta: { accessToken: 'emulator-token', adAccountId: 'act_1000000000000001', graphUrl: emulator.url },
        sources: { warehouse: { type: 'duckdb', path: warehouse, stateSchema: 'audience_sync' } },
        syncs: [{ name: 'bench', source: 'warehouse', model: 'select * from customers', primaryKey: 'user_id', audience: { id: audienceId }, mode: 'mirror', defaultPhoneCountry: 'US', mapping: MAPPED, changeDetection: mode }],
      }),
    );
    configs[mode] = config;
  }
  const report = (label, r) =>
    console.log(`${label}: ${r.seconds.toFixed(2)} s, rows out of the warehouse ${fmt(r.counts.changeSetRows ?? r.counts.extracted)}, unchanged ${fmt(r.counts.unchanged)}, delivered ${fmt(r.counts.delivered)}, peak RSS ${fmt(r.rss)} MB, timings ${JSON.stringify(r.timings)}`);
  const results = {};
  for (const mode of process.env.BENCH_SKIP_FIRST_LOCAL ? ['warehouse'] : ['local', 'warehouse']) {
    results[mode] = { first: await sync(configs[mode]) };
    report(`${mode} first sync`, results[mode].first);
    results[mode].rerun = await sync(configs[mode]);
    report(`${mode} no-change rerun`, results[mode].rerun);
  }
  const stateSize = (mode) => statSync(join(dir, `${mode}-state.db`)).size / 2 ** 20;
  console.log(`local state after: local ${stateSize('local').toFixed(1)} MB, warehouse ${stateSize('warehouse').toFixed(1)} MB (the snapshot is in the DuckDB file)`);
  if (results.local) {
    console.log(`no-change rerun: warehouse / local = ${(results.warehouse.rerun.seconds / results.local.rerun.seconds).toFixed(3)}×; rows out ${(100 * (results.warehouse.rerun.counts.changeSetRows / ROWS)).toFixed(3)}%`);
    console.log(`first sync: warehouse / local = ${(results.warehouse.first.seconds / results.local.first.seconds).toFixed(3)}×`);
  }
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
