// The whole sync engine: a DuckDB model against the emulator (in its own process), each sync run by the
// real CLI (`audience-sync sync`) in a process of its own, so its peak RSS is what a user's would be. Figures: first full sync, a rerun
// with no change, one with 1% changed and one after a change of the identity rules that changed 1% of the cells,
// each against a bare DuckDB scan of the mapped columns (the floor), and peak RSS at 1M and 5M rows. BENCH_ENGINE_ROWS / BENCH_ENGINE_BIG_ROWS resize it
// (BENCH_ENGINE_BIG_ROWS=0 skips the big run).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { DuckDBInstance } from '@duckdb/node-api';
import { MATCH_KEYS, sha256Hex } from '../dist/identity/index.js';
import { startEmulatorChild } from './lib/emulator.mjs';
import { createSyncWorld as world, MAPPED, syncOnce } from './lib/sync-world.mjs';

const ROWS = Number(process.env.BENCH_ENGINE_ROWS ?? 1_000_000);
const BIG_ROWS = Number(process.env.BENCH_ENGINE_BIG_ROWS ?? 5_000_000);
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function bareScanSeconds(path) {
  const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const db = await instance.connect();
  const started = performance.now();
  const result = await db.stream(`select ${[...new Set(Object.values(MAPPED))].join(', ')} from customers`);
  let rows = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    chunk.getRows();
    rows += chunk.rowCount;
  }
  const seconds = (performance.now() - started) / 1000;
  db.closeSync();
  instance.closeSync();
  return { seconds, rows };
}

/**
 * What the state looks like to a release whose identity rules changed (IDENTITY_RULES_VERSION moved): every stored
 * fingerprint was made with the old rules, so none matches, and the old rules gave 1% of the records another CT cell
 * (as v1 hashed København as "københavn"). The next run must re-encode every record and send only that 1%.
 */
function rulesChangedState(statePath) {
  const ct = MATCH_KEYS.filter((k) => k in MAPPED).indexOf('CT');
  const db = new Database(statePath);
  try {
    db.prepare(`update records set fingerprint = 'older-rules:' || pk`).run();
    // Keys are SHA-256 hex: those below 028f5c are 1% of them (0x028f5c / 0x1000000).
    return db.prepare(`update records set cells = json_set(cells, '$[${ct}]', ?) where pk < '028f5c'`).run(sha256Hex('a city the old rules spelled differently')).changes;
  } finally {
    db.close();
  }
}

async function changeOnePercent(path) {
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  await db.run(`update customers set email = 'changed.' || user_id || '@example.net' where user_id % 100 = 0`);
  await db.run('checkpoint');
  db.closeSync();
  instance.closeSync();
}

export async function run() {
  const emulator = await startEmulatorChild();
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-bench-engine-'));
  const rows = [];
  try {
    const { warehouse, config } = await world(join(dir), emulator.url, ROWS);
    const floor = await bareScanSeconds(warehouse);
    rows.push({ metric: `bare DuckDB scan of the mapped columns (${fmt(ROWS)} rows) — floor`, value: `${floor.seconds.toFixed(2)} s`, note: `${fmt(floor.rows / floor.seconds)} rows/s` });

    const first = await syncOnce(config);
    rows.push({ metric: `first full sync (${fmt(ROWS)} rows, 8 keys, mirror)`, value: `${first.seconds.toFixed(1)} s`, note: `${fmt(ROWS / first.seconds)} rows/s end to end; delivered ${fmt(first.summary.counts.delivered)}; peak RSS ${fmt(first.maxRssMb)} MB` });

    const same = await syncOnce(config);
    rows.push({ metric: 'rerun, no change', value: `${same.seconds.toFixed(2)} s`, note: `${(same.seconds / floor.seconds).toFixed(2)}x the bare scan (goal ≤ 5x); unchanged ${fmt(same.summary.counts.unchanged)}; peak RSS ${fmt(same.maxRssMb)} MB` });

    await changeOnePercent(warehouse);
    const changed = await syncOnce(config);
    rows.push({ metric: 'rerun, 1% changed', value: `${changed.seconds.toFixed(2)} s`, note: `${(changed.seconds / floor.seconds).toFixed(2)}x the bare scan; updated ${fmt(changed.summary.counts.updated)}, delivered ${fmt(changed.summary.counts.delivered)}; peak RSS ${fmt(changed.maxRssMb)} MB` });

    const oldCells = rulesChangedState(join(dirname(config), 'state.db'));
    const rules = await syncOnce(config);
    const c = rules.summary.counts;
    rows.push({
      metric: 'rerun after an identity rules change (1% of cells changed)',
      value: `${rules.seconds.toFixed(2)} s`,
      note: `${(rules.seconds / floor.seconds).toFixed(2)}x the bare scan; re-encoded ${fmt(c.encoded)}, unchanged ${fmt(c.unchanged)}, updated ${fmt(c.updated)} of the ${fmt(oldCells)} whose cells changed, delivered ${fmt(c.delivered)} (mirror: the old cells out, the new in); peak RSS ${fmt(rules.maxRssMb)} MB`,
    });
    if (c.updated !== oldCells) throw new Error(`a rules change sent ${c.updated} records, not the ${oldCells} whose cells changed`);
    rows.push({ metric: `peak RSS, ${fmt(ROWS)} rows`, value: `${fmt(Math.max(first.maxRssMb, same.maxRssMb, changed.maxRssMb, rules.maxRssMb))} MB`, note: 'goal < 400 MB' });

    if (BIG_ROWS > 0) {
      const bigDir = join(dir, 'big');
      mkdirSync(bigDir);
      const big = await world(bigDir, emulator.url, BIG_ROWS);
      const bigFirst = await syncOnce(big.config);
      const bigSame = await syncOnce(big.config);
      rows.push({ metric: `peak RSS, ${fmt(BIG_ROWS)} rows`, value: `${fmt(Math.max(bigFirst.maxRssMb, bigSame.maxRssMb))} MB`, note: `first sync ${bigFirst.seconds.toFixed(0)} s (${fmt(BIG_ROWS / bigFirst.seconds)} rows/s), no-change rerun ${bigSame.seconds.toFixed(1)} s; goal < 400 MB` });
    }
  } finally {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { title: 'Sync engine: DuckDB model → emulator (mirror)', rows };
}
