// Google BigQuery, read through the REST API v2 (jobs.query, then jobs.getQueryResults page by page)
// with node's fetch. Not the official client: it brings much of the Google Cloud SDK, turns INT64
// into JS numbers unless told otherwise, and its auth library ignores the key file's token_uri.
import { randomUUID } from 'node:crypto';
import { describeFetchError, GoogleAuthError, resolveGoogleCredentials, sleep, TransientError, withBackoff, type GoogleCredentials } from './google-auth.js';
import { errorText, modelBody, validChunkRows, type Lexicon } from './sql.js';
import { DEFAULT_CHUNK_ROWS, PK_FIELD, SourceError, type ColumnInfo, type Row, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { parseDate, dateFromMillis, decimalValue, integerValue } from './values.js';

export const DEFAULT_BIGQUERY_ENDPOINT = 'https://bigquery.googleapis.com';

export interface BigQuerySettings {
  readonly projectId: string;
  /** Where the jobs run; needed for datasets outside the US and EU multi-regions. */
  readonly location?: string;
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

const LEXICON: Lexicon = { hashComments: true, backquotes: true };
const DEFAULT_PAGE_ROWS = 10_000;
/** jobs.query waits this long for the job: short, so a job to cancel has an id soon. */
const QUERY_WAIT_MS = 2_000;
/** Each jobs.getQueryResults poll of a running job waits up to this long (BigQuery's default). */
const POLL_WAIT_MS = 10_000;
/** A poll answered sooner than this (a server that does not wait) is followed by a pause. */
const POLL_PAUSE_MS = 500;
const REQUEST_TIMEOUT_MS = 60_000;
const CANCEL_TIMEOUT_MS = 10_000;
/** How long a signal waits for the jobs it cancels before the process goes on stopping. */
const SIGNAL_CANCEL_WAIT_MS = 5_000;
/** Google documents these as transient: retry with backoff. */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'backendError', 'internalError']);

/** `name` in backquotes, as GoogleSQL quotes identifiers. */
export function quoteBigQueryName(name: string): string {
  if (name.includes('\u0000')) throw new SourceError('a column name cannot contain a NUL character');
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

function modelSubquery(sql: string): string {
  // The newline ends a trailing comment before the closing parenthesis.
  return `(\n${modelBody(sql, LEXICON)}\n) AS audience_sync_model`;
}

/**
 * The model's rows in GoogleSQL, with `__pk` = the key's text (or the hex SHA-256 of its UTF-8
 * text), ordered by it: STRING comparison is by code point, which is UTF-8 byte order.
 */
export function bigQueryStreamSql(sql: string, opts: StreamOptions = {}): string {
  const projection = opts.columns ? opts.columns.map(quoteBigQueryName) : ['*'];
  if (opts.orderByKey === undefined) return `SELECT ${projection.join(', ')} FROM ${modelSubquery(sql)}`;
  const text = `CAST(${quoteBigQueryName(opts.orderByKey)} AS STRING)`;
  const key = opts.keyForm === 'sha256' ? `TO_HEX(SHA256(${text}))` : text;
  const pk = quoteBigQueryName(PK_FIELD);
  return `SELECT ${[...projection, `${key} AS ${pk}`].join(', ')} FROM ${modelSubquery(sql)} ORDER BY ${pk} ASC NULLS LAST`;
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
    const request = { useLegacySql: false, requestId: randomUUID(), labels: { application: 'audience-sync' }, ...body, ...this.location() };
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
          throw new TransientError(`lost the connection to BigQuery (${describeFetchError(err)})`, { cause: err });
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
      { attempts: opts.attempts ?? this.retry.attempts ?? 5, baseDelayMs: this.retry.baseDelayMs ?? 500, signal: opts.signal, transient: isTransient },
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

const DATETIME_TEXT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/;

/** A civil DATETIME is read as UTC, like a PostgreSQL timestamp without time zone. */
function datetimeValue(text: string): Date | string {
  const m = DATETIME_TEXT.exec(text);
  if (!m) return text;
  const ms = Math.floor(Number(`0${m[7] ?? ''}`) * 1000);
  return dateFromMillis(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms)) ?? text;
}

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

/** INT64 as a number while exact (≤ 15 digits always is), a decimal string beyond. */
function int64Value(text: string): number | string {
  return text.length < 16 ? Number(text) : integerValue(BigInt(text));
}

function jsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
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
      return int64Value as Convert;
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
      return datetimeValue as Convert;
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

// ---- stopping jobs on SIGTERM / SIGINT --------------------------------------------------------------

/** A read in progress, which a signal or `close()` stops (cancelling its job when it still runs). */
interface Reading {
  stop(): Promise<void>;
}

const readings = new Set<Reading>();
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Cancels every running job, then lets the signal do what it would have done: when nothing else
 * listens for it, it is raised again (the default: the process ends).
 */
function onSignal(signal: NodeJS.Signals): void {
  for (const s of SIGNALS) process.off(s, onSignal);
  const stops = [...readings].map((r) => r.stop());
  void Promise.race([Promise.allSettled(stops), sleep(SIGNAL_CANCEL_WAIT_MS)]).finally(() => {
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function track(reading: Reading): void {
  if (readings.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  readings.add(reading);
}

function untrack(reading: Reading): void {
  if (!readings.delete(reading)) return;
  if (readings.size === 0) for (const s of SIGNALS) process.off(s, onSignal);
}

// ---- the source -----------------------------------------------------------------------------------

const MB = 1024 * 1024;

function formatBytes(bytes: number): string {
  if (bytes < MB) return `${Math.ceil(bytes / 1024)} KB`;
  if (bytes < 1024 * MB) return `${(bytes / MB).toFixed(1)} MB`;
  return `${(bytes / 1024 / MB).toFixed(1)} GB`;
}

/** Quoted or `value: x` parts of BigQuery's messages may be row values (a failed CAST): they never reach run history. */
function redact(message: string): string {
  const short = message.replace(/\s+/g, ' ').trim();
  return (short.length > 300 ? `${short.slice(0, 300)}…` : short)
    .replace(/\b(value|literal)(:\s*|\s+(?=["']))("[^"]*"|'[^']*'|\S+)/gi, '$1$2…')
    .replace(/'[^']*'/g, "'…'");
}

/**
 * A BigQuery project. Each read is one query job: its pages are fetched one at a time as the
 * consumer asks for rows, so memory holds one page; the job is cancelled when the read fails or
 * is stopped (`signal`, `close()`, SIGTERM/SIGINT) before the job finished.
 */
export async function openBigQuery(settings: BigQuerySettings, label: string, options: BigQueryOptions = {}): Promise<Source> {
  let principal = 'the configured credentials';

  /** SourceError with what to do, from what the API or the credentials said. */
  function explain(err: unknown, what: string): SourceError {
    if (err instanceof SourceError) return err;
    const fail = (reason: string, fix?: string) => new SourceError(`${label}: ${what}: ${reason}${fix ? `; ${fix}` : ''}`, { cause: err, ...(fix ? { fix } : {}) });
    if (err instanceof GoogleAuthError) return fail(err.message, err.fix);
    const project = settings.projectId;
    if (err instanceof TransientError) return fail(`${err.message}, after several attempts`, 'check the network and that the apiEndpoint is right, then run again');
    if (!(err instanceof ApiError)) {
      const name = (err as Error | null)?.name;
      if (name === 'AbortError' || name === 'TimeoutError') return fail('the read was stopped before it finished (a job still running is cancelled)');
      return fail(redact(errorText(err)));
    }
    const message = redact(err.message);
    if (err.status === 401) return fail(`BigQuery refused the access token of ${principal} (${message})`, 'check the source\'s keyFile or Application Default Credentials');
    if (/insufficient authentication scopes/i.test(err.message)) {
      return fail(`the credentials of ${principal} lack the BigQuery scope`, 'run `gcloud auth application-default login --scopes=https://www.googleapis.com/auth/bigquery,https://www.googleapis.com/auth/cloud-platform`, or use a service-account keyFile');
    }
    if (err.status === 403 && err.reason === 'accessDenied') {
      if (/bigquery\.jobs\.create/.test(err.message)) return fail(`${principal} may not run query jobs in project ${project}`, `grant roles/bigquery.jobUser on project ${project} to ${principal}`);
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
    track(reading);
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
      untrack(reading);
      open.delete(reading);
      await cancel();
    }
  }

  async function dryRun(sql: string): Promise<ResultsPage> {
    return api.query({ query: `SELECT * FROM ${modelSubquery(sql)}`, dryRun: true });
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

  return {
    type: 'bigquery',

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

    async doctor(sql: string): Promise<SourceCheck[]> {
      const checks: SourceCheck[] = [{ subject: 'credentials', status: 'ok', message: `${credentials.principal}, from ${credentials.origin}` }];
      const failed = (subject: string, err: unknown): SourceCheck => {
        const e = explain(err, subject === 'dry run' ? 'could not run the model' : 'could not count the model\'s rows');
        return { subject, status: 'fail', message: e.message, fix: e.fix ?? 'see the message' };
      };
      try {
        const page = await dryRun(sql);
        const bytes = Number(page.totalBytesProcessed ?? NaN);
        checks.push({ subject: 'dry run', status: 'ok', message: `the model is valid${Number.isFinite(bytes) ? `; a run reads about ${formatBytes(bytes)}` : ''}` });
      } catch (err) {
        checks.push(failed('dry run', err));
        return checks;
      }
      try {
        const n = await scalar(`SELECT COUNT(*) FROM ${modelSubquery(sql)}`);
        checks.push({ subject: 'rows', status: 'ok', message: `${n === undefined ? 'an unknown number of' : Number(n).toLocaleString('en-US')} rows` });
      } catch (err) {
        checks.push(failed('rows', err));
      }
      return checks;
    },
  };
}
