// A strict local stand-in for the Snowflake SQL API v2, backed by an in-memory DuckDB, for tests and
// benches of the Snowflake source. It follows, as read in December 2026:
// - SQL API reference, v2.0.0 (docs.snowflake.com/en/developer-guide/sql-api/reference) and its
//   OpenAPI document (sqlapi.yaml, version 2.0.0): POST /api/v2/statements (requestId, async, retry,
//   nullable), GET /api/v2/statements/{handle}[?partition=N], POST .../{handle}/cancel; the
//   ResultSet, QueryStatus, QueryFailureStatus and CancelStatus bodies; 200/202/408/422/429 answers.
// - "Submitting a request", "Handling responses", "Handling errors" and "Resubmitting a request"
//   (developer-guide/sql-api/*): async execution and polling, partitions after the first sent with
//   Content-Encoding: gzip and carrying `data` only, a requestId resubmitted with retry=true returning
//   the same statement; one statement per request (error 000008 otherwise).
// - "Using key-pair authentication" (developer-guide/sql-api/authenticating and
//   user-guide/key-pair-auth): Authorization: Bearer <JWT> with X-Snowflake-Authorization-Token-Type
//   KEYPAIR_JWT; an RS256 JWT whose iss is ACCOUNT.USER.SHA256:<base64 SHA-256 of the public key's
//   DER>, sub ACCOUNT.USER, iat, and exp at most one hour after iat; anything else is 390144 "JWT
//   token is invalid". PROGRAMMATIC_ACCESS_TOKEN and OAUTH tokens (user-guide/programmatic-access-tokens).
// - jsonv2 cell encodings: every value a string or null; FIXED as decimal text, DATE as days since the
//   epoch, TIME and TIMESTAMP_NTZ/LTZ as seconds with 9 decimals, TIMESTAMP_TZ with " <offset + 1440>",
//   BINARY as hex, VARIANT/OBJECT/ARRAY as JSON text. Unquoted identifiers come back upper-case.
// - DDL and DML through the same endpoint (SQL API reference, ResultSet.stats: numRowsInserted,
//   numRowsUpdated, numRowsDeleted, numDuplicateRowsUpdated): an INSERT answers one FIXED column
//   "number of rows inserted" (DELETE: "number of rows deleted"), DDL one TEXT column "status"
//   ("Table T successfully created.", "T already exists, statement succeeded.", "Drop statement
//   executed successfully (T already dropped)."). "DB"."SCHEMA"."T", "SCHEMA"."T" and T resolve
//   against the request's database and schema.
// - "String & binary data types" (sql-reference/data-types-text): single-quoted strings take '' and
//   the escapes \' \" \\ \b \f \n \r \t \0 \ooo \xhh \uhhhh; any other escaped character is itself.
// - "Limits on query text size" (user-guide/query-size-limits): statements under 1 MB; and a VALUES
//   list of at most 16,384 rows (001795 "maximum number of expressions in a list exceeded").
// Emulated, not documented: the error codes for a role not granted (390189) and a reused requestId;
// SQL access control error 003001 "Insufficient privileges to operate on schema 'S'" (table 'T',
// database 'D') for a role without CREATE TABLE or INSERT/DELETE (refuseWrites); DuckDB stands in for
// Snowflake's SQL (SHA2, TO_VARCHAR and CURRENT_* are provided, MD5 is DuckDB's lowercase hex), and a
// result column keeps its case only when the statement spells it in double quotes; object and column
// names match ignoring case (Snowflake matches a quoted name exactly: not emulated). Rows and bytes
// sent are counted (transferred) for the benches.
import { createHash, generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { SnowflakeSourceConfig } from '../config/index.js';
import {
  BIGINT,
  blobBytes,
  classifyDuckDbError,
  Controls,
  cutConnection,
  DuckBackend,
  DuckDBTypeId,
  epochDays,
  epochMicros,
  listen,
  readBody,
  sendBytes,
  sendJson,
  Statement,
  statementCount,
  statementKind,
  substituteCalls,
  timeMicros,
  toDuckDbText,
  toJsonValue,
  valuesRows,
  VARCHAR,
  writeTarget,
  type CellEncoder,
  type ResultColumn,
  type Transferred,
  type VendorLexicon,
  type WriteTarget,
} from './sql-api-kit.js';

export interface SnowflakeServerOptions {
  /** Account identifier as users write it (default `testorg-testaccount`). */
  readonly account?: string;
  readonly user?: string;
  /** How the source signs in (default keypair): the server registers a key or issues a token. */
  readonly auth?: 'keypair' | 'pat' | 'oauth';
  /** Rows per result partition (default 1,000). */
  readonly rowsPerPartition?: number;
  /** Report these result columns (by reported name) with this Snowflake type, e.g. { SEEN_TZ: 'TIMESTAMP_TZ' } for a TIMESTAMPTZ column. */
  readonly columnTypes?: Readonly<Record<string, string>>;
  /** Offset (minutes) of TIMESTAMP_TZ values (default 120). */
  readonly tzOffsetMinutes?: number;
}

interface Failure {
  status: 408 | 422;
  code: string;
  sqlState: string;
  message: string;
}

export interface SnowflakeServer {
  readonly url: string;
  readonly account: string;
  readonly user: string;
  readonly role: string;
  readonly warehouse: string;
  readonly database: string;
  readonly schema: string;
  /** PKCS#8 PEM of the key registered for the user (keypair auth). */
  readonly privateKeyPem: string;
  /** The token issued (pat/oauth auth). */
  readonly token: string;
  /** A source config that reaches this server. */
  sourceConfig(): SnowflakeSourceConfig;
  /** Runs fixture SQL in the backing DuckDB. */
  exec(sql: string): Promise<void>;
  /** The key is unregistered (keypair) or the token expires: every request fails with 401. */
  expireCredential(): void;
  /** The role loses SELECT on this table (unqualified name): statements naming it fail with 002003. */
  revokeGrant(table: string): void;
  /** The role loses USAGE on the warehouse. */
  revokeWarehouseUsage(): void;
  /** After this many partitions, partition requests get their connection cut (undefined: never). */
  failMidStream(afterPartitions: number | undefined): void;
  /** Statements wait this long before running (to cancel them). */
  slowStatements(ms: number): void;
  /** The next requests are answered with this status (429, 503) instead of being handled. */
  injectFailures(status: number, count: number): void;
  /** Requests by route: submit, resubmit (retry=true), status, partition, cancel. */
  readonly requests: ReadonlyMap<string, number>;
  /** Handles named by cancel requests. */
  readonly cancelled: readonly string[];
  /** Statements still running (a stopped read leaves none). */
  running(): number;
  /** Claims of the last key-pair JWT accepted. */
  readonly lastJwtClaims: Readonly<Record<string, unknown>> | undefined;
  /** Statements received, in order (SQL text). */
  readonly statements: readonly string[];
  /** The role loses CREATE TABLE on this schema (unqualified name) and INSERT/DELETE on its tables: DDL and DML there fail with 003001; `false` gives them back. */
  refuseWrites(schema: string, refuse?: boolean): void;
  /** Statements submitted, result rows served and bytes sent and received since the start or the last reset. */
  transferred(): Transferred;
  resetTransferred(): void;
  stop(): Promise<void>;
}

const MACROS = [
  `CREATE MACRO sha2(x, bits) AS CASE WHEN bits = 256 THEN sha256(x) ELSE error('SHA2: only 256 bits are emulated') END`,
  `CREATE MACRO to_varchar(x) AS CAST(x AS VARCHAR)`,
];

/** Snowflake's single-quoted strings: '' and backslash escapes (\\', \\\\, \\n, \\uXXXX, ...). */
const SNOWFLAKE_LEXICON: VendorLexicon = { backslashEscapes: 'snowflake', doubledQuotes: true, adjacentConcatenate: false, backticks: false };

/** The one-column result Snowflake answers a DML statement with, and its `stats` field. */
const DML_RESULT = {
  INSERT: { column: 'number of rows inserted', stat: 'numRowsInserted' },
  DELETE: { column: 'number of rows deleted', stat: 'numRowsDeleted' },
  UPDATE: { column: 'number of rows updated', stat: 'numRowsUpdated' },
  MERGE: { column: 'number of rows inserted', stat: 'numRowsInserted' },
} as const;

/** Rows one VALUES clause may hold. */
const MAX_VALUES_ROWS = 16_384;

/** An unquoted name as Snowflake reports it (upper case). */
const reported = (name: string) => (/^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) ? name.toUpperCase() : name);

/** The status line Snowflake answers a DDL statement with. */
function ddlStatus(verb: string, target: WriteTarget | undefined, existed: boolean): string {
  const name = target ? reported(target.path.at(-1)!) : '';
  if (verb === 'CREATE' && target) return existed ? `${name} already exists, statement succeeded.` : `${target.object === 'schema' ? 'Schema' : 'Table'} ${name} successfully created.`;
  if (verb === 'DROP' && target) return existed ? `${name} successfully dropped.` : `Drop statement executed successfully (${name} already dropped).`;
  return 'Statement executed successfully.';
}

const SUBMIT_FIELDS = new Set(['statement', 'timeout', 'database', 'schema', 'warehouse', 'role', 'bindings', 'parameters']);
const HANDLE_PATH = /^\/api\/v2\/statements\/([0-9a-f-]{36})(\/cancel)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The jsonv2 type of a DuckDB column, and how its cells are written. */
function snowflakeColumn(column: ResultColumn, override: string | undefined, tzOffset: number): { rowType: Record<string, unknown>; encode: CellEncoder } {
  const base = { name: column.name, nullable: true };
  const seconds = (micros: bigint) => {
    const sign = micros < 0n ? '-' : '';
    const abs = micros < 0n ? -micros : micros;
    return `${sign}${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, '0')}000`;
  };
  const t = column.type;
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { rowType: { ...base, type: 'BOOLEAN' }, encode: (v) => String(v) };
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
      return { rowType: { ...base, type: 'FIXED', precision: 38, scale: 0 }, encode: (v) => String(v) };
    case DuckDBTypeId.DECIMAL: {
      const { width, scale } = t as unknown as { width: number; scale: number };
      return { rowType: { ...base, type: 'FIXED', precision: width, scale }, encode: (v) => String(v) };
    }
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return { rowType: { ...base, type: 'REAL' }, encode: (v) => String(v) };
    case DuckDBTypeId.DATE:
      return { rowType: { ...base, type: 'DATE' }, encode: (v) => String(epochDays(v)) };
    case DuckDBTypeId.TIME:
      return { rowType: { ...base, type: 'TIME', scale: 9 }, encode: (v) => seconds(timeMicros(v)) };
    case DuckDBTypeId.TIMESTAMP:
      return { rowType: { ...base, type: 'TIMESTAMP_NTZ', scale: 9 }, encode: (v) => seconds(epochMicros(v)) };
    case DuckDBTypeId.TIMESTAMP_TZ:
      if (override === 'TIMESTAMP_TZ') return { rowType: { ...base, type: 'TIMESTAMP_TZ', scale: 9 }, encode: (v) => `${seconds(epochMicros(v))} ${tzOffset + 1440}` };
      return { rowType: { ...base, type: 'TIMESTAMP_LTZ', scale: 9 }, encode: (v) => seconds(epochMicros(v)) };
    case DuckDBTypeId.BLOB:
      return { rowType: { ...base, type: 'BINARY', length: 8388608 }, encode: (v) => Buffer.from(blobBytes(v)).toString('hex').toUpperCase() };
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
      return { rowType: { ...base, type: 'ARRAY' }, encode: (v) => JSON.stringify(toJsonValue(v)) };
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
      return { rowType: { ...base, type: 'OBJECT' }, encode: (v) => JSON.stringify(toJsonValue(v)) };
    case DuckDBTypeId.VARCHAR:
      if (t.alias === 'JSON') return { rowType: { ...base, type: 'VARIANT' }, encode: (v) => String(v) };
      return { rowType: { ...base, type: 'TEXT', length: 16777216 }, encode: (v) => String(v) };
    default:
      return { rowType: { ...base, type: 'TEXT', length: 16777216 }, encode: (v) => String(v) };
  }
}

function base64urlJson(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function startSnowflakeServer(options: SnowflakeServerOptions = {}): Promise<SnowflakeServer> {
  const accountConfigured = options.account ?? 'testorg-testaccount';
  const accountId = accountConfigured.split('.')[0]!.toUpperCase();
  const user = options.user ?? 'AUDIENCE_SYNC';
  const authMode = options.auth ?? 'keypair';
  const rowsPerPartition = options.rowsPerPartition ?? 1_000;
  const tzOffset = options.tzOffsetMinutes ?? 120;
  const roles = new Set(['ANALYST', 'PUBLIC']);
  const ctx = { role: 'ANALYST', warehouse: 'COMPUTE_WH', database: 'ANALYTICS', schema: 'PUBLIC' };
  let warehouseUsage = true;

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let registeredKey: KeyObject | undefined = publicKey;
  const fingerprint = (key: KeyObject) => `SHA256:${createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('base64')}`;
  const token = `ver:1-hint:${randomUUID()}`;
  let tokenExpired = false;
  let lastJwtClaims: Record<string, unknown> | undefined;

  // The account's database is a DuckDB catalog holding its schema: "ANALYTICS"."AUDIENCE_SYNC"."T" resolves as in Snowflake.
  const backend = await DuckBackend.create(MACROS, { catalog: ctx.database, schema: ctx.schema });
  const controls = new Controls();
  const statements = new Map<string, Statement<Failure>>();
  const byRequestId = new Map<string, string>();
  const received: string[] = [];

  /** Authenticates a request; returns an error answer, or undefined when it may proceed. */
  const authenticate = (req: IncomingMessage): { status: number; body: Record<string, string> } | undefined => {
    const header = req.headers.authorization ?? '';
    const type = (req.headers['x-snowflake-authorization-token-type'] as string | undefined) ?? 'OAUTH';
    const bearer = /^Bearer (\S+)$/.exec(header)?.[1];
    if (bearer === undefined) return { status: 401, body: { code: '390101', message: 'Authorization header is missing or malformed.' } };
    if (type === 'KEYPAIR_JWT') {
      const invalid = { status: 401, body: { code: '390144', message: `JWT token is invalid. [${randomUUID()}]` } };
      if (authMode !== 'keypair' || registeredKey === undefined) return invalid;
      const parts = bearer.split('.');
      if (parts.length !== 3) return invalid;
      const head = base64urlJson(parts[0]!);
      const claims = base64urlJson(parts[1]!);
      if (head?.alg !== 'RS256' || claims === undefined) return invalid;
      if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), registeredKey, Buffer.from(parts[2]!, 'base64url'))) return invalid;
      const now = Math.floor(Date.now() / 1000);
      const qualified = `${accountId}.${user}`;
      const { iss, sub, iat, exp } = claims;
      if (iss !== `${qualified}.${fingerprint(registeredKey)}` || sub !== qualified) return invalid;
      if (typeof iat !== 'number' || typeof exp !== 'number' || iat > now + 60 || exp <= now || exp - iat > 3600) return invalid;
      lastJwtClaims = claims;
      return undefined;
    }
    if (type === 'PROGRAMMATIC_ACCESS_TOKEN' || type === 'OAUTH') {
      const expected = (type === 'OAUTH') === (authMode === 'oauth') && authMode !== 'keypair';
      if (!expected || bearer !== token) return { status: 401, body: { code: type === 'OAUTH' ? '390303' : '394400', message: type === 'OAUTH' ? 'Invalid OAuth access token.' : 'Programmatic access token is invalid.' } };
      if (tokenExpired) return { status: 401, body: { code: type === 'OAUTH' ? '390318' : '394401', message: type === 'OAUTH' ? 'OAuth access token expired.' : 'Programmatic access token has expired.' } };
      return undefined;
    }
    return { status: 401, body: { code: '390100', message: `Unsupported authorization token type ${type}.` } };
  };

  const statusUrl = (handle: string) => `/api/v2/statements/${handle}`;

  const queryStatus = (s: Statement<Failure>) => ({
    code: '333334',
    message: 'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.',
    statementHandle: s.id,
    statementStatusUrl: statusUrl(s.id),
  });

  const resultSet = (s: Statement<Failure>) => {
    const partitions = s.pages.length === 0 ? [[]] : s.pages;
    return {
      resultSetMetaData: {
        numRows: s.rowCount,
        format: 'jsonv2',
        partitionInfo: partitions.map((p) => ({ rowCount: p.length, uncompressedSize: JSON.stringify(p).length })),
        rowType: s.columns.map((c) => snowflakeColumn(c, options.columnTypes?.[c.name], tzOffset).rowType),
      },
      data: partitions[0],
      code: '090001',
      statementStatusUrl: statusUrl(s.id),
      requestId: randomUUID(),
      sqlState: '00000',
      statementHandle: s.id,
      message: 'Statement executed successfully.',
      createdOn: s.createdOn,
      ...(s.stats ? { stats: s.stats } : {}),
    };
  };

  /** The answer for a statement as it stands. */
  const answer = (res: ServerResponse, s: Statement<Failure>): void => {
    switch (s.state) {
      case 'running':
        return sendJson(res, 202, queryStatus(s));
      case 'succeeded':
        if (s.readRows) controls.served.rows += s.pages[0]?.length ?? 0;
        return sendJson(res, 200, resultSet(s), { Link: `<${statusUrl(s.id)}?partition=0>; rel="first",<${statusUrl(s.id)}?partition=${Math.max(0, s.pages.length - 1)}>; rel="last"` });
      case 'timed_out':
        return sendJson(res, 408, { ...queryStatus(s), code: '000630', sqlState: '57014', message: 'Statement reached its statement or warehouse timeout and was canceled.' });
      case 'cancelled':
        return sendJson(res, 422, { code: '000604', sqlState: '57014', message: 'SQL execution canceled', statementHandle: s.id, statementStatusUrl: statusUrl(s.id), createdOn: s.createdOn });
      case 'failed': {
        const f = s.failure!;
        return sendJson(res, f.status, { code: f.code, sqlState: f.sqlState, message: f.message, statementHandle: s.id, statementStatusUrl: statusUrl(s.id), createdOn: s.createdOn });
      }
    }
  };

  const sqlFailure = (err: unknown): Failure => {
    const fault = classifyDuckDbError(err);
    const qualified = (name: string) => `${ctx.database}.${ctx.schema}.${name.toUpperCase()}`;
    switch (fault.kind) {
      case 'missing_table':
        return { status: 422, code: '002003', sqlState: '42S02', message: `SQL compilation error:\nObject '${qualified(fault.name!)}' does not exist or not authorized.` };
      case 'missing_column':
        return { status: 422, code: '000904', sqlState: '42000', message: `SQL compilation error: error line 1 at position 7\ninvalid identifier '${fault.name!.toUpperCase()}'` };
      case 'syntax':
        return { status: 422, code: '001003', sqlState: '42000', message: `SQL compilation error:\nsyntax error line 1 at position 0 unexpected '${fault.name ?? ''}'.` };
      default: {
        const exists = /with name "?([^"\s]+)"? already exists/.exec(fault.text);
        if (exists) return { status: 422, code: '002002', sqlState: '42710', message: `SQL compilation error:\nObject '${reported(exists[1]!)}' already exists.` };
        return { status: 422, code: '100038', sqlState: '22018', message: fault.text };
      }
    }
  };

  /** What Snowflake answers a role without the grant to write `target` (SQL access control error 003001). */
  const refused = (target: WriteTarget, create: boolean): Failure => {
    const on = target.object === 'schema' ? `database '${ctx.database}'` : create ? `schema '${reported(target.path.length > 1 ? target.path.at(-2)! : ctx.schema)}'` : `table '${reported(target.path.at(-1)!)}'`;
    return { status: 422, code: '003001', sqlState: '42501', message: `SQL access control error:\nInsufficient privileges to operate on ${on}` };
  };

  /** Runs DDL or DML and makes up Snowflake's answer: a count of the rows changed, or a status line. */
  const write = async (s: Statement<Failure>, sql: string, kind: Exclude<ReturnType<typeof statementKind>, { kind: 'query' }>): Promise<void> => {
    s.readRows = false;
    const target = writeTarget(sql);
    const existed = target ? await backend.exists(target.object, target.path) : false;
    // CREATE ... IF NOT EXISTS of what exists changes nothing, and needs no grant.
    const noop = kind.verb === 'CREATE' && target?.conditional === true && existed;
    if (target && !noop && controls.refuses(target, ctx.schema)) throw Object.assign(new Error('refused'), { failure: refused(target, kind.verb === 'CREATE') });
    if (kind.kind === 'dml') {
      const rows = valuesRows(sql);
      if (rows > MAX_VALUES_ROWS) {
        throw Object.assign(new Error('too many rows'), { failure: { status: 422, code: '001795', sqlState: '42601', message: `SQL compilation error: error line 1 at position 0\nmaximum number of expressions in a list exceeded, expected at most ${MAX_VALUES_ROWS.toLocaleString('en-US')}, got ${rows.toLocaleString('en-US')}` } });
      }
      const changed = await backend.changed(sql);
      const { column, stat } = DML_RESULT[kind.verb];
      s.columns = [{ name: column, type: BIGINT }];
      s.pages = [[[String(changed)]]];
      s.stats = { [stat]: changed };
      return;
    }
    await backend.exec(sql);
    s.columns = [{ name: 'status', type: VARCHAR }];
    s.pages = [[[ddlStatus(kind.verb, target, existed)]]];
  };

  const submit = async (req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> => {
    for (const key of query.keys()) if (!['requestId', 'async', 'nullable', 'retry'].includes(key)) return sendJson(res, 400, { code: '390142', message: `Unknown query parameter ${key}.` });
    const requestId = query.get('requestId');
    if (requestId !== null && !UUID.test(requestId)) return sendJson(res, 400, { code: '390142', message: 'requestId must be a UUID.' });
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return sendJson(res, 415, { code: '390142', message: 'Unsupported media type: send application/json.' });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    } catch {
      return sendJson(res, 400, { code: '390142', message: 'The request body is not valid JSON.' });
    }
    const unknown = Object.keys(body).filter((k) => !SUBMIT_FIELDS.has(k));
    if (unknown.length > 0) return sendJson(res, 400, { code: '390142', message: `Unrecognized field(s) in the request body: ${unknown.join(', ')}.` });
    if (typeof body.statement !== 'string' || body.statement.trim() === '') return sendJson(res, 400, { code: '390142', message: 'statement is required.' });
    if (body.timeout !== undefined && (!Number.isInteger(body.timeout) || (body.timeout as number) < 0)) return sendJson(res, 400, { code: '390142', message: 'timeout must be a non-negative integer.' });
    if (requestId !== null && byRequestId.has(requestId)) {
      // A resubmission returns the statement of the first submission; without retry=true it is refused.
      if (query.get('retry') !== 'true') return sendJson(res, 400, { code: '391908', message: `Request ${requestId} was already submitted; resubmit it with retry=true.` });
      return answer(res, statements.get(byRequestId.get(requestId)!)!);
    }
    const statement = body.statement;
    received.push(statement);
    controls.served.statements++;
    const handle = randomUUID();
    const s = new Statement<Failure>(handle);
    statements.set(handle, s);
    if (requestId !== null) byRequestId.set(requestId, handle);

    const role = typeof body.role === 'string' ? body.role : ctx.role;
    const translated = (() => {
      try {
        return toDuckDbText(statement, SNOWFLAKE_LEXICON);
      } catch {
        return undefined;
      }
    })();
    const fail = (f: Failure) => {
      s.failure = f;
      s.start(0, undefined, () => Promise.reject(new Error('refused')), () => f);
    };
    if (!roles.has(role)) {
      fail({ status: 422, code: '390189', sqlState: '08004', message: `Role '${role}' specified in the connect string is not granted to this user. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.` });
    } else if (translated === undefined) {
      fail(sqlFailure(new Error('Parser Error: unterminated quoted string at or near "\'"')));
    } else if (statementCount(translated) !== 1) {
      // Counted in the translation, where every string is a standard literal.
      fail({ status: 422, code: '000008', sqlState: '0A000', message: `Actual statement count ${statementCount(translated)} did not match the desired statement count 1.` });
    } else {
      const warehouse = typeof body.warehouse === 'string' ? body.warehouse : ctx.warehouse;
      const usable = warehouseUsage && warehouse === ctx.warehouse;
      const database = typeof body.database === 'string' ? body.database : ctx.database;
      const schema = typeof body.schema === 'string' ? body.schema : ctx.schema;
      const sql = substituteCalls(translated, {
        CURRENT_USER: user,
        CURRENT_ROLE: role,
        CURRENT_WAREHOUSE: usable ? warehouse : null,
        CURRENT_DATABASE: database === ctx.database ? database : null,
        CURRENT_SCHEMA: schema === ctx.schema ? schema : null,
      });
      const revoked = controls.revokedTableIn(sql);
      const kind = statementKind(sql);
      // Queries that read tables and DML need a running warehouse; DDL does not.
      const touchesData = kind.kind === 'dml' || (kind.kind === 'query' && /\bfrom\b/i.test(sql));
      const timeoutMs = typeof body.timeout === 'number' && body.timeout > 0 ? body.timeout * 1000 : undefined;
      s.start(controls.slowMs, timeoutMs, async () => {
        if (touchesData && !usable) throw Object.assign(new Error('no warehouse'), { failure: { status: 422, code: '000606', sqlState: '57P03', message: 'No active warehouse selected in the current session.  Select an active warehouse with the \'use warehouse\' command.' } });
        if (revoked !== undefined) throw Object.assign(new Error('revoked'), { failure: sqlFailure(new Error(`Table with name ${revoked} does not exist`)) });
        if (kind.kind !== 'query') return write(s, sql, kind);
        // Unquoted names come back upper-case; a name the statement spells in double quotes keeps its case.
        const rename = (name: string) => (statement.includes(`"${name.replace(/"/g, '""')}"`) ? name : name.toUpperCase());
        s.columns = await backend.run(sql, (c) => snowflakeColumn(c, options.columnTypes?.[c.name], tzOffset).encode, rename, rowsPerPartition, (page) => s.pages.push(page));
      }, (err) => (err as { failure?: Failure }).failure ?? sqlFailure(err));
    }
    // Without async=true the API waits up to 45 s for the result.
    if (query.get('async') !== 'true') await s.wait(45_000);
    answer(res, s);
  };

  const partition = (req: IncomingMessage, res: ServerResponse, s: Statement<Failure>, index: number): void => {
    controls.count('partition');
    if (index < 0 || index >= Math.max(1, s.pages.length)) return sendJson(res, 422, { code: '000709', message: `Partition ${index} does not exist.`, statementHandle: s.id });
    if (controls.failAfterPages !== undefined && index >= controls.failAfterPages) return cutConnection(req);
    if (index === 0) return answer(res, s);
    if (s.readRows) controls.served.rows += s.pages[index]!.length;
    let gz = s.cache.get(`p${index}`);
    if (!gz) {
      gz = gzipSync(JSON.stringify({ data: s.pages[index] }));
      s.cache.set(`p${index}`, gz);
    }
    sendBytes(res, 200, gz, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
  };

  const http = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!(req.headers['user-agent'] ?? '').trim()) return sendJson(res, 400, { code: '391903', message: 'User-Agent header is required.' });
    const accept = req.headers.accept;
    if (accept !== undefined && !/application\/json|\*\/\*/.test(accept)) return sendJson(res, 406, { code: '390142', message: 'Accept must allow application/json.' });
    const denied = authenticate(req);
    if (denied) return sendJson(res, denied.status, denied.body);
    if (req.method === 'POST' && url.searchParams.get('retry') === 'true') controls.count('resubmit');
    const injected = controls.injected.shift();
    if (injected) return sendJson(res, injected.status, injected.body);

    if (url.pathname === '/api/v2/statements' || url.pathname === '/api/v2/statements/') {
      if (req.method !== 'POST') return sendJson(res, 405, { message: 'Method not allowed.' });
      controls.count('submit');
      return submit(req, res, url.searchParams);
    }
    const m = HANDLE_PATH.exec(url.pathname);
    const s = m ? statements.get(m[1]!) : undefined;
    if (!m || !s) return sendJson(res, 404, { code: '333333', message: 'Statement not found.' });
    if (m[2] === '/cancel') {
      if (req.method !== 'POST') return sendJson(res, 405, { message: 'Method not allowed.' });
      controls.count('cancel');
      controls.cancelled.push(s.id);
      s.cancel();
      return sendJson(res, 200, { code: '000604', sqlState: '57014', message: 'successfully canceled', statementHandle: s.id, statementStatusUrl: statusUrl(s.id) });
    }
    if (req.method !== 'GET') return sendJson(res, 405, { message: 'Method not allowed.' });
    for (const key of url.searchParams.keys()) if (!['partition', 'requestId'].includes(key)) return sendJson(res, 400, { code: '390142', message: `Unknown query parameter ${key}.` });
    const p = url.searchParams.get('partition');
    if (p !== null && s.state === 'succeeded') {
      if (!/^\d+$/.test(p)) return sendJson(res, 400, { code: '390142', message: 'partition must be a non-negative integer.' });
      return partition(req, res, s, Number(p));
    }
    controls.count('status');
    answer(res, s);
  });

  const server: SnowflakeServer = {
    url: http.url,
    account: accountConfigured,
    user,
    role: ctx.role,
    warehouse: ctx.warehouse,
    database: ctx.database,
    schema: ctx.schema,
    privateKeyPem,
    token,
    sourceConfig() {
      const common = { type: 'snowflake' as const, account: accountConfigured, user, role: ctx.role, warehouse: ctx.warehouse, database: ctx.database, schema: ctx.schema, url: http.url };
      if (authMode === 'keypair') return { ...common, privateKey: privateKeyPem };
      return { ...common, token, tokenType: authMode === 'oauth' ? 'OAUTH' : 'PROGRAMMATIC_ACCESS_TOKEN' };
    },
    exec: (sql) => backend.exec(sql),
    expireCredential() {
      registeredKey = undefined;
      tokenExpired = true;
    },
    revokeGrant: (table) => void controls.revoked.add(table.toLowerCase()),
    revokeWarehouseUsage() {
      warehouseUsage = false;
    },
    failMidStream(after) {
      controls.failAfterPages = after;
    },
    slowStatements(ms) {
      controls.slowMs = ms;
    },
    injectFailures(status, count) {
      for (let i = 0; i < count; i++) controls.injected.push({ status, body: { code: String(status), message: status === 429 ? 'Too many requests.' : 'Service temporarily unavailable.' } });
    },
    requests: controls.requests,
    cancelled: controls.cancelled,
    running: () => [...statements.values()].filter((st) => st.state === 'running').length,
    get lastJwtClaims() {
      return lastJwtClaims;
    },
    statements: received,
    refuseWrites: (name, refuse) => controls.refuseWrites(name, refuse),
    transferred: () => controls.transferred(http.traffic),
    resetTransferred: () => controls.resetTransferred(http.traffic),
    async stop() {
      for (const s of statements.values()) s.cancel();
      await http.close();
      backend.close();
    },
  };
  return server;
}
