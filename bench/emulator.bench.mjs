// The emulator's own ingest rate: the ceiling the client+emulator throughput is compared to.
// 1,000,000 rows of a 15-key multi-key schema, posted as 100 JSON batches of 10,000 rows with a bare
// fetch loop (bodies serialized before the clock starts, no client logic). The emulator runs in a child
// process (its own core and event loop, like a real remote server) started from ../dist/emulator.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROWS = 1_000_000;
const BATCH = 10_000;
const SCHEMA = ['EXTERN_ID', 'EMAIL', 'PHONE', 'GEN', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'CT', 'ST', 'ZIP', 'COUNTRY', 'MADID'];
const TOKEN = 'emulator-token';
const ACCOUNT = '1000000000000001';

/** A 64-char lowercase hex "hash", unique per (key, value); attributes repeat across people like real ones. */
const hex = (key, value) => key.toString(16) + value.toString(16).padStart(63, '0');
const madid = (i) => {
  const h = i.toString(16).padStart(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
// GEN..COUNTRY (columns 3-13) take one of 97 attribute tuples, pre-serialized once.
const ATTRIBUTE_VARIANTS = 97;
const attributeJson = Array.from({ length: ATTRIBUTE_VARIANTS }, (_, v) =>
  SCHEMA.slice(3, 14)
    .map((_, k) => JSON.stringify(hex(k + 3, v)))
    .join(','),
);

/** One row as JSON text, built directly so preparing 1,000,000 rows takes seconds, not minutes. */
function rowJson(i) {
  return `["crm-${i}","${hex(1, i)}","${hex(2, i)}",${attributeJson[i % ATTRIBUTE_VARIANTS]},"${madid(i)}"]`;
}

function batchBody(b, sessionId) {
  const rows = [];
  for (let i = b * BATCH; i < (b + 1) * BATCH; i++) rows.push(rowJson(i));
  const session = { session_id: sessionId, batch_seq: b + 1, last_batch_flag: b === ROWS / BATCH - 1, estimated_num_total: ROWS };
  return Buffer.from(`{"payload":{"schema":${JSON.stringify(SCHEMA)},"is_raw":true,"data":[${rows.join(',')}]},"session":${JSON.stringify(session)}}`);
}

async function startChild() {
  const entry = fileURLToPath(new URL('../dist/emulator/index.js', import.meta.url));
  const script = `const { startEmulator } = await import(${JSON.stringify(entry)});
const emu = await startEmulator({ rateLimit: { budgetPerHour: 1e9 } });
process.stdout.write(emu.url + '\\n');
process.on('SIGTERM', () => emu.close().then(() => process.exit(0)));`;
  const child = spawn(process.execPath, ['--max-old-space-size=8192', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`emulator child exited with ${code}`)));
  });
  return { child, url };
}

/** CPU seconds (user + system) the emulator process has used so far (Linux), NaN where /proc is unavailable. */
function cpuSecondsOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Resident memory of the emulator process (Linux), 0 where /proc is unavailable. */
function rssOf(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

export async function run() {
  const { child, url } = await startChild();
  try {
    const headers = { Authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${url}/v25.0/act_${ACCOUNT}/customaudiences`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'bench', subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
    }).then((r) => r.json());
    const audienceId = created.id;

    const prepStarted = performance.now();
    const sessionId = 4242;
    const bodies = [];
    for (let b = 0; b < ROWS / BATCH; b++) bodies.push(batchBody(b, sessionId));
    const prepSecs = (performance.now() - prepStarted) / 1000;
    const bytes = bodies.reduce((s, b) => s + b.length, 0);

    const latencies = [];
    const cpuBefore = cpuSecondsOf(child.pid);
    const started = performance.now();
    for (const body of bodies) {
      const t0 = performance.now();
      const res = await fetch(`${url}/v25.0/${audienceId}/users`, { method: 'POST', headers, body });
      const reply = await res.json();
      if (res.status !== 200 || reply.num_invalid_entries !== 0) throw new Error(`batch failed: ${res.status} ${JSON.stringify(reply).slice(0, 300)}`);
      latencies.push(performance.now() - t0);
    }
    const secs = (performance.now() - started) / 1000;
    const cpuSecs = cpuSecondsOf(child.pid) - cpuBefore;
    const summary = await fetch(`${url}/_emulator/audiences/${audienceId}`).then((r) => r.json());
    if (summary.size !== ROWS) throw new Error(`expected ${ROWS} members, the emulator holds ${summary.size}`);
    const rss = rssOf(child.pid);
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(0);

    return {
      title: 'Graph API emulator: ingest ceiling (1,000,000 rows, 15-key schema, 10,000-row JSON batches, loopback)',
      rows: [
        { metric: 'ingest rate', value: `${Math.round(ROWS / secs).toLocaleString('en-US')} rows/s`, note: 'sequential raw fetch, one request in flight; emulator in a child process' },
        {
          metric: 'rows per emulator CPU-second',
          value: Number.isFinite(cpuSecs) ? `${Math.round(ROWS / cpuSecs).toLocaleString('en-US')} rows/s` : 'n/a',
          note: `${cpuSecs.toFixed(1)} CPU-s in the emulator process; steadier than wall time on a busy machine`,
        },
        { metric: 'wall time for 1,000,000 rows', value: `${secs.toFixed(1)} s`, note: `${ROWS / BATCH} requests` },
        { metric: 'request body size', value: `${(bytes / ROWS).toFixed(0)} B/row`, note: `${(bytes / 2 ** 20 / (ROWS / BATCH)).toFixed(1)} MiB per 10,000-row batch` },
        { metric: 'batch latency p50 / p95', value: `${pct(50)} / ${pct(95)} ms` },
        { metric: 'members held', value: summary.size.toLocaleString('en-US'), note: 'checked through /_emulator after the run' },
        { metric: 'emulator RSS after ingest', value: `${(rss / 2 ** 20).toFixed(0)} MiB` },
        { metric: 'body preparation (not timed)', value: `${prepSecs.toFixed(1)} s` },
      ],
    };
  } finally {
    child.kill('SIGTERM');
  }
}
