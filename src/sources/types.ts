import type { SqlDialect } from './sql.js';

/** A column of a model, with the warehouse's own type name. */
export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
}

/** A model row as plain JS: string, number, boolean, Date, null (or a decimal string for big numbers). */
export type Row = Record<string, unknown>;

export interface StreamOptions {
  /** Rows per yielded chunk (default 10,000). */
  readonly chunkRows?: number;
  /**
   * Order rows by this column's text form in UTF-8 byte order and add it to each row as the string
   * `__pk` (null when the column is null; those rows come last).
   */
  readonly orderByKey?: string;
  /**
   * `sha256`: `__pk` (and the order) is the lowercase hex SHA-256 of the key's text form instead of
   * the text itself, so our state can key records without keeping raw keys (which may be emails).
   */
  readonly keyForm?: 'text' | 'sha256';
  /** Read only these columns of the model. */
  readonly columns?: readonly string[];
  /**
   * Stops the read: the stream throws `SourceError` and a statement still running in a remote
   * warehouse is cancelled there (BigQuery, Snowflake, Databricks). Local sources stop at their next chunk.
   */
  readonly signal?: AbortSignal;
  /**
   * A private folder this read may spill model rows to, made and removed by the caller (a run's own
   * folder): sources that spill to local disk (DuckDB) spill there and nowhere else; others ignore it.
   */
  readonly tempDirectory?: string;
}

/** How many rows a model returns, as far as the warehouse can tell without reading them. */
export interface RowEstimate {
  readonly rows: number;
  /** True for a planner's estimate, false for a count. */
  readonly estimated: boolean;
}

/** A finding of `doctor` about a source: what was checked, what was found, and what to do. */
export interface SourceCheck {
  /** `sign-in`, `rows`, or what else a warehouse checks (BigQuery: `dry run`). */
  readonly subject: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly message: string;
  readonly fix?: string;
  /** The `rows` check's count or estimate. */
  readonly rows?: RowEstimate;
}

/** What warehouse change detection needs of a warehouse (absent: the source cannot do it, e.g. MySQL). */
export interface SnapshotOps {
  readonly dialect: SnapshotDialect;
  /**
   * Runs one statement that returns no rows (DDL, INSERT ... SELECT, DELETE). Errors: SourceError
   * (redacted by openSource). `light`: a write that may run with little memory (DuckDB: see LIGHT_WRITES).
   */
  execute(sql: string, opts?: { light?: boolean }): Promise<void>;
  /**
   * Appends rows to a table (a qualified, quoted name from dialect.table) in as few round trips as the
   * warehouse allows: DuckDB its Appender, PostgreSQL/Redshift multi-row parameterized INSERTs, the
   * cloud warehouses INSERT ... VALUES statements of a bounded size (strings escaped for the dialect).
   * Values are strings, integers (JS numbers) or null.
   */
  insertRows(table: string, columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>): Promise<void>;
  /**
   * Writes cost little (DuckDB: an embedded file; PostgreSQL: 10,000 rows in one array statement): a
   * run's record writes go straight to a journal table beside the snapshot, applied there in one
   * transaction, rather than through our state store's journal, which costs a write, a read and a
   * delete per entry on top (a 1M-row PostgreSQL first sync spent 29 s of its 75 s there).
   */
  readonly cheapWrites?: boolean;
  /**
   * Runs a query whose result is small, whole rather than through a cursor: PostgreSQL never plans a
   * cursor's query in parallel, and the fingerprint check (see snapshot-match.ts) scans the whole
   * model and snapshot for a few thousand rows. Absent: such queries are streamed.
   */
  queryAll?(sql: string): Promise<Row[]>;
  /**
   * Runs a statement sequence that returns no rows on a connection of its own, beside the one that
   * appends and reads: a journal application (seconds on a 10M-record snapshot) goes on while delivery
   * does. Absent: such writes run in turn with the others.
   */
  executeAside?(sql: string): Promise<void>;
  /**
   * Writes what `select` returns to a temporary table `name` of this connection's session (replacing
   * one of that name), planned with the settings of queryAll: the match's join, whose scans a cursor
   * would run in one process (PostgreSQL: 17.6 s instead of 23–26 s at 10M rows). Its rows are then
   * read through the cursor. Absent: the join runs inside the statement that reads it.
   */
  materialize?(name: string, select: string): Promise<void>;
}

export interface SnapshotDialect extends SqlDialect {
  /** A table in the state schema (dataset), quoted for this warehouse: "s"."t", `project.s.t`, ... */
  table(schema: string, name: string): string;
  /** The statement that creates the schema when missing, or undefined where it must exist already. */
  createSchema(schema: string): string | undefined;
  /** Column types: text and 64-bit integer (VARCHAR/TEXT/STRING, BIGINT/INT64). */
  readonly textType: string;
  readonly integerType: string;
  /** The lowercase hex MD5 of a text expression (BigQuery: TO_HEX(MD5(x))). */
  md5Hex(textExpr: string): string;
  /** A value's text form (the same text `keyText` gives a key; CAST(x AS VARCHAR|STRING|TEXT)). */
  valueText(expr: string): string;
  /**
   * A 64-bit integer hash of text expressions, each hashed with its own seed (NULL stands as the
   * pair's second number) and the hashes combined. Given where md5() costs far more than a join
   * (PostgreSQL: about 1 µs a call): fingerprints are then two such hashes of the key and the
   * values, and change sets are found by matching fingerprints (see snapshot-match.ts).
   */
  rowHash?(texts: readonly string[], seeds: ReadonlyArray<readonly [bigint, bigint]>): string;
  /** With rowHash: a row's id within a statement (PostgreSQL ctid, DuckDB rowid), and rows whose id a subquery gives. */
  readonly rowId?: string;
  rowIdIn?(subquery: string): string;
  /**
   * The statement that refreshes a table's statistics, where the planner needs them (PostgreSQL: a
   * journal that grew from nothing to 1M entries since autovacuum last looked was joined by sorting,
   * and one application ran for minutes instead of seconds).
   */
  analyze?(table: string): string;
  /**
   * The statement that gives back a table's deleted rows' space, where deleted rows stay in it
   * (PostgreSQL: a journal emptied 20 times by a 10M-row first sync held 8M dead rows that every
   * application scanned again). Run outside a transaction.
   */
  vacuum?(table: string): string;
  /**
   * The fingerprint check's record side is kept in a table beside the snapshot, updated by each
   * application of the journal (see bucketTable in snapshot-match.ts), rather than summed from the
   * snapshot each run: PostgreSQL, whose scan of a 10M-record snapshot took 6.5 s of a no-change rerun.
   */
  readonly keepsBuckets?: boolean;
  /**
   * The statement that creates `table` (in the state schema) from `select`, unlogged where the
   * warehouse can: a journal application finds the records it replaces with it (a parallel scan) and
   * drops it, in its transaction, before deleting them by row id, since a DELETE is never planned in
   * parallel (PostgreSQL: 2.4 s instead of 4.8 for 200,000 of 10M records). DuckDB: deleting 100,000 of
   * 10M records by their key hashes ran out of memory at a 128MB limit; by row ids found first, it did not.
   */
  keepRows?(table: string, select: string): string;
  /**
   * Journal entries one application's transaction takes at most: beyond them it applies slices of the
   * key space, a transaction each. DuckDB's memory for a transaction's deletions and inserts grows
   * with them (390,000 entries replacing 100,000 of 10M records: about 400 MB RSS at a 192MB limit).
   */
  readonly applySliceEntries?: number;
}

/** A warehouse the model runs in. One `stream` at a time per source. */
export interface Source {
  readonly type: 'duckdb' | 'postgres' | 'redshift' | 'mysql' | 'bigquery' | 'snowflake' | 'databricks';
  /** The model's columns, without reading its rows. */
  columns(sql: string): Promise<ColumnInfo[]>;
  /**
   * The model column a column name from the config means, or undefined: the warehouse's own rule
   * (exact; Snowflake also finds `user_id` as USER_ID; Databricks ignores case). `stream` resolves
   * `columns` and `orderByKey` the same way and keys rows by the names it was given.
   */
  findColumn(name: string, columns: readonly string[]): string | undefined;
  /**
   * The model's rows in chunks; never the whole result in memory. A SQL error or a lost connection
   * throws `SourceError`: the stream never just ends as if the model were empty.
   */
  stream(sql: string, opts?: StreamOptions): AsyncIterable<Row[]>;
  /**
   * What `doctor` reports about the model (doctor.ts makes the checks): `sign-in` (who signed in to
   * which server and version; the grant or setting at fault), what else the warehouse checks, and
   * `rows` (a count or the warehouse's estimate). A failure is a failed check, never a throw.
   */
  doctor(sql: string): Promise<SourceCheck[]>;
  /**
   * Frees what reading took until the next read, which opens it again (DuckDB closes its database: its
   * buffers and allocator caches are native memory a run that is now sending would hold for nothing).
   */
  release(): Promise<void>;
  close(): Promise<void>;
  /** Warehouse change detection's writes to the state schema; absent where the warehouse cannot do it. */
  readonly snapshot?: SnapshotOps;
}

/** The warehouse could not be opened or the model could not be read; the message says why. */
export class SourceError extends Error {
  override readonly name = 'SourceError';
  /** What to do about it, when the message's advice can be given on its own (doctor shows it as the fix). */
  readonly fix: string | undefined;
  /**
   * Names the source vouches for that its settings do not hold (BigQuery's service account from the
   * key file): the redaction in openSource keeps them, e-mail-like as they may be.
   */
  readonly names: readonly string[];
  constructor(message: string, options?: ErrorOptions & { fix?: string; names?: readonly string[] }) {
    super(message, options);
    this.fix = options?.fix;
    this.names = options?.names ?? [];
  }
}

/** Name of the extra field carrying the ordered key's text form. */
export const PK_FIELD = '__pk';
export const DEFAULT_CHUNK_ROWS = 10_000;
