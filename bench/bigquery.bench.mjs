// The BigQuery adapter's cost per row against the bare parsing of the same pages: the local
// BigQuery test server (test/support/bigquery-server.ts) runs in a child process, so this process
// only does what a client does. The same query (the adapter's, ordered by the key's hash) is read
//   - by Source.stream (jobs.query, getQueryResults page by page, rows converted to objects), and
//   - by a bare REST loop: fetch each page and JSON.parse it, nothing else;
// and the page texts are also JSON.parsed alone. Client CPU (user + system) is what is compared:
// both reads wait on the same server, whose time is not the adapter's.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bigQueryStreamSql, openBigQuery } from '../dist/sources/bigquery.js';
import { resolveGoogleCredentials } from '../dist/sources/google-auth.js';
import { transpiledModule } from './lib/ts-module.mjs';

const ROWS = Number(process.env.BIGQUERY_BENCH_ROWS ?? 200_000);
const ROUNDS = 3;
const PAGE_ROWS = 10_000;
const MODEL = 'select * from crm.customers';
const COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'country', 'value'];
const STREAM = { orderByKey: 'user_id', keyForm: 'sha256', columns: COLUMNS };

/** The test server in a child process, with `rows` customers; resolves with its URL and a key. */
async function startServerChild(rows) {
  const code = `
    const { startBigQueryServer } = await import(${JSON.stringify(transpiledModule('test/support/bigquery-server.ts'))});
    const server = await startBigQueryServer({ maxWaitMs: 10_000 });
    await server.createDataset('crm');
    await server.sql(\`create table crm.customers as select (1000000000000 + i)::bigint as user_id,
      'user' || i || '@example.com' as email, '+1 650 ' || (2000000 + i) as phone,
      case when i % 3 = 0 then 'José' else 'Mary-Ann' end as first_name, 'US' as country, (i % 1000) / 10.0 as value
      from range(${rows}) t(i)\`);
    process.stdout.write(JSON.stringify({ url: server.url, projectId: server.projectId, key: server.serviceAccount() }) + '\\n');
    process.stdin.on('end', async () => { await server.close(); process.exit(0); });
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('..', import.meta.url)) });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`BigQuery server child exited with ${c} before printing its URL`)));
  });
  const stop = () => new Promise((resolve) => {
    child.once('exit', resolve);
    child.stdin.end();
  });
  return { ...JSON.parse(line), stop };
}

/** Client CPU (ms) and wall time (s) of `fn`, and what it returned. */
async function measure(fn) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  return { result, cpuMs: (used.user + used.system) / 1000, seconds: (performance.now() - started) / 1000 };
}

async function viaAdapter(source) {
  let n = 0;
  for await (const chunk of source.stream(MODEL, STREAM)) n += chunk.length;
  return n;
}

/** The same protocol as the adapter, with nothing done to a page but JSON.parse; `texts` keeps the pages. */
async function viaBareRest(server, token, texts) {
  const base = `${server.url}/bigquery/v2/projects/${server.projectId}`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const get = async (url, init) => {
    const text = await (await fetch(url, init)).text();
    texts?.push(text);
    return JSON.parse(text);
  };
  const body = { query: bigQueryStreamSql(MODEL, STREAM), useLegacySql: false, formatOptions: { useInt64Timestamp: true }, maxResults: PAGE_ROWS, timeoutMs: 2000, requestId: randomUUID() };
  let page = await get(`${base}/queries`, { method: 'POST', headers, body: JSON.stringify(body) });
  const job = page.jobReference;
  const results = (extra) => `${base}/queries/${job.jobId}?maxResults=${PAGE_ROWS}&formatOptions.useInt64Timestamp=true&location=${job.location}${extra}`;
  while (!page.jobComplete) page = await get(results('&timeoutMs=10000'), { headers });
  let n = page.rows?.length ?? 0;
  while (page.pageToken) {
    page = await get(results(`&pageToken=${encodeURIComponent(page.pageToken)}`), { headers });
    n += page.rows?.length ?? 0;
  }
  return n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const usPerRow = (ms) => (ms * 1000) / ROWS;

export async function run() {
  const server = await startServerChild(ROWS);
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-bigquery-bench-'));
  try {
    const keyFile = join(dir, 'key.json');
    writeFileSync(keyFile, JSON.stringify(server.key));
    const token = await resolveGoogleCredentials({ keyFile }).accessToken();
    const source = await openBigQuery({ projectId: server.projectId, keyFile, apiEndpoint: server.url }, 'bench');
    const texts = [];
    try {
      // Warm-up of both paths (JIT, connections); the bare read keeps the page texts for the parse floor.
      await viaAdapter(source);
      await viaBareRest(server, token, texts);
      const adapter = [];
      const bare = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which goes first, so neither always runs on a warmer server.
        const pair = round % 2 === 0 ? [['bare', () => viaBareRest(server, token)], ['adapter', () => viaAdapter(source)]] : [['adapter', () => viaAdapter(source)], ['bare', () => viaBareRest(server, token)]];
        for (const [name, fn] of pair) {
          const m = await measure(fn);
          if (m.result !== ROWS) throw new Error(`${name}: read ${m.result} rows, expected ${ROWS}`);
          (name === 'adapter' ? adapter : bare).push(m);
        }
      }
      const parse = [];
      for (let round = 0; round < ROUNDS; round++) {
        parse.push(
          (
            await measure(async () => {
              let n = 0;
              for (const t of texts) n += JSON.parse(t).rows?.length ?? 0;
              return n;
            })
          ).cpuMs,
        );
      }
      const adapterCpu = median(adapter.map((m) => m.cpuMs));
      const bareCpu = median(bare.map((m) => m.cpuMs));
      const parseCpu = median(parse);
      const ratio = adapterCpu / bareCpu;
      const size = `${ROWS.toLocaleString('en-US')} rows, ${COLUMNS.length} columns + key hash, ${PAGE_ROWS.toLocaleString('en-US')}-row pages`;
      const rows = [
        { metric: 'adapter (Source.stream): client CPU per row', value: `${usPerRow(adapterCpu).toFixed(2)} µs`, note: `median of ${ROUNDS}; ${median(adapter.map((m) => m.seconds)).toFixed(2)} s wall with the server's work` },
        { metric: 'bare fetch + JSON.parse of the same pages: client CPU per row', value: `${usPerRow(bareCpu).toFixed(2)} µs`, note: `median of ${ROUNDS}; ${median(bare.map((m) => m.seconds)).toFixed(2)} s wall` },
        { metric: 'JSON.parse of the page texts alone: CPU per row', value: `${usPerRow(parseCpu).toFixed(2)} µs`, note: `${texts.length} pages, ${(texts.reduce((s, t) => s + t.length, 0) / 2 ** 20).toFixed(1)} MiB` },
        { metric: 'adapter / bare fetch + parse', value: `${ratio.toFixed(2)}×`, note: 'goal ≤ 1.5×' },
        { metric: 'adapter / JSON.parse alone', value: `${(adapterCpu / parseCpu).toFixed(2)}×`, note: 'includes the HTTP client' },
      ];
      return {
        title: `BigQuery source: adapter cost per row against bare page parsing (${size})`,
        rows,
        headlines: [
          {
            figure: 'BigQuery adapter: client CPU per row',
            measured: `${usPerRow(adapterCpu).toFixed(2)} µs/row`,
            floor: `${usPerRow(bareCpu).toFixed(2)} µs/row bare fetch + JSON.parse of the same pages`,
            ratio: `${ratio.toFixed(2)}× the floor`,
            goal: '≤ 1.5×',
          },
        ],
      };
    } finally {
      await source.close();
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
