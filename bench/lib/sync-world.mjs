// A bench's sync world: a synthetic DuckDB warehouse, a SQLite state and a config pointing at an emulator,
// each sync run by the real CLI (`audience-sync sync --json`) in a process of its own, so its peak RSS and
// its timings are what a user's would be.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSyntheticWarehouse } from './warehouse.mjs';

const execFileAsync = promisify(execFile);
const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
// Preloaded into the CLI: writes the process's peak RSS to CHAOS_RSS_FILE when it exits.
const RSS_PROBE = new URL('../../dist/chaos/rss-probe.js', import.meta.url).pathname;

export const MAPPED = { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', LN: 'last_name', CT: 'city', ZIP: 'zip', COUNTRY: 'country' };

export async function createAudience(url) {
  const res = await fetch(`${url}/v25.0/act_1000000000000001/customaudiences`, {
    method: 'POST',
    headers: { authorization: 'Bearer emulator-token', 'content-type': 'application/json' },
    body: JSON.stringify({ name: `bench ${Date.now()}`, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
  });
  return (await res.json()).id;
}

/** A `rows`-row warehouse in `dir` and a config of one mirror sync `bench` from it into a new audience of the emulator at `url`. */
export async function createSyncWorld(dir, url, rows) {
  const warehouse = join(dir, 'warehouse.duckdb');
  await createSyntheticWarehouse(warehouse, rows, { seed: 11 });
  const audienceId = await createAudience(url);
  const config = join(dir, 'audience-sync.yml');
  writeFileSync(
    config,
    JSON.stringify({
      version: 1,
      state: { url: `sqlite://${join(dir, 'state.db')}` },
      meta: { accessToken: 'emulator-token', adAccountId: 'act_1000000000000001', graphUrl: url },
      sources: { warehouse: { type: 'duckdb', path: warehouse } },
      syncs: [{ name: 'bench', source: 'warehouse', model: 'select * from customers', primaryKey: 'user_id', audience: { id: audienceId }, mode: 'mirror', defaultPhoneCountry: 'US', mapping: MAPPED }],
    }),
  );
  return { warehouse, config, audienceId };
}

/** Runs sync `bench` once through the CLI; `seconds` is the run's own time (lock to commit), as the run history records it. */
export async function syncOnce(config) {
  const rssFile = `${config}.rss`;
  rmSync(rssFile, { force: true });
  const { stdout } = await execFileAsync(process.execPath, ['--import', RSS_PROBE, CLI, 'sync', 'bench', '--json', '--force', '-c', config], {
    maxBuffer: 1 << 26,
    env: { ...process.env, CHAOS_RSS_FILE: rssFile },
  });
  const summary = JSON.parse(stdout);
  if (summary.status !== 'success') throw new Error(`bench sync ended ${summary.status}: ${summary.error}`);
  // Process start-up is not the engine's.
  const seconds = (Date.parse(summary.finishedAt) - Date.parse(summary.startedAt)) / 1000;
  return { seconds, maxRssMb: Number(readFileSync(rssFile, 'utf8').trim()), summary };
}
