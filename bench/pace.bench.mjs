// Delivery at Meta's pace: a first sync of a DuckDB model (1M rows, 8 keys, mirror) into an emulator that takes
// 2 s to answer each upload request, as Meta does (flag uploadLatencyMs), run by the real CLI. The floor is the
// time spent waiting for Meta: upload requests × the latency. While one request is in flight the engine cuts
// the next batch, writes its intents and commits the previous one, so the run should take little more than the
// floor (goal ≤ 1.15×). BENCH_PACE_ROWS / BENCH_PACE_LATENCY_MS resize it; `node bench/run.mjs pace` runs it alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatorChild } from './lib/emulator.mjs';
import { createSyncWorld, syncOnce } from './lib/sync-world.mjs';

const ROWS = Number(process.env.BENCH_PACE_ROWS ?? 1_000_000);
const LATENCY_MS = Number(process.env.BENCH_PACE_LATENCY_MS ?? 2000);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** The emulator's upload requests (add batches), from its request log. */
async function uploads(url) {
  const res = await fetch(`${url}/_emulator/requests`);
  const { data } = await res.json();
  return data.filter((e) => e.method === 'POST' && e.path.endsWith('/users'));
}

export async function run() {
  const emulator = await startEmulatorChild({ flags: { uploadLatencyMs: LATENCY_MS } });
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-bench-pace-'));
  try {
    const { config } = await createSyncWorld(dir, emulator.url, ROWS);
    const first = await syncOnce(config);
    const sent = await uploads(emulator.url);
    if (first.summary.counts.delivered !== ROWS) throw new Error(`the first sync delivered ${first.summary.counts.delivered} of ${ROWS} rows`);
    const waitingMs = sent.length * LATENCY_MS;
    const t = first.summary.timings;
    // From the first upload's arrival to the last one's answer: the delivery as Meta saw it.
    const span = Math.max(...sent.map((e) => e.endedAt)) - Math.min(...sent.map((e) => e.startedAt));
    const busy = sent.reduce((n, e) => n + (e.endedAt - e.startedAt), 0);
    const ratio = (first.seconds * 1000) / waitingMs;
    // Where the run's time beyond the wait went: the model is read and planned in full before anything is sent.
    const beyond = first.seconds * 1000 - waitingMs;
    const beforeFirstUpload = t.readModelMs + t.planMs;
    const deliveryBeyond = t.addMs + t.commitMs - waitingMs;
    const figure = `first sync at ${LATENCY_MS / 1000} s per upload request (${fmt(ROWS)} rows, ${sent.length} requests)`;
    return {
      title: `Delivery at Meta's pace: first sync of ${fmt(ROWS)} rows, ${LATENCY_MS} ms per upload request (emulator flag uploadLatencyMs)`,
      rows: [
        { metric: `time waiting for Meta (${sent.length} upload requests × ${LATENCY_MS} ms) — floor`, value: secs(waitingMs), note: `${fmt(sent.reduce((n, e) => n + (e.rows ?? 0), 0) / sent.length)} rows per request` },
        { metric: figure, value: `${first.seconds.toFixed(1)} s`, note: `${ratio.toFixed(3)}× the floor (goal ≤ 1.15×); peak RSS ${fmt(first.maxRssMb)} MB` },
        { metric: 'phases of that run', value: `read model ${secs(t.readModelMs)} · plan ${secs(t.planMs)} · add ${secs(t.addMs)} · commit ${secs(t.commitMs)}`, note: 'commit counts only state writes the run waited for (those done while a request was in flight are the add phase\'s)' },
        {
          metric: 'the run beyond the wait',
          value: secs(beyond),
          note: `read model + plan ${secs(beforeFirstUpload)} (all before the first upload); delivery beyond Meta's time ${secs(deliveryBeyond)}; the rest (lock, audience check, run history) ${secs(beyond - beforeFirstUpload - deliveryBeyond)}`,
        },
        { metric: 'delivery as Meta saw it', value: secs(span), note: `first upload's arrival to the last one's answer; requests in flight ${secs(busy)} of it (${((busy / span) * 100).toFixed(1)}%)` },
      ],
      headlines: [{ figure, measured: `${first.seconds.toFixed(1)} s`, floor: `${secs(waitingMs)} waiting for Meta`, ratio: `${ratio.toFixed(2)}× the wait`, goal: '≤ 1.15×' }],
    };
  } finally {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
