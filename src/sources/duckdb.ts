import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTypeId,
  JSDuckDBValueConverter,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { byteOrderedKey, columnsQuery, errorText, exactColumn, keyRanges, modelAsSubquery, quoteIdent, streamQuery, unquoteQualified, validChunkRows } from './sql.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type SnapshotDialect, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { doctorChecks } from './doctor.js';
import { dateFromMillis, decimalValue, integerValue, jsonValue } from './values.js';

const MS_PER_DAY = 86_400_000;
/** DuckDB's sha256() and md5() hash the UTF-8 bytes and return lowercase hex; its VARCHARs compare by bytes. */
export const DUCKDB_SQL: SnapshotDialect = {
  quote: quoteIdent,
  keyText: (col) => `CAST(${col} AS VARCHAR)`,
  keySha256: (col) => `sha256(CAST(${col} AS VARCHAR))`,
  orderByKey: byteOrderedKey,
  table: (schema, name) => `${quoteIdent(schema)}.${quoteIdent(name)}`,
  createSchema: (schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
  textType: 'VARCHAR',
  integerType: 'BIGINT',
  md5Hex: (text) => `md5(${text})`,
  valueText: (expr) => `CAST(${expr} AS VARCHAR)`,
  // hash(seed, texts...): DuckDB's own 64-bit hash of the values, combined in order (each hash
  // multiplied before the next is mixed in, so swapped values differ; NULL hashes apart from ''),
  // moved into BIGINT's range for the check's signed arithmetic. Vectorized: ~20x cheaper than md5().
  rowId: 'rowid',
  rowIdIn: (subquery) => `rowid IN (${subquery})`,
  keepRows: (table, select) => `CREATE TABLE ${table} AS ${select}`,
  applySliceEntries: 100_000,
  rowHash: (texts, seeds) => `CAST(CAST(hash(CAST(${seeds[0]![0]} AS BIGINT), ${texts.join(', ')}) AS HUGEINT) - 9223372036854775808 AS BIGINT)`,
};
export const DEFAULT_DUCKDB_MEMORY_LIMIT = '96MB';
/**
 * The default when a sync keeps its snapshot in the file: the match joins the model's fingerprints with
 * the snapshot's. Over 10M rows it ran out of memory at 96MB; at 128MB, joining on the fingerprint's two
 * numbers, it peaked at 309 MB RSS (at 192MB the join on its text took 366 MB). A write that needs more
 * gets HEAVY_WRITES_LIMIT for its own time.
 */
export const WAREHOUSE_DUCKDB_MEMORY_LIMIT = '128MB';
/**
 * Writes to the state schema (a run's journal appends and their applications) run with less memory
 * while no read runs: DuckDB's allocator keeps what their buffers took. A 1M-row first sync peaked at
 * 460–650 MB RSS with them at the 192MB limit, 372 MB at 64MB (302 MB at 32MB on one thread, but each
 * application took 2.7 s instead of 1.9). A read sets the limit back first.
 */
const LIGHT_WRITES_LIMIT = '64MB';
/**
 * A write that the light limit was not enough for runs again with this much (or with the source's memoryLimit
 * where one is set): a 1%-changed rerun's application of 390,000 journal entries to a
 * 10M-record snapshot ran out of memory at 128MB and passed at 192MB.
 */
const HEAVY_WRITES_LIMIT = '192MB';
/** What a connection is for, by the memory limit it needs: writes alone, anything, a write that needs more. */
type Purpose = 'light' | 'any' | 'heavy';
const PURPOSES: readonly Purpose[] = ['light', 'any', 'heavy'];
/**
 * A run appends its record writes to the journal table in commits of a few MB: at DuckDB's default
 * (16MB of WAL) every few of them paid a checkpoint (a 1M-row first sync's appends took 17.8 s; 12 s at this).
 */
const WAREHOUSE_CHECKPOINT_THRESHOLD = '128MB';

export interface DuckDbSettings {
  /** DuckDB `memory_limit` (default 96MB): bounds the native memory a sort of the model may use, and DuckDB's cache of table blocks fills up to it on a big model (5M rows: 342 MB peak RSS at 128MB, 317 MB at 96MB). */
  readonly memoryLimit?: string;
  /** Folder relative file names in the model (`read_csv('customers.csv')`) are found in: the config's folder. */
  readonly fileSearchPath?: string;
  /**
   * Open the file read-write, for warehouse change detection's snapshot tables (`Source.snapshot`).
   * One instance then serves every read, spilling to a private folder of its own: two read-write
   * instances of one file in one process would not exclude each other.
   */
  readonly writable?: boolean;
}
type Convert = (value: DuckDBValue) => unknown;

const identity: Convert = (v) => v;
const bigintToJs: Convert = (v) => (typeof v === 'bigint' ? integerValue(v) : v);
const dateToJs: Convert = (v) => (v instanceof DuckDBDateValue ? (dateFromMillis(v.days * MS_PER_DAY) ?? String(v)) : v);
const decimalToJs: Convert = (v) => (v instanceof DuckDBDecimalValue ? decimalValue(v.toString()) : v);
const asString: Convert = (v) => String(v);
const jsonToJs: Convert = (v) => (typeof v === 'string' ? jsonValue(v) : v);

/** Timestamps and nested values through the library's converter; what it cannot convert becomes text. */
function libraryToJs(type: DuckDBType): Convert {
  return (v) => {
    try {
      return JSDuckDBValueConverter(v, type, JSDuckDBValueConverter);
    } catch {
      return String(v);
    }
  };
}

/** Picks each column's conversion once per result, not per value. */
function converterFor(type: DuckDBType): Convert {
  // JSON is a VARCHAR with an alias; nested like LIST and STRUCT below.
  if (type.alias === 'JSON') return jsonToJs;
  switch (type.typeId) {
    case DuckDBTypeId.VARCHAR:
    case DuckDBTypeId.BOOLEAN:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.SQLNULL:
      return identity;
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.BIGNUM:
      return bigintToJs;
    case DuckDBTypeId.DATE:
      return dateToJs;
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return libraryToJs(type);
    case DuckDBTypeId.DECIMAL:
      return decimalToJs;
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
    case DuckDBTypeId.UNION:
      // Kept as JS arrays/objects: the identity rules drop nested values with a reason, where their
      // text form ("[object Object]", joined elements) would be hashed as if it were a name or phone.
      return libraryToJs(type);
    default:
      return asString;
  }
}

/** One DuckDB instance of the source, with the folder it spills to. */
interface Database {
  readonly instance: Promise<DuckDBInstance>;
  /** Connections open on it: a read in progress keeps it open. */
  active: number;
  /** The memory limit it is set up for: writes alone (LIGHT_WRITES_LIMIT), anything, or a write that needs more. */
  setting: Purpose;
  /** The folder the source made for reads that did not bring one; removed with the instance. */
  readonly ownFolder?: string;
}

/** Key of the instance serving reads that bring no folder of their own. */
const SHARED = '';

/**
 * An embedded DuckDB database. An existing file is opened READ_ONLY: the model cannot change the
 * warehouse, and other readers may open it too (a writer must have closed it; DuckDB allows one
 * writing process). A missing file is an error rather than a new, empty database. With `writable`
 * (a sync keeps its snapshot here) the file is opened read-write and no other process may open it
 * while a read or a write is going on.
 *
 * Spill files hold model rows, and every DuckDB instance names them the same: a read that brings its
 * own private folder (`StreamOptions.tempDirectory`, a run's) gets an instance spilling there; other
 * reads share one spilling to a private folder the source makes under the OS temp folder. An
 * in-memory database keeps one instance whatever the folder (a second one would be empty).
 */
export async function openDuckDb(path: string, label: string, settings: DuckDbSettings = {}): Promise<Source> {
  const memoryLimit = settings.memoryLimit ?? (settings.writable ? WAREHOUSE_DUCKDB_MEMORY_LIMIT : DEFAULT_DUCKDB_MEMORY_LIMIT);
  const heavyLimit = settings.memoryLimit ?? HEAVY_WRITES_LIMIT;
  const openInstance = async (tempDirectory: string): Promise<DuckDBInstance> => {
    // Sorting a large model by key spills to disk beyond the memory limit instead of growing the process.
    const options: Record<string, string> = {
      memory_limit: memoryLimit,
      temp_directory: tempDirectory,
      ...(settings.fileSearchPath === undefined ? {} : { file_search_path: settings.fileSearchPath }),
      // A run appends its record writes to the journal table in commits of a few MB: not a checkpoint every few of them.
      ...(settings.writable ? { checkpoint_threshold: WAREHOUSE_CHECKPOINT_THRESHOLD } : {}),
    };
    if (path === ':memory:') return DuckDBInstance.create(':memory:', options);
    if (!existsSync(path)) throw new SourceError(`${label}: DuckDB file ${path} does not exist; check the source's path`);
    try {
      return await DuckDBInstance.create(path, { ...options, access_mode: settings.writable ? 'READ_WRITE' : 'READ_ONLY' });
    } catch (err) {
      const other = settings.writable ? 'another process has it open (warehouse change detection writes to it): let it finish first' : 'if another process is writing to it, let it finish first';
      throw new SourceError(`${label}: cannot open DuckDB file ${path} (${errorText(err)}); ${other}`, { cause: err });
    }
  };
  const databases = new Map<string, Database>();
  const byConnection = new Map<DuckDBConnection, Database>();
  let closed = false;

  const closeDatabase = async (key: string, db: Database) => {
    if (databases.get(key) === db) databases.delete(key);
    try {
      (await db.instance).closeSync();
    } catch {
      // It never opened: nothing to close.
    } finally {
      if (db.ownFolder) rmSync(db.ownFolder, { recursive: true, force: true });
    }
  };
  const database = (tempDirectory: string | undefined): Database => {
    const key = path === ':memory:' || settings.writable ? SHARED : (tempDirectory ?? SHARED);
    const known = databases.get(key);
    if (known) return known;
    const ownFolder = key === SHARED ? mkdtempSync(join(tmpdir(), 'audience-sync-duckdb-')) : undefined;
    const db: Database = { instance: openInstance(ownFolder ?? key), active: 0, setting: 'any', ...(ownFolder ? { ownFolder } : {}) };
    // Only a failed open is forgotten (the next read tries again); a failed connect keeps the instance.
    db.instance.catch(() => closeDatabase(key, db));
    databases.set(key, db);
    return db;
  };
  const connections: Connections = {
    async open(tempDirectory, purpose = 'any') {
      if (closed) throw new SourceError(`${label}: the source is closed`);
      const db = database(tempDirectory);
      db.active++;
      let connection: DuckDBConnection | undefined;
      try {
        connection = await (await db.instance).connect();
        // The limit is the instance's: it rises for whoever needs more, and falls only for a connection alone on it.
        const want: Purpose = purpose === 'light' && db.active > 1 ? 'any' : purpose;
        const rises = PURPOSES.indexOf(want) > PURPOSES.indexOf(db.setting);
        if (settings.writable && want !== db.setting && (rises || db.active === 1)) {
          // DuckDB refuses a lower limit while it holds more than that: the write then runs at the higher one.
          const limit = want === 'light' ? LIGHT_WRITES_LIMIT : want === 'heavy' ? heavyLimit : memoryLimit;
          const changed = await connection.run(`SET memory_limit = '${limit}'`).then(
            () => true,
            (err: unknown) => (rises ? Promise.reject(err) : false),
          );
          if (changed) db.setting = want;
        }
        byConnection.set(connection, db);
        return connection;
      } catch (err) {
        connection?.closeSync();
        db.active--;
        throw err;
      }
    },
    close(connection) {
      connection.closeSync();
      const db = byConnection.get(connection);
      byConnection.delete(connection);
      if (db) db.active--;
    },
    async reopen() {
      const db = databases.get(SHARED);
      if (db && db.active === 0 && path !== ':memory:') await closeDatabase(SHARED, db);
    },
    get closed() {
      return closed;
    },
  };
  // Opened now so a bad path fails here; after release() it is opened again by the next read.
  await database(undefined).instance;

  return {
    type: 'duckdb',
    snapshot: snapshotOps(connections, label, settings.writable === true),

    async columns(sql: string): Promise<ColumnInfo[]> {
      // Describing a model spills nothing: any instance already open will do.
      const connection = await connections.open(databases.keys().next().value);
      try {
        // DESCRIBE plans the query without allocating a vector per column (LIMIT 0 does, and a very
        // wide model then runs out of memory).
        const described = await connection.runAndReadAll(`DESCRIBE ${columnsQuery(sql)}`);
        return described.getRowObjects().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
      } catch (err) {
        throw new SourceError(`${label}: DuckDB could not run the model: ${errorText(err)}`, { cause: err });
      } finally {
        connections.close(connection);
      }
    },

    findColumn: exactColumn,

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(connections, sql, opts, label);
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, {
        async signIn() {
          const connection = await connections.open();
          try {
            return `DuckDB ${String((await connection.runAndReadAll('SELECT version() AS v')).getRowObjects()[0]?.v ?? '')}, ${path === ':memory:' ? 'in memory' : `file ${path}`}`;
          } finally {
            connections.close(connection);
          }
        },
        // A local file counts its rows about as fast as a planner would guess them.
        async rows(model: string): Promise<RowEstimate> {
          const connection = await connections.open();
          try {
            return { rows: await countRows(connection, model, label), estimated: false };
          } finally {
            connections.close(connection);
          }
        },
      });
    },

    async release() {
      // An in-memory database would lose its data; a read in progress keeps the instance it uses.
      if (closed || path === ':memory:') return;
      await Promise.all([...databases].filter(([, db]) => db.active === 0).map(([key, db]) => closeDatabase(key, db)));
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...databases].map(([key, db]) => closeDatabase(key, db)));
    },
  };
}

/**
 * Statements on the snapshot tables, on a connection of their own (a stream's would lose its result).
 * A file opened read-only can have its snapshot read, not written.
 */
function snapshotOps(connections: Connections, label: string, writable: boolean): SnapshotOps {
  const withConnection = async <T>(fn: (connection: DuckDBConnection) => Promise<T>, purpose: Purpose = 'any'): Promise<T> => {
    if (!writable) throw new SourceError(`${label}: the DuckDB file is open read-only (no sync on this source has changeDetection: warehouse), so the state schema cannot be written`);
    const connection = await connections.open(undefined, purpose);
    try {
      return await fn(connection);
    } catch (err) {
      // A statement that failed inside BEGIN ... COMMIT leaves its transaction open: ended here, not left to the close.
      await connection.run('ROLLBACK').catch(() => undefined);
      if (err instanceof SourceError) throw err;
      throw new SourceError(`${label}: DuckDB could not write the state schema: ${errorText(err)}`, { cause: err });
    } finally {
      connections.close(connection);
    }
  };
  /** Column names by table, for the appender (a table dropped is described again). */
  const tableColumns = new Map<string, string[]>();
  return {
    dialect: DUCKDB_SQL,
    cheapWrites: true,
    execute: async (sql, opts) => {
      const run = (purpose: Purpose) =>
        withConnection(async (connection) => {
          if (/^\s*DROP\b/i.test(sql)) tableColumns.clear();
          await connection.run(sql);
        }, purpose);
      if (!opts?.light) return run('any');
      // Again with more memory (HEAVY_WRITES_LIMIT) where the light limit is not enough (a 10M-record snapshot ran
      // out of it applying a 1%-changed rerun's journal entries, and so did every run after); rolled back first.
      // Short of memory in a DELETE, DuckDB kept some of its deletions marked after the rollback: every later
      // deletion of those records in the process failed with "Conflict on tuple deletion" until the file was
      // opened again, which reopen() does while no other connection is on the instance (a light one runs alone).
      return run('light').catch(async (err: unknown) => {
        if (!/out of memory|conflict on tuple deletion/i.test(errorText(err))) throw err;
        await connections.reopen();
        return run('heavy');
      });
    },
    insertRows: (table, columns, rows) =>
      withConnection(async (connection) => {
        if (rows.length === 0) return;
        const parts = unquoteQualified(table);
        // The appender fills every column of the table in order: find where the given ones go.
        const order = (tableColumns.get(table) ?? (await connection.runAndReadAll(`DESCRIBE ${table}`)).getRowObjects().map((r) => String(r.column_name)));
        tableColumns.set(table, order);
        const at = order.map((c) => columns.indexOf(c));
        const appender = await connection.createAppender(parts.at(-1)!, parts.at(-2) ?? null);
        try {
          for (const row of rows) {
            for (const i of at) {
              const v = i < 0 ? null : row[i];
              if (v === null || v === undefined) appender.appendNull();
              else if (typeof v === 'number') appender.appendBigInt(BigInt(v));
              else appender.appendVarchar(v);
            }
            appender.endRow();
          }
        } catch (err) {
          // Closing flushes: a failed call appends nothing.
          appender.clear();
          throw err;
        } finally {
          appender.closeSync();
        }
      }, 'light'),
  };
}

/** Opens and closes the connections of one source, counting those open per instance. */
interface Connections {
  /** A connection to the instance spilling to `tempDirectory` (none: the shared one). */
  open(tempDirectory?: string, purpose?: Purpose): Promise<DuckDBConnection>;
  close(connection: DuckDBConnection): void;
  /** Closes the instance of a writable file while no connection uses it: the next open opens the file again. */
  reopen(): Promise<void>;
  /** True once the source is closed: a read in progress stops at its next chunk. */
  readonly closed: boolean;
}

/**
 * Cells (rows × columns) one sort may hold: above it, a key-hash-ordered read is split into slices of the
 * key space. DuckDB's native memory grows with the slice, whatever its memory_limit: reading 1M rows of
 * 8 columns and the key peaked at 356 MB RSS with 750k-row slices, 294 MB with 300k and 276 MB with 200k,
 * and 16 columns need half the rows per slice to fit the default memory_limit (5M rows of 16 columns: 338 MB at 96MB). Each slice
 * costs one more pass over the model (about 0.2 s per million rows for the key hash filter here).
 */
const CELLS_PER_SORT = 1_800_000;
/** Columns assumed when the read is not projected (select *). */
const UNPROJECTED_WIDTH = 16;

export function rowsPerSort(columns: number | undefined): number {
  return Math.max(10_000, Math.floor(CELLS_PER_SORT / ((columns ?? UNPROJECTED_WIDTH) + 1)));
}

async function* streamRows(connections: Connections, sql: string, opts: StreamOptions, label: string): AsyncGenerator<Row[]> {
  if (opts.orderByKey === undefined || opts.keyForm !== 'sha256') {
    yield* streamQueryRows(connections, streamQuery(sql, opts, DUCKDB_SQL), opts, label);
    return;
  }
  // Sorting millions of wide rows at once needs far more native memory than the limit allows. The
  // key hashes are uniform, so sorting slices of the key space one after another keeps each sort
  // small while the rows still come out in one global order (at the cost of one scan per slice).
  let total: number;
  const connection = await connections.open(opts.tempDirectory);
  try {
    total = await countRows(connection, sql, label);
  } finally {
    connections.close(connection);
  }
  const perSort = rowsPerSort(opts.columns?.length);
  const ranges = total > perSort ? keyRanges(Math.ceil(total / perSort)) : [undefined];
  for (const range of ranges) yield* streamQueryRows(connections, streamQuery(sql, opts, DUCKDB_SQL, range), opts, label);
}

async function countRows(connection: DuckDBConnection, sql: string, label: string): Promise<number> {
  try {
    const counted = await connection.runAndReadAll(`SELECT count(*) AS n FROM ${modelAsSubquery(sql)}`);
    return Number(counted.getRowObjects()[0]?.n ?? 0);
  } catch (err) {
    throw new SourceError(`${label}: DuckDB could not run the model: ${errorText(err)}`, { cause: err });
  }
}

async function* streamQueryRows(connections: Connections, query: string, opts: StreamOptions, label: string): AsyncGenerator<Row[]> {
  const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
  // A connection per stream: a new query on a connection would invalidate its open streaming result.
  const connection = await connections.open(opts.tempDirectory);
  let phase = 'run';
  try {
    const result = await connection.stream(query);
    const names = result.deduplicatedColumnNames();
    const convert = result.columnTypes().map(converterFor);
    const width = names.length;
    let rows: Row[] = [];
    let read = 0;
    phase = 'read';
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      // Converted column by column (in place), then assembled into row objects.
      const columns: unknown[][] = [];
      for (let c = 0; c < width; c++) {
        const values: unknown[] = chunk.getColumnValues(c);
        const toJs = convert[c]!;
        if (toJs !== identity) for (let r = 0; r < values.length; r++) if (values[r] !== null) values[r] = toJs(values[r] as DuckDBValue);
        columns.push(values);
      }
      const count = chunk.rowCount;
      read += count;
      for (let r = 0; r < count; r++) {
        const row: Row = {};
        for (let c = 0; c < width; c++) row[names[c]!] = columns[c]![r];
        rows.push(row);
        if (rows.length === chunkRows) {
          if (connections.closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
          yield rows;
          rows = [];
        }
      }
    }
    // A streaming result that fails mid-way (out of memory, a failing CAST, ...) ends like an exhausted
    // one: fetchChunk returns an empty chunk and the error text is not exposed. DuckDB then reports the
    // result as no longer streaming, which is how the two are told apart.
    if (!result.isStreaming) {
      throw new SourceError(
        `${label}: DuckDB stopped with an error after ${read} rows of the model (DuckDB does not report its text here). ` +
          'Common causes: running out of memory while sorting (raise the source\'s memoryLimit) or a value the model cannot convert; ' +
          'run the model in the duckdb shell to see the error',
      );
    }
    if (connections.closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
    if (rows.length > 0) yield rows;
  } catch (err) {
    if (err instanceof SourceError) throw err;
    const what = phase === 'run' ? 'could not run the model' : 'failed while reading the model';
    throw new SourceError(`${label}: DuckDB ${what}: ${errorText(err)}`, { cause: err });
  } finally {
    connections.close(connection);
  }
}
