// Databricks through the SQL Statement Execution API 2.0
// (https://docs.databricks.com/api/workspace/statementexecution): a personal access token or OAuth
// M2M for a service principal, statements polled to completion, results read chunk by chunk,
// inline or from pre-signed external links, a statement cancelled when the read fails or stops.
import type { DatabricksSourceConfig } from '../config/index.js';
import {
  asText,
  realText,
  chunked,
  describeHost,
  exchange,
  readJson,
  vendorMessage,
  readFailure,
  rowBuilder,
  sleep,
  throwIfStopped,
  USER_AGENT,
  type Convert,
} from './http.js';
import { cancelOnSignal } from './signals.js';
import { byteOrderedKey, columnsQuery, findColumnIgnoringCase, modelAsSubquery, quoteBackticks, resolveRead, streamQuery, validChunkRows, type SqlDialect } from './sql.js';
import { doctorChecks } from './doctor.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type SnapshotDialect, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { insertStatements, writtenObject, type InsertLimits, type WrittenObject } from './warehouse-writes.js';
import { decimalText, integerText, jsonValue, parseDate, parseTimestamp } from './values.js';

/** sha2 returns lowercase hex; Databricks compares strings by UTF-8 bytes (UTF8_BINARY) by default. */
const DATABRICKS_SQL: SqlDialect = {
  quote: quoteBackticks,
  keyText: (col) => `cast(${col} as string)`,
  keySha256: (col) => `sha2(cast(${col} as string), 256)`,
  orderByKey: byteOrderedKey,
  lexicon: { backquotes: true, backslashEscapes: true },
};

/** Tables in a schema of the source's catalog (none: the warehouse's default catalog); md5 is already lowercase hex. */
function databricksSnapshotDialect(catalog: string | undefined): SnapshotDialect {
  const prefix = catalog === undefined ? '' : `${quoteBackticks(catalog)}.`;
  return {
    ...DATABRICKS_SQL,
    table: (schema, name) => `${prefix}${quoteBackticks(schema)}.${quoteBackticks(name)}`,
    createSchema: (schema) => `CREATE SCHEMA IF NOT EXISTS ${prefix}${quoteBackticks(schema)}`,
    textType: 'STRING',
    integerType: 'BIGINT',
    md5Hex: (text) => `md5(${text})`,
    valueText: (expr) => `cast(${expr} as string)`,
  };
}

/** Statements well under the API's limit, so the SQL parser of the warehouse is not what a write waits on. */
const DATABRICKS_INSERT: InsertLimits = { maxBytes: 1_000_000, unicodeEscapes: false };

/** Rate limiting (429) and TEMPORARILY_UNAVAILABLE (503) are the documented transient answers. */
const TRANSIENT = new Set([429, 503]);
/** Cloud storage answers 500 and 503 (SlowDown) to be retried. */
const STORAGE_TRANSIENT = new Set([500, 503]);
const MAX_POLL_DELAY_MS = 1_500;
/** An OAuth token is renewed this long before it expires. */
const TOKEN_RENEW_BEFORE_MS = 5 * 60_000;

type Auth = { authorization(signal?: AbortSignal): Promise<string>; forget(): void; renewal: string };

// ---- values -------------------------------------------------------------------------------------

interface ColumnSchema {
  readonly name: string;
  readonly type_name?: string;
  readonly type_text?: string;
  readonly type_scale?: number;
}

function converterFor(column: ColumnSchema): Convert {
  switch ((column.type_name ?? '').toUpperCase()) {
    case 'BOOLEAN':
      return (t) => t === 'true';
    case 'BYTE':
    case 'SHORT':
    case 'INT':
    case 'LONG':
      return integerText;
    case 'FLOAT':
    case 'DOUBLE':
      return realText;
    case 'DECIMAL':
      return (column.type_scale ?? 0) === 0 ? integerText : decimalText;
    case 'DATE':
      return parseDate;
    case 'TIMESTAMP':
    case 'TIMESTAMP_NTZ':
      return parseTimestamp;
    case 'ARRAY':
    case 'STRUCT':
    case 'MAP':
    case 'VARIANT':
      return jsonValue;
    default:
      // STRING, CHAR, BINARY (base64), INTERVAL, ... stay text.
      return asText;
  }
}

// ---- the API ------------------------------------------------------------------------------------

interface ServiceError {
  error_code?: string | number;
  message?: string;
}

interface ExternalLink {
  external_link?: string;
  http_headers?: Record<string, string>;
  chunk_index?: number;
  row_count?: number;
  expiration?: string;
  next_chunk_internal_link?: string;
}

interface ResultData {
  chunk_index?: number;
  row_count?: number;
  data_array?: Array<Array<string | null>>;
  external_links?: ExternalLink[];
  next_chunk_internal_link?: string;
}

interface StatementResponse {
  statement_id?: string;
  status?: { state?: string; error?: ServiceError; sql_state?: string };
  manifest?: { schema?: { columns?: ColumnSchema[] }; total_chunk_count?: number; total_row_count?: number; chunks?: Array<{ chunk_index: number; row_count?: number }> };
  result?: ResultData;
}

/** A privilege named in a Unity Catalog error, as the GRANT to ask an admin for. */
function grantFor(message: string, principal: string): string | undefined {
  const m = /does not have (.+?) on (\w+) '([^']+)'/i.exec(message);
  return m ? `GRANT ${m[1]!.toUpperCase()} ON ${m[2]!.toUpperCase()} ${m[3]} TO \`${principal}\`` : undefined;
}

/**
 * A Databricks SQL warehouse read through the Statement Execution API. Nothing is sent until the
 * first read; `doctor` signs in and runs a statement on the warehouse.
 */
export function openDatabricks(config: DatabricksSourceConfig, label: string): Source {
  const base = (config.url ?? `https://${config.host.replace(/^https:\/\//, '').replace(/\/$/, '')}`).replace(/\/$/, '');
  const where = describeHost(base);
  const principal = config.clientId ?? 'your user';
  const closing = new AbortController();
  let closed = false;
  let lastColumns: { sql: string; names: string[] } | undefined;

  const auth: Auth =
    config.token !== undefined
      ? {
          authorization: () => Promise.resolve(`Bearer ${config.token}`),
          forget: () => {},
          renewal: 'create a new personal access token (Settings → Developer → Access tokens) and update the source\'s token, or use a service principal (clientId and clientSecret), whose tokens renew themselves',
        }
      : m2mAuth();

  /** OAuth M2M: a service principal's client credentials exchanged for an hour-long token at /oidc/v1/token. */
  function m2mAuth(): Auth {
    let cached: { token: string; renewAt: number } | undefined;
    return {
      async authorization(signal) {
        if (!cached || Date.now() >= cached.renewAt) {
          const response = await exchange(
            `${base}/oidc/v1/token`,
            {
              method: 'POST',
              headers: {
                Authorization: `Basic ${Buffer.from(`${config.clientId}:${config.clientSecret}`).toString('base64')}`,
                'Content-Type': 'application/x-www-form-urlencoded',
                Accept: 'application/json',
                'User-Agent': USER_AGENT,
              },
              body: 'grant_type=client_credentials&scope=all-apis',
            },
            { retryStatuses: TRANSIENT, retryNetworkErrors: true, signal },
          );
          const body = (await readJson(response, signal)) as { access_token?: unknown; expires_in?: unknown; error?: string; error_description?: string } | undefined;
          if (response.status !== 200 || typeof body?.access_token !== 'string') {
            const said = body?.error_description ?? body?.error ?? `HTTP ${response.status}`;
            throw new SourceError(`${label}: Databricks did not issue an OAuth token for client ${config.clientId}: ${vendorMessage(said)}; check clientId and clientSecret (a service principal's OAuth secret expires: create a new one under its Secrets tab)`);
          }
          const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : 3600) * 1000;
          cached = { token: body.access_token, renewAt: Date.now() + Math.max(lifetimeMs - TOKEN_RENEW_BEFORE_MS, lifetimeMs / 2) };
        }
        return `Bearer ${cached.token}`;
      },
      forget: () => {
        cached = undefined;
      },
      renewal: 'check the service principal\'s OAuth secret (clientSecret) and that it still has access to this workspace',
    };
  }

  const explainHttp = (status: number, body: ServiceError | undefined): SourceError => {
    const said = `${vendorMessage(body?.message ?? `HTTP ${status}`)}${body?.error_code !== undefined ? ` (${String(body.error_code)})` : ''}`;
    if (status === 401 || (status === 403 && /token/i.test(body?.message ?? ''))) {
      return new SourceError(`${label}: Databricks did not accept the credentials: ${said}; ${auth.renewal}`);
    }
    if (status === 403) return new SourceError(`${label}: Databricks refused the request: ${said}; ask a workspace admin to give ${principal} the CAN USE permission on SQL warehouse ${config.warehouseId}`);
    if (status === 404) return new SourceError(`${label}: Databricks: ${said}; check warehouseId (${config.warehouseId}) and host`);
    if (status === 429) return new SourceError(`${label}: Databricks kept answering "too many requests" (HTTP 429): ${said}; try again later`);
    return new SourceError(`${label}: Databricks answered HTTP ${status} at ${where}: ${said}`);
  };

  const call = async (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal | undefined, idempotent: boolean): Promise<{ status: number; json: unknown }> => {
    for (let renewed = false; ; renewed = true) {
      const response = await exchange(
        `${base}${path}`,
        {
          method,
          headers: {
            Authorization: await auth.authorization(signal),
            Accept: 'application/json',
            'User-Agent': USER_AGENT,
            ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        },
        { retryStatuses: TRANSIENT, retryNetworkErrors: idempotent, signal },
      );
      // An OAuth token revoked before its expiry: get a new one once.
      if (response.status === 401 && config.token === undefined && !renewed) {
        await response.body?.cancel().catch(() => {});
        auth.forget();
        continue;
      }
      return { status: response.status, json: await readJson(response, signal) };
    }
  };

  /** The privileges a principal needs to keep warehouse change detection's tables in `written`'s schema. */
  const writeGrant = (written: WrittenObject): string => {
    const [catalog, schema] = written.path.length >= (written.object === 'schema' ? 2 : 3) ? written.path : [config.catalog ?? '<catalog>', ...written.path];
    const to = `TO \`${principal}\``;
    const tables = `GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA ${catalog}.${schema} ${to}`;
    return written.object === 'schema' ? `GRANT USE CATALOG, CREATE SCHEMA ON CATALOG ${catalog} ${to}, or have an admin create schema ${catalog}.${schema} and ${tables}` : tables;
  };

  const statementFailure = (response: StatementResponse, what: string, writing?: WrittenObject): SourceError => {
    const state = response.status?.state;
    const error = response.status?.error;
    const message = error?.message ?? '';
    const said = `${vendorMessage(message || `statement ${state ?? 'failed'}`)}${response.status?.sql_state ? ` (SQLSTATE ${response.status.sql_state})` : ''}`;
    if (state === 'CANCELED') return new SourceError(`${label}: Databricks cancelled the model's statement before it finished (by someone else, or a warehouse timeout): ${said}; run again`);
    if (state === 'CLOSED') return new SourceError(`${label}: Databricks closed the model's result before it was read; run again`);
    if (writing && (/INSUFFICIENT_PERMISSIONS|PERMISSION_DENIED/.test(message) || response.status?.sql_state === '42501')) {
      const fix = writeGrant(writing);
      return new SourceError(`${label}: Databricks ${what}: ${said}; ask for ${fix}`, { fix });
    }
    const grant = grantFor(message, principal);
    if (grant) return new SourceError(`${label}: Databricks ${what}: ${said}; ask for ${grant}`);
    if (/TABLE_OR_VIEW_NOT_FOUND/.test(message)) return new SourceError(`${label}: Databricks ${what}: ${said}; check the model's table names (and the source's catalog and schema)`);
    return new SourceError(`${label}: Databricks ${what}: ${said}`);
  };

  /**
   * Runs a statement to completion. It is submitted with wait_timeout 0s, so its id is known at
   * once, then polled; a statement still running when the wait fails, is stopped or the process
   * gets SIGTERM is cancelled (a submission waiting for the result could not be).
   */
  const execute = async (statement: string, opts: { disposition: 'INLINE' | 'EXTERNAL_LINKS'; signal: AbortSignal; what: string; writing?: WrittenObject }): Promise<StatementResponse> => {
    const body = {
      statement,
      warehouse_id: config.warehouseId,
      ...(config.catalog === undefined ? {} : { catalog: config.catalog }),
      ...(config.schema === undefined ? {} : { schema: config.schema }),
      wait_timeout: '0s',
      on_wait_timeout: 'CONTINUE',
      disposition: opts.disposition,
      format: 'JSON_ARRAY',
    };
    // Not resubmitted after a lost answer: the API has no idempotency key, and a copy would run on.
    let { status, json } = await call('POST', '/api/2.0/sql/statements', body, opts.signal, false);
    let running: { id: string; unregister: () => void } | undefined;
    try {
      for (let polls = 0; ; polls++) {
        if (status !== 200) throw explainHttp(status, json as ServiceError | undefined);
        const response = json as StatementResponse;
        const id = response?.statement_id;
        if (typeof id !== 'string') throw new SourceError(`${label}: Databricks sent a statement without statement_id; is url pointing at the workspace?`);
        const state = response.status?.state;
        if (state === 'SUCCEEDED') return response;
        if (state !== 'PENDING' && state !== 'RUNNING') {
          running?.unregister();
          running = undefined;
          throw statementFailure(response, opts.what, opts.writing);
        }
        running ??= { id, unregister: cancelOnSignal(() => cancel(id)) };
        await sleep(Math.min(MAX_POLL_DELAY_MS, 25 * 1.5 ** polls), opts.signal);
        ({ status, json } = await call('GET', `/api/2.0/sql/statements/${encodeURIComponent(id)}`, undefined, opts.signal, true));
      }
    } catch (err) {
      // Still PENDING or RUNNING as far as we know: do not leave it running (and billing).
      if (running !== undefined) await cancel(running.id);
      throw err;
    } finally {
      running?.unregister();
    }
  };

  const cancel = async (id: string): Promise<void> => {
    await call('POST', `/api/2.0/sql/statements/${encodeURIComponent(id)}/cancel`, undefined, AbortSignal.timeout(10_000), true).catch(() => undefined);
  };

  const failure = (err: unknown, what: string): SourceError => readFailure(label, 'Databricks', where, err, what);

  const usable = () => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
  };

  /** A statement whose result is small: INLINE. `writing`: what a DDL or DML statement writes. */
  const small = async (statement: string, what: string, writing?: WrittenObject): Promise<StatementResponse> => {
    usable();
    try {
      return await execute(statement, { disposition: 'INLINE', signal: closing.signal, what, ...(writing ? { writing } : {}) });
    } catch (err) {
      throw failure(err, what);
    }
  };

  const describe = async (sql: string): Promise<ColumnSchema[]> => {
    const columns = (await small(columnsQuery(sql, DATABRICKS_SQL), 'could not run the model')).manifest?.schema?.columns ?? [];
    lastColumns = { sql, names: columns.map((c) => c.name) };
    return columns;
  };

  /** The rows of one chunk: inline, or fetched from its external link (without our Authorization: the link carries its own credential). */
  const chunkRows = async (id: string, index: number, data: ResultData, signal: AbortSignal): Promise<Array<Array<string | null>>> => {
    if (data.data_array !== undefined) return data.data_array;
    let link = data.external_links?.[0];
    for (let refreshed = false; ; refreshed = true) {
      if (typeof link?.external_link !== 'string') throw new SourceError(`${label}: Databricks sent chunk ${index} without data or an external link`);
      const response = await exchange(link.external_link, { method: 'GET', headers: { ...(link.http_headers ?? {}) } }, { retryStatuses: STORAGE_TRANSIENT, retryNetworkErrors: true, signal });
      if (response.status === 200) {
        const rows = await readJson(response, signal);
        if (!Array.isArray(rows)) throw new SourceError(`${label}: the external link of chunk ${index} did not hold a JSON array`);
        return rows as Array<Array<string | null>>;
      }
      await response.body?.cancel().catch(() => {});
      // Links expire within minutes; a slow consumer asks for a fresh one.
      if ((response.status === 403 || response.status === 400) && !refreshed) {
        const fresh = await call('GET', `/api/2.0/sql/statements/${encodeURIComponent(id)}/result/chunks/${index}`, undefined, signal, true);
        if (fresh.status !== 200) throw explainHttp(fresh.status, fresh.json as ServiceError | undefined);
        link = (fresh.json as ResultData | undefined)?.external_links?.[0];
        continue;
      }
      throw new SourceError(`${label}: cloud storage answered HTTP ${response.status} for chunk ${index} of the result (an external link); if the workspace blocks storage links, set disposition: INLINE`);
    }
  };

  async function* pages(response: StatementResponse, build: (cells: ReadonlyArray<string | null>) => Row, signal: AbortSignal): AsyncGenerator<Row[]> {
    const id = response.statement_id!;
    const total = response.manifest?.total_chunk_count ?? 0;
    const announced = response.manifest?.chunks ?? [];
    let data: ResultData | undefined = response.result;
    let nextLink: string | undefined;
    let read = 0;
    for (let index = 0; index < total; index++) {
      throwIfStopped(signal);
      if (data === undefined || (data.data_array === undefined && data.external_links === undefined)) {
        // The next chunk is asked for only now that the rows before it were consumed (its link is fresh).
        const next = await call('GET', nextLink ?? `/api/2.0/sql/statements/${encodeURIComponent(id)}/result/chunks/${index}`, undefined, signal, true);
        if (next.status !== 200) throw explainHttp(next.status, next.json as ServiceError | undefined);
        data = next.json as ResultData;
      }
      const rows = await chunkRows(id, index, data, signal);
      const expected = data.row_count ?? data.external_links?.[0]?.row_count ?? announced.find((c) => c.chunk_index === index)?.row_count;
      if (expected !== undefined && rows.length !== expected) {
        throw new SourceError(`${label}: Databricks sent ${rows.length} rows for chunk ${index} of the result where ${expected} were announced (after ${read} rows); run again`);
      }
      read += rows.length;
      nextLink = data.next_chunk_internal_link ?? data.external_links?.[0]?.next_chunk_internal_link;
      data = undefined;
      yield rows.map(build);
    }
    const expectedTotal = response.manifest?.total_row_count;
    if (expectedTotal !== undefined && read !== expectedTotal) {
      throw new SourceError(`${label}: Databricks sent ${read} rows where the result announced ${expectedTotal}; run again`);
    }
  }

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const size = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    usable();
    const signal = opts.signal ? AbortSignal.any([opts.signal, closing.signal]) : closing.signal;
    let query = streamQuery(sql, opts, DATABRICKS_SQL);
    let names: string[] | undefined;
    if (opts.columns !== undefined || opts.orderByKey !== undefined) {
      const available = lastColumns?.sql === sql ? lastColumns.names : (await describe(sql)).map((c) => c.name);
      const read = resolveRead(opts, available, findColumnIgnoringCase);
      query = streamQuery(sql, read.opts, DATABRICKS_SQL);
      names = read.keys;
    }
    let phase = 'could not run the model';
    try {
      const response = await execute(query, { disposition: config.disposition ?? 'EXTERNAL_LINKS', signal, what: phase });
      phase = 'failed while reading the model';
      const columns = response.manifest?.schema?.columns ?? [];
      const keys = names ?? columns.map((c) => c.name);
      if (keys.length !== columns.length) throw new SourceError(`${label}: Databricks returned ${columns.length} columns where ${keys.length} were asked for`);
      for await (const chunk of chunked(pages(response, rowBuilder(keys, columns.map(converterFor)), signal), size)) {
        if (closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
        yield chunk;
      }
    } catch (err) {
      throw failure(err, phase);
    }
  }

  async function signIn(): Promise<string> {
    const response = await small('SELECT current_user(), current_catalog(), current_schema()', 'could not run a statement on the warehouse');
    const [user, catalog, schema] = response.result?.data_array?.[0] ?? [];
    return `signed in to ${where} as ${user ?? principal}; SQL warehouse ${config.warehouseId} runs statements${catalog ? `; catalog ${catalog}` : ''}${schema ? `, schema ${schema}` : ''}`;
  }

  async function countRows(sql: string): Promise<RowEstimate> {
    const response = await small(`SELECT count(*) FROM ${modelAsSubquery(sql, DATABRICKS_SQL)}`, 'could not run the model');
    return { rows: Number(response.result?.data_array?.[0]?.[0] ?? NaN), estimated: false };
  }

  /** One DDL or DML statement of warehouse change detection, run to its end. */
  const write = async (sql: string): Promise<void> => {
    await small(sql, 'could not write the state schema', writtenObject(sql));
  };
  const snapshot: SnapshotOps = {
    dialect: databricksSnapshotDialect(config.catalog),
    execute: write,
    async insertRows(table, columns, rows) {
      for (const statement of insertStatements(table, columns.map(quoteBackticks), rows, DATABRICKS_INSERT)) await write(statement);
    },
  };

  return {
    type: 'databricks',

    snapshot,

    findColumn: findColumnIgnoringCase,

    async columns(sql: string): Promise<ColumnInfo[]> {
      return (await describe(sql)).map((c) => ({ name: c.name, type: c.type_text ?? c.type_name ?? 'unknown' }));
    },

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, { signIn, rows: countRows });
    },

    // Nothing is held between reads: results stay in Databricks.
    async release() {},

    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
    },
  };
}
