// Snowflake through its SQL API v2 (https://docs.snowflake.com/en/developer-guide/sql-api/reference):
// key-pair (RS256 JWT) or token authentication, statements submitted asynchronously and polled,
// results read partition by partition, a statement cancelled when the read fails or stops.
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SnowflakeSourceConfig } from '../config/index.js';
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
import { byteOrderedKey, columnsQuery, errorText, findColumnFoldingUpper, modelAsSubquery, quoteIdent, resolveRead, streamQuery, validChunkRows, type SqlDialect } from './sql.js';
import { doctorChecks } from './doctor.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type SnapshotDialect, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { insertStatements, writtenObject, type InsertLimits, type WrittenObject } from './warehouse-writes.js';
import { dateFromMillis, decimalText, integerText, jsonValue } from './values.js';

/** SHA2 returns lowercase hex; TO_VARCHAR of a string is the string. Snowflake compares text by UTF-8 bytes unless a collation is set. */
const SNOWFLAKE_SQL: SqlDialect = {
  quote: quoteIdent,
  keyText: (col) => `TO_VARCHAR(${col})`,
  keySha256: (col) => `SHA2(TO_VARCHAR(${col}), 256)`,
  orderByKey: byteOrderedKey,
  lexicon: { backslashEscapes: true },
};

/** A name as Snowflake resolves it: a plain identifier in upper case (as if written unquoted), anything else as written. */
const snowflakeName = (name: string) => quoteIdent(/^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) ? name.toUpperCase() : name);

/**
 * Tables in the state schema of `database` (the source's database; none: the session's). The schema and
 * table names are folded like unquoted names, so `audience_sync` is the AUDIENCE_SYNC a worksheet
 * finds; MD5 is already lowercase hex.
 */
function snowflakeSnapshotDialect(database: string | undefined): SnapshotDialect {
  const prefix = database === undefined ? '' : `${snowflakeName(database)}.`;
  return {
    ...SNOWFLAKE_SQL,
    table: (schema, name) => `${prefix}${snowflakeName(schema)}.${snowflakeName(name)}`,
    createSchema: (schema) => `CREATE SCHEMA IF NOT EXISTS ${prefix}${snowflakeName(schema)}`,
    textType: 'VARCHAR',
    integerType: 'BIGINT',
    md5Hex: (text) => `MD5(${text})`,
    valueText: (expr) => `TO_VARCHAR(${expr})`,
  };
}

/** Snowflake asks for statements under 1 MB (longer ones are truncated in its history), and a VALUES clause takes at most 16,384 rows. */
const SNOWFLAKE_INSERT: InsertLimits = { maxBytes: 1_000_000, maxRows: 16_384, unicodeEscapes: true };

/** Statuses the SQL API reference says to retry with backoff. */
const TRANSIENT = new Set([429, 503, 504]);
/** A key-pair JWT may live at most an hour; a fresh one is signed well before that. */
const JWT_LIFETIME_S = 59 * 60;
const JWT_RENEW_BEFORE_S = 5 * 60;
const MAX_POLL_DELAY_MS = 1_500;

type Auth = { headers(): Record<string, string>; renewal: string };

/** A PEM from an environment variable often arrives with its newlines written as `\n`. */
function pemText(text: string): string {
  return text.includes('\n') ? text : text.replace(/\\n/g, '\n');
}

function keyPairAuth(config: SnowflakeSourceConfig, label: string): Auth {
  let pem: string;
  if (config.privateKeyFile !== undefined) {
    try {
      pem = readFileSync(config.privateKeyFile, 'utf8');
    } catch (err) {
      throw new SourceError(`${label}: cannot read privateKeyFile ${config.privateKeyFile} (${errorText(err)}); check the path (relative to the config file)`, { cause: err });
    }
  } else {
    pem = pemText(config.privateKey ?? '');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(config.privateKeyPassphrase === undefined ? {} : { passphrase: config.privateKeyPassphrase }) });
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(pem);
    const hint = encrypted
      ? config.privateKeyPassphrase === undefined
        ? 'the key is encrypted: set privateKeyPassphrase'
        : 'check privateKeyPassphrase'
      : 'it must be a PEM private key (-----BEGIN PRIVATE KEY-----)';
    throw new SourceError(`${label}: cannot read the private key (${errorText(err)}); ${hint}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new SourceError(`${label}: the private key is ${key.asymmetricKeyType ?? 'not RSA'}; Snowflake key-pair authentication needs an RSA key`);
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const fingerprint = `SHA256:${createHash('sha256').update(der).digest('base64')}`;
  // The account part is the locator without its region, or ORGNAME-ACCOUNTNAME; both upper case.
  const qualified = `${config.account.split('.')[0]!.toUpperCase()}.${config.user.toUpperCase()}`;
  let cached: { token: string; renewAt: number } | undefined;
  const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    headers() {
      const now = Math.floor(Date.now() / 1000);
      if (!cached || now >= cached.renewAt) {
        const signing = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ iss: `${qualified}.${fingerprint}`, sub: qualified, iat: now, exp: now + JWT_LIFETIME_S })}`;
        const signature = sign('sha256', Buffer.from(signing), key).toString('base64url');
        cached = { token: `${signing}.${signature}`, renewAt: now + JWT_LIFETIME_S - JWT_RENEW_BEFORE_S };
      }
      return { Authorization: `Bearer ${cached.token}`, 'X-Snowflake-Authorization-Token-Type': 'KEYPAIR_JWT' };
    },
    renewal: `check that user ${config.user} still has this key's public key (DESC USER ${config.user}: RSA_PUBLIC_KEY_FP is ${fingerprint}); if the key was rotated, point the source at the new private key, or assign the public key again with ALTER USER ${config.user} SET RSA_PUBLIC_KEY='…'. Also check account and user, and this machine's clock`,
  };
}

function tokenAuth(config: SnowflakeSourceConfig): Auth {
  const type = config.tokenType ?? 'PROGRAMMATIC_ACCESS_TOKEN';
  return {
    headers: () => ({ Authorization: `Bearer ${config.token ?? ''}`, 'X-Snowflake-Authorization-Token-Type': type }),
    renewal:
      type === 'OAUTH'
        ? 'get a new OAuth access token and update the source\'s token (OAuth tokens are short-lived: key-pair authentication suits scheduled syncs better)'
        : `generate a new programmatic access token for ${config.user} (ALTER USER ${config.user} ADD PROGRAMMATIC ACCESS TOKEN …, or in Snowsight) and update the source's token`,
  };
}

// ---- values -------------------------------------------------------------------------------------

interface RowType {
  readonly name: string;
  readonly type: string;
  readonly scale?: number;
  readonly precision?: number;
  readonly length?: number;
}

/** `seconds[.fraction]` since the epoch (TIMESTAMP_*; TIMESTAMP_TZ adds ` <offset + 1440>`) to a Date. */
const epochSeconds: Convert = (text) => {
  const space = text.indexOf(' ');
  const value = space === -1 ? text : text.slice(0, space);
  const dot = value.indexOf('.');
  const seconds = Number(dot === -1 ? value : value.slice(0, dot));
  const millis = dot === -1 ? 0 : Number(value.slice(dot + 1, dot + 4).padEnd(3, '0'));
  const ms = seconds * 1000 + (value.startsWith('-') ? -millis : millis);
  return dateFromMillis(ms) ?? text;
};

/** DATE is the number of days since 1970-01-01. */
const epochDays: Convert = (text) => dateFromMillis(Number(text) * 86_400_000) ?? text;

/** TIME is seconds since midnight; kept as `HH:MM:SS[.fff]` text, like the other sources. */
const timeOfDay: Convert = (text) => {
  const [whole, fraction = ''] = text.split('.');
  const s = Number(whole);
  if (!Number.isFinite(s)) return text;
  const pad = (n: number) => String(n).padStart(2, '0');
  const ms = fraction.slice(0, 3).replace(/0+$/, '');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}${ms ? `.${ms}` : ''}`;
};

/** One conversion per column, chosen from the result's rowType. */
function converterFor(column: RowType): Convert {
  switch (column.type.toUpperCase()) {
    case 'FIXED':
      return (column.scale ?? 0) === 0 ? integerText : decimalText;
    case 'REAL':
      return realText;
    case 'BOOLEAN':
      return (t) => t === 'true' || t === '1';
    case 'DATE':
      return epochDays;
    case 'TIME':
      return timeOfDay;
    case 'TIMESTAMP_NTZ':
    case 'TIMESTAMP_LTZ':
    case 'TIMESTAMP_TZ':
      return epochSeconds;
    case 'VARIANT':
    case 'OBJECT':
    case 'ARRAY':
    case 'MAP':
      return jsonValue;
    default:
      // TEXT, BINARY (hex), GEOGRAPHY, ... stay text.
      return asText;
  }
}

function typeName(column: RowType): string {
  const type = column.type.toUpperCase();
  if (type === 'FIXED') return `NUMBER(${column.precision ?? 38},${column.scale ?? 0})`;
  if (type === 'TEXT') return 'VARCHAR';
  if (type === 'REAL') return 'FLOAT';
  return type;
}

// ---- the API ------------------------------------------------------------------------------------

interface ResultSet {
  statementHandle: string;
  resultSetMetaData?: { numRows?: number; rowType?: RowType[]; partitionInfo?: Array<{ rowCount: number }> };
  data?: Array<Array<string | null>>;
}

interface Failure {
  code?: string;
  sqlState?: string;
  message?: string;
}

interface Statement {
  readonly handle: string;
  readonly first: ResultSet;
}

/**
 * A Snowflake account read through the SQL API v2. Nothing is sent until the first read; `doctor`
 * signs in and looks for missing grants.
 */
export function openSnowflake(config: SnowflakeSourceConfig, label: string): Source {
  const auth = config.token !== undefined ? tokenAuth(config) : keyPairAuth(config, label);
  const base = (config.url ?? `https://${config.account.replace(/_/g, '-').toLowerCase()}.snowflakecomputing.com`).replace(/\/$/, '');
  const where = describeHost(base);
  const role = config.role ?? 'the user\'s default role';
  const closing = new AbortController();
  let closed = false;
  let lastColumns: { sql: string; names: string[] } | undefined;

  const headers = (json: boolean): Record<string, string> => ({
    ...auth.headers(),
    Accept: 'application/json',
    'User-Agent': USER_AGENT,
    ...(json ? { 'Content-Type': 'application/json' } : {}),
  });

  /** What a failed answer means for the user, with what to do. */
  /** The grants a role needs to keep warehouse change detection's tables in `written`'s schema. */
  const writeGrant = (written: WrittenObject): string => {
    // As a worksheet would write them: bare when upper case, else quoted.
    const names = written.path.map((p) => (/^[A-Z_][A-Z0-9_$]*$/.test(p) ? p : quoteIdent(p)));
    const database = (written.object === 'schema' ? names.length > 1 : names.length > 2) ? names[0]! : (config.database ?? '<database>');
    const schema = `${database}.${written.object === 'schema' ? names.at(-1)! : (names.at(-2) ?? config.schema ?? '<schema>')}`;
    const to = `TO ROLE ${config.role ?? '<the role of the source>'}`;
    const tables = `GRANT USAGE, CREATE TABLE ON SCHEMA ${schema} ${to}; GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA ${schema} ${to}`;
    return written.object === 'schema' ? `GRANT CREATE SCHEMA ON DATABASE ${database} ${to}, or have an admin create schema ${schema} and ${tables}` : tables;
  };

  const explain = (status: number, body: Failure | undefined, what: string, writing?: WrittenObject): SourceError => {
    const code = body?.code ?? '';
    const vendor = vendorMessage(body?.message ?? `HTTP ${status}`);
    const said = `${vendor}${code ? ` (${code})` : ''}`;
    // 003001: insufficient privileges; 002003: an object the role cannot see (no USAGE on the schema).
    if (writing && (code === '003001' || code === '002003')) {
      const fix = writeGrant(writing);
      return new SourceError(`${label}: Snowflake ${what}: ${said}; ${fix}`, { fix });
    }
    if (status === 401) return new SourceError(`${label}: Snowflake did not accept the credentials: ${said}; ${auth.renewal}`);
    if (status === 403) return new SourceError(`${label}: Snowflake refused the request: ${said}; check that the user may use the SQL API from this address (network policy)`);
    if (status === 408) return new SourceError(`${label}: Snowflake cancelled the model's statement when it ran past its timeout: ${said}; raise statementTimeoutSeconds (or the account's STATEMENT_TIMEOUT_IN_SECONDS), or make the model faster`);
    if (status === 429) return new SourceError(`${label}: Snowflake kept answering "too many requests" (HTTP 429): ${said}; try again later`);
    if (code === '002003') {
      const object = /Object '([^']+)' does not exist/.exec(body?.message ?? '')?.[1] ?? 'the table';
      const fix = `check the model's table names, or grant SELECT on ${object} to role ${role} (and USAGE on its database and schema)`;
      return new SourceError(`${label}: Snowflake ${what}: ${said}; ${fix}`, { fix });
    }
    if (code === '000606') return new SourceError(`${label}: Snowflake ${what}: ${said}; grant USAGE on warehouse ${config.warehouse ?? '<warehouse>'} to role ${role}, or set the source's warehouse`);
    if (code === '390189' || code === '390186') return new SourceError(`${label}: Snowflake ${what}: ${said}; grant role ${role} to user ${config.user}, or change the source's role`);
    if (status === 422) return new SourceError(`${label}: Snowflake ${what}: ${said}`);
    return new SourceError(`${label}: Snowflake answered HTTP ${status} at ${where}: ${said}`);
  };

  const call = async (method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal | undefined, retryPath?: string): Promise<{ status: number; json: unknown }> => {
    // Every request is idempotent: reads by nature, submissions through their requestId (retried with retry=true).
    const response = await exchange(
      `${base}${path}`,
      { method, headers: headers(body !== undefined), ...(body === undefined ? {} : { body: JSON.stringify(body) }) },
      { retryStatuses: TRANSIENT, retryNetworkErrors: true, signal, ...(retryPath === undefined ? {} : { retryUrl: `${base}${retryPath}` }) },
    );
    return { status: response.status, json: await readJson(response, signal) };
  };

  /**
   * Submits a statement (asynchronously: its handle is known at once) and waits for its first
   * partition. A statement still running when the wait fails, is stopped or the process gets
   * SIGTERM is cancelled.
   */
  const execute = async (statement: string, signal: AbortSignal | undefined, what: string, writing?: WrittenObject): Promise<Statement> => {
    const requestId = randomUUID();
    const body = {
      statement,
      ...(config.statementTimeoutSeconds === undefined ? {} : { timeout: config.statementTimeoutSeconds }),
      ...(config.database === undefined ? {} : { database: config.database }),
      ...(config.schema === undefined ? {} : { schema: config.schema }),
      ...(config.warehouse === undefined ? {} : { warehouse: config.warehouse }),
      ...(config.role === undefined ? {} : { role: config.role }),
    };
    // A resubmission (after a lost answer or a transient status) carries the same requestId with
    // retry=true: Snowflake then answers for the statement already submitted instead of running it twice.
    const path = `/api/v2/statements?requestId=${requestId}&async=true`;
    let { status, json } = await call('POST', path, body, signal, `${path}&retry=true`);
    const handle = (json as { statementHandle?: unknown } | undefined)?.statementHandle;
    if (status === 202 && typeof handle === 'string') {
      const unregister = cancelOnSignal(() => cancel(handle));
      try {
        for (let polls = 0; status === 202; polls++) {
          await sleep(Math.min(MAX_POLL_DELAY_MS, 25 * 1.5 ** polls), signal);
          ({ status, json } = await call('GET', `/api/v2/statements/${encodeURIComponent(handle)}`, undefined, signal));
        }
      } catch (err) {
        await cancel(handle);
        throw err;
      } finally {
        unregister();
      }
    }
    if (status !== 200) throw explain(status, json as Failure | undefined, what, writing);
    const result = json as ResultSet;
    if (typeof result?.statementHandle !== 'string' || !Array.isArray(result.resultSetMetaData?.rowType)) {
      throw new SourceError(`${label}: Snowflake sent a result without statementHandle or rowType; is url pointing at the SQL API?`);
    }
    return { handle: result.statementHandle, first: result };
  };

  const cancel = async (handle: string): Promise<void> => {
    await call('POST', `/api/v2/statements/${encodeURIComponent(handle)}/cancel`, undefined, AbortSignal.timeout(10_000)).catch(() => undefined);
  };

  const failure = (err: unknown, what: string): SourceError => readFailure(label, 'Snowflake', where, err, what);

  const usable = () => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
  };

  const describe = async (sql: string): Promise<RowType[]> => {
    usable();
    try {
      const { first } = await execute(columnsQuery(sql, SNOWFLAKE_SQL), closing.signal, 'could not run the model');
      const rowType = first.resultSetMetaData!.rowType!;
      lastColumns = { sql, names: rowType.map((c) => c.name) };
      return rowType;
    } catch (err) {
      throw failure(err, 'could not run the model');
    }
  };

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    usable();
    const signal = opts.signal ? AbortSignal.any([opts.signal, closing.signal]) : closing.signal;
    let query = streamQuery(sql, opts, SNOWFLAKE_SQL);
    let names: string[] | undefined;
    if (opts.columns !== undefined || opts.orderByKey !== undefined) {
      const available = lastColumns?.sql === sql ? lastColumns.names : (await describe(sql)).map((c) => c.name);
      const read = resolveRead(opts, available, findColumnFoldingUpper);
      query = streamQuery(sql, read.opts, SNOWFLAKE_SQL);
      names = read.keys;
    }
    let phase = 'could not run the model';
    try {
      const statement = await execute(query, signal, phase);
      phase = 'failed while reading the model';
      const meta = statement.first.resultSetMetaData!;
      const rowType = meta.rowType!;
      const keys = names ?? rowType.map((c) => c.name);
      if (keys.length !== rowType.length) throw new SourceError(`${label}: Snowflake returned ${rowType.length} columns where ${keys.length} were asked for`);
      const build = rowBuilder(keys, rowType.map(converterFor));
      const partitions = meta.partitionInfo ?? [{ rowCount: statement.first.data?.length ?? 0 }];
      for await (const chunk of chunked(pages(statement, partitions, build, signal), chunkRows)) {
        if (closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
        yield chunk;
      }
    } catch (err) {
      throw failure(err, phase);
    }
  }

  /** Partition 0 came with the result; each later one is fetched (gzip) only when the rows before it were consumed. */
  async function* pages(statement: Statement, partitions: ReadonlyArray<{ rowCount: number }>, build: (cells: ReadonlyArray<string | null>) => Row, signal: AbortSignal): AsyncGenerator<Row[]> {
    let read = 0;
    for (let i = 0; i < partitions.length; i++) {
      throwIfStopped(signal);
      let data: unknown;
      if (i === 0) {
        data = statement.first.data ?? [];
      } else {
        const { status, json } = await call('GET', `/api/v2/statements/${encodeURIComponent(statement.handle)}?partition=${i}`, undefined, signal);
        if (status !== 200) throw explain(status, json as Failure | undefined, `failed while reading partition ${i} of the result`);
        data = (json as { data?: unknown } | undefined)?.data;
      }
      const expected = partitions[i]!.rowCount;
      // A partition shorter than announced would read as a smaller model: fail instead.
      if (!Array.isArray(data) || data.length !== expected) {
        throw new SourceError(`${label}: Snowflake sent ${Array.isArray(data) ? data.length : 'no'} rows for partition ${i} of the result where ${expected} were announced (after ${read} rows); run again`);
      }
      read += data.length;
      yield (data as Array<Array<string | null>>).map(build);
    }
  }

  async function signIn(): Promise<string> {
    usable();
    try {
      const { first } = await execute('SELECT CURRENT_USER(), CURRENT_ROLE(), CURRENT_WAREHOUSE(), CURRENT_DATABASE(), CURRENT_SCHEMA()', closing.signal, 'could not check the settings');
      const [user, currentRole, warehouse, database, schema] = first.data?.[0] ?? [];
      const asRole = currentRole ?? role;
      if (config.warehouse !== undefined && warehouse !== config.warehouse) {
        const fix = `grant USAGE on warehouse ${config.warehouse} to role ${asRole} (names are case-sensitive here: write it as SHOW WAREHOUSES prints it)`;
        throw new SourceError(`${label}: role ${asRole} cannot use warehouse ${config.warehouse}: ${fix}`, { fix });
      }
      if (warehouse === null || warehouse === undefined) throw new SourceError(`${label}: no warehouse to run the model: set the source's warehouse, or give user ${user ?? config.user} a DEFAULT_WAREHOUSE`);
      if (config.database !== undefined && database !== config.database) {
        const fix = `grant USAGE on database ${config.database} to role ${asRole}`;
        throw new SourceError(`${label}: role ${asRole} cannot use database ${config.database}: ${fix}`, { fix });
      }
      if (config.schema !== undefined && schema !== config.schema) {
        const fix = `grant USAGE on schema ${database ?? config.database ?? '<database>'}.${config.schema} to role ${asRole}`;
        throw new SourceError(`${label}: role ${asRole} cannot use schema ${config.schema}: ${fix}`, { fix });
      }
      return `signed in to ${where} as ${user ?? config.user} with role ${asRole}; warehouse ${warehouse}${database ? `, database ${database}` : ''}${schema ? `, schema ${schema}` : ''}`;
    } catch (err) {
      throw failure(err, 'could not check the settings');
    }
  }

  async function countRows(sql: string): Promise<RowEstimate> {
    usable();
    try {
      const { first } = await execute(`SELECT COUNT(*) FROM ${modelAsSubquery(sql, SNOWFLAKE_SQL)}`, closing.signal, 'could not run the model');
      return { rows: Number(first.data?.[0]?.[0] ?? NaN), estimated: false };
    } catch (err) {
      throw failure(err, 'could not run the model');
    }
  }

  const dialect = snowflakeSnapshotDialect(config.database);
  /** One DDL or DML statement of warehouse change detection, run to its end. */
  const write = async (sql: string): Promise<void> => {
    usable();
    const what = 'could not write the state schema';
    try {
      await execute(sql, closing.signal, what, writtenObject(sql));
    } catch (err) {
      throw failure(err, what);
    }
  };
  const snapshot: SnapshotOps = {
    dialect,
    execute: write,
    async insertRows(table, columns, rows) {
      for (const statement of insertStatements(table, columns.map(quoteIdent), rows, SNOWFLAKE_INSERT)) await write(statement);
    },
  };

  return {
    type: 'snowflake',

    snapshot,

    findColumn: findColumnFoldingUpper,

    async columns(sql: string): Promise<ColumnInfo[]> {
      return (await describe(sql)).map((c) => ({ name: c.name, type: typeName(c) }));
    },

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, { signIn, rows: countRows });
    },

    // Nothing is held between reads: results stay in Snowflake.
    async release() {},

    async close() {
      if (closed) return;
      closed = true;
      // Streams in progress stop, and cancel the statements they are waiting for.
      closing.abort();
    },
  };
}
