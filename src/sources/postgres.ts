import pg from 'pg';
import { byteOrderedKey, columnsQuery, errorText, exactColumn, modelAsSubquery, quoteIdent, streamQuery, validChunkRows } from './sql.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type SnapshotDialect, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { doctorChecks } from './doctor.js';
import { decimalValue, integerValue, jsonValue, parseDate, parseTimestamp } from './values.js';
import { cancelOnSignal } from './signals.js';

/**
 * What differs between warehouses read over the PostgreSQL wire protocol (PostgreSQL itself and
 * Redshift): the SQL spelling of the key, how the read's transaction and cursor are opened, and a
 * few types. Everything else (connection, cursor loop, errors) is shared.
 */
export interface WireDialect {
  readonly type: 'postgres' | 'redshift';
  /** The product's name in messages. */
  readonly product: string;
  /** The model's SQL, and the snapshot tables' for warehouse change detection. */
  readonly sql: SnapshotDialect;
  /** Opens the read-only transaction the cursor lives in. */
  readonly begin: string;
  declareCursor(cursor: string, query: string): string;
  /** Most rows one FETCH may ask for. */
  readonly maxFetch?: number;
  /** Parsers by type OID beyond PostgreSQL's. */
  readonly parsers?: Readonly<Record<number, (text: string) => unknown>>;
  /** The product and version from `version()`. */
  serverInfo(version: string): string;
  /**
   * Rows are appended as one array per column, unnested by the server (PostgreSQL): one statement of
   * a few parameters for any number of rows, several times faster than multi-row VALUES. Redshift
   * has no such arrays.
   */
  readonly arrayInsert?: boolean;
}

/** `"schema"."table"`, and a schema created when missing (PostgreSQL and Redshift alike). */
export const qualifiedTables: Pick<SnapshotDialect, 'table' | 'createSchema'> = {
  table: (schema, name) => `${quoteIdent(schema)}.${quoteIdent(name)}`,
  createSchema: (schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
};

export const POSTGRES_DIALECT: WireDialect = {
  type: 'postgres',
  product: 'PostgreSQL',
  sql: {
    quote: quoteIdent,
    keyText: (col) => `(${col})::text COLLATE "C"`,
    keySha256: (col) => `encode(sha256(convert_to((${col})::text, 'UTF8')), 'hex')`,
    orderByKey: byteOrderedKey,
    ...qualifiedTables,
    textType: 'TEXT',
    integerType: 'BIGINT',
    // md5() hashes the text's bytes in the database encoding (UTF-8 for any database a model reads text from) and returns lowercase hex.
    md5Hex: (text) => `md5(${text})`,
    valueText: (expr) => `CAST(${expr} AS TEXT)`,
    // hashtextextended: PostgreSQL's own hash of text (the one hash partitioning keeps stable), ~0.1 µs a call.
    analyze: (table) => `ANALYZE ${table}`,
    vacuum: (table) => `VACUUM ${table}`,
    keepsBuckets: true,
    keepRows: (table, select) => `CREATE UNLOGGED TABLE ${table} AS ${select}`,
    rowId: 'ctid',
    // = ANY(ARRAY(...)): a TID scan fetches those rows, where IN (...) would scan the whole table.
    rowIdIn: (subquery) => `ctid = ANY(ARRAY(${subquery}))`,
    rowHash: (texts, seeds) => `(${texts.map((t, i) => `COALESCE(hashtextextended(${t}, ${seeds[i]![0]}), ${seeds[i]![1]})`).join(' # ')})`,
  },
  // One consistent snapshot of the model, and a model cannot change the warehouse.
  begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  declareCursor: (cursor, query) => `DECLARE ${cursor} NO SCROLL CURSOR FOR ${query}`,
  serverInfo: (version) => /^PostgreSQL [^\s,]+/.exec(version)?.[0] ?? version,
  arrayInsert: true,
};

const APPLICATION_NAME = 'audience-sync source';
/** work_mem of a session that computes change sets (warehouse change detection): a hash of a few hundred MB per 10M rows. */
const CHANGE_SET_WORK_MEM = '256MB';
/** A session's settings once it works on the snapshot's tables (see tuneForSnapshot). */
const SNAPSHOT_SETTINGS = `SET jit = off; SET work_mem = '${CHANGE_SET_WORK_MEM}'`;

const OID = { bool: 16, json: 114, int8: 20, int2: 21, int4: 23, oid: 26, float4: 700, float8: 701, date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700, jsonb: 3802 } as const;

/** Array types handed on as JS arrays (pg's own parsers): bool, int2/4/8, float4/8, numeric, text, varchar, bpchar, date, time, timestamp(tz), uuid, json(b). */
const ARRAY_OIDS = [1000, 1005, 1007, 1016, 1021, 1022, 1231, 1009, 1015, 1014, 1182, 1183, 1115, 1185, 2951, 199, 3807];

const basicParsers: Record<number, (text: string) => unknown> = {
  [OID.bool]: (t) => t === 't',
  [OID.int2]: Number,
  [OID.int4]: Number,
  [OID.oid]: Number,
  [OID.float4]: Number,
  [OID.float8]: Number,
  [OID.int8]: (t) => integerValue(BigInt(t)),
  [OID.numeric]: decimalValue,
  [OID.date]: parseDate,
  [OID.timestamp]: parseTimestamp,
  [OID.timestamptz]: parseTimestamp,
  [OID.json]: jsonValue,
  [OID.jsonb]: jsonValue,
};
for (const oid of ARRAY_OIDS) basicParsers[oid] = pg.types.getTypeParser(oid, 'text') as (text: string) => unknown;
const asText = (t: string) => t;

/** Plain JS values; JSON and arrays as nested values; anything else without a natural JS form (uuid, ...) stays text. */
export function wireTypeParsers(extra: Readonly<Record<number, (text: string) => unknown>> = {}): pg.CustomTypesConfig {
  const parsers = { ...basicParsers, ...extra };
  return { getTypeParser: ((oid: number) => parsers[oid] ?? asText) as pg.CustomTypesConfig['getTypeParser'] };
}

/** `host:port/db` for messages: the URL itself may hold a password. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}

function userOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username) || undefined;
  } catch {
    return undefined;
  }
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/** Errors that mean the session is gone: admin shutdown / crash (57P0x), connection class 08, socket errors. */
function isConnectionLoss(err: unknown): boolean {
  const code = codeOf(err);
  if (typeof code === 'string' && (/^57P0[1-3]$/.test(code) || code.startsWith('08') || code === 'ECONNRESET' || code === 'EPIPE')) return true;
  return /Connection terminated|not queryable|ECONNRESET/i.test(errorText(err));
}

/**
 * What to ask an admin for when the server says permission denied (42501), or nothing. `writing`:
 * the statement wrote warehouse change detection's state schema, which needs more than reading.
 */
export function grantHint(err: unknown, user: string | undefined, writing: false | { schema?: string } = false): string | undefined {
  if (codeOf(err) !== '42501') return undefined;
  const to = user ?? '<the source\'s user>';
  if (writing) return writeGrantHint(errorText(err), to, writing.schema ?? '<stateSchema>');
  const m = /permission denied for (table|relation|view|materialized view|schema|sequence|function) (\S+)/i.exec(errorText(err));
  if (!m) return `ask an admin to grant ${to} SELECT on the tables the model reads (and USAGE on their schemas)`;
  const [, kind, name] = m;
  if (kind!.toLowerCase() === 'schema') return `ask an admin to run: GRANT USAGE ON SCHEMA ${name} TO ${to}`;
  if (kind!.toLowerCase() === 'function') return `ask an admin to run: GRANT EXECUTE ON FUNCTION ${name} TO ${to}`;
  return `ask an admin to run: GRANT SELECT ON ${name} TO ${to}`;
}

function writeGrantHint(text: string, to: string, schema: string): string {
  const m = /permission denied for (database|schema|table|relation) (\S+)/i.exec(text);
  const kind = m?.[1]?.toLowerCase();
  if (kind === 'database') return `ask an admin to run: CREATE SCHEMA ${schema}; GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${to} (or GRANT CREATE ON DATABASE ${m![2]} TO ${to}, so audience-sync creates the schema itself)`;
  if (kind === 'schema') return `ask an admin to run: GRANT USAGE, CREATE ON SCHEMA ${m![2]} TO ${to}`;
  if (kind === 'table' || kind === 'relation') return `ask an admin to run: GRANT SELECT, INSERT, DELETE ON ${m![2]} TO ${to} (or let ${to} own it: audience-sync creates and drops its snapshot tables)`;
  return `ask an admin to run: GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${to}`;
}

/** 28P01 (wrong or expired password) and 28000 (no access rule for the user). */
function isAuthFailure(err: unknown): boolean {
  const code = codeOf(err);
  return code === '28P01' || code === '28000';
}

/** The message (and our advice) with PostgreSQL's DETAIL and HINT lines, which often say what to change. */
function pgErrorText(err: unknown, advice: string | undefined): string {
  const { detail, hint } = (typeof err === 'object' && err !== null ? err : {}) as { detail?: unknown; hint?: unknown };
  let text = advice === undefined ? errorText(err) : `${errorText(err)}; ${advice}`;
  if (typeof detail === 'string' && detail !== '') text += `\nDETAIL: ${detail}`;
  if (typeof hint === 'string' && hint !== '') text += `\nHINT: ${hint}`;
  return text;
}

let cursorCounter = 0;

/** The schema a write names (its first quoted name), for the GRANT a failure asks for. */
function schemaNamed(sql: string): { schema?: string } {
  const schema = /"((?:[^"]|"")+)"/.exec(sql)?.[1]?.replace(/""/g, '"');
  return schema === undefined ? {} : { schema };
}

/**
 * A warehouse read over the PostgreSQL wire protocol. Rows are read through a server-side cursor
 * (`DECLARE` + `FETCH n`) in a read-only transaction: memory stays flat and the model is one snapshot.
 */
export async function openWire(url: string, label: string, dialect: WireDialect): Promise<Source> {
  const where = describeUrl(url);
  const product = dialect.product;
  const client = new pg.Client({ connectionString: url, types: wireTypeParsers(dialect.parsers), application_name: APPLICATION_NAME });
  let lost: Error | undefined;
  // A dropped connection is reported by the query in progress; without a listener it would crash the process.
  client.on('error', (err) => {
    lost = err;
  });
  let user = userOf(url);
  let version = '';
  try {
    await client.connect();
    await client.query("SET timezone TO 'UTC'");
    const { rows } = await client.query<{ u: string; v: string }>('SELECT current_user AS u, version() AS v');
    user = rows[0]?.u ?? user;
    version = rows[0]?.v ?? '';
  } catch (err) {
    await client.end().catch(() => {});
    const advice = isAuthFailure(err)
      ? `the server refused the user or its password (an expired password is refused the same way): check the credentials in the source's url`
      : `check the source's url and that the server is reachable`;
    throw new SourceError(`${label}: cannot connect to ${product} at ${where}: ${errorText(err)}; ${advice}`, { cause: err });
  }

  let streaming = false;
  let closed = false;
  const fail = (what: string, err: unknown, writing: false | { schema?: string } = false): SourceError => {
    if (closed) return new SourceError(`${label}: the source was closed while the model was being read`, { cause: err });
    if (!lost && isConnectionLoss(err)) lost = err instanceof Error ? err : new Error(errorText(err));
    const grant = grantHint(err, user, writing);
    const reason = lost ? `lost the connection to ${product} at ${where} (${errorText(lost)})` : `${product} ${what}: ${pgErrorText(err, grant)}`;
    return new SourceError(`${label}: ${reason}`, { cause: err });
  };
  const usable = () => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
    if (lost) throw fail('', lost);
  };

  /**
   * Closes the connection. A statement still running is cancelled first, from a second connection:
   * a server only notices a closed connection when it next sends rows, so a slow model would run on.
   */
  async function endConnection(): Promise<void> {
    if (closed) return;
    closed = true;
    if (streaming) await cancelBackend((client as unknown as { processID?: number }).processID);
    await client.end().catch(() => {});
    if (aside) {
      const { connection, busy } = aside;
      aside = undefined;
      if (busy) await cancelBackend((connection as unknown as { processID?: number }).processID);
      await connection.end().catch(() => {});
    }
  }

  async function cancelBackend(pid: number | undefined): Promise<void> {
    if (pid === undefined) return;
    const canceller = new pg.Client({ connectionString: url, application_name: `${APPLICATION_NAME} (cancel)`, connectionTimeoutMillis: 5_000 });
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      // Best effort: closing the connection below still ends the statement once it next sends rows.
    } finally {
      await canceller.end().catch(() => {});
    }
  }

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    const fetchRows = Math.min(chunkRows, dialect.maxFetch ?? chunkRows);
    const query = streamQuery(sql, opts, dialect.sql);
    usable();
    if (streaming) throw new SourceError(`${label}: a model is already being read from this source; read one at a time`);
    streaming = true;
    const cursor = `audience_sync_cursor_${++cursorCounter}`;
    let phase = 'could not run the model';
    // Ending the connection ends its statement; a process told to stop must not leave the model running.
    const unregister = cancelOnSignal(endConnection);
    try {
      // Cursors live only inside a transaction (Redshift has no FETCH outside one).
      await client.query(dialect.begin);
      await client.query(dialect.declareCursor(cursor, query));
      phase = 'failed while reading the model';
      let chunk: Row[] = [];
      for (;;) {
        const { rows } = await client.query<Row>(`FETCH FORWARD ${fetchRows} FROM ${cursor}`);
        if (chunk.length === 0 && rows.length === chunkRows) chunk = rows;
        else for (const row of rows) chunk.push(row);
        if (rows.length < fetchRows) break;
        if (chunk.length >= chunkRows) {
          yield chunk;
          chunk = [];
        }
      }
      if (chunk.length > 0) yield chunk;
    } catch (err) {
      throw fail(phase, err);
    } finally {
      unregister();
      streaming = false;
      // Ends the transaction and with it the cursor, also when the reader stopped early.
      if (!lost && !closed) await client.query('ROLLBACK').catch(() => {});
    }
  }

  /** A write to the state schema, outside any read's transaction (which is read-only). */
  async function write<T>(sql: string, fn: () => Promise<T>): Promise<T> {
    usable();
    if (streaming) throw new SourceError(`${label}: the state schema cannot be written while a model is being read from this source`);
    try {
      await tuneForSnapshot();
      return await fn();
    } catch (err) {
      // A statement sequence that opened a transaction (applying the journal) left it aborted.
      if (!lost && !closed) await client.query('ROLLBACK').catch(() => {});
      throw fail('could not write the state schema', err, schemaNamed(sql));
    }
  }

  let tuned = false;
  /**
   * Settings of this session once it works on warehouse change detection's tables (never for a
   * model read in local mode): JIT spent 2 s compiling each change-set statement, more than it saved;
   * and with the default 4 MB a journal application's hash join of 200k keys wrote the 10M-record
   * snapshot to temporary files in batches, as did the match's join of 10M fingerprints.
   */
  async function tuneForSnapshot(): Promise<void> {
    if (tuned) return;
    await client.query(SNAPSHOT_SETTINGS);
    tuned = true;
  }
  /** The second connection of executeAside, opened on its first use. */
  let aside: { connection: pg.Client; busy: boolean; lost?: Error } | undefined;

  /** Runs a write on the second connection (see SnapshotOps.executeAside), one at a time. */
  async function writeAside(sql: string): Promise<void> {
    usable();
    if (aside?.busy) throw new SourceError(`${label}: a write is already running beside the reads; wait for it first`);
    try {
      if (!aside) {
        const connection = new pg.Client({ connectionString: url, types: wireTypeParsers(dialect.parsers), application_name: `${APPLICATION_NAME} (journal)` });
        const opened: { connection: pg.Client; busy: boolean; lost?: Error } = { connection, busy: true };
        connection.on('error', (err) => void (opened.lost = err));
        aside = opened;
        await connection.connect();
        await connection.query(`SET timezone TO 'UTC'; ${SNAPSHOT_SETTINGS}`);
      }
      aside.busy = true;
      await aside.connection.query(sql);
    } catch (err) {
      if (aside && !aside.lost && !closed) await aside.connection.query('ROLLBACK').catch(() => {});
      const lostAside = aside?.lost ?? (isConnectionLoss(err) ? err : undefined);
      if (lostAside !== undefined) throw new SourceError(`${label}: lost the second connection to ${product} at ${where} (${errorText(lostAside)})`, { cause: err });
      throw fail('could not write the state schema', err, schemaNamed(sql));
    } finally {
      if (aside) aside.busy = false;
    }
  }

  /** Each table's column types, for the arrays insertArrays sends (the tables are ours: their types do not change during a run). */
  const columnTypes = new Map<string, Map<string, string>>();

  /** `INSERT ... SELECT * FROM unnest($1::type[], ...)`: a column's values as one array parameter. */
  async function insertArrays(table: string, columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>): Promise<void> {
    let types = columnTypes.get(table);
    if (!types) {
      const { rows: described } = await client.query<{ name: string; type: string }>(
        'SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped',
        [table],
      );
      types = new Map(described.map((c) => [c.name, c.type]));
      columnTypes.set(table, types);
    }
    const arrays = columns.map((name, c) => {
      if (!types.has(name)) throw new SourceError(`${label}: the table ${table} has no column ${name}`);
      return rows.map((row) => row[c] ?? null);
    });
    const casts = columns.map((name, c) => `$${c + 1}::${types.get(name)}[]`);
    await client.query(`INSERT INTO ${table} (${columns.map(quoteIdent).join(', ')}) SELECT * FROM unnest(${casts.join(', ')})`, arrays);
  }

  /**
   * Runs `sql` (statements after the settings) outside a cursor, so the planner may use parallel
   * workers: the planner takes the check's 4,096 buckets for 10M groups, and sorted 10M rows on disk
   * to group them, in one process, unless sorts are off and handing rows over costs nothing.
   */
  async function wholeQuery(sql: string): Promise<unknown> {
    usable();
    if (streaming) throw new SourceError(`${label}: a model is already being read from this source; read one at a time`);
    try {
      await tuneForSnapshot();
      return await client.query(`BEGIN; SET LOCAL enable_sort = off; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; ${sql}; COMMIT`);
    } catch (err) {
      if (!lost && !closed) await client.query('ROLLBACK').catch(() => {});
      throw fail('could not run the model', err);
    }
  }

  const snapshot: SnapshotOps = {
    dialect: dialect.sql,
    ...(dialect.arrayInsert ? { cheapWrites: true } : {}),
    queryAll: async (sql) => {
      // One result per statement: the settings, the query, then COMMIT.
      const results = (await wholeQuery(sql)) as unknown as Array<{ rows: Row[] }>;
      return results.at(-2)!.rows;
    },
    materialize: async (name, select) => {
      const table = `pg_temp.${quoteIdent(name)}`;
      await wholeQuery(`DROP TABLE IF EXISTS ${table}; CREATE TEMPORARY TABLE ${quoteIdent(name)} AS ${select}`);
    },
    execute: (sql) => write(sql, async () => void (await client.query(sql))),
    ...(dialect.arrayInsert ? { executeAside: writeAside } : {}),
    insertRows: (table, columns, rows) =>
      write(table, async () => {
        if (rows.length === 0) return;
        if (dialect.arrayInsert) return insertArrays(table, columns, rows);
        const names = columns.map(quoteIdent).join(', ');
        // Bounded statements: PostgreSQL takes at most 65,535 parameters; one transaction for them all.
        const perStatement = Math.max(1, Math.min(1000, Math.floor(30_000 / Math.max(1, columns.length))));
        await client.query('BEGIN');
        try {
          for (let i = 0; i < rows.length; i += perStatement) {
            const slice = rows.slice(i, i + perStatement);
            const values = slice.map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
            await client.query(`INSERT INTO ${table} (${names}) VALUES ${values.join(', ')}`, slice.flat());
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      }),
  };

  return {
    type: dialect.type,
    snapshot,

    async columns(sql: string): Promise<ColumnInfo[]> {
      usable();
      try {
        const { fields } = await client.query(columnsQuery(sql, dialect.sql));
        if (fields.length === 0) return [];
        // Type OIDs and modifiers are integers from the server, safe to write into the query.
        const names = fields.map((f, i) => `format_type(${Number(f.dataTypeID)}, ${Number(f.dataTypeModifier)}) AS t${i}`);
        const { rows } = await client.query<Record<string, string>>(`SELECT ${names.join(', ')}`);
        return fields.map((f, i) => ({ name: f.name, type: rows[0]?.[`t${i}`] ?? String(f.dataTypeID) }));
      } catch (err) {
        throw fail('could not run the model', err);
      }
    },

    findColumn: exactColumn,

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, {
        async signIn() {
          usable();
          return `${dialect.serverInfo(version)}, signed in as ${user ?? 'the url\'s user'}`;
        },
        async rows(model: string): Promise<RowEstimate> {
          usable();
          try {
            const { rows } = await client.query<Record<string, string>>(`EXPLAIN SELECT * FROM ${modelAsSubquery(model, dialect.sql)}`);
            const top = Object.values(rows[0] ?? {})[0] ?? '';
            const n = /rows=(\d+)/.exec(top)?.[1];
            if (n === undefined) throw new Error(`no row estimate in the plan: ${top}`);
            return { rows: Number(n), estimated: true };
          } catch (err) {
            throw fail('could not plan the model', err);
          }
        },
      });
    },

    // One idle connection holds next to nothing here; the cursor's rows were freed as they streamed.
    async release() {},

    close: endConnection,
  };
}

/** A PostgreSQL database. */
export function openPostgres(url: string, label: string): Promise<Source> {
  return openWire(url, label, POSTGRES_DIALECT);
}
