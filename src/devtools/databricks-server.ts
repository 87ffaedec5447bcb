// A strict local stand-in for the Databricks SQL Statement Execution API 2.0, backed by an in-memory
// DuckDB, for tests and benches of the Databricks source. It follows, as read in December 2026:
// - REST API reference, Statement Execution (docs.databricks.com/api/workspace/statementexecution,
//   and the statements-2.0 OpenAPI document): POST /api/2.0/sql/statements (statement, warehouse_id,
//   catalog, schema, parameters, row_limit, byte_limit, disposition INLINE | EXTERNAL_LINKS, format,
//   wait_timeout 0s or 5s-50s, on_wait_timeout CONTINUE | CANCEL), GET /api/2.0/sql/statements/{id},
//   GET .../{id}/result/chunks/{chunk_index}, POST .../{id}/cancel; StatementResponse (status.state
//   PENDING | RUNNING | SUCCEEDED | FAILED | CANCELED | CLOSED, status.error {error_code, message},
//   status.sql_state), ResultManifest (schema.columns with type_name/type_text, total_chunk_count,
//   total_row_count, chunks) and ResultData (data_array, external_links, next_chunk_index,
//   next_chunk_internal_link). INLINE results above 25 MiB fail the statement.
// - "Statement Execution API tutorial": external links are pre-signed URLs fetched without the
//   Databricks Authorization header, expiring within 15 minutes, after which a new link is requested
//   through the chunks endpoint. JSON_ARRAY cells are strings or null.
// - "OAuth machine-to-machine (M2M) authentication" (dev-tools/auth/oauth-m2m): POST /oidc/v1/token
//   with HTTP Basic client_id:client_secret and grant_type=client_credentials&scope=all-apis, answering
//   {access_token, token_type: Bearer, expires_in: 3600}; personal access tokens as Bearer tokens.
// - DDL and DML through the same endpoint: DML on a Delta table answers num_affected_rows (INSERT also
//   num_inserted_rows), DDL a result without columns. The catalog is `workspace` (what Unity Catalog
//   workspaces get by default); `catalog`.`schema`.`t`, `schema`.`t` and `t` resolve against the
//   request's catalog and schema.
// - "STRING type" (sql/language-manual/data-types/string-type): backslash escapes \0 \b \n \r \t \Z,
//   \% and \_ kept with their backslash, any other escaped character itself ('' is no escape); literals
//   next to each other are one string ('a' 'b' and 'a''b' are 'ab').
// Emulated from observed answers, not the reference: a bad or expired personal access token answers
// 403 {"error_code": 403, "message": "Invalid access token."} (a number, as observed), an expired OAuth
// token 401 "Token is expired", a missing Unity Catalog privilege FAILED with
// [INSUFFICIENT_PERMISSIONS] ("User does not have CREATE TABLE on Schema 'c.s'", MODIFY on Table,
// CREATE SCHEMA on Catalog: refuseWrites); storage errors as S3 writes them. Rows and bytes sent are
// counted (transferred) for the benches. DuckDB stands in for Databricks SQL
// (backtick identifiers become double quotes; sha2 and current_* are provided).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DatabricksSourceConfig } from '../config/index.js';
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
  toDuckDbText,
  toJsonValue,
  writeTarget,
  type CellEncoder,
  type ResultColumn,
  type Transferred,
  type VendorLexicon,
  type WriteTarget,
} from './sql-api-kit.js';

export interface DatabricksServerOptions {
  /** How the source signs in (default pat). */
  readonly auth?: 'pat' | 'm2m';
  /** Rows per result chunk (default 1,000). */
  readonly rowsPerChunk?: number;
  /** How long an external link works (default 15 minutes). */
  readonly linkTtlMs?: number;
  /** Largest INLINE result (default 25 MiB). */
  readonly inlineByteLimit?: number;
  /** The Unity Catalog catalog the source's settings name (default `workspace`, the catalog new workspaces get). */
  readonly catalog?: string;
}

interface Failure {
  error_code: string;
  message: string;
  sql_state?: string;
}

export interface DatabricksServer {
  readonly url: string;
  readonly host: string;
  readonly warehouseId: string;
  readonly catalog: string;
  readonly schema: string;
  readonly token: string;
  readonly clientId: string;
  readonly clientSecret: string;
  sourceConfig(disposition?: 'INLINE' | 'EXTERNAL_LINKS'): DatabricksSourceConfig;
  exec(sql: string): Promise<void>;
  /** The personal access token, or every OAuth token issued so far, expires. */
  expireCredential(): void;
  /** The principal loses SELECT on this table: statements naming it fail with INSUFFICIENT_PERMISSIONS. */
  revokeGrant(table: string): void;
  /** The principal loses CAN USE on the warehouse. */
  revokeWarehouseUsage(): void;
  /** After this many chunks, chunk and link requests get their connection cut (undefined: never). */
  failMidStream(afterChunks: number | undefined): void;
  slowStatements(ms: number): void;
  /** The next `count` external links issued are already expired. */
  expireNextLinks(count: number): void;
  injectFailures(status: number, count: number): void;
  /** Requests by route: token, submit, status, chunk, link, cancel. */
  readonly requests: ReadonlyMap<string, number>;
  readonly cancelled: readonly string[];
  /** Statements still running (a stopped read leaves none). */
  running(): number;
  /** Submission bodies received, in order. */
  readonly submissions: ReadonlyArray<Record<string, unknown>>;
  /** Authorization headers seen on external-link requests (must stay empty). */
  readonly linkAuthorizations: readonly string[];
  /** The principal loses CREATE TABLE on this schema (unqualified name) and MODIFY on its tables: DDL and DML there fail with INSUFFICIENT_PERMISSIONS; `false` gives them back. */
  refuseWrites(schema: string, refuse?: boolean): void;
  /** Statements submitted, result rows served (inline or through links) and bytes sent and received since the start or the last reset. */
  transferred(): Transferred;
  resetTransferred(): void;
  stop(): Promise<void>;
}

const MACROS = [`CREATE MACRO sha2(x, bits) AS CASE WHEN bits = 256 THEN sha256(x) ELSE error('sha2: only 256 bits are emulated') END`];
const SUBMIT_FIELDS = new Set(['statement', 'warehouse_id', 'catalog', 'schema', 'parameters', 'row_limit', 'byte_limit', 'disposition', 'format', 'wait_timeout', 'on_wait_timeout', 'query_tags']);
const WAIT = /^(0|[5-9]|[1-4]\d|50)s$/;

/**
 * Spark SQL: backquoted names; strings with backslash escapes, where '' is not a quote but the end of
 * one literal and the start of the next, and literals next to each other are one ('a''b' is 'ab').
 */
const DATABRICKS_LEXICON: VendorLexicon = { backslashEscapes: 'spark', doubledQuotes: false, adjacentConcatenate: true, backticks: true };

const pad = (n: number | bigint, width = 2) => String(n).padStart(width, '0');

function isoOf(micros: bigint, zone: boolean): string {
  const ms = Number(micros / 1000n) - (micros % 1000n < 0n ? 1 : 0);
  const d = new Date(ms);
  const frac = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const fraction = frac === 0n ? '' : `.${pad(frac, 6).replace(/0+$/, '')}`;
  return `${d.toISOString().slice(0, 19)}${fraction}${zone ? 'Z' : ''}`;
}

function databricksColumn(column: ResultColumn, position: number): { schema: Record<string, unknown>; encode: CellEncoder } {
  const col = (typeName: string, typeText: string, extra: Record<string, unknown> = {}) => ({ name: column.name, position, type_name: typeName, type_text: typeText, ...extra });
  const t = column.type;
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { schema: col('BOOLEAN', 'BOOLEAN'), encode: (v) => String(v) };
    case DuckDBTypeId.TINYINT:
      return { schema: col('BYTE', 'TINYINT'), encode: (v) => String(v) };
    case DuckDBTypeId.SMALLINT:
      return { schema: col('SHORT', 'SMALLINT'), encode: (v) => String(v) };
    case DuckDBTypeId.INTEGER:
      return { schema: col('INT', 'INT'), encode: (v) => String(v) };
    case DuckDBTypeId.BIGINT:
      return { schema: col('LONG', 'BIGINT'), encode: (v) => String(v) };
    case DuckDBTypeId.HUGEINT:
      return { schema: col('DECIMAL', 'DECIMAL(38,0)', { type_precision: 38, type_scale: 0 }), encode: (v) => String(v) };
    case DuckDBTypeId.DECIMAL: {
      const { width, scale } = t as unknown as { width: number; scale: number };
      return { schema: col('DECIMAL', `DECIMAL(${width},${scale})`, { type_precision: width, type_scale: scale }), encode: (v) => String(v) };
    }
    case DuckDBTypeId.FLOAT:
      return { schema: col('FLOAT', 'FLOAT'), encode: (v) => String(v) };
    case DuckDBTypeId.DOUBLE:
      return { schema: col('DOUBLE', 'DOUBLE'), encode: (v) => String(v) };
    case DuckDBTypeId.DATE:
      return { schema: col('DATE', 'DATE'), encode: (v) => new Date(epochDays(v) * 86_400_000).toISOString().slice(0, 10) };
    case DuckDBTypeId.TIMESTAMP:
      return { schema: col('TIMESTAMP_NTZ', 'TIMESTAMP_NTZ'), encode: (v) => isoOf(epochMicros(v), false) };
    case DuckDBTypeId.TIMESTAMP_TZ:
      return { schema: col('TIMESTAMP', 'TIMESTAMP'), encode: (v) => isoOf(epochMicros(v), true) };
    case DuckDBTypeId.BLOB:
      return { schema: col('BINARY', 'BINARY'), encode: (v) => Buffer.from(blobBytes(v)).toString('base64') };
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
      return { schema: col('ARRAY', `ARRAY<${t.toString().replace(/\[\d*\]$/, '')}>`), encode: (v) => JSON.stringify(toJsonValue(v)) };
    case DuckDBTypeId.STRUCT:
      return { schema: col('STRUCT', 'STRUCT'), encode: (v) => JSON.stringify(toJsonValue(v)) };
    case DuckDBTypeId.MAP:
      return { schema: col('MAP', 'MAP'), encode: (v) => JSON.stringify(toJsonValue(v)) };
    default:
      // DuckDB's JSON stands in for Databricks' VARIANT (semi-structured values, sent as JSON text).
      if (t.alias === 'JSON') return { schema: col('VARIANT', 'VARIANT'), encode: (v) => String(v) };
      return { schema: col('STRING', 'STRING'), encode: (v) => String(v) };
  }
}

export async function startDatabricksServer(options: DatabricksServerOptions = {}): Promise<DatabricksServer> {
  const authMode = options.auth ?? 'pat';
  const rowsPerChunk = options.rowsPerChunk ?? 1_000;
  const linkTtlMs = options.linkTtlMs ?? 15 * 60_000;
  const inlineByteLimit = options.inlineByteLimit ?? 25 * 2 ** 20;
  const warehouseId = 'a1b2c3d4e5f60718';
  const catalog = options.catalog ?? 'workspace';
  const schema = 'default';
  const token = `dapi${randomUUID().replace(/-/g, '')}`;
  const clientId = randomUUID();
  const clientSecret = `dose${randomUUID().replace(/-/g, '')}`;
  const principal = authMode === 'm2m' ? clientId : 'someone@example.com';
  let tokenExpired = false;
  let warehouseUsage = true;
  let expiredLinksToIssue = 0;
  const oauthTokens = new Map<string, number>();

  // The catalog is a DuckDB catalog holding the schema: `workspace`.`audience_sync`.`t` resolves as in Databricks.
  const backend = await DuckBackend.create(MACROS, { catalog, schema });
  const controls = new Controls();
  type Run = Statement<Failure> & { disposition?: string };
  const statements = new Map<string, Run>();
  const links = new Map<string, { id: string; chunk: number; expires: number }>();
  const submissions: Array<Record<string, unknown>> = [];
  const linkAuthorizations: string[] = [];

  const authenticate = (req: IncomingMessage): { status: number; body: unknown } | undefined => {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined) return { status: 401, body: { error_code: 'UNAUTHENTICATED', message: 'Credential was not sent or was of an unsupported type for this API.' } };
    if (authMode === 'pat') {
      if (bearer !== token || tokenExpired) return { status: 403, body: { error_code: 403, message: 'Invalid access token.' } };
      return undefined;
    }
    const expires = oauthTokens.get(bearer);
    if (expires === undefined) return { status: 403, body: { error_code: 403, message: 'Invalid access token.' } };
    if (Date.now() >= expires || tokenExpired) return { status: 401, body: { error_code: 'UNAUTHENTICATED', message: 'Token is expired.' } };
    return undefined;
  };

  const issueToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    controls.count('token');
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    const form = new URLSearchParams(await readBody(req));
    if (!/^application\/x-www-form-urlencoded\b/.test(req.headers['content-type'] ?? '')) return sendJson(res, 400, { error: 'invalid_request', error_description: 'Content-Type must be application/x-www-form-urlencoded' });
    if (form.get('grant_type') !== 'client_credentials') return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' });
    if (authMode !== 'm2m' || id !== clientId || secret !== clientSecret || tokenExpired) return sendJson(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed' });
    if (form.get('scope') !== 'all-apis') return sendJson(res, 400, { error: 'invalid_scope', error_description: 'scope must be all-apis' });
    const access = `eyJ${randomUUID().replace(/-/g, '')}`;
    oauthTokens.set(access, Date.now() + 3_600_000);
    sendJson(res, 200, { access_token: access, scope: 'all-apis', token_type: 'Bearer', expires_in: 3600 });
  };

  const chunkLink = (run: Run, index: number) => `/api/2.0/sql/statements/${run.id}/result/chunks/${index}`;

  const resultData = (req: IncomingMessage, run: Run, index: number): Record<string, unknown> => {
    const rows = run.pages[index] ?? [];
    const offset = run.pages.slice(0, index).reduce((n, p) => n + p.length, 0);
    const next = index + 1 < run.pages.length ? { next_chunk_index: index + 1, next_chunk_internal_link: chunkLink(run, index + 1) } : {};
    if (run.disposition === 'INLINE') {
      if (run.readRows) controls.served.rows += rows.length;
      return { chunk_index: index, row_offset: offset, row_count: rows.length, data_array: rows, ...next };
    }
    const key = randomUUID();
    const expired = expiredLinksToIssue > 0;
    if (expired) expiredLinksToIssue--;
    links.set(key, { id: run.id, chunk: index, expires: expired ? Date.now() - 1 : Date.now() + linkTtlMs });
    const host = req.headers.host ?? '127.0.0.1';
    return {
      external_links: [
        { chunk_index: index, row_offset: offset, row_count: rows.length, byte_count: JSON.stringify(rows).length, external_link: `http://${host}/storage/results/${key}?X-Amz-Signature=${key}`, expiration: new Date(Date.now() + linkTtlMs).toISOString(), ...next },
      ],
    };
  };

  const statementResponse = (req: IncomingMessage, run: Run): Record<string, unknown> => {
    const states: Record<string, string> = { running: controls.slowMs > 0 ? 'RUNNING' : 'PENDING', succeeded: 'SUCCEEDED', failed: 'FAILED', cancelled: 'CANCELED', timed_out: 'CANCELED' };
    const state = states[run.state]!;
    if (state === 'FAILED') return { statement_id: run.id, status: { state, error: { error_code: run.failure!.error_code, message: run.failure!.message }, ...(run.failure!.sql_state ? { sql_state: run.failure!.sql_state } : {}) } };
    if (state !== 'SUCCEEDED') return { statement_id: run.id, status: { state } };
    const columns = run.columns.map((c, i) => databricksColumn(c, i).schema);
    let offset = 0;
    const chunks = run.pages.map((p, i) => {
      const c = { chunk_index: i, row_offset: offset, row_count: p.length };
      offset += p.length;
      return c;
    });
    return {
      statement_id: run.id,
      status: { state },
      manifest: { format: 'JSON_ARRAY', schema: { column_count: columns.length, columns }, total_chunk_count: run.pages.length, total_row_count: run.rowCount, chunks, truncated: false },
      result: run.pages.length === 0 ? {} : resultData(req, run, 0),
    };
  };

  const sqlFailure = (err: unknown): Failure => {
    const fault = classifyDuckDbError(err);
    switch (fault.kind) {
      case 'missing_table':
        return { error_code: 'BAD_REQUEST', sql_state: '42P01', message: `[TABLE_OR_VIEW_NOT_FOUND] The table or view \`${fault.name}\` cannot be found. Verify the spelling and correctness of the schema and catalog. SQLSTATE: 42P01` };
      case 'missing_column':
        return { error_code: 'BAD_REQUEST', sql_state: '42703', message: `[UNRESOLVED_COLUMN.WITHOUT_SUGGESTION] A column, variable, or function parameter with name \`${fault.name}\` cannot be resolved. SQLSTATE: 42703` };
      case 'syntax':
        return { error_code: 'BAD_REQUEST', sql_state: '42601', message: `[PARSE_SYNTAX_ERROR] Syntax error at or near '${fault.name ?? ''}'. SQLSTATE: 42601` };
      default:
        return { error_code: 'BAD_REQUEST', sql_state: '22000', message: fault.text };
    }
  };

  /** What Unity Catalog answers a principal without the privilege to write `target`. */
  const refused = (target: WriteTarget, create: boolean): Failure => {
    // Parts the statement leaves out are the session's catalog and schema.
    const implied = (target.object === 'schema' ? [catalog] : [catalog, schema]).slice(0, Math.max(0, (target.object === 'schema' ? 2 : 3) - target.path.length));
    const path = [...implied, ...target.path];
    const what =
      target.object === 'schema' ? `CREATE SCHEMA on Catalog '${path[0]}'` : create ? `CREATE TABLE on Schema '${path.slice(0, 2).join('.')}'` : `MODIFY on Table '${path.join('.')}'`;
    return { error_code: 'BAD_REQUEST', sql_state: '42501', message: `[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\nUser does not have ${what}. SQLSTATE: 42501` };
  };

  /** Runs DDL or DML: DML answers its counts (num_affected_rows, and num_inserted_rows for INSERT), DDL no columns at all. */
  const write = async (run: Run, sql: string, kind: Exclude<ReturnType<typeof statementKind>, { kind: 'query' }>): Promise<void> => {
    run.readRows = false;
    const target = writeTarget(sql);
    const existed = target ? await backend.exists(target.object, target.path) : false;
    const noop = kind.verb === 'CREATE' && target?.conditional === true && existed;
    if (target && !noop && controls.refuses(target, schema)) throw Object.assign(new Error('refused'), { failure: refused(target, kind.verb === 'CREATE') });
    if (kind.kind === 'dml') {
      const changed = String(await backend.changed(sql));
      const inserted = kind.verb === 'INSERT';
      run.columns = [{ name: 'num_affected_rows', type: BIGINT }, ...(inserted ? [{ name: 'num_inserted_rows', type: BIGINT }] : [])];
      run.pages = [inserted ? [[changed, changed]] : [[changed]]];
      return;
    }
    await backend.exec(sql);
  };

  const submit = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return sendJson(res, 400, { error_code: 'MALFORMED_REQUEST', message: 'Content-Type must be application/json' });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    } catch {
      return sendJson(res, 400, { error_code: 'MALFORMED_REQUEST', message: 'Could not parse the request body as JSON' });
    }
    submissions.push(body);
    const bad = (message: string) => sendJson(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message });
    const unknown = Object.keys(body).filter((k) => !SUBMIT_FIELDS.has(k));
    if (unknown.length > 0) return bad(`Unknown field(s): ${unknown.join(', ')}`);
    if (typeof body.statement !== 'string' || body.statement.trim() === '') return bad('statement is required');
    if (typeof body.warehouse_id !== 'string') return bad('warehouse_id is required');
    if (body.warehouse_id !== warehouseId) return sendJson(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Warehouse ${body.warehouse_id} does not exist.` });
    if (!warehouseUsage) return sendJson(res, 403, { error_code: 'PERMISSION_DENIED', message: `User is not authorized to use warehouse ${warehouseId}.` });
    const wait = body.wait_timeout ?? '10s';
    if (typeof wait !== 'string' || !WAIT.test(wait)) return bad('wait_timeout must be 0s or between 5s and 50s');
    const onWait = body.on_wait_timeout ?? 'CONTINUE';
    if (onWait !== 'CONTINUE' && onWait !== 'CANCEL') return bad('on_wait_timeout must be CONTINUE or CANCEL');
    const disposition = body.disposition ?? 'INLINE';
    if (disposition !== 'INLINE' && disposition !== 'EXTERNAL_LINKS') return bad('disposition must be INLINE or EXTERNAL_LINKS');
    const format = body.format ?? 'JSON_ARRAY';
    if (format !== 'JSON_ARRAY') return bad(format === 'ARROW_STREAM' || format === 'CSV' ? `${String(format)} is not served by this test server` : 'format must be JSON_ARRAY, ARROW_STREAM or CSV');
    if (body.catalog !== undefined && body.catalog !== catalog) return bad(`Catalog ${String(body.catalog)} does not exist`);
    if (body.schema !== undefined && body.schema !== schema) return bad(`Schema ${String(body.schema)} does not exist`);

    const statement = body.statement;
    const run: Run = Object.assign(new Statement<Failure>(randomUUID()), { disposition });
    statements.set(run.id, run);
    controls.served.statements++;
    const translated = (() => {
      try {
        return toDuckDbText(statement, DATABRICKS_LEXICON);
      } catch {
        return undefined;
      }
    })();
    // Counted in the translation, where every string is a standard literal.
    if (translated === undefined || statementCount(translated) !== 1) {
      const near = translated === undefined ? "'" : ';';
      run.start(0, undefined, () => Promise.reject(new Error('syntax')), () => ({ error_code: 'BAD_REQUEST', sql_state: '42601', message: `[PARSE_SYNTAX_ERROR] Syntax error at or near '${near}'. SQLSTATE: 42601` }));
    } else {
      const sql = substituteCalls(translated, { current_user: principal, current_catalog: catalog, current_schema: schema });
      const revoked = controls.revokedTableIn(sql);
      const kind = statementKind(sql);
      run.start(controls.slowMs, undefined, async () => {
        if (revoked !== undefined) throw Object.assign(new Error('revoked'), { failure: { error_code: 'BAD_REQUEST', sql_state: '42501', message: `[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\nUser does not have SELECT on Table '${catalog}.${schema}.${revoked}'. SQLSTATE: 42501` } });
        if (kind.kind !== 'query') return write(run, sql, kind);
        run.columns = await backend.run(sql, (c) => databricksColumn(c, 0).encode, (n) => n, rowsPerChunk, (page) => run.pages.push(page));
        if (disposition === 'INLINE' && JSON.stringify(run.pages).length > inlineByteLimit) {
          throw Object.assign(new Error('too big'), { failure: { error_code: 'BAD_REQUEST', message: `The INLINE disposition only supports results up to ${inlineByteLimit} bytes; use EXTERNAL_LINKS for larger results.` } });
        }
      }, (err) => (err as { failure?: Failure }).failure ?? sqlFailure(err));
    }
    const waitMs = Number(wait.slice(0, -1)) * 1000;
    if (waitMs > 0) {
      const finished = await run.wait(waitMs);
      if (!finished && onWait === 'CANCEL') run.cancel();
    }
    sendJson(res, 200, statementResponse(req, run));
  };

  const http = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/storage/results/')) {
      // Cloud storage: the link's signature is its credential; an Authorization header is refused.
      controls.count('link');
      if (req.headers.authorization !== undefined) {
        linkAuthorizations.push(req.headers.authorization);
        return sendBytes(res, 400, Buffer.from('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>'), { 'Content-Type': 'application/xml' });
      }
      const link = links.get(url.pathname.slice('/storage/results/'.length));
      const run = link ? statements.get(link.id) : undefined;
      if (!link || !run || run.state !== 'succeeded') return sendBytes(res, 404, Buffer.from('<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>'), { 'Content-Type': 'application/xml' });
      if (Date.now() >= link.expires) return sendBytes(res, 403, Buffer.from('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>'), { 'Content-Type': 'application/xml' });
      if (controls.failAfterPages !== undefined && link.chunk >= controls.failAfterPages) return cutConnection(req);
      if (run.readRows) controls.served.rows += run.pages[link.chunk]?.length ?? 0;
      let bytes = run.cache.get(`c${link.chunk}`);
      if (!bytes) {
        bytes = Buffer.from(JSON.stringify(run.pages[link.chunk] ?? []));
        run.cache.set(`c${link.chunk}`, bytes);
      }
      return sendBytes(res, 200, bytes, { 'Content-Type': 'application/json' });
    }
    if (url.pathname === '/oidc/v1/token') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'invalid_request' });
      return issueToken(req, res);
    }
    if (!(req.headers['user-agent'] ?? '').trim()) return sendJson(res, 400, { error_code: 'MALFORMED_REQUEST', message: 'User-Agent header is required' });
    const denied = authenticate(req);
    if (denied) return sendJson(res, denied.status, denied.body);
    const injected = controls.injected.shift();
    if (injected) return sendJson(res, injected.status, injected.body);

    if (url.pathname === '/api/2.0/sql/statements' || url.pathname === '/api/2.0/sql/statements/') {
      if (req.method !== 'POST') return sendJson(res, 405, { error_code: 'BAD_REQUEST', message: 'Method not allowed' });
      controls.count('submit');
      return submit(req, res);
    }
    const m = /^\/api\/2\.0\/sql\/statements\/([0-9a-f-]{36})(?:\/(cancel)|\/result\/chunks\/(\d+))?$/.exec(url.pathname);
    const run = m ? statements.get(m[1]!) : undefined;
    if (!m || !run) return sendJson(res, 404, { error_code: 'NOT_FOUND', message: 'The statement was not found.' });
    if (m[2] === 'cancel') {
      if (req.method !== 'POST') return sendJson(res, 405, { error_code: 'BAD_REQUEST', message: 'Method not allowed' });
      controls.count('cancel');
      controls.cancelled.push(run.id);
      run.cancel();
      return sendJson(res, 200, {});
    }
    if (req.method !== 'GET') return sendJson(res, 405, { error_code: 'BAD_REQUEST', message: 'Method not allowed' });
    if (m[3] !== undefined) {
      controls.count('chunk');
      const index = Number(m[3]);
      if (run.state !== 'succeeded') return sendJson(res, 400, { error_code: 'BAD_REQUEST', message: `The statement is not in state SUCCEEDED.` });
      if (index >= run.pages.length) return sendJson(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: `chunk_index ${index} is out of range.` });
      // With external links the link itself fails; inline chunks fail here.
      if (run.disposition === 'INLINE' && controls.failAfterPages !== undefined && index >= controls.failAfterPages) return cutConnection(req);
      return sendJson(res, 200, resultData(req, run, index));
    }
    controls.count('status');
    sendJson(res, 200, statementResponse(req, run));
  });

  return {
    url: http.url,
    host: `127.0.0.1:${http.port}`,
    warehouseId,
    catalog,
    schema,
    token,
    clientId,
    clientSecret,
    sourceConfig(disposition = 'EXTERNAL_LINKS') {
      const common = { type: 'databricks' as const, host: '127.0.0.1', warehouseId, catalog, schema, disposition, url: http.url };
      return authMode === 'pat' ? { ...common, token } : { ...common, clientId, clientSecret };
    },
    exec: (sql) => backend.exec(sql),
    expireCredential() {
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
    expireNextLinks(count) {
      expiredLinksToIssue = count;
    },
    injectFailures(status, count) {
      for (let i = 0; i < count; i++) controls.injected.push({ status, body: { error_code: status === 429 ? 'RESOURCE_EXHAUSTED' : 'TEMPORARILY_UNAVAILABLE', message: status === 429 ? 'Too many requests.' : 'The service is temporarily unavailable.' } });
    },
    requests: controls.requests,
    cancelled: controls.cancelled,
    running: () => [...statements.values()].filter((st) => st.state === 'running').length,
    submissions,
    linkAuthorizations,
    refuseWrites: (name, refuse) => controls.refuseWrites(name, refuse),
    transferred: () => controls.transferred(http.traffic),
    resetTransferred: () => controls.resetTransferred(http.traffic),
    async stop() {
      for (const s of statements.values()) s.cancel();
      await http.close();
      backend.close();
    },
  };
}
