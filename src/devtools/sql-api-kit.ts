// What the local Snowflake and Databricks API servers share: an in-memory DuckDB that runs the SQL,
// statements that run in the background (slow on request, cancellable), results cut into pages of
// vendor-encoded text cells, fault hooks, request counting, and small HTTP helpers. Test and bench
// tooling only: nothing here is used by the sources it tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
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

export class DuckBackend {
  private constructor(private readonly instance: DuckDBInstance) {}

  static async create(macros: readonly string[]): Promise<DuckBackend> {
    const instance = await DuckDBInstance.create(':memory:');
    const backend = new DuckBackend(instance);
    for (const macro of macros) await backend.exec(macro);
    return backend;
  }

  /** Runs fixture SQL (DuckDB dialect), e.g. `create table ... as select ...`. */
  async exec(sql: string): Promise<void> {
    const connection = await this.instance.connect();
    try {
      await connection.run(sql);
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
    const connection: DuckDBConnection = await this.instance.connect();
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

export { DuckDBTypeId };

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

  count(route: string): void {
    this.requests.set(route, (this.requests.get(route) ?? 0) + 1);
  }

  /** The first revoked table the SQL names, if any (word match, case-insensitive). */
  revokedTableIn(sql: string): string | undefined {
    for (const table of this.revoked) if (new RegExp(`(^|[^A-Za-z0-9_$])${table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_$])`, 'i').test(sql)) return table;
    return undefined;
  }
}

// ---- SQL text -----------------------------------------------------------------------------------

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

export interface HttpHandle {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<HttpHandle> {
  const server: Server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { message: `test server error: ${err instanceof Error ? err.message : String(err)}` });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
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
