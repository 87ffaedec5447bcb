import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { runDoctor } from '../../src/doctor/index.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator } from '../../src/emulator/index.js';
import { bigQueryStreamSql, openBigQuery, type BigQueryOptions } from '../../src/sources/bigquery.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import { CLI, runCli } from '../cli/run-cli.js';
import { startBigQueryServer, type BigQueryServer, type ServiceAccountKeyFile } from '../support/bigquery-server.js';

const ROWS = 10_500;
/** Ids above 2^53: a double would round them. */
const BIG_ID = 9_007_199_254_740_993n;
const MODEL = 'select * from crm.customers';
const FAST: BigQueryOptions = { pageRows: 1000, retry: { attempts: 3, baseDelayMs: 5 } };

let server: BigQueryServer;
let dir: string;
let key: ServiceAccountKeyFile;
let keyFile: string;
let source: Source;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function readAll(stream: AsyncIterable<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of stream) rows.push(...chunk);
  return rows;
}

function open(settings: { keyFile?: string; location?: string } = { keyFile }, options: BigQueryOptions = FAST): Promise<Source> {
  return openBigQuery({ projectId: server.projectId, apiEndpoint: server.url, ...settings }, 'source "bq"', options);
}

function writeJson(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** An environment with no Google credentials at all, and no reachable metadata server. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const empty = join(dir, 'no-gcloud');
  mkdirSync(empty, { recursive: true });
  return { CLOUDSDK_CONFIG: empty, GCE_METADATA_HOST: '127.0.0.1:9', ...extra };
}

beforeAll(async () => {
  server = await startBigQueryServer();
  dir = mkdtempSync(join(tmpdir(), 'audience-sync-bigquery-'));
  await server.createDataset('crm');
  await server.createDataset('eu_crm', { location: 'europe-west2' });
  await server.sql(`
    create table crm.customers as
      select (case when i % 2 = 0 then ${BIG_ID}::bigint + i else i end) as id, 'user' || i || '@example.com' as email
      from range(${ROWS}) t(i);
    create table crm.empty (id bigint, email varchar);
    create table crm.keys (k varchar);
    insert into crm.keys values ('b'), ('B'), ('a'), ('é'), ('z'), ('😀'), ('10'), ('9'), (null);
    create table crm.typed as select
      9223372036854775807::bigint as int64, 42::bigint as small, 12345678901234567890123456789.123456789::decimal(38,9) as numeric,
      2.5::double as float64, true as bool, date '1985-03-07' as day, timestamp '2024-01-15 12:34:56.789123' as civil,
      timestamptz '2024-01-15 12:34:56.5+02' as instant, time '12:34:56' as clock, 'ab'::blob as bytes,
      '{"a": [1, 2]}'::json as doc, {'street': 'Main', 'no': 5} as address, [1, 2, 3] as tags, null::varchar as nothing;
    create table eu_crm.leads as select i as id from range(5) t(i);
  `);
  key = server.serviceAccount();
  keyFile = writeJson('key.json', key);
  source = await open();
});

afterEach(() => {
  server.reset();
});

afterAll(async () => {
  await source?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('BigQuery source: reading', () => {
  it('streams 10,000+ rows across pages in key-hash order, ids above 2^53 intact', async () => {
    const chunks: Row[][] = [];
    for await (const chunk of source.stream(MODEL, { orderByKey: 'id', keyForm: 'sha256', chunkRows: 4000 })) chunks.push(chunk);
    expect(chunks.map((c) => c.length)).toEqual([4000, 4000, 2500]);
    const rows = chunks.flat();
    expect(new Set(rows.map((r) => String(r.id))).size).toBe(ROWS);
    for (const r of rows) expect(r.__pk).toBe(sha256(String(r.id)));
    const keys = rows.map((r) => r.__pk as string);
    expect(keys).toEqual([...keys].sort(byBytes));
    // Every even id is above 2^53 and came back as its exact decimal string.
    expect(rows.find((r) => r.email === 'user10@example.com')?.id).toBe(String(BIG_ID + 10n));
    expect(rows.find((r) => r.email === 'user11@example.com')?.id).toBe(11);
    const pages = server.requests.filter((r) => r.method === 'jobs.getQueryResults' && r.query.pageToken !== undefined);
    expect(pages).toHaveLength(Math.ceil(ROWS / 1000) - 1);
    // The job's pages were asked with the job's location and int64 timestamps.
    for (const r of server.requests.filter((q) => q.method === 'jobs.getQueryResults')) expect(r.query).toMatchObject({ location: 'US', 'formatOptions.useInt64Timestamp': 'true', maxResults: '1000' });
  });

  it('fetches the next page only when the consumer asks for rows', async () => {
    const iterator = source.stream(MODEL, { orderByKey: 'id', keyForm: 'sha256', chunkRows: 500 })[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toHaveLength(500);
    expect(server.count('jobs.getQueryResults')).toBe(0);
    await iterator.next();
    await iterator.next();
    expect(server.count('jobs.getQueryResults')).toBe(1);
    await iterator.return?.();
    // A finished job is not cancelled when the reader stops early: there is nothing to stop.
    expect(server.count('jobs.cancel')).toBe(0);
  });

  it('orders text keys in UTF-8 byte order, nulls last, and projects columns', async () => {
    const rows = await readAll(source.stream('select k, k as copy from crm.keys', { orderByKey: 'k', columns: ['k'] }));
    expect(rows.map((r) => r.__pk)).toEqual(['10', '9', 'B', 'a', 'b', 'z', 'é', '😀', null]);
    expect(Object.keys(rows[0]!)).toEqual(['k', '__pk']);
  });

  it('maps BigQuery types to plain JS: exact integers and decimals, dates, timestamps, nested values', async () => {
    const [row] = await readAll(source.stream('select * from crm.typed'));
    expect(row).toEqual({
      int64: '9223372036854775807',
      small: 42,
      numeric: '12345678901234567890123456789.123456789',
      float64: 2.5,
      bool: true,
      day: new Date('1985-03-07T00:00:00Z'),
      civil: new Date('2024-01-15T12:34:56.789Z'),
      instant: new Date('2024-01-15T10:34:56.500Z'),
      clock: '12:34:56',
      bytes: Buffer.from('ab').toString('base64'),
      doc: { a: [1, 2] },
      address: { street: 'Main', no: 5 },
      tags: [1, 2, 3],
      nothing: null,
    });
    const columns = await source.columns('select * from crm.typed');
    expect(columns.map((c) => `${c.name} ${c.type}`)).toEqual([
      'int64 INT64', 'small INT64', 'numeric NUMERIC', 'float64 FLOAT64', 'bool BOOL', 'day DATE', 'civil DATETIME', 'instant TIMESTAMP',
      'clock TIME', 'bytes BYTES', 'doc JSON', 'address STRUCT<street STRING, no INT64>', 'tags ARRAY<INT64>', 'nothing STRING',
    ]);
  });

  it('reads an empty model as empty, and a model ending in `;` and a # comment', async () => {
    expect(await readAll(source.stream('select * from crm.empty', { orderByKey: 'id', keyForm: 'sha256' }))).toEqual([]);
    expect(await readAll(source.stream('select * from crm.customers where false;'))).toEqual([]);
    expect(await readAll(source.stream('select * from `crm.keys` where k = "a"; # the a key'))).toEqual([{ k: 'a' }]);
    await expect(readAll(source.stream(' -- nothing\n # at all\n'))).rejects.toThrow(/the model is empty/);
  });

  it('gives the columns from a dry run, without running a job or reading rows', async () => {
    expect(await source.columns(MODEL)).toEqual([{ name: 'id', type: 'INT64' }, { name: 'email', type: 'STRING' }]);
    expect(server.requests.map((r) => r.method)).toEqual(['jobs.query']);
    expect(server.requests[0]!.body).toMatchObject({ dryRun: true, useLegacySql: false });
    expect(server.jobList().filter((j) => j.query.includes('dryRun'))).toEqual([]);
  });

  it('follows a job outside the US and EU multi-regions with its location', async () => {
    const rows = await readAll(source.stream('select id from eu_crm.leads', { orderByKey: 'id' }));
    expect(rows).toHaveLength(5);
    const wrong = await open({ keyFile, location: 'US' });
    try {
      const error = await readAll(wrong.stream('select id from eu_crm.leads')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SourceError);
      expect((error as SourceError).message).toMatch(/not found \(Not found: Dataset audience-test:eu_crm was not found in location US\); check the table names in the model, projectId "audience-test" and location "US"/);
    } finally {
      await wrong.close();
    }
  });

  it('is opened from the config through openSource', async () => {
    const config = loadConfigWith({ type: 'bigquery', projectId: server.projectId, keyFile: './key.json', apiEndpoint: server.url });
    expect(config.sources.warehouse).toEqual({ type: 'bigquery', projectId: server.projectId, keyFile, apiEndpoint: server.url });
    const viaConfig = await openSource(config.sources.warehouse!, { name: 'warehouse' });
    try {
      expect(viaConfig.type).toBe('bigquery');
      expect(await readAll(viaConfig.stream('select count(*) as n from crm.customers'))).toEqual([{ n: ROWS }]);
    } finally {
      await viaConfig.close();
    }
  });
});

describe('BigQuery source: the CLI', () => {
  it('`validate` and `plan` read a BigQuery model end to end', async () => {
    const configPath = join(dir, 'cli.yml');
    writeFileSync(configPath, configYaml({ type: 'bigquery', projectId: server.projectId, keyFile: './key.json', apiEndpoint: server.url }));
    const env = { ...process.env, META_ACCESS_TOKEN: 'x' };
    const validate = await runCli(['validate', '-c', configPath], { env });
    expect(validate.stderr).toBe('');
    expect(validate.code).toBe(0);
    const plan = await runCli(['plan', '-c', configPath, '--json'], { env });
    expect(plan.code).toBe(0);
    const [result] = JSON.parse(plan.stdout) as Array<{ counts: Record<string, number> }>;
    expect(result!.counts).toMatchObject({ extracted: ROWS, added: ROWS, rejected: 0 });
    expect(server.count('jobs.cancel')).toBe(0);
  });
});

describe('BigQuery source: failures fail the read', () => {
  const failure = async (stream: AsyncIterable<Row[]>): Promise<{ rows: number; error: SourceError }> => {
    let rows = 0;
    try {
      for await (const chunk of stream) rows += chunk.length;
    } catch (e) {
      expect(e).toBeInstanceOf(SourceError);
      return { rows, error: e as SourceError };
    }
    throw new Error(`the stream ended normally after ${rows} rows`);
  };

  it('an expired or deleted key: says to create a new key, at open and mid-stream', async () => {
    const revokedKey = server.serviceAccount('revoked');
    const revokedFile = writeJson('revoked.json', revokedKey);
    const reader = await open({ keyFile: revokedFile });
    try {
      const iterator = reader.stream(MODEL, { chunkRows: 1000 })[Symbol.asyncIterator]();
      await iterator.next();
      server.revokeCredential(revokedKey.client_email);
      const { error } = await failure({ [Symbol.asyncIterator]: () => iterator });
      expect(error.message).toContain(`Google refused the credentials of service account ${revokedKey.client_email} (invalid_grant: Invalid JWT Signature.)`);
      expect(error.fix).toMatch(/create a new key for revoked@audience-test\.iam\.gserviceaccount\.com/);
    } finally {
      await reader.close();
    }
    await expect(open({ keyFile: revokedFile })).rejects.toThrow(/could not sign in to Google: Google refused the credentials .*; create a new key/);
  });

  it('an expired access token is renewed once and the read goes on', async () => {
    const tokensBefore = server.count('token');
    let rows = 0;
    for await (const chunk of source.stream(MODEL, { chunkRows: 2000 })) {
      if (rows === 0) server.expireAccessTokens();
      rows += chunk.length;
    }
    expect(rows).toBe(ROWS);
    expect(server.count('token')).toBe(tokensBefore + 1);
  });

  it('a missing bigquery.jobs.create grant: says to grant roles/bigquery.jobUser', async () => {
    server.revokeJobUser(key.client_email);
    const { error } = await failure(source.stream(MODEL));
    expect(error.message).toBe(
      `source "bq": could not run the model: ${key.client_email} may not run query jobs in project audience-test; grant roles/bigquery.jobUser on project audience-test to ${key.client_email}`,
    );
    await expect(source.columns(MODEL)).rejects.toThrow(/grant roles\/bigquery\.jobUser/);
  });

  it('no read access to a table: says to grant roles/bigquery.dataViewer on its dataset', async () => {
    server.revokeRead(key.client_email, 'crm.customers');
    const { error } = await failure(source.stream('select c.id from crm.customers c join crm.keys k on true'));
    expect(error.message).toContain(`${key.client_email} may not read table audience-test:crm.customers`);
    expect(error.fix).toBe(`grant roles/bigquery.dataViewer on dataset audience-test:crm to ${key.client_email}`);
  });

  it('a SQL error names the problem without row values', async () => {
    const { error } = await failure(source.stream('select emial from crm.customers'));
    expect(error.message).toMatch(/could not run the model: BigQuery rejected the model: Unrecognized name: emial/);
    const { error: unqualified } = await failure(source.stream('select * from customers'));
    expect(unqualified.message).toContain('must be qualified with a dataset');
    // BigQuery quotes the value a CAST failed on: it may be personal data and never reaches run history.
    // Every source's errors are redacted where openSource opens it.
    const redacted = await openSource({ type: 'bigquery', projectId: server.projectId, apiEndpoint: server.url, keyFile }, { name: 'bq' });
    try {
      const { error: cast } = await failure(redacted.stream("select cast(email as int64) as n from crm.customers where email = 'user7@example.com'"));
      expect(cast.message).toContain('BigQuery rejected the model: Bad int64 value: <redacted>');
      expect(cast.message).not.toContain('user7');
    } finally {
      await redacted.close();
    }
  });

  it('a job that times out fails the read', async () => {
    server.failJobs({ reason: 'timeout', message: 'Job execution was cancelled: Job timed out after 0 sec' });
    const { error } = await failure(source.stream(MODEL));
    expect(error.message).toMatch(/the BigQuery job timed out/);
  });

  it('pages failing mid-stream (5xx, retried, then given up) fail the read after the rows read so far', async () => {
    server.failPages({ after: 3 });
    const { rows, error } = await failure(source.stream(MODEL, { chunkRows: 1000 }));
    expect(rows).toBe(3000);
    expect(error.message).toMatch(/failed while reading the model \(after 3000 rows\): BigQuery kept failing \(HTTP 503 backendError/);
    // 3 attempts of the 4th page, as configured.
    expect(server.count('jobs.getQueryResults')).toBe(2 + 3);
  });

  it('a connection lost mid-stream fails the read', async () => {
    server.failPages({ after: 2, error: 'reset' });
    const { rows, error } = await failure(source.stream(MODEL, { chunkRows: 1000 }));
    expect(rows).toBe(2000);
    expect(error.message).toMatch(/after 2000 rows\): lost the connection to BigQuery .*after several attempts/);
  });

  it('pages that end before the rows BigQuery counted fail the read instead of shortening the model', async () => {
    server.endPagesEarly(3);
    const { rows, error } = await failure(source.stream(MODEL, { chunkRows: 1000 }));
    expect(rows).toBe(3000);
    expect(error.message).toBe(`source "bq": BigQuery returned 3000 of the model's ${ROWS} rows; run again`);
  });

  it('a transient failure is retried with backoff and the read completes', async () => {
    server.failPages({ after: 2, times: 2, error: { status: 403, reason: 'rateLimitExceeded', message: 'Exceeded rate limits: too many api requests per user per method' } });
    expect(await readAll(source.stream(MODEL))).toHaveLength(ROWS);
    expect(server.count('jobs.getQueryResults')).toBe(Math.ceil(ROWS / 1000) - 1 + 2);
  });

  it('an error that is not transient is not retried', async () => {
    server.failPages({ after: 1, error: { status: 403, reason: 'accessDenied', message: 'Access Denied: Table audience-test:_anon.results: User does not have permission' } });
    await failure(source.stream(MODEL));
    expect(server.count('jobs.getQueryResults')).toBe(1);
  });
});

describe('BigQuery source: cancellation', () => {
  it('an aborted read cancels its running job (jobs.cancel)', async () => {
    server.holdJobs();
    const controller = new AbortController();
    const reading = readAll(source.stream(MODEL, { signal: controller.signal })).catch((e: unknown) => e);
    const job = await server.nextJob();
    controller.abort();
    const error = await reading;
    expect(error).toBeInstanceOf(SourceError);
    expect((error as SourceError).message).toMatch(/could not run the model: the read was stopped before it finished \(a job still running is cancelled\)/);
    expect(server.count('jobs.cancel')).toBe(1);
    expect(server.jobList().find((j) => j.jobId === job.jobId)).toMatchObject({ cancelRequested: true, state: 'DONE', errorResult: { reason: 'stopped' } });
  });

  it('closing the source cancels its running jobs', async () => {
    server.holdJobs();
    const reader = await open();
    const reading = readAll(reader.stream(MODEL)).catch((e: unknown) => e);
    await server.nextJob();
    await reader.close();
    expect(await reading).toBeInstanceOf(SourceError);
    expect(server.count('jobs.cancel')).toBe(1);
  });

  it('a job still running when the read fails is cancelled', async () => {
    server.holdJobs();
    // Polls of the running job are refused with a 500 (and the one attempt allowed is not retried).
    server.failPages({ after: 0, error: { status: 500, reason: 'internalError', message: 'An internal error occurred' } });
    const reader = await open({ keyFile }, { ...FAST, retry: { attempts: 1 } });
    try {
      const error = await readAll(reader.stream(MODEL)).catch((e: unknown) => e);
      expect((error as SourceError).message).toMatch(/could not run the model: BigQuery kept failing \(HTTP 500 internalError/);
    } finally {
      await reader.close();
    }
    expect(server.count('jobs.cancel')).toBe(1);
    expect(server.jobList().at(-1)).toMatchObject({ cancelRequested: true, errorResult: { reason: 'stopped' } });
  });

  it('SIGTERM cancels the running job, then the process ends as the signal says', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with \`npx tsc -p tsconfig.build.json\``);
    const configPath = join(dir, 'sigterm.yml');
    writeFileSync(configPath, configYaml({ type: 'bigquery', projectId: server.projectId, keyFile: './key.json', apiEndpoint: server.url }));
    server.holdJobs();
    const child = spawn(process.execPath, [CLI, 'plan', '-c', configPath], { env: { ...process.env, META_ACCESS_TOKEN: 'x' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    // The signal comes while jobs.query is still waiting: its answer brings the id of the job to cancel.
    const job = await server.nextJob();
    child.kill('SIGTERM');
    const { signal } = await exited;
    expect(stderr).toBe('');
    expect(signal).toBe('SIGTERM');
    expect(server.jobList().find((j) => j.jobId === job.jobId)).toMatchObject({ cancelRequested: true });
  });
});

describe('BigQuery source: credentials', () => {
  it('exchanges a signed JWT at the key file\'s token_uri', async () => {
    const before = server.requests.length;
    const reader = await open();
    await reader.close();
    const exchange = server.requests.slice(before).find((r) => r.method === 'token');
    expect(exchange?.path).toBe('/token');
    // A key the server does not know (same account, other private key) is refused.
    const forged = { ...key, private_key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    await expect(open({ keyFile: writeJson('forged.json', forged) })).rejects.toThrow(/Invalid JWT Signature/);
  });

  it('reads Application Default Credentials from GOOGLE_APPLICATION_CREDENTIALS (service account)', async () => {
    const reader = await open({}, { ...FAST, env: bareEnv({ GOOGLE_APPLICATION_CREDENTIALS: keyFile }) });
    try {
      expect(await readAll(reader.stream('select count(*) as n from crm.customers'))).toEqual([{ n: ROWS }]);
    } finally {
      await reader.close();
    }
  });

  it('reads an authorized_user file (gcloud auth application-default login), refresh token included', async () => {
    const user = server.authorizedUser('analyst@example.com');
    const userFile = writeJson('adc-user.json', user);
    const reader = await open({}, { ...FAST, env: bareEnv({ GOOGLE_APPLICATION_CREDENTIALS: userFile }) });
    try {
      expect(await readAll(reader.stream('select count(*) as n from crm.customers'))).toEqual([{ n: ROWS }]);
      expect(server.jobList().at(-1)?.principal).toBe('analyst@example.com');
    } finally {
      await reader.close();
    }
    server.revokeCredential('analyst@example.com');
    await expect(open({}, { env: bareEnv({ GOOGLE_APPLICATION_CREDENTIALS: userFile }) })).rejects.toThrow(
      /Google refused the credentials of the Google user .* \(invalid_grant: Token has been expired or revoked\.\); run `gcloud auth application-default login` again/,
    );
  });

  it('reads gcloud\'s application-default file, then falls back to the metadata server', async () => {
    const gcloud = join(dir, 'gcloud');
    mkdirSync(gcloud, { recursive: true });
    writeFileSync(join(gcloud, 'application_default_credentials.json'), JSON.stringify(server.authorizedUser('gcloud@example.com')));
    const viaGcloud = await open({}, { env: bareEnv({ CLOUDSDK_CONFIG: gcloud }) });
    await viaGcloud.close();
    const viaMetadata = await open({}, { env: bareEnv({ GCE_METADATA_HOST: server.metadataHost }) });
    try {
      expect(await readAll(viaMetadata.stream('select 1 as one'))).toEqual([{ one: 1 }]);
      expect(server.jobList().at(-1)?.principal).toBe(server.metadataPrincipal);
    } finally {
      await viaMetadata.close();
    }
  });

  it('without any credentials, says where they can come from', async () => {
    await expect(open({}, { env: bareEnv() })).rejects.toThrow(
      /no Google credentials found: .*; set the source's keyFile to a service-account JSON key, or export GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`/,
    );
    await expect(open({ keyFile: join(dir, 'missing.json') })).rejects.toThrow(/the credentials file of keyFile .*missing\.json does not exist/);
    await expect(open({ keyFile: writeJson('external.json', { type: 'external_account' }) })).rejects.toThrow(/credentials of type "external_account", which audience-sync does not read/);
  });
});

describe('BigQuery source: doctor', () => {
  it('reports the principal, the dry run\'s bytes and the row count', async () => {
    const checks = await source.doctor(MODEL);
    expect(checks).toEqual([
      { subject: 'sign-in', status: 'ok', message: `${key.client_email}, from keyFile ${keyFile}` },
      { subject: 'dry run', status: 'ok', message: expect.stringMatching(/^the model is valid; a run reads about \d+ KB$/) },
      { subject: 'rows', status: 'ok', message: 'the model returns 10,500 rows', rows: { rows: 10_500, estimated: false } },
    ]);
  });

  it('names the missing grant', async () => {
    server.revokeRead('*', 'crm');
    const checks = await source.doctor(MODEL);
    expect(checks[1]).toMatchObject({ subject: 'dry run', status: 'fail', fix: `grant roles/bigquery.dataViewer on dataset audience-test:crm to ${key.client_email}` });
    expect(checks).toHaveLength(2);
  });

  it('runs through `audience-sync doctor` for each sync', async () => {
    const emulator = await startEmulator({ port: 0 });
    const path = join(dir, 'doctor.yml');
    writeFileSync(path, configYaml({ type: 'bigquery', projectId: server.projectId, keyFile: './key.json', apiEndpoint: server.url }, { graphUrl: emulator.url, audience: { create: { name: 'x' } } }));
    const ws = new Workspace(loadConfig(path, { META_ACCESS_TOKEN: DEFAULT_TOKEN }));
    try {
      server.revokeJobUser(key.client_email);
      const report = await runDoctor(ws);
      expect(report.checks.find((c) => c.subject === 'sync loyalty: model')).toMatchObject({ status: 'fail', message: expect.stringContaining('grant roles/bigquery.jobUser on project audience-test') });
      server.reset();
      const healthy = await runDoctor(ws);
      expect(healthy.checks.filter((c) => /^(sync loyalty: |source )/.test(c.subject)).map((c) => `${c.subject} ${c.status}`)).toEqual([
        'source warehouse ok',
        'sync loyalty: audience ok',
        'sync loyalty: schema ok',
        'sync loyalty: records given up ok',
        'sync loyalty: match rate ok',
        'sync loyalty: model ok',
        'sync loyalty: dry run ok',
        'sync loyalty: rows ok',
      ]);
    } finally {
      await ws.close();
      await emulator.close();
    }
  });
});

describe('the BigQuery test server is strict', () => {
  const token = async () => {
    const r = await fetch(`${server.url}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
    return ((await r.json()) as { access_token: string }).access_token;
  };
  const api = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${server.url}/bigquery/v2/projects/${server.projectId}${path}`, { ...init, headers: { authorization: `Bearer ${await token()}`, 'content-type': 'application/json', ...init.headers } });
    return { status: r.status, body: (await r.json()) as { error?: { code: number; errors: Array<{ reason: string }>; status: string; message: string }; jobReference?: { jobId: string; location: string } } };
  };

  it('reads a query without useLegacySql: false as legacy SQL, and rejects unknown fields and parameters', async () => {
    const legacy = await api('/queries', { method: 'POST', body: JSON.stringify({ query: 'select 1' }) });
    expect(legacy.status).toBe(400);
    expect(legacy.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', errors: [{ reason: 'invalidQuery' }] });
    const unknown = await api('/queries', { method: 'POST', body: JSON.stringify({ query: 'select 1', useLegacySql: false, pageSize: 10 }) });
    expect(unknown.body.error?.message).toBe('Invalid JSON payload received. Unknown name "pageSize": Cannot find field.');
    const job = await api('/queries', { method: 'POST', body: JSON.stringify({ query: 'select 1', useLegacySql: false }) });
    expect((await api(`/queries/${job.body.jobReference!.jobId}?pageSize=1`)).status).toBe(400);
  });

  it('finds a job outside the US and EU multi-regions only with its location', async () => {
    const job = await api('/queries', { method: 'POST', body: JSON.stringify({ query: 'select id from eu_crm.leads', useLegacySql: false }) });
    expect(job.body.jobReference?.location).toBe('europe-west2');
    expect((await api(`/queries/${job.body.jobReference!.jobId}`)).status).toBe(404);
    expect((await api(`/queries/${job.body.jobReference!.jobId}?location=europe-west2`)).status).toBe(200);
  });

  it('checks the JWT assertion: signature, audience and lifetime', async () => {
    const { createPrivateKey } = await import('node:crypto');
    const { signJwt } = await import('../../src/sources/google-auth.js');
    const privateKey = createPrivateKey(key.private_key);
    const exchange = async (claims: Record<string, string>, lifetime?: number) => {
      const assertion = signJwt({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id }, privateKey, claims, lifetime);
      const r = await fetch(server.tokenUri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }) });
      return { status: r.status, body: (await r.json()) as { error?: string; error_description?: string; access_token?: string } };
    };
    const claims = { iss: key.client_email, scope: 'https://www.googleapis.com/auth/bigquery', aud: server.tokenUri };
    expect((await exchange(claims)).body.access_token).toMatch(/^ya29\./);
    expect((await exchange({ ...claims, aud: 'https://oauth2.googleapis.com/token' })).body.error_description).toMatch(/Failed audience check/);
    expect((await exchange(claims, 7200)).body.error_description).toMatch(/short-lived token \(60 minutes\)/);
    expect((await exchange({ iss: key.client_email, aud: server.tokenUri })).body).toEqual({ error: 'invalid_scope', error_description: 'Empty or missing scope not allowed.' });
  });

  it('answers requests without a valid token with 401 in Google\'s error envelope', async () => {
    const r = await fetch(`${server.url}/bigquery/v2/projects/${server.projectId}/queries`, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({
      error: {
        code: 401,
        message: expect.stringContaining('Request had invalid authentication credentials'),
        errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }],
        status: 'UNAUTHENTICATED',
      },
    });
  });

  it('runs DDL and DML as jobs, answering numDmlAffectedRows and dmlStats, and reads GoogleSQL strings as GoogleSQL does', async () => {
    type Answer = { status: number; body: { error?: { message: string; errors: Array<{ reason: string }> }; jobReference?: { jobId: string }; numDmlAffectedRows?: string; dmlStats?: unknown; schema?: unknown; rows?: Array<{ f: Array<{ v: unknown }> }> } };
    const query = (text: string) => api('/queries', { method: 'POST', body: JSON.stringify({ query: text, useLegacySql: false }) }) as Promise<Answer>;
    const statistics = async (answer: Answer) => ((await api(`/jobs/${answer.body.jobReference!.jobId}`)).body as unknown as { statistics: { query: Record<string, unknown> } }).statistics.query;
    const made = await query('CREATE SCHEMA IF NOT EXISTS `audience-test.audience_sync`');
    expect(made.body).not.toHaveProperty('schema');
    expect(await statistics(made)).toMatchObject({ statementType: 'CREATE_SCHEMA', ddlOperationPerformed: 'CREATE' });
    expect(await statistics(await query('CREATE SCHEMA IF NOT EXISTS `audience-test.audience_sync`'))).toMatchObject({ ddlOperationPerformed: 'SKIP' });
    expect((await query('CREATE SCHEMA `audience-test.audience_sync`')).status).toBe(409);
    expect(await statistics(await query('CREATE TABLE IF NOT EXISTS `audience-test.audience_sync.t` (k STRING, n INT64)'))).toMatchObject({ statementType: 'CREATE_TABLE', ddlOperationPerformed: 'CREATE' });
    const inserted = await query(String.raw`INSERT INTO audience_sync.t (k, n) VALUES ('it\'s', 1), ('back\\slash\n', 2), ("double", 3), ('con' 'cat', 4)`);
    expect(inserted.body).toMatchObject({ numDmlAffectedRows: '4', dmlStats: { insertedRowCount: '4' } });
    expect(await statistics(inserted)).toMatchObject({ statementType: 'INSERT', numDmlAffectedRows: '4' });
    const read = await query('SELECT k FROM audience_sync.t ORDER BY n');
    expect(read.body.rows?.map((r) => r.f[0]!.v)).toEqual(["it's", 'back\\slash\n', 'double', 'concat']);
    const deleted = await query('DELETE FROM audience_sync.t WHERE n > 2');
    expect(deleted.body).toMatchObject({ numDmlAffectedRows: '2', dmlStats: { deletedRowCount: '2' } });
    // What GoogleSQL refuses: DELETE without WHERE, '' inside a literal, a line break in '...', an unknown escape, a query over 1,024K characters.
    const refused = async (text: string) => {
      const answer = await query(text);
      expect(answer.status, text.slice(0, 60)).toBe(400);
      return answer.body.error!.message;
    };
    expect(await refused('DELETE FROM audience_sync.t')).toBe('DELETE must have a WHERE clause at [1:1]');
    expect(await refused("SELECT 'it''s'")).toMatch(/concatenated string literals must be separated by whitespace/);
    expect(await refused("SELECT 'line\nbreak'")).toMatch(/Unclosed string literal/);
    expect(await refused(String.raw`SELECT 'a\qb'`)).toMatch(/Illegal escape sequence/);
    expect(await refused(`SELECT 1 -- ${'x'.repeat(1024 * 1024)}`)).toMatch(/The query is too large\. The maximum standard SQL query length is 1024\.00K characters/);
    // A dataset the principal may read but not write.
    server.refuseWrites('audience_sync');
    const denied = await query("INSERT INTO audience_sync.t (k, n) VALUES ('x', 9)");
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ errors: [{ reason: 'accessDenied' }], message: expect.stringContaining('Permission bigquery.tables.updateData denied on table audience-test:audience_sync.t') });
    expect((await query('CREATE TABLE IF NOT EXISTS audience_sync.u (k STRING)')).body.error?.message).toMatch(/Permission bigquery\.tables\.create denied on dataset audience-test:audience_sync/);
    expect((await query('CREATE TABLE IF NOT EXISTS audience_sync.t (k STRING)')).status).toBe(200);
  });

  it('runs the SQL the source sends', () => {
    expect(bigQueryStreamSql('select * from crm.customers;', { orderByKey: 'id', keyForm: 'sha256', columns: ['email'] })).toBe(
      'SELECT `email`, TO_HEX(SHA256(CAST(`id` AS STRING))) AS `__pk` FROM (\nselect * from crm.customers\n) AS `audience_sync_model` ORDER BY `__pk` ASC NULLS LAST',
    );
  });
});

function configYaml(source: Record<string, unknown>, opts: { graphUrl?: string; audience?: unknown } = {}): string {
  return stringify({
    version: 1,
    state: { url: `sqlite://${join(dir, `state-${Math.random().toString(36).slice(2)}.db`)}` },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, ...(opts.graphUrl ? { graphUrl: opts.graphUrl } : {}) },
    sources: { warehouse: source },
    syncs: [{ name: 'loyalty', source: 'warehouse', model: MODEL, primaryKey: 'id', audience: opts.audience ?? { id: '1' }, mapping: { EXTERN_ID: 'id', EMAIL: 'email' } }],
  });
}

function loadConfigWith(source: Record<string, unknown>) {
  const path = join(dir, 'config.yml');
  writeFileSync(path, configYaml(source));
  return loadConfig(path, { META_ACCESS_TOKEN: 'x' });
}
