// What the local Snowflake and Databricks API servers share: an in-memory DuckDB that runs the SQL,
// statements that run in the background (slow on request, cancellable), results cut into pages of
// vendor-encoded text cells, fault hooks, request counting, and small HTTP helpers. Test and bench
// tooling only: nothing here is used by the sources it tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writtenObject, type WrittenObject } from '../sources/warehouse-writes.js';
import {
  BIGINT,
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListValue,
  DuckDBMapValue,
  DuckDBStructValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTimeValue,
  DuckDBTypeId,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';

// ---- DuckDB -------------------------------------------------------------------------------------

/** A result column: its name as the vendor reports it, and DuckDB's type. */
export interface ResultColumn {
  name: string;
  type: DuckDBType;
}

/** Encodes one non-null DuckDB value as the vendor's text cell. */
export type CellEncoder = (value: DuckDBValue) => string;

/** What a DuckDB error says, sorted the way vendors sort their SQL errors. */
export interface SqlFault {
  kind: 'missing_table' | 'missing_column' | 'syntax' | 'runtime';
  /** The object the error names, if any. */
  name?: string;
  /** DuckDB's text (for runtime errors). */
  text: string;
}

export function classifyDuckDbError(err: unknown): SqlFault {
  const text = err instanceof Error ? err.message : String(err);
  let m = /Table with name (\S+) does not exist/.exec(text);
  if (m) return { kind: 'missing_table', name: m[1]!, text };
  m = /Referenced column "?([^"\s]+)"? not found/.exec(text) ?? /column "?([^"\s]+)"? (?:not found|does not exist)/i.exec(text);
  if (m) return { kind: 'missing_column', name: m[1]!, text };
  if (/Parser Error/.test(text)) return { kind: 'syntax', name: /at or near "([^"]*)"/.exec(text)?.[1] ?? '', text };
  return { kind: 'runtime', text: text.replace(/^[A-Za-z ]+Error: /, '') };
}

/** Where unqualified names resolve: the vendor's current database (catalog) and schema. */
export interface DuckHome {
  readonly catalog: string;
  readonly schema: string;
}

const dq = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * One in-memory DuckDB for the life of a server: tables made by one statement are there for the next.
 * With a home, the vendor's database (catalog) is a DuckDB catalog of that name holding the vendor's
 * schema, so `db.schema.table`, `schema.table` and `table` resolve as the vendor resolves them.
 */
export class DuckBackend {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly use: string | undefined,
  ) {}

  static async create(macros: readonly string[], home?: DuckHome): Promise<DuckBackend> {
    const instance = await DuckDBInstance.create(':memory:');
    if (home) {
      const setup = await instance.connect();
      try {
        await setup.run(`ATTACH ':memory:' AS ${dq(home.catalog)}`);
        await setup.run(`CREATE SCHEMA ${dq(home.catalog)}.${dq(home.schema)}`);
      } finally {
        setup.closeSync();
      }
    }
    const backend = new DuckBackend(instance, home ? `USE ${dq(home.catalog)}.${dq(home.schema)}` : undefined);
    // Macros live in the home schema, where every connection looks for functions.
    for (const macro of macros) await backend.exec(macro);
    return backend;
  }

  /** A connection whose current catalog and schema are the home (DuckDB keeps them per connection). */
  private async connect(): Promise<DuckDBConnection> {
    const connection = await this.instance.connect();
    if (this.use) await connection.run(this.use);
    return connection;
  }

  /** Runs fixture SQL (DuckDB dialect), e.g. `create table ... as select ...`. */
  async exec(sql: string): Promise<void> {
    const connection = await this.connect();
    try {
      await connection.run(sql);
    } finally {
      connection.closeSync();
    }
  }

  /** Runs a DML statement; resolves with the rows it changed (DuckDB's `Count`). */
  async changed(sql: string): Promise<number> {
    const connection = await this.connect();
    try {
      const result = await connection.runAndReadAll(sql);
      return Number(result.getRows()[0]?.[0] ?? 0);
    } finally {
      connection.closeSync();
    }
  }

  /** Whether a table (`[catalog, schema, table]`, `[schema, table]` or `[table]`) or schema (`[catalog, schema]` or `[schema]`) exists. */
  async exists(object: 'table' | 'schema', path: readonly string[]): Promise<boolean> {
    const connection = await this.connect();
    try {
      const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
      const parts = object === 'table' ? ['database_name', 'schema_name', 'table_name'] : ['database_name', 'schema_name'];
      const given = parts.slice(parts.length - path.length);
      const defaults = ['current_database()', 'current_schema()'];
      const where = parts.map((column, i) => {
        const at = given.indexOf(column);
        return `lower(${column}) = ${at === -1 ? `lower(${defaults[i]})` : `lower(${literal(path[at]!)})`}`;
      });
      const result = await connection.runAndReadAll(`SELECT count(*) FROM ${object === 'table' ? 'duckdb_tables()' : 'duckdb_schemas()'} WHERE ${where.join(' AND ')}`);
      return Number(result.getRows()[0]?.[0] ?? 0) > 0;
    } finally {
      connection.closeSync();
    }
  }

  /** Runs a query and hands its rows, encoded, to `onPage` in pages of `pageRows`. */
  async run(
    sql: string,
    encoderFor: (column: ResultColumn) => CellEncoder,
    rename: (name: string) => string,
    pageRows: number,
    onPage: (rows: Array<Array<string | null>>) => void,
  ): Promise<ResultColumn[]> {
    const connection = await this.connect();
    try {
      const result = await connection.stream(sql);
      const types = result.columnTypes();
      const columns = result.columnNames().map((name, i) => ({ name: rename(name), type: types[i]! }));
      const encoders = columns.map(encoderFor);
      let page: Array<Array<string | null>> = [];
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        const values = columns.map((_, c) => chunk.getColumnValues(c));
        for (let r = 0; r < chunk.rowCount; r++) {
          const row: Array<string | null> = new Array<string | null>(columns.length);
          for (let c = 0; c < columns.length; c++) {
            const v = values[c]![r]!;
            row[c] = v === null ? null : encoders[c]!(v);
          }
          page.push(row);
          if (page.length === pageRows) {
            onPage(page);
            page = [];
          }
        }
      }
      if (!result.isStreaming) throw new Error('Runtime Error: the query failed while its rows were read');
      if (page.length > 0) onPage(page);
      return columns;
    } finally {
      connection.closeSync();
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}

// ---- values -------------------------------------------------------------------------------------

/** Nested DuckDB values as JSON-ready JS values (big integers as numbers when exact, else text). */
export function toJsonValue(value: DuckDBValue): unknown {
  if (value === null) return null;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof DuckDBListValue) return value.items.map(toJsonValue);
  if (value instanceof DuckDBStructValue) return Object.fromEntries(Object.entries(value.entries).map(([k, v]) => [k, toJsonValue(v)]));
  if (value instanceof DuckDBMapValue) return Object.fromEntries(value.entries.map((e) => [String(toJsonValue(e.key)), toJsonValue(e.value)]));
  if (value instanceof DuckDBDecimalValue) return Number(value.toString());
  return String(value);
}

/** Microseconds since the epoch of a DuckDB timestamp (with or without zone). */
export function epochMicros(value: DuckDBValue): bigint {
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) return value.micros;
  throw new Error(`not a timestamp: ${String(value)}`);
}

export function epochDays(value: DuckDBValue): number {
  if (value instanceof DuckDBDateValue) return value.days;
  throw new Error(`not a date: ${String(value)}`);
}

export function timeMicros(value: DuckDBValue): bigint {
  if (value instanceof DuckDBTimeValue) return value.micros;
  throw new Error(`not a time: ${String(value)}`);
}

export function blobBytes(value: DuckDBValue): Uint8Array {
  if (value instanceof DuckDBBlobValue) return value.bytes;
  throw new Error(`not a blob: ${String(value)}`);
}

/** Types of the result columns a server makes up (DML counts, DDL status lines). */
export { BIGINT, DuckDBTypeId, VARCHAR };

// ---- statements ---------------------------------------------------------------------------------

export type StatementState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out';

/** A statement running (or run) in the background; pages of encoded rows once it succeeded. */
export class Statement<Failure> {
  state: StatementState = 'running';
  columns: ResultColumn[] = [];
  pages: Array<Array<Array<string | null>>> = [];
  /** Page bodies serialized once, when first served. */
  readonly cache = new Map<string, Buffer>();
  failure: Failure | undefined;
  /** What a DML statement changed, in the vendor's words (Snowflake's `stats`). */
  stats: Record<string, number> | undefined;
  /** The result holds rows a query read, not a DML count or a DDL status line (only those count as rows served). */
  readRows = true;
  readonly createdOn = Date.now();
  private readonly done: Promise<void>;
  private finish!: () => void;
  private readonly stop = new AbortController();

  constructor(readonly id: string) {
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  get rowCount(): number {
    return this.pages.reduce((n, p) => n + p.length, 0);
  }

  /** Resolves when finished, or after `ms` (true when finished). */
  async wait(ms: number): Promise<boolean> {
    if (this.state !== 'running') return true;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([this.done.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
    clearTimeout(timer);
    return finished;
  }

  /** Runs `work` after `delayMs` (a slow statement); a cancel during the delay wins. */
  start(delayMs: number, timeoutMs: number | undefined, work: () => Promise<void>, fail: (err: unknown) => Failure): void {
    const timeout = timeoutMs === undefined ? undefined : setTimeout(() => this.settle('timed_out'), timeoutMs);
    void (async () => {
      try {
        if (delayMs > 0) await abortableDelay(delayMs, this.stop.signal);
        if (this.state !== 'running') return;
        await work();
        this.settle('succeeded');
      } catch (err) {
        if (this.state === 'running') {
          this.failure = fail(err);
          this.settle('failed');
        }
      } finally {
        clearTimeout(timeout);
      }
    })();
  }

  cancel(): void {
    this.settle('cancelled');
  }

  private settle(state: StatementState): void {
    if (this.state !== 'running') return;
    this.state = state;
    if (state !== 'succeeded') this.pages = [];
    this.stop.abort();
    this.finish();
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('cancelled'));
    }, { once: true });
  });
}

/** Fault and load hooks every vendor server offers the tests. */
export class Controls {
  /** Delay before a statement runs (to cancel it while it runs). */
  slowMs = 0;
  /** Pages (partitions / chunks) served before the connection is cut; undefined: never. */
  failAfterPages: number | undefined;
  /** Tables (lower case, unqualified) the caller's role/principal may no longer read. */
  readonly revoked = new Set<string>();
  /** Answers to send instead of handling the next requests (e.g. 503s to test retries). */
  readonly injected: Array<{ status: number; body: unknown }> = [];
  /** Requests by route name. */
  readonly requests = new Map<string, number>();
  /** Ids of the statements a cancel request named. */
  readonly cancelled: string[] = [];
  /** Schemas (lower case, unqualified) the caller may read but not write: DDL and DML there are refused. */
  readonly readOnlySchemas = new Set<string>();
  /** Statements submitted and result rows served since the start or the last reset. */
  readonly served = { statements: 0, rows: 0 };

  count(route: string): void {
    this.requests.set(route, (this.requests.get(route) ?? 0) + 1);
  }

  /** Writes to `schema` (any case) are refused from now on, or (`refuse` false) allowed again. */
  refuseWrites(schema: string, refuse = true): void {
    if (refuse) this.readOnlySchemas.add(schema.toLowerCase());
    else this.readOnlySchemas.delete(schema.toLowerCase());
  }

  transferred(traffic: TrafficMeter): Transferred {
    return { ...this.served, ...traffic.read() };
  }

  resetTransferred(traffic: TrafficMeter): void {
    this.served.statements = 0;
    this.served.rows = 0;
    traffic.reset();
  }

  /** Whether a write to `target` is refused; a target without a schema is in `home`. */
  refuses(target: WriteTarget, home: string): boolean {
    const schema = target.object === 'schema' ? target.path.at(-1) : target.path.length > 1 ? target.path.at(-2) : home;
    return schema !== undefined && this.readOnlySchemas.has(schema.toLowerCase());
  }

  /** The first revoked table the SQL names, if any (word match, case-insensitive). */
  revokedTableIn(sql: string): string | undefined {
    for (const table of this.revoked) if (new RegExp(`(^|[^A-Za-z0-9_$])${table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_$])`, 'i').test(sql)) return table;
    return undefined;
  }
}

// ---- SQL text -----------------------------------------------------------------------------------

/** How a vendor's SQL differs from DuckDB's where the servers translate it. */
export interface VendorLexicon {
  /** Which escapes a backslash starts in '...' strings: Snowflake's, Spark's (Databricks), or none. */
  readonly backslashEscapes: 'snowflake' | 'spark' | false;
  /** '' inside a string is a quote (Snowflake); otherwise it ends one literal and starts another. */
  readonly doubledQuotes: boolean;
  /** Literals next to each other are one string (Databricks: 'a' 'b' and 'a''b' are both 'ab'). */
  readonly adjacentConcatenate: boolean;
  /** `name` quotes an identifier (Databricks). */
  readonly backticks: boolean;
}

/** Single-character escapes: Snowflake's string constants, and Databricks' STRING literals. */
const SIMPLE_ESCAPES = {
  snowflake: { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0' },
  spark: { b: '\b', n: '\n', r: '\r', t: '\t', '0': '\0', Z: '\x1a', '%': '\\%', _: '\\_' },
} as const satisfies Record<string, Record<string, string>>;

/**
 * One escape after a backslash: the text it stands for and how many characters it took (the backslash
 * excluded). Snowflake also reads \ooo, \xhh and \uhhhh; Spark keeps the backslash of \% and \_ (LIKE
 * patterns); any other escaped character stands for itself.
 */
function unescape(sql: string, at: number, style: 'snowflake' | 'spark'): { text: string; length: number } {
  const ch = sql[at] ?? '';
  if (style === 'snowflake') {
    const code = (digits: string, radix: number, length: number) => ({ text: String.fromCharCode(parseInt(digits, radix)), length });
    if (ch === 'u' && /^[0-9a-fA-F]{4}$/.test(sql.slice(at + 1, at + 5))) return code(sql.slice(at + 1, at + 5), 16, 5);
    if (ch === 'x' && /^[0-9a-fA-F]{2}$/.test(sql.slice(at + 1, at + 3))) return code(sql.slice(at + 1, at + 3), 16, 3);
    if (/^[0-7]{3}$/.test(sql.slice(at, at + 3))) return code(sql.slice(at, at + 3), 8, 3);
  }
  const simple: Readonly<Record<string, string>> = SIMPLE_ESCAPES[style];
  return { text: Object.hasOwn(simple, ch) ? simple[ch]! : ch, length: 1 };
}

/**
 * A vendor's statement in DuckDB's dialect: string literals decoded by the vendor's rules and written
 * again as standard literals, backquoted names as double-quoted ones. Comments and everything else are
 * kept. Throws (a syntax error) for a string that never ends.
 */
export function toDuckDbText(sql: string, lexicon: VendorLexicon): string {
  let out = '';
  let lastLiteral: { at: number; end: number; value: string } | undefined;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'") {
      let value = '';
      let j = i + 1;
      for (;; j++) {
        if (j >= sql.length) throw new Error(`Parser Error: unterminated quoted string at or near "${sql.slice(i, i + 20)}"`);
        const c = sql[j]!;
        if (c === '\\' && lexicon.backslashEscapes) {
          const e = unescape(sql, j + 1, lexicon.backslashEscapes);
          value += e.text;
          j += e.length;
        } else if (c === "'") {
          if (lexicon.doubledQuotes && sql[j + 1] === "'") {
            value += "'";
            j++;
          } else break;
        } else value += c;
      }
      if (lexicon.adjacentConcatenate && lastLiteral && /^\s*$/.test(out.slice(lastLiteral.end))) {
        value = lastLiteral.value + value;
        out = out.slice(0, lastLiteral.at);
      }
      const at = out.length;
      out += `'${value.replace(/'/g, "''")}'`;
      lastLiteral = { at, end: out.length, value };
      i = j;
      continue;
    }
    if (!/\s/.test(ch)) lastLiteral = undefined;
    if (ch === '"') {
      const end = sql.indexOf('"', i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (ch === '`' && lexicon.backticks) {
      let name = '';
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (sql[j] === '`') {
          if (sql[j + 1] === '`') {
            name += '`';
            j++;
            continue;
          }
          break;
        }
        name += sql[j];
      }
      out += dq(name);
      i = j;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else {
      out += ch;
    }
  }
  return out;
}

/** What a statement does, by its first word: a query returns rows, DML changes them, DDL changes objects. */
export type StatementKind = { kind: 'query' } | { kind: 'dml'; verb: 'INSERT' | 'DELETE' | 'UPDATE' | 'MERGE' } | { kind: 'ddl'; verb: string };

export function statementKind(sql: string): StatementKind {
  const verb = /^(?:\s+|--[^\n]*|\/\*[\s\S]*?\*\/|\()*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
  if (verb === 'INSERT' || verb === 'DELETE' || verb === 'UPDATE' || verb === 'MERGE') return { kind: 'dml', verb };
  if (['CREATE', 'DROP', 'ALTER', 'TRUNCATE'].includes(verb)) return { kind: 'ddl', verb };
  return { kind: 'query' };
}

/** The table or schema a DDL or DML statement writes (the sources' own reading of it, so both sides agree). */
export { writtenObject as writeTarget };
export type WriteTarget = WrittenObject;

/**
 * Rows of the VALUES list of an INSERT (DuckDB's dialect), or 0 when it has none: the parenthesized
 * tuples after VALUES at the statement's top level.
 */
export function valuesRows(sql: string): number {
  const text = sql.replace(/'(?:[^']|'')*'/g, "''").replace(/"(?:[^"]|"")*"/g, '""');
  const at = /\bVALUES\b/i.exec(text);
  if (!at) return 0;
  let depth = 0;
  let rows = 0;
  for (let i = at.index + at[0].length; i < text.length; i++) {
    if (text[i] === '(') {
      if (depth === 0) rows++;
      depth++;
    } else if (text[i] === ')') depth--;
    else if (depth === 0 && /[A-Za-z;]/.test(text[i]!)) break;
  }
  return rows;
}

/** Counts the statements in a batch (semicolons outside quotes and comments, a trailing one ignored). */
export function statementCount(sql: string): number {
  let count = 1;
  let lastText = -1;
  const semis: number[] = [];
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      const end = sql.indexOf(ch, i + 1);
      i = end === -1 ? sql.length : end;
      lastText = i;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 1;
    } else if (ch === ';') {
      semis.push(i);
    } else if (!/\s/.test(ch)) {
      lastText = i;
    }
  }
  for (const s of semis) if (s < lastText) count++;
  return count;
}

/** Replaces calls such as `CURRENT_ROLE()` (outside quotes) by SQL literals. */
export function substituteCalls(sql: string, values: Record<string, string | null>): string {
  let out = sql;
  for (const [fn, value] of Object.entries(values)) {
    out = out.replace(new RegExp(`\\b${fn}\\s*\\(\\s*\\)`, 'gi'), value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`);
  }
  return out;
}

// ---- HTTP ---------------------------------------------------------------------------------------

/** What went over a server's connections: bytes sent (answers, headers included) and received. */
export interface Traffic {
  bytesOut: number;
  bytesIn: number;
}

/** Counts the bytes of every connection of an HTTP server, open or closed, from a resettable start. */
export class TrafficMeter {
  private readonly open = new Set<Socket>();
  private closed: Traffic = { bytesOut: 0, bytesIn: 0 };
  private start: Traffic = { bytesOut: 0, bytesIn: 0 };

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.open.add(socket);
      socket.on('close', () => {
        this.open.delete(socket);
        this.closed = { bytesOut: this.closed.bytesOut + socket.bytesWritten, bytesIn: this.closed.bytesIn + socket.bytesRead };
      });
    });
  }

  private total(): Traffic {
    let { bytesOut, bytesIn } = this.closed;
    for (const s of this.open) {
      bytesOut += s.bytesWritten;
      bytesIn += s.bytesRead;
    }
    return { bytesOut, bytesIn };
  }

  /** Bytes since the start or the last reset. */
  read(): Traffic {
    const now = this.total();
    return { bytesOut: now.bytesOut - this.start.bytesOut, bytesIn: now.bytesIn - this.start.bytesIn };
  }

  reset(): void {
    this.start = this.total();
  }
}

/** What a warehouse sent back to its clients: a bench's "rows and bytes transferred per run". */
export interface Transferred extends Traffic {
  /** Statements submitted. */
  statements: number;
  /** Result rows served (every page, partition or chunk read, external links included). */
  rows: number;
}

export interface HttpHandle {
  readonly url: string;
  readonly port: number;
  readonly traffic: TrafficMeter;
  close(): Promise<void>;
}

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<HttpHandle> {
  const server: Server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { message: `test server error: ${err instanceof Error ? err.message : String(err)}` });
      else res.destroy();
    });
  });
  const traffic = new TrafficMeter(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    traffic,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function readBody(req: IncomingMessage, limit = 16 * 2 ** 20): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) throw new Error('request body too large');
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendBytes(res: ServerResponse, status: number, bytes: Buffer, headers: Record<string, string>): void {
  res.writeHead(status, { 'Content-Length': bytes.length, ...headers });
  res.end(bytes);
}

/** Cuts the connection without an answer, as a network failure or a crashed server would. */
export function cutConnection(req: IncomingMessage): void {
  req.socket.destroy();
}
