// Google BigQuery, read through the REST API v2 (jobs.query, then jobs.getQueryResults page by page)
// with node's fetch. Not the official client: it brings much of the Google Cloud SDK, turns INT64
// into JS numbers unless told otherwise, and its auth library ignores the key file's token_uri.
import { randomUUID } from 'node:crypto';
import { doctorChecks, failedCheck } from './doctor.js';
import { GoogleAuthError, resolveGoogleCredentials, type GoogleCredentials } from './google-auth.js';
import { describeNetworkError, sleep, StoppedError, TransientError, vendorMessage, withBackoff } from './http.js';
import { cancelOnSignal } from './signals.js';
import { errorText, exactColumn, modelAsSubquery, streamQuery, validChunkRows, type SqlDialect } from './sql.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type SnapshotDialect, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { backslashLiteral, insertStatements, writtenObject, type InsertLimits, type WrittenObject } from './warehouse-writes.js';
import { dateFromMillis, decimalValue, integerText, jsonValue, parseDate, parseTimestamp } from './values.js';

export const DEFAULT_BIGQUERY_ENDPOINT = 'https://bigquery.googleapis.com';

export interface BigQuerySettings {
  readonly projectId: string;
  /** Where the jobs run; needed for datasets outside the US and EU multi-regions. */
  readonly location?: string;
  /** Dataset unqualified table names resolve in (QueryRequest.defaultDataset). */
  readonly dataset?: string;
  /** Service-account key file (absolute path); without it, Application Default Credentials. */
  readonly keyFile?: string;
  /** API root, default https://bigquery.googleapis.com. */
  readonly apiEndpoint?: string;
}

export interface BigQueryOptions {
  /** Environment the credentials are looked up in (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Rows per result page (maxResults; default 10,000). BigQuery also caps a page at 10 MB. */
  readonly pageRows?: number;
  /** Backoff of retried requests (default 5 attempts from 500 ms). */
  readonly retry?: { readonly attempts?: number; readonly baseDelayMs?: number };
}

const DEFAULT_PAGE_ROWS = 10_000;
/** jobs.query waits this long for the job: short, so a job to cancel has an id soon. */
const QUERY_WAIT_MS = 2_000;
/** Each jobs.getQueryResults poll of a running job waits up to this long (BigQuery's default). */
const POLL_WAIT_MS = 10_000;
/** A poll answered sooner than this (a server that does not wait) is followed by a pause. */
const POLL_PAUSE_MS = 500;
const REQUEST_TIMEOUT_MS = 60_000;
const CANCEL_TIMEOUT_MS = 10_000;
/** Google documents these as transient: retry with backoff. */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'backendError', 'internalError']);

/** `name` in backquotes, as GoogleSQL quotes identifiers. */
export function quoteBigQueryName(name: string): string {
  if (name.includes('\u0000')) throw new SourceError('a column name cannot contain a NUL character');
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/**
 * GoogleSQL: backquoted names, `#` comments, backslash escapes in strings. STRING comparison is by
 * code point, which is UTF-8 byte order; TO_HEX(SHA256()) hashes the UTF-8 text.
 */
export const BIGQUERY_SQL: SqlDialect = {
  quote: quoteBigQueryName,
  keyText: (col) => `CAST(${col} AS STRING)`,
  keySha256: (col) => `TO_HEX(SHA256(CAST(${col} AS STRING)))`,
  orderByKey: (pk) => `${pk} ASC NULLS LAST`,
  lexicon: { hashComments: true, backquotes: true, backslashEscapes: true },
};

/**
 * Tables in a dataset of the source's project (`project.dataset.table`); a dataset made here is made
 * in the source's location. MD5 gives BYTES, hence TO_HEX.
 */
function bigQuerySnapshotDialect(settings: BigQuerySettings): SnapshotDialect {
  return {
    ...BIGQUERY_SQL,
    table: (dataset, name) => quoteBigQueryName(`${settings.projectId}.${dataset}.${name}`),
    createSchema: (dataset) =>
      `CREATE SCHEMA IF NOT EXISTS ${quoteBigQueryName(`${settings.projectId}.${dataset}`)}${settings.location ? ` OPTIONS (location = ${backslashLiteral(settings.location, BIGQUERY_INSERT)})` : ''}`,
    textType: 'STRING',
    integerType: 'INT64',
    md5Hex: (text) => `TO_HEX(MD5(${text}))`,
    valueText: (expr) => `CAST(${expr} AS STRING)`,
  };
}

/** GoogleSQL takes queries of at most 1,024K characters. */
const BIGQUERY_INSERT: InsertLimits = { maxBytes: 1_000_000, unicodeEscapes: true };

/** The model's rows in GoogleSQL, with `__pk` = the key's text (or the hex SHA-256 of its UTF-8 text), ordered by it. */
export function bigQueryStreamSql(sql: string, opts: StreamOptions = {}): string {
  return streamQuery(sql, opts, BIGQUERY_SQL);
}

// ---- the REST API ---------------------------------------------------------------------------------

interface JobReference {
  projectId: string;
  jobId: string;
  location?: string;
}

interface FieldSchema {
  name: string;
  type: string;
  mode?: string;
  fields?: FieldSchema[];
}

interface Cell {
  v: unknown;
}

interface TableRow {
  f: Cell[];
}

/** The parts of QueryResponse and GetQueryResultsResponse read here. */
interface ResultsPage {
  jobReference?: JobReference;
  jobComplete?: boolean;
  schema?: { fields?: FieldSchema[] };
  rows?: TableRow[];
  pageToken?: string;
  totalRows?: string;
  totalBytesProcessed?: string;
}

/** An error answer of the API: HTTP status and the first ErrorProto's reason. */
class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const isTransient = (err: unknown) =>
  err instanceof TransientError || (err instanceof ApiError && (TRANSIENT_STATUS.has(err.status) || (err.reason !== undefined && TRANSIENT_REASONS.has(err.reason))));

/** BigQueryOptions.retry as the shared backoff's policy (Google: start at 500 ms, up to 16 s). */
const retryPolicy = (retry: NonNullable<BigQueryOptions['retry']>, attempts?: number) => ({
  attempts: attempts ?? retry.attempts ?? 5,
  firstDelayMs: retry.baseDelayMs ?? 500,
  maxDelayMs: 16_000,
});

class BigQueryApi {
  private readonly base: string;
  constructor(
    private readonly settings: BigQuerySettings,
    readonly credentials: GoogleCredentials,
    private readonly retry: NonNullable<BigQueryOptions['retry']> = {},
  ) {
    const root = (settings.apiEndpoint ?? DEFAULT_BIGQUERY_ENDPOINT).replace(/\/+$/, '');
    this.base = `${root}/bigquery/v2/projects/${encodeURIComponent(settings.projectId)}`;
  }

  /** jobs.query; `requestId` makes a retried submission return the same job. */
  query(body: Record<string, unknown>, signal?: AbortSignal): Promise<ResultsPage> {
    const request = { useLegacySql: false, requestId: randomUUID(), labels: { application: 'audience-sync' }, ...body, ...this.location(), ...this.defaultDataset() };
    return this.call<ResultsPage>('POST', '/queries', { body: request, signal, waitMs: Number(body.timeoutMs ?? 0) });
  }

  /** jobs.getQueryResults: the page at `pageToken` (the first without), or the job's state while it runs. */
  results(job: JobReference, params: { pageToken?: string; maxResults: number; timeoutMs?: number }, signal?: AbortSignal): Promise<ResultsPage> {
    const query = {
      ...(params.pageToken === undefined ? {} : { pageToken: params.pageToken }),
      maxResults: params.maxResults,
      ...(params.timeoutMs === undefined ? {} : { timeoutMs: params.timeoutMs }),
      'formatOptions.useInt64Timestamp': true,
      ...(job.location ? { location: job.location } : {}),
    };
    return this.call<ResultsPage>('GET', `/queries/${encodeURIComponent(job.jobId)}`, { query, signal, waitMs: params.timeoutMs ?? 0 });
  }

  /** jobs.cancel: asks BigQuery to stop the job (it may finish anyway). */
  async cancel(job: JobReference): Promise<void> {
    const query: Record<string, string> = job.location ? { location: job.location } : {};
    await this.call('POST', `/jobs/${encodeURIComponent(job.jobId)}/cancel`, { query, attempts: 2, timeoutMs: CANCEL_TIMEOUT_MS });
  }

  private location(): { location?: string } {
    return this.settings.location ? { location: this.settings.location } : {};
  }

  private defaultDataset(): { defaultDataset?: { projectId: string; datasetId: string } } {
    return this.settings.dataset ? { defaultDataset: { projectId: this.settings.projectId, datasetId: this.settings.dataset } } : {};
  }

  private async call<T>(
    method: 'GET' | 'POST',
    path: string,
    opts: { query?: Record<string, string | number | boolean>; body?: unknown; signal?: AbortSignal | undefined; waitMs?: number; attempts?: number; timeoutMs?: number },
  ): Promise<T> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
    let renewToken = false;
    return withBackoff(
      async () => {
        const token = await this.credentials.accessToken(renewToken);
        const timeout = AbortSignal.timeout((opts.timeoutMs ?? REQUEST_TIMEOUT_MS) + (opts.waitMs ?? 0));
        let res: Response;
        let text: string;
        try {
          res = await fetch(url, {
            method,
            headers: {
              authorization: `Bearer ${token}`,
              'user-agent': 'audience-sync',
              ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
            signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
          });
          text = await res.text();
        } catch (err) {
          if (opts.signal?.aborted) throw opts.signal.reason;
          throw new TransientError(`lost the connection to BigQuery (${describeNetworkError(err)})`, { cause: err });
        }
        if (res.ok) return JSON.parse(text) as T;
        const error = apiError(res.status, text);
        // Access tokens live an hour: a 401 gets one retry with a fresh token.
        if (res.status === 401 && !renewToken) {
          renewToken = true;
          throw new TransientError(error.message, { cause: error });
        }
        throw error;
      },
      { retry: retryPolicy(this.retry, opts.attempts), signal: opts.signal, transient: isTransient },
    ).catch((err: unknown) => {
      // The 401 retried with a new token and refused again is the 401 itself.
      if (err instanceof TransientError && err.cause instanceof ApiError) throw err.cause;
      throw err;
    });
  }
}

/** The error envelope `{error: {code, message, errors: [{reason, message}], status}}`. */
function apiError(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { message?: string; errors?: Array<{ reason?: string; message?: string }> } };
    const first = body.error?.errors?.[0];
    return new ApiError(status, first?.reason, body.error?.message ?? first?.message ?? `HTTP ${status}`);
  } catch {
    return new ApiError(status, undefined, `HTTP ${status}${text ? `: ${text.slice(0, 120)}` : ''}`);
  }
}

// ---- values ---------------------------------------------------------------------------------------

type Convert = (v: unknown) => unknown;

/** TIMESTAMP as int64 microseconds (formatOptions.useInt64Timestamp); float seconds are read too. */
function timestampValue(text: string): Date | string {
  let ms: number;
  if (/^-?\d+$/.test(text)) {
    if (text.length < 16) ms = Math.floor(Number(text) / 1000);
    else {
      const micros = BigInt(text);
      ms = Number(micros / 1000n - (micros % 1000n < 0n ? 1n : 0n));
    }
  } else ms = Math.floor(Number(text) * 1000);
  return dateFromMillis(ms) ?? text;
}

const asIs: Convert = (v) => v;

/** One field's conversion, chosen once per result. REPEATED gives arrays, RECORD objects (identity drops both with a reason). */
function converterFor(field: FieldSchema): Convert {
  const scalar = scalarConverter(field);
  if (field.mode === 'REPEATED') return (v) => (v as Cell[]).map((c) => (c.v === null || c.v === undefined ? null : scalar(c.v)));
  return scalar;
}

function scalarConverter(field: FieldSchema): Convert {
  switch (field.type) {
    case 'INTEGER':
    case 'INT64':
      return integerText as Convert;
    case 'FLOAT':
    case 'FLOAT64':
      return Number as Convert;
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return decimalValue as Convert;
    case 'BOOLEAN':
    case 'BOOL':
      return (v) => v === 'true';
    case 'DATE':
      return parseDate as Convert;
    case 'DATETIME':
      // A civil DATETIME is read as UTC, like a PostgreSQL timestamp without time zone.
      return parseTimestamp as Convert;
    case 'TIMESTAMP':
      return timestampValue as Convert;
    case 'JSON':
      return jsonValue as Convert;
    case 'RECORD':
    case 'STRUCT': {
      const read = rowReader(field.fields ?? []);
      return (v) => read(v as TableRow);
    }
    default:
      // STRING, BYTES (base64), TIME, GEOGRAPHY (WKT), INTERVAL and RANGE stay text.
      return asIs;
  }
}

/** Rows `{f: [{v}]}` to plain objects named by the schema. */
function rowReader(fields: readonly FieldSchema[]): (row: TableRow) => Row {
  const names = fields.map((f) => f.name);
  const converters = fields.map(converterFor);
  const width = fields.length;
  return (row) => {
    const cells = row.f;
    const out: Row = {};
    for (let i = 0; i < width; i++) {
      const v = cells[i]?.v;
      out[names[i]!] = v === null || v === undefined ? null : converters[i]!(v);
    }
    return out;
  };
}

const STANDARD_TYPE: Readonly<Record<string, string>> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL', RECORD: 'STRUCT' };

/** A field's GoogleSQL type name: `INT64`, `ARRAY<STRING>`, `STRUCT<a INT64, b STRING>`. */
function typeName(field: FieldSchema): string {
  const base = STANDARD_TYPE[field.type] ?? field.type;
  const full = base === 'STRUCT' ? `STRUCT<${(field.fields ?? []).map((f) => `${f.name} ${typeName(f)}`).join(', ')}>` : base;
  return field.mode === 'REPEATED' ? `ARRAY<${full}>` : full;
}

/** A read in progress, which a signal or `close()` stops (cancelling its job when it still runs). */
interface Reading {
  stop(): Promise<void>;
}

// ---- the source -----------------------------------------------------------------------------------

const MB = 1024 * 1024;

function formatBytes(bytes: number): string {
  if (bytes < MB) return `${Math.ceil(bytes / 1024)} KB`;
  if (bytes < 1024 * MB) return `${(bytes / MB).toFixed(1)} MB`;
  return `${(bytes / 1024 / MB).toFixed(1)} GB`;
}

/**
 * A BigQuery project. Each read is one query job: its pages are fetched one at a time as the
 * consumer asks for rows, so memory holds one page; the job is cancelled when the read fails or
 * is stopped (`signal`, `close()`, SIGTERM/SIGINT) before the job finished.
 */
export async function openBigQuery(settings: BigQuerySettings, label: string, options: BigQueryOptions = {}): Promise<Source> {
  let principal = 'the configured credentials';

  /** SourceError with what to do, from what the API or the credentials said. */
  function explain(err: unknown, what: string, writing?: WrittenObject): SourceError {
    if (err instanceof SourceError) return err;
    const fail = (reason: string, fix?: string) => new SourceError(`${label}: ${what}: ${reason}${fix ? `; ${fix}` : ''}`, { cause: err, names: [principal], ...(fix ? { fix } : {}) });
    if (err instanceof GoogleAuthError) return fail(err.message, err.fix);
    const project = settings.projectId;
    if (err instanceof TransientError) return fail(`${err.message}, after several attempts`, 'check the network and that the apiEndpoint is right, then run again');
    if (!(err instanceof ApiError)) {
      const name = (err as Error | null)?.name;
      if (closed) return fail('the source was closed while the model was being read (a job still running is cancelled)');
      if (err instanceof StoppedError || name === 'AbortError' || name === 'TimeoutError') return fail('the read was stopped before it finished (a job still running is cancelled)');
      return fail(vendorMessage(errorText(err)));
    }
    const message = vendorMessage(err.message);
    if (err.status === 401) return fail(`BigQuery refused the access token of ${principal} (${message})`, 'check the source\'s keyFile or Application Default Credentials');
    if (/insufficient authentication scopes/i.test(err.message)) {
      return fail(`the credentials of ${principal} lack the BigQuery scope`, 'run `gcloud auth application-default login --scopes=https://www.googleapis.com/auth/bigquery,https://www.googleapis.com/auth/cloud-platform`, or use a service-account keyFile');
    }
    if (err.status === 403 && err.reason === 'accessDenied') {
      if (/bigquery\.jobs\.create/.test(err.message)) return fail(`${principal} may not run query jobs in project ${project}`, `grant roles/bigquery.jobUser on project ${project} to ${principal}`);
      if (writing) {
        const [p, dataset] = writing.path.length >= (writing.object === 'schema' ? 2 : 3) ? writing.path : [project, ...writing.path];
        const where = `${p}:${dataset}`;
        if (writing.object === 'schema') {
          return fail(`${principal} may not create dataset ${where} (${message})`, `create dataset ${where} (bq mk --dataset ${where}) and grant roles/bigquery.dataEditor on it to ${principal}, or grant roles/bigquery.dataEditor on project ${p} to ${principal}`);
        }
        return fail(`${principal} may not write dataset ${where} (${message})`, `grant roles/bigquery.dataEditor on dataset ${where} to ${principal}`);
      }
      const target = /\b(Table|Dataset) ([\w.-]+(?::[\w.-]+)?):(\w+)(?:\.([\w$-]+))?/.exec(err.message);
      if (target) {
        const dataset = `${target[2]}:${target[3]}`;
        const thing = target[1] === 'Table' && target[4] ? `table ${dataset}.${target[4]}` : `dataset ${dataset}`;
        return fail(`${principal} may not read ${thing}`, `grant roles/bigquery.dataViewer on dataset ${dataset} to ${principal}`);
      }
      return fail(`access denied (${message})`, `grant roles/bigquery.jobUser on project ${project} and roles/bigquery.dataViewer on the model's datasets to ${principal}`);
    }
    if (err.status === 404) {
      const where = settings.location ? ` and location "${settings.location}"` : ', and set the source\'s location if the datasets are outside the US and EU multi-regions';
      return fail(`not found (${message})`, `check the table names in the model, projectId "${project}"${where}`);
    }
    if (err.reason === 'stopped') return fail(`the BigQuery job was cancelled (${message})`, 'run again; if it keeps being cancelled, check who cancels jobs in the project');
    if (err.reason === 'timeout') return fail(`the BigQuery job timed out (${message})`, 'make the model cheaper to run, or raise the job timeout of the project');
    if (err.reason === 'invalidQuery' || err.reason === 'invalid') return fail(`BigQuery rejected the model: ${message}`, 'run the model in the BigQuery console to see the error in place');
    if (err.reason === 'quotaExceeded' || err.reason === 'billingNotEnabled' || err.reason === 'billingTierLimitExceeded') return fail(`${message} (${err.reason})`, `see the quotas and billing of project ${project}`);
    if (isTransient(err)) return fail(`BigQuery kept failing (HTTP ${err.status}${err.reason ? ` ${err.reason}` : ''}: ${message}), after several attempts`, 'run again later');
    return fail(`HTTP ${err.status}${err.reason ? ` ${err.reason}` : ''}: ${message}`);
  }

  let credentials: GoogleCredentials;
  try {
    credentials = resolveGoogleCredentials({ ...(settings.keyFile === undefined ? {} : { keyFile: settings.keyFile }), ...(options.env ? { env: options.env } : {}) });
    principal = credentials.principal;
    // Fetched now, so a refused key or missing credentials fail here rather than mid-run.
    await credentials.accessToken();
  } catch (err) {
    throw explain(err, 'could not sign in to Google');
  }
  const api = new BigQueryApi(settings, credentials, options.retry ?? {});
  const pageRows = options.pageRows ?? DEFAULT_PAGE_ROWS;
  const open = new Set<Reading>();
  let closed = false;

  const usable = () => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
  };

  /** Waits for the job of `first` to complete; the page returned is the first page of results. */
  async function complete(first: ResultsPage, signal: AbortSignal): Promise<ResultsPage & { jobReference: JobReference }> {
    let page = first;
    if (!page.jobReference?.jobId) throw new SourceError(`${label}: BigQuery answered without a job reference; check the apiEndpoint`);
    const job = page.jobReference;
    while (page.jobComplete !== true) {
      const started = Date.now();
      page = await api.results(job, { maxResults: pageRows, timeoutMs: POLL_WAIT_MS }, signal);
      if (page.jobComplete !== true && Date.now() - started < POLL_PAUSE_MS) await sleep(POLL_PAUSE_MS, signal);
    }
    return { ...page, jobReference: job };
  }

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    const query = bigQueryStreamSql(sql, opts);
    usable();
    if (opts.signal?.aborted) throw explain(opts.signal.reason, 'could not run the model');
    const controller = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
    let job: JobReference | undefined;
    let done = false;
    let cancelling: Promise<void> | undefined;
    const cancel = () => {
      if (job && !done) cancelling ??= api.cancel(job).catch(() => undefined);
      return cancelling ?? Promise.resolve();
    };
    // jobs.query is not aborted: its answer carries the id of the job to cancel (it waits at most QUERY_WAIT_MS).
    const submitted = api.query({ query, formatOptions: { useInt64Timestamp: true }, maxResults: pageRows, timeoutMs: QUERY_WAIT_MS }).then((page) => {
      if (page.jobReference?.jobId) job = page.jobReference;
      return page;
    });
    const reading: Reading = {
      async stop() {
        controller.abort(new DOMException('stopped', 'AbortError'));
        await submitted.catch(() => undefined);
        await cancel();
      },
    };
    const unregister = cancelOnSignal(() => reading.stop());
    open.add(reading);
    let read = 0;
    try {
      const first = await submitted;
      signal.throwIfAborted();
      let page: ResultsPage = await complete(first, signal);
      done = true;
      const fields = page.schema?.fields;
      if (!fields) throw new SourceError(`${label}: the model returned no columns; it must be a SELECT query`);
      const toRow = rowReader(fields);
      const total = Number(page.totalRows ?? NaN);
      let rows: Row[] = [];
      for (;;) {
        for (const r of page.rows ?? []) {
          rows.push(toRow(r));
          if (rows.length === chunkRows) {
            if (closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
            read += rows.length;
            yield rows;
            rows = [];
          }
        }
        if (!page.pageToken) break;
        page = await api.results(job!, { pageToken: page.pageToken, maxResults: pageRows }, signal);
      }
      read += rows.length;
      if (rows.length > 0) yield rows;
      // Pages that end early would read as a smaller model: the count BigQuery reported must match.
      if (Number.isFinite(total) && read !== total) throw new SourceError(`${label}: BigQuery returned ${read} of the model's ${total} rows; run again`);
    } catch (err) {
      throw explain(err, read === 0 ? 'could not run the model' : `failed while reading the model (after ${read} rows)`);
    } finally {
      unregister();
      open.delete(reading);
      await cancel();
    }
  }

  async function dryRun(sql: string): Promise<ResultsPage> {
    return api.query({ query: `SELECT * FROM ${modelAsSubquery(sql, BIGQUERY_SQL)}`, dryRun: true });
  }

  /** Runs a one-value query to its end (for doctor's row count). */
  async function scalar(query: string): Promise<string | undefined> {
    const first = await api.query({ query, formatOptions: { useInt64Timestamp: true }, timeoutMs: QUERY_WAIT_MS });
    const page = await complete(first, new AbortController().signal).catch(async (err: unknown) => {
      if (first.jobReference?.jobId) await api.cancel(first.jobReference).catch(() => undefined);
      throw err;
    });
    const v = page.rows?.[0]?.f[0]?.v;
    return typeof v === 'string' ? v : undefined;
  }

  /** One DDL or DML statement of warehouse change detection, run as a job to its end. */
  async function write(query: string): Promise<void> {
    usable();
    const what = 'could not write the state schema';
    try {
      const first = await api.query({ query, timeoutMs: QUERY_WAIT_MS });
      await complete(first, new AbortController().signal);
    } catch (err) {
      throw explain(err, what, writtenObject(query));
    }
  }

  const snapshot: SnapshotOps = {
    dialect: bigQuerySnapshotDialect(settings),
    execute: write,
    async insertRows(table, columns, rows) {
      // One statement at a time: BigQuery queues concurrent DML on a table.
      for (const statement of insertStatements(table, columns.map(quoteBigQueryName), rows, BIGQUERY_INSERT)) await write(statement);
    },
  };

  return {
    type: 'bigquery',

    snapshot,

    findColumn: exactColumn,

    async columns(sql: string): Promise<ColumnInfo[]> {
      usable();
      try {
        const page = await dryRun(sql);
        return (page.schema?.fields ?? []).map((f) => ({ name: f.name, type: typeName(f) }));
      } catch (err) {
        throw explain(err, 'could not run the model');
      }
    },

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    // Nothing is held between reads: each is one job, and its pages are gone once read.
    async release() {},

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...open].map((r) => r.stop()));
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, {
        async signIn() {
          try {
            await credentials.accessToken();
          } catch (err) {
            throw explain(err, 'could not sign in to Google');
          }
          return `${credentials.principal}, from ${credentials.origin}`;
        },
        // A dry run proves the grants (jobs.create on the project, read on the datasets) and says what a run reads.
        async more(model) {
          try {
            const bytes = Number((await dryRun(model)).totalBytesProcessed ?? NaN);
            return [{ subject: 'dry run', status: 'ok', message: `the model is valid${Number.isFinite(bytes) ? `; a run reads about ${formatBytes(bytes)}` : ''}` }];
          } catch (err) {
            return [failedCheck('dry run', explain(err, 'could not run the model'))];
          }
        },
        async rows(model): Promise<RowEstimate> {
          try {
            return { rows: Number((await scalar(`SELECT COUNT(*) FROM ${modelAsSubquery(model, BIGQUERY_SQL)}`)) ?? NaN), estimated: false };
          } catch (err) {
            throw explain(err, "could not count the model's rows");
          }
        },
      });
    },
  };
}
