// Change detection inside the warehouse (`changeDetection: warehouse`) against local change detection,
// on the same model and the same emulator, each sync run by the real CLI in its own process (so its
// peak RSS is a user's). For a DuckDB file and a PostgreSQL server, in each mode: the first sync, a
// rerun with no change, a rerun with 1% of the rows changed, how many rows left the warehouse, the
// size of our local state after the first sync, and the peak RSS of every run. The warehouse figures
// are ratios to the local ones measured in the same run.
// Then the same runs at 1M rows over the Snowflake and BigQuery test servers (each in a child process),
// reporting the rows and bytes each run took out of the warehouse.
// BENCH_WAREHOUSE_ROWS resizes it (default 10M); BENCH_WAREHOUSE_ENGINES=duckdb,postgres picks engines;
// BENCH_WAREHOUSE_CLOUD_ROWS (default 1M; 0 skips) and BENCH_WAREHOUSE_CLOUD=snowflake,bigquery the cloud part.
import { fork } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { createSyntheticWarehouse } from './lib/warehouse.mjs';
import { startEmulatorChild } from './lib/emulator.mjs';
import { nextMessage } from './lib/child-messages.mjs';
import { createAudience, syncOnce as syncCli } from './lib/sync-world.mjs';

const ROWS = Number(process.env.BENCH_WAREHOUSE_ROWS ?? 10_000_000);
const ENGINES = (process.env.BENCH_WAREHOUSE_ENGINES ?? 'duckdb,postgres').split(',').filter(Boolean);
const CLOUD_ROWS = Number(process.env.BENCH_WAREHOUSE_CLOUD_ROWS ?? 1_000_000);
const CLOUD = (process.env.BENCH_WAREHOUSE_CLOUD ?? 'snowflake,bigquery').split(',').filter(Boolean);
const SQL_API_CHILD = new URL('./lib/sql-api-child.mjs', import.meta.url).pathname;
// Three keys: the comparison is between the two change detections, and the emulator holds every member in memory.
const MAPPED = { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' };
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const secs = (s) => `${s.toFixed(s < 10 ? 2 : 1)} s`;

async function withDuckDb(path, fn) {
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    return await fn(db);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

/** Each round changes another 1% of the rows (their email), so every mode sees the same kind of change. */
const changeSql = (round) => `update customers set email = 'r${round}.' || user_id || '@example.net' where user_id % 100 = ${round}`;

/** The model in a DuckDB file: the source settings and how to change 1% of it. */
async function duckdbModel(dir) {
  const path = join(dir, 'warehouse.duckdb');
  await createSyntheticWarehouse(path, ROWS, { seed: 11 });
  return {
    source: { type: 'duckdb', path },
    change: (round) => withDuckDb(path, async (db) => {
      await db.run(changeSql(round));
      await db.run('checkpoint');
    }),
    stop: async () => undefined,
  };
}

/** The same model loaded into a throw-away PostgreSQL server (through a CSV DuckDB writes). */
async function postgresModel(dir) {
  const { startPostgres } = await import('../dist/devtools/postgres.js');
  const server = await startPostgres();
  const duck = join(dir, 'staging.duckdb');
  await createSyntheticWarehouse(duck, ROWS, { seed: 11 });
  // The server runs as another user: it reads the CSV from a folder anyone can read.
  const csvDir = mkdtempSync(join(tmpdir(), 'audience-sync-bench-csv-'));
  chmodSync(csvDir, 0o755);
  const csv = join(csvDir, 'customers.csv');
  const columns = await withDuckDb(duck, async (db) => {
    await db.run(`copy customers to '${csv}' (header, delimiter ',')`);
    const reader = await db.runAndReadAll(`select column_name, data_type from information_schema.columns where table_name = 'customers' order by ordinal_position`);
    return reader.getRows();
  });
  chmodSync(csv, 0o644);
  rmSync(duck, { force: true });
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    const types = columns.map(([name, type]) => `"${name}" ${/INT/.test(type) ? 'bigint' : 'text'}`);
    await client.query(`create table customers (${types.join(', ')})`);
    await client.query(`copy customers from '${csv}' with (format csv, header true)`);
    await client.query('analyze customers');
  } finally {
    await client.end();
    rmSync(csvDir, { recursive: true, force: true });
  }
  return {
    source: { type: 'postgres', url: server.url },
    change: async (round) => {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      try {
        await c.query(changeSql(round));
        await c.query('vacuum analyze customers');
      } finally {
        await c.end();
      }
    },
    stop: () => server.stop(),
  };
}

function writeConfig(dir, url, audienceId, source, mode) {
  const config = join(dir, 'audience-sync.yml');
  writeFileSync(
    config,
    JSON.stringify({
      version: 1,
      state: { url: `sqlite://${join(dir, 'state.db')}` },
      meta: { accessToken: 'emulator-token', adAccountId: 'act_1000000000000001', graphUrl: url },
      sources: { warehouse: { ...source, ...(mode === 'warehouse' ? { stateSchema: 'audience_sync' } : {}) } },
      syncs: [{ name: 'bench', source: 'warehouse', model: 'select * from customers', primaryKey: 'user_id', audience: { id: audienceId }, mode: 'mirror', defaultPhoneCountry: 'US', mapping: MAPPED, changeDetection: mode }],
    }),
  );
  return config;
}

/** One CLI run of sync `bench`, with the rows that left the warehouse: the whole model locally, the change set in warehouse mode. */
async function syncOnce(config) {
  const run = await syncCli(config);
  // A figure of a run that did not finish its work (a journal it could not apply is only a warning) would flatter it.
  if (run.summary.status !== 'success' || run.summary.warnings.length > 0) throw new Error(`a bench run ended ${run.summary.status}: ${[run.summary.error, ...run.summary.warnings].filter(Boolean).join('; ')}`);
  return { ...run, rowsOut: run.summary.counts.changeSetRows ?? run.summary.counts.extracted };
}

function stateBytes(dir) {
  let bytes = 0;
  for (const f of ['state.db', 'state.db-wal']) if (existsSync(join(dir, f))) bytes += statSync(join(dir, f)).size;
  return bytes;
}

/** First sync, no-change rerun and 1%-changed rerun of one mode, against a fresh emulator and state. */
async function runMode(dir, model, mode, round) {
  return runModeMeasured(dir, model, mode, round, async () => undefined);
}

/** runMode, with `measure()` read after each run (a cloud server's rows and bytes sent since the last read). */
async function runModeMeasured(dir, model, mode, round, measure) {
  const emulator = await startEmulatorChild();
  try {
    mkdirSync(dir, { recursive: true });
    const config = writeConfig(dir, emulator.url, await createAudience(emulator.url), model.source, mode);
    await measure();
    const first = await syncOnce(config);
    first.sent = await measure();
    const state = stateBytes(dir);
    const same = await syncOnce(config);
    same.sent = await measure();
    await model.change(round);
    await measure();
    const changed = await syncOnce(config);
    changed.sent = await measure();
    return { first, same, changed, state, rss: Math.max(first.maxRssMb, same.maxRssMb, changed.maxRssMb) };
  } finally {
    await emulator.stop();
  }
}

/** A Snowflake or BigQuery test server in a child process holding `customers`, and what it sent. */
async function cloudModel(vendor) {
  const child = fork(SQL_API_CHILD, [vendor, String(CLOUD_ROWS), '10000'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (type) => nextMessage(child, type, `${vendor} server`);
  const { config } = await next('ready');
  const table = vendor === 'bigquery' ? 'crm.customers' : 'customers';
  return {
    source: config,
    change: async (round) => {
      const done = next('executed');
      child.send({ type: 'exec', sql: changeSql(round).replace('update customers', `update ${table}`) });
      const { error } = await done;
      if (error) throw new Error(`changing the ${vendor} model: ${error}`);
    },
    /** What the server sent since the last call. */
    transferred: async () => {
      const answer = next('transferred');
      child.send({ type: 'transferred', reset: true });
      return (await answer).figures;
    },
    stop: async () => child.disconnect(),
  };
}

async function runCloud(root, rows, headlines) {
  for (const vendor of CLOUD) {
    const model = await cloudModel(vendor);
    try {
      const local = await runModeMeasured(join(root, `${vendor}-local`), model, 'local', 1, model.transferred);
      const wh = await runModeMeasured(join(root, `${vendor}-warehouse`), model, 'warehouse', 2, model.transferred);
      const label = `${vendor} test server, ${fmt(CLOUD_ROWS)} rows`;
      const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MB`;
      for (const [figure, key] of [['first sync', 'first'], ['no-change rerun', 'same'], ['1%-changed rerun', 'changed']]) {
        const l = local[key];
        const w = wh[key];
        rows.push({
          metric: `${label}: ${figure}, rows / bytes out of the warehouse`,
          value: `${fmt(w.sent.rows)} rows, ${mb(w.sent.bytesOut)} (warehouse)`,
          note: `local: ${fmt(l.sent.rows)} rows, ${mb(l.sent.bytesOut)}; run ${secs(w.seconds)} against ${secs(l.seconds)} local; ${w.sent.statements} statements against ${l.sent.statements}`,
        });
        headlines.push({ figure: `warehouse change detection, ${label}: ${figure}, bytes out`, measured: mb(w.sent.bytesOut), floor: `${mb(l.sent.bytesOut)} local`, ratio: `${(w.sent.bytesOut / l.sent.bytesOut).toFixed(3)}×` });
      }
    } finally {
      await model.stop();
    }
  }
}

export async function run() {
  const rows = [];
  const headlines = [];
  const root = mkdtempSync(join(tmpdir(), 'audience-sync-bench-warehouse-'));
  try {
    for (const engine of ENGINES) {
      const dir = join(root, engine);
      mkdirSync(dir);
      const model = engine === 'duckdb' ? await duckdbModel(dir) : await postgresModel(dir);
      try {
        const local = await runMode(join(dir, 'local'), model, 'local', 1);
        const wh = await runMode(join(dir, 'warehouse'), model, 'warehouse', 2);
        const label = `${engine}, ${fmt(ROWS)} rows`;
        const ratio = (w, l) => w / l;
        const compare = (figure, w, l, goal, extra = '') => {
          rows.push({ metric: `${label}: ${figure}, local`, value: secs(l.seconds), note: `${fmt(l.rowsOut)} rows left the warehouse; peak RSS ${fmt(l.maxRssMb)} MB` });
          rows.push({ metric: `${label}: ${figure}, warehouse`, value: secs(w.seconds), note: `${ratio(w.seconds, l.seconds).toFixed(3)}× local (goal ${goal}); ${fmt(w.rowsOut)} rows left the warehouse${extra}; peak RSS ${fmt(w.maxRssMb)} MB` });
          headlines.push({ figure: `warehouse change detection, ${label}: ${figure}`, measured: secs(w.seconds), floor: `${secs(l.seconds)} local`, ratio: `${ratio(w.seconds, l.seconds).toFixed(3)}×`, goal });
        };
        compare('first sync', wh.first, local.first, '≤ 1.2×');
        const share = (wh.same.rowsOut / ROWS) * 100;
        compare('no-change rerun', wh.same, local.same, '≤ 0.1×', ` (${share.toFixed(3)}% of the model; goal ≤ 0.1%)`);
        headlines.push({ figure: `warehouse change detection, ${label}: rows out on a no-change rerun`, measured: fmt(wh.same.rowsOut), floor: `${fmt(local.same.rowsOut)} local`, ratio: `${share.toFixed(3)}%`, goal: '≤ 0.1%' });
        compare('1%-changed rerun', wh.changed, local.changed, '≤ 0.2×', ` (updated ${fmt(wh.changed.summary.counts.updated)})`);
        rows.push({ metric: `${label}: local state after the first sync`, value: `${(wh.state / 2 ** 20).toFixed(1)} MB warehouse mode`, note: `${(local.state / 2 ** 20).toFixed(1)} MB local mode` });
        headlines.push({ figure: `local state after the first sync, ${label}`, measured: `${(wh.state / 2 ** 20).toFixed(1)} MB`, floor: `${(local.state / 2 ** 20).toFixed(1)} MB local mode`, ratio: `${(wh.state / local.state).toFixed(3)}×`, goal: 'does not grow with the model' });
        // The goal is warehouse change detection's; local change detection's runs are the comparison's.
        rows.push({ metric: `${label}: peak RSS of any run`, value: `${fmt(wh.rss)} MB warehouse mode`, note: `local mode ${fmt(local.rss)} MB; goal < 400 MB in warehouse mode` });
        headlines.push({ figure: `peak RSS, ${label}, warehouse mode (first sync and both reruns)`, measured: `${fmt(wh.rss)} MB`, floor: `${fmt(local.rss)} MB local mode`, ratio: '—', goal: '< 400 MB' });
      } finally {
        await model.stop();
      }
    }
    if (CLOUD_ROWS > 0) await runCloud(root, rows, headlines);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return { title: 'Change detection in the warehouse against local change detection', rows, headlines };
}
