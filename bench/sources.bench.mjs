// The HTTP sources' own cost: for BigQuery, Snowflake and Databricks, the client CPU time per row of
// reading a model through Source.stream (the engine's read: mapped columns, ordered by key hash)
// against the floor, fetching the same pages from the same local API server and JSON.parse-ing them,
// nothing else. The server runs in a child process, so CPU time here is the client's alone. Goal: ≤ 1.5×.
// Then, per source, peak RSS of a process that only streams a big model (SOURCES_BENCH_RSS_ROWS, default
// 5,000,000; 0 skips it) through Source.stream: the model must stream, not be held. Goal: < 400 MB.
import { execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolveGoogleCredentials } from '../dist/sources/google-auth.js';
import { openSource } from '../dist/sources/index.js';
import { BENCH_COLUMNS, BENCH_MODEL } from './lib/sources-model.mjs';
import { nextMessage } from './lib/child-messages.mjs';

const ROWS = Number(process.env.SOURCES_BENCH_ROWS ?? 200_000);
const PAGE_ROWS = Number(process.env.SOURCES_BENCH_PAGE_ROWS ?? 10_000);
const ROUNDS = Number(process.env.SOURCES_BENCH_ROUNDS ?? 3);
const RSS_ROWS = Number(process.env.SOURCES_BENCH_RSS_ROWS ?? 5_000_000);
const MODEL = BENCH_MODEL;
const COLUMNS = BENCH_COLUMNS;
const CHILD = fileURLToPath(new URL('./lib/sql-api-child.mjs', import.meta.url));
const STREAM_CHILD = fileURLToPath(new URL('./lib/source-stream-child.mjs', import.meta.url));
const execFileAsync = promisify(execFile);
const fmt = (n) => Math.round(n).toLocaleString('en-US');

function startChild(vendor, rows = ROWS) {
  const child = fork(CHILD, [vendor, String(rows), String(PAGE_ROWS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (type) => nextMessage(child, type, `${vendor} server`);
  return {
    ready: next('ready'),
    async lastStatement() {
      const answer = next('statement');
      child.send({ type: 'last-statement' });
      return (await answer).sql;
    },
    stop: () => child.disconnect(),
  };
}

/** CPU microseconds (user + system) this process spends in `fn`, and what it returned. */
async function cpu(fn) {
  const before = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(before);
  return { value, micros: used.user + used.system };
}

const json = async (response) => JSON.parse(await response.text());
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function viaSource(config) {
  const source = await openSource(config, { name: 'bench' });
  try {
    let n = 0;
    for await (const chunk of source.stream(MODEL, { columns: COLUMNS, orderByKey: 'user_id', keyForm: 'sha256' })) n += chunk.length;
    return n;
  } finally {
    await source.close();
  }
}

/** BigQuery floor: jobs.query, then each getQueryResults page fetched and JSON.parse'd. */
async function bigqueryRaw(config, sql) {
  const token = await resolveGoogleCredentials({ keyFile: config.keyFile }).accessToken();
  const base = `${config.apiEndpoint}/bigquery/v2/projects/${config.projectId}`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const body = { query: sql, useLegacySql: false, formatOptions: { useInt64Timestamp: true }, maxResults: PAGE_ROWS, timeoutMs: 2000, defaultDataset: { projectId: config.projectId, datasetId: config.dataset } };
  let page = await json(await fetch(`${base}/queries`, { method: 'POST', headers, body: JSON.stringify(body) }));
  const job = page.jobReference;
  const results = (extra) => `${base}/queries/${job.jobId}?maxResults=${PAGE_ROWS}&formatOptions.useInt64Timestamp=true&location=${job.location}${extra}`;
  while (!page.jobComplete) page = await json(await fetch(results('&timeoutMs=10000'), { headers }));
  let n = page.rows?.length ?? 0;
  while (page.pageToken) {
    page = await json(await fetch(results(`&pageToken=${encodeURIComponent(page.pageToken)}`), { headers }));
    n += page.rows?.length ?? 0;
  }
  return n;
}

/** Snowflake floor: submit, poll, then each partition fetched and JSON.parse'd. */
async function snowflakeRaw(config, sql) {
  const headers = { Authorization: `Bearer ${config.token}`, 'X-Snowflake-Authorization-Token-Type': config.tokenType, 'User-Agent': 'bench', Accept: 'application/json' };
  let response = await fetch(`${config.url}/api/v2/statements?async=true`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ statement: sql, warehouse: config.warehouse, role: config.role, database: config.database, schema: config.schema }),
  });
  let body = await json(response);
  for (let polls = 0; response.status === 202; polls++) {
    await pause(Math.min(1500, 25 * 1.5 ** polls));
    response = await fetch(`${config.url}${body.statementStatusUrl}`, { headers });
    body = await json(response);
  }
  let n = body.data.length;
  for (let i = 1; i < body.resultSetMetaData.partitionInfo.length; i++) {
    n += (await json(await fetch(`${config.url}/api/v2/statements/${body.statementHandle}?partition=${i}`, { headers }))).data.length;
  }
  return n;
}

/** Databricks floor: submit, poll, then each chunk's external link fetched and JSON.parse'd. */
async function databricksRaw(config, sql) {
  const headers = { Authorization: `Bearer ${config.token}`, 'User-Agent': 'bench', Accept: 'application/json' };
  let body = await json(
    await fetch(`${config.url}/api/2.0/sql/statements`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ statement: sql, warehouse_id: config.warehouseId, catalog: config.catalog, schema: config.schema, wait_timeout: '0s', disposition: 'EXTERNAL_LINKS', format: 'JSON_ARRAY' }),
    }),
  );
  if (!body.status) throw new Error(`databricks floor: ${JSON.stringify(body)}`);
  for (let polls = 0; body.status.state !== 'SUCCEEDED'; polls++) {
    await pause(Math.min(1500, 25 * 1.5 ** polls));
    body = await json(await fetch(`${config.url}/api/2.0/sql/statements/${body.statement_id}`, { headers }));
  }
  let n = 0;
  let data = body.result;
  for (let i = 0; i < body.manifest.total_chunk_count; i++) {
    if (i > 0) data = await json(await fetch(`${config.url}/api/2.0/sql/statements/${body.statement_id}/result/chunks/${i}`, { headers }));
    n += (await json(await fetch(data.external_links[0].external_link))).length;
  }
  return n;
}

async function measure(vendor, raw) {
  const child = startChild(vendor);
  try {
    const { config } = await child.ready;
    // A first adapter read warms the code paths and tells the floor which statement to send.
    if ((await viaSource(config)) !== ROWS) throw new Error(`${vendor}: the source read the wrong number of rows`);
    const sql = await child.lastStatement();
    const ratios = [];
    const adapter = [];
    const floor = [];
    for (let round = 0; round < ROUNDS; round++) {
      const a = await cpu(() => viaSource(config));
      const f = await cpu(() => raw(config, sql));
      if (a.value !== ROWS || f.value !== ROWS) throw new Error(`${vendor}: read ${a.value} / ${f.value} rows, expected ${ROWS}`);
      adapter.push(a.micros / ROWS);
      floor.push(f.micros / ROWS);
      ratios.push(a.micros / f.micros);
    }
    const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    return { adapter: median(adapter), floor: median(floor), ratio: median(ratios) };
  } finally {
    child.stop();
  }
}

/** Peak RSS and rows/s of a process of its own streaming RSS_ROWS rows through the vendor's source. */
async function measureRss(vendor) {
  const child = startChild(vendor, RSS_ROWS);
  try {
    const { config } = await child.ready;
    const { stdout } = await execFileAsync(process.execPath, [STREAM_CHILD, JSON.stringify(config)], { maxBuffer: 1 << 20 });
    const m = JSON.parse(stdout.trim().split('\n').at(-1));
    if (m.rows !== RSS_ROWS) throw new Error(`${vendor}: the streaming process read ${m.rows} rows, expected ${RSS_ROWS}`);
    return m;
  } finally {
    child.stop();
  }
}

export async function run() {
  const rows = [];
  const headlines = [];
  for (const [vendor, name, raw, floorNote] of [
    ['bigquery', 'BigQuery', bigqueryRaw, "getQueryResults pages fetched and JSON.parse'd"],
    ['snowflake', 'Snowflake', snowflakeRaw, "partitions (gzip) fetched and JSON.parse'd"],
    ['databricks', 'Databricks', databricksRaw, "external links fetched and JSON.parse'd"],
  ]) {
    const m = await measure(vendor, raw);
    rows.push({ metric: `${name} source: client CPU per row`, value: `${m.adapter.toFixed(2)} µs`, note: `Source.stream, ${COLUMNS.length} mapped columns + key, ordered by key hash, median of ${ROUNDS}` });
    rows.push({ metric: `${name} floor: client CPU per row`, value: `${m.floor.toFixed(2)} µs`, note: `same pages, ${floorNote}` });
    rows.push({ metric: `${name} source / floor`, value: `${m.ratio.toFixed(2)}×`, note: 'median of paired rounds; goal ≤ 1.5×' });
    headlines.push({ figure: `${name} source: client CPU per row`, measured: `${m.adapter.toFixed(2)} µs`, floor: `${m.floor.toFixed(2)} µs fetch + JSON.parse of the same pages`, ratio: `${m.ratio.toFixed(2)}×`, goal: '≤ 1.5×' });
    if (RSS_ROWS > 0) {
      const r = await measureRss(vendor);
      const figure = `peak RSS, ${fmt(RSS_ROWS)} rows, ${name} source`;
      rows.push({ metric: figure, value: `${fmt(r.maxRssMb)} MB`, note: `a process of its own streaming through Source.stream (keyForm sha256, ordered by key hash): ${fmt(RSS_ROWS / r.seconds)} rows/s, ${r.seconds.toFixed(0)} s; goal < 400 MB` });
      headlines.push({ figure, measured: `${fmt(r.maxRssMb)} MB (${fmt(RSS_ROWS / r.seconds)} rows/s)`, floor: '—', ratio: '—', goal: '< 400 MB' });
    }
  }
  return { title: `HTTP sources against their local API servers (${ROWS.toLocaleString('en-US')} rows, ${PAGE_ROWS.toLocaleString('en-US')} rows per page)`, rows, headlines };
}
