/**
 * The source conformance suite's harness: one suite (sources.test.ts) runs every test against every
 * backend listed in backends.ts, on the same fixture tables, expecting the same rows, order and types.
 *
 * Adding a backend (a warehouse, or a test server that speaks a warehouse's API):
 *
 *   1. Write a `SourceBackend`: `start()` brings the warehouse up (a real server, or the repo's test
 *      server for a cloud API) and resolves to a `BackendInstance`. It must THROW when it cannot
 *      start (a missing binary, a port it cannot bind): the suite then fails, it is never skipped.
 *   2. The instance's `exec()` runs admin statements in the warehouse's own SQL, and its `fixtures`
 *      says how that SQL spells the fixture column types and values (`FixtureDialect`; a test server
 *      backed by DuckDB reuses `DUCKDB_FIXTURES`). The harness renders the shared tables
 *      (fixtures.ts) with it and runs them through `exec()` before the suite starts.
 *   3. `config` is the `sources.<name>` entry a user would write to read those tables, signed in as a
 *      user who can read them (not an admin): grants are part of what the suite checks.
 *   4. The failure hooks (`expiredCredential`, `revokeGrant`, `midStreamFailure`,
 *      `runningStatements`) make the warehouse fail the way a real one does (a test server's fault
 *      switch that would break later reads too is turned off again by `midStreamFailure.heal`). A
 *      backend without one says why in `notApplicable` (an embedded file has no credentials); the
 *      suite checks every hook is either there or explained.
 *   Rows and columns are compared by the names a config would write: the source's `findColumn`
 *   says which returned column each is (Snowflake returns `id` as ID).
 *   5. `valueError` is a model that fails on the `users` row 7, with an error that quotes its email
 *      (a failed conversion); the suite checks the source's error shows it redacted.
 *   6. Add it to `BACKENDS` in backends.ts. The suite checks every part of `Source`: `columns()`,
 *      `findColumn()`, `stream()`, `doctor()` (sign-in, a missing grant, the row count or estimate).
 *
 * For an HTTP backend (BigQuery, Snowflake, Databricks) this is a few lines: start its test server,
 * `exec` = run on its DuckDB, `fixtures` = DUCKDB_FIXTURES, `config` = the source entry pointing its
 * url at the server, and the hooks = the server's controls (expire a credential, drop a grant, fail
 * the next page, count running statements).
 */
import type { SourceConfig } from '../../../src/config/index.js';

/** The column types of the fixture tables; each backend spells them in its own DDL. */
export type FixtureType =
  | 'int'
  | 'bigint'
  /** DECIMAL(38,0): ids beyond 2^53 that must not lose digits. */
  | 'decimal'
  /** DECIMAL(10,2). */
  | 'money'
  | 'text'
  | 'boolean'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'json'
  /** A list of integers (JSON array where the warehouse has no arrays). */
  | 'intArray';

/**
 * A fixture value: numbers and strings as written in SQL (big integers and decimals as their digits),
 * dates as `YYYY-MM-DD`, timestamps as `YYYY-MM-DD hh:mm:ss.fff` (with `+hh:mm` for timestamptz),
 * JSON as a JS value (an array too), intArray as number[].
 */
export type FixtureValue = string | number | boolean | null | readonly unknown[] | Readonly<Record<string, unknown>>;

export interface FixtureTable {
  readonly name: string;
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: FixtureType }>;
  readonly rows: ReadonlyArray<readonly FixtureValue[]>;
}

/** How a backend's SQL spells the fixtures. */
export interface FixtureDialect {
  quote(name: string): string;
  readonly types: Readonly<Record<FixtureType, string>>;
  /** A value as a SQL literal of the column's type. */
  literal(value: FixtureValue, type: FixtureType): string;
  /** After CREATE TABLE (...): table options such as a character set. */
  readonly tableOptions?: string;
}

/** The hooks a backend offers to make reads fail. */
export type FailureHook = 'expiredCredential' | 'revokeGrant' | 'midStreamFailure' | 'runningStatements';

export interface SourceBackend {
  /** Name in the test titles. */
  readonly name: string;
  /** Brings the warehouse up; throws when it cannot (the suite fails, never skips). */
  start(): Promise<BackendInstance>;
}

export interface BackendInstance {
  /** The `sources.<name>` entry that reads the fixtures as a non-admin user with SELECT on them. */
  readonly config: SourceConfig;
  /** Runs admin statements in the backend's own SQL, one after another. */
  exec(statements: readonly string[]): Promise<void>;
  /** How `exec` SQL spells the fixture tables. */
  readonly fixtures: FixtureDialect;
  /** What `columns()` names the types of the `typed` fixture table's columns. */
  readonly typeNames: Readonly<Record<string, string>>;
  /** A source entry whose credential has expired (a password past its date, an expired token). */
  expiredCredential?(): Promise<SourceConfig>;
  /** Takes the config's user's SELECT on a fixture table away. */
  revokeGrant?(table: string): Promise<void>;
  /**
   * Breaks a read in progress: `strike()` is called once the first chunk of `model` (default: the
   * users table) has arrived, to kill the session, drop the connection or fail the next page; or,
   * without `strike`, `model` is a model that fails part-way by itself.
   */
  readonly midStreamFailure?: { strike(): Promise<void>; model?: string; heal?(): Promise<void> } | { model: string };
  /** A string literal in the model's SQL (default: standard SQL, quotes doubled; BigQuery and Databricks escape them with a backslash). */
  readonly modelString?: (text: string) => string;
  /** A model that fails on the `users` row with user_id 7, its error quoting that row's email. */
  readonly valueError: string;
  /** Statements of the config's user the warehouse is still running (after a read was stopped: 0). */
  runningStatements?(): Promise<number>;
  /** Why a hook above is missing. */
  readonly notApplicable?: Partial<Record<FailureHook, string>>;
  stop(): Promise<void>;
}

/** The CREATE TABLE and INSERT statements of `tables` in `dialect`, inserts in batches of 500 rows. */
export function renderFixtures(tables: readonly FixtureTable[], dialect: FixtureDialect): string[] {
  const out: string[] = [];
  for (const t of tables) {
    const columns = t.columns.map((c) => `${dialect.quote(c.name)} ${dialect.types[c.type]}`);
    out.push(`CREATE TABLE ${dialect.quote(t.name)} (${columns.join(', ')})${dialect.tableOptions ? ` ${dialect.tableOptions}` : ''}`);
    for (let i = 0; i < t.rows.length; i += 500) {
      const rows = t.rows.slice(i, i + 500).map((row) => `(${row.map((v, c) => dialect.literal(v, t.columns[c]!.type)).join(', ')})`);
      out.push(`INSERT INTO ${dialect.quote(t.name)} VALUES ${rows.join(', ')}`);
    }
  }
  return out;
}

/** `'text'` with quotes doubled. */
export const sqlString = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/**
 * Literals in standard SQL, for the types that need no dialect: each backend's `literal` handles
 * its own spellings first and falls back to this.
 */
export function standardLiteral(value: FixtureValue, type: FixtureType): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') return String(value);
  if (type === 'json') return sqlString(JSON.stringify(value));
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  const text = String(value);
  if (type === 'date') return `DATE ${sqlString(text)}`;
  if (type === 'timestamp') return `TIMESTAMP ${sqlString(text)}`;
  if (type === 'timestamptz') return `TIMESTAMPTZ ${sqlString(text)}`;
  if (type === 'int' || type === 'bigint' || type === 'decimal' || type === 'money') return text;
  return sqlString(text);
}

/** DuckDB's spelling, also for test servers backed by DuckDB. */
export const DUCKDB_FIXTURES: FixtureDialect = {
  quote: (name) => `"${name.replace(/"/g, '""')}"`,
  types: {
    int: 'INTEGER',
    bigint: 'BIGINT',
    decimal: 'DECIMAL(38,0)',
    money: 'DECIMAL(10,2)',
    text: 'VARCHAR',
    boolean: 'BOOLEAN',
    date: 'DATE',
    timestamp: 'TIMESTAMP',
    timestamptz: 'TIMESTAMPTZ',
    json: 'JSON',
    intArray: 'INTEGER[]',
  },
  literal: standardLiteral,
};

/** PostgreSQL's spelling (Redshift's stand-in too). */
export const POSTGRES_FIXTURES: FixtureDialect = {
  quote: DUCKDB_FIXTURES.quote,
  types: {
    int: 'integer',
    bigint: 'bigint',
    decimal: 'numeric(38,0)',
    money: 'numeric(10,2)',
    text: 'text',
    boolean: 'boolean',
    date: 'date',
    timestamp: 'timestamp',
    timestamptz: 'timestamptz',
    json: 'jsonb',
    intArray: 'integer[]',
  },
  literal: (value, type) => (type === 'intArray' && Array.isArray(value) ? `ARRAY[${value.join(', ')}]::integer[]` : standardLiteral(value, type)),
};
