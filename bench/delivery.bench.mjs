// Client + emulator throughput over loopback: a 1,000,000-row add with a 15-key schema through
// GraphClient.upload, against the emulator's raw ingest rate (a bare fetch loop posting pre-serialized
// 10k-row bodies) as the ceiling. The emulator runs in a child process so client and server each get a thread.
import { createHash } from 'node:crypto';
import { GraphClient } from '../dist/meta/index.js';
import { startEmulatorChild } from './lib/emulator.mjs';

const TOTAL_ROWS = Number(process.env.DELIVERY_BENCH_ROWS ?? 1_000_000);
const BATCH_ROWS = 10_000;
const SCHEMA = ['EXTERN_ID', 'EMAIL', 'PHONE', 'GEN', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'CT', 'ST', 'ZIP', 'COUNTRY', 'MADID'];

const sha = (s) => createHash('sha256').update(s).digest('hex');

/** Rows with unique person keys (EXTERN_ID, EMAIL, PHONE, MADID) and attributes drawn from small pools, like real data. */
function buildRows(n, prefix) {
  const pool = (name, size) => Array.from({ length: size }, (_, i) => sha(`${name}-${i}`));
  const gen = pool('gen', 2);
  const years = pool('doby', 80);
  const months = pool('dobm', 12);
  const days = pool('dobd', 31);
  const last = pool('ln', 5000);
  const first = pool('fn', 3000);
  const initials = pool('fi', 26);
  const cities = pool('ct', 2000);
  const states = pool('st', 50);
  const zips = pool('zip', 10000);
  const countries = pool('country', 30);
  const rows = new Array(n);
  for (let i = 0; i < n; i++) {
    const h = sha(`${prefix}-${i}`);
    const madid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
    rows[i] = [
      `${prefix}-${i}`, h, sha(`phone-${prefix}-${i}`), gen[i % 2], years[i % 80], months[i % 12], days[i % 31],
      last[i % 5000], first[i % 3000], initials[i % 26], cities[i % 2000], states[i % 50], zips[i % 10000], countries[i % 30], madid,
    ];
  }
  return rows;
}

/** Posts pre-serialized bodies one after another, as the client does; returns the elapsed ms. */
async function rawIngest(url, audienceId, bodies) {
  const started = performance.now();
  for (const body of bodies) {
    const res = await fetch(`${url}/v25.0/${audienceId}/users`, {
      method: 'POST',
      headers: { authorization: 'Bearer emulator-token', 'content-type': 'application/json' },
      body,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`raw ingest got HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return performance.now() - started;
}

function serializeBatches(rows, sessionId) {
  const bodies = [];
  const count = Math.ceil(rows.length / BATCH_ROWS);
  for (let i = 0; i < count; i++) {
    const data = rows.slice(i * BATCH_ROWS, (i + 1) * BATCH_ROWS);
    const session = { session_id: sessionId, batch_seq: i + 1, last_batch_flag: i === count - 1, estimated_num_total: rows.length };
    bodies.push(Buffer.from(JSON.stringify({ payload: { schema: SCHEMA, is_raw: true, data }, session })));
  }
  return bodies;
}

const ACCOUNT = '1000000000000001';
// 10k-row batches on both sides, so the ratio compares like with like (the default 8 MB budget
// would cut this ~9 MB-per-10k-row schema into 9k-row batches).
const clientFor = (url) => new GraphClient({ accessToken: 'emulator-token', graphUrl: url, maxBatchBytes: 12 * 1024 * 1024 });

/**
 * Runs `measure` against a fresh emulator child (so neither run inherits the other's million members),
 * after a small warm-up upload that gets both processes' JIT going. Returns elapsed ms of `measure`.
 */
async function onFreshEmulator(rows, measure) {
  const emu = await startEmulatorChild();
  try {
    const client = clientFor(emu.url);
    const warm = await client.createCustomAudience(ACCOUNT, { name: 'bench warm-up' });
    await client.upload('add', warm.id, SCHEMA, rows.slice(0, 20_000));
    await client.deleteAudience(warm.id);
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'bench' });
    const started = performance.now();
    await measure(emu.url, client, id);
    const ms = performance.now() - started;
    const size = (await client.getAudience(id, ['approximate_count_lower_bound'])).approximateCountLowerBound;
    if (size !== rows.length) throw new Error(`the emulator holds ${size} members, expected ${rows.length}`);
    return ms;
  } finally {
    await emu.stop();
  }
}

export async function run() {
  const rows = buildRows(TOTAL_ROWS, 'p');
  const bodies = serializeBatches(rows, 4242);
  const bodyBytes = bodies.reduce((n, b) => n + b.length, 0);

  const rawMs = await onFreshEmulator(rows, (url, _client, id) => rawIngest(url, id, bodies));
  let batches = 0;
  const clientMs = await onFreshEmulator(rows, async (_url, client, id) => {
    const summary = await client.upload('add', id, SCHEMA, rows, { estimatedTotal: rows.length, onBatch: () => void batches++ });
    if (summary.rows !== rows.length || summary.numInvalidEntries !== 0) throw new Error(`client upload incomplete: ${JSON.stringify(summary)}`);
  });

  const clientRate = rows.length / (clientMs / 1000);
  const rawRate = rows.length / (rawMs / 1000);
  return {
    title: `Delivery: GraphClient → emulator over loopback (${rows.length.toLocaleString('en-US')} rows, ${SCHEMA.length}-key schema)`,
    rows: [
      { metric: 'client upload rows/s', value: Math.round(clientRate).toLocaleString('en-US'), note: `${(clientMs / 1000).toFixed(1)} s, ${batches} batches of ≤10k rows, one session` },
      { metric: 'emulator raw ingest rows/s (ceiling)', value: Math.round(rawRate).toLocaleString('en-US'), note: `bare fetch loop, ${bodies.length} pre-serialized bodies of ${(bodyBytes / bodies.length / 2 ** 20).toFixed(1)} MiB` },
      { metric: 'client / ceiling', value: (clientRate / rawRate).toFixed(2), note: 'share of the emulator ingest rate the client reaches (each run on a fresh emulator child)' },
      { metric: 'client payload MB/s', value: (bodyBytes / 2 ** 20 / (clientMs / 1000)).toFixed(1), note: 'serialized JSON sent per second' },
    ],
  };
}
