// Warehouse change detection: a snapshot table in the warehouse holds, per key hash, what Meta last
// acknowledged (fingerprint, hashed cells, status); each run the warehouse joins the model with it, and
// only the rows that changed (and the keys that left the model) come out. The SQL is built here once,
// from the source's SnapshotDialect, within the features every warehouse (and test server) runs.
import { createHash } from 'node:crypto';
import { snapshotTableName } from '../config/index.js';
import { BUCKETS, bucketTable, checkResult, fingerprintHashes, fingerprintText, hashing, matchChangedSql, matchCheckSql, mergeMatched } from './snapshot-match.js';
import { errorText, inKeyRange, keyRanges, modelAsSubquery, type KeyRange } from './sql.js';
import { SourceError, type Row, type SnapshotDialect, type SnapshotOps, type Source } from './types.js';

/** The snapshot table's columns, in order; the stage table adds `op`. */
export const SNAPSHOT_COLUMNS = ['pk_hash', 'fingerprint', 'cells', 'filled_mask', 'status', 'attempts', 'last_error'] as const;
export const STAGE_COLUMNS = [...SNAPSHOT_COLUMNS, 'op'] as const;
/** The journal table (where writes are cheap, see SnapshotOps.cheapWrites): the stage's columns and the write's sequence number. */
export const JOURNAL_COLUMNS = [...STAGE_COLUMNS, 'seq'] as const;
const INTEGER_COLUMNS: ReadonlySet<string> = new Set(['filled_mask', 'attempts', 'seq']);

export type SnapshotStatus = 'synced' | 'pending' | 'failed';

/** One key's write, as the stage table takes it: the cells as their JSON text. */
export type SnapshotWrite =
  | { op: 'upsert'; pk: string; fingerprint: string; cellsText: string | null; filledMask: number; status: SnapshotStatus; attempts: number; lastError: string | null }
  | { op: 'delete'; pk: string };

/** A snapshot row as read back: the shape of the engine's stored record (cells parsed on first use). */
export class SnapshotRecord {
  private parsed: Array<string | number> | null | undefined;
  readonly hasCells: boolean;
  constructor(
    readonly pk: string,
    readonly fingerprint: string,
    private readonly cellsText: string | null,
    private readonly mask: number,
    readonly status: SnapshotStatus,
    readonly attempts: number,
    readonly lastError: string | null,
  ) {
    this.hasCells = cellsText !== null;
  }
  get cells(): Array<string | number> | null {
    if (this.parsed === undefined) this.parsed = this.cellsText === null ? null : (JSON.parse(this.cellsText) as Array<string | number>);
    return this.parsed;
  }
  filledMask(): number {
    return this.mask;
  }
}

/**
 * What the change set brings out of the warehouse, in no particular order: changed keys (a model row,
 * the snapshot's record, or both), keys the model has more than once (only when asked for), and the
 * counts of what stayed in: the model's rows and the snapshot's records by status and filled cells.
 */
export type ChangeItem =
  | { kind: 'row'; pkHash: string; row?: Record<string, unknown>; fingerprint?: string; stored?: SnapshotRecord }
  | { kind: 'duplicate'; pkHash: string; count: number; stored?: SnapshotRecord }
  | { kind: 'model'; rows: number; nullKeys: number }
  | { kind: 'snapshot'; status: string; hasCells: boolean; filledMask: number; count: number };

export interface ChangeSetOptions {
  /** The model's key column and mapped columns, as the config names them. */
  primaryKey: string;
  columns: readonly string[];
  /** The encoder's signature: part of every fingerprint, so a rules or mapping change moves them all. */
  signature: string;
  /** Keys the model holds more than once come out once each, as `duplicate` (a second, costlier query). */
  duplicates?: boolean;
  chunkRows?: number;
}

/** What to grant, per warehouse, so audience-sync may keep its tables in the state schema. */
export function stateSchemaGrant(type: Source['type'], schema: string): string {
  switch (type) {
    case 'duckdb':
      return 'the DuckDB file must be writable by the user running audience-sync, and no other process may have it open during a run';
    case 'postgres':
    case 'redshift':
      return `ask an admin to run: GRANT USAGE, CREATE ON SCHEMA ${schema} TO <the source's user> (creating the schema itself needs CREATE on the database)`;
    case 'bigquery':
      return `grant the service account the BigQuery Data Editor role (roles/bigquery.dataEditor) on the dataset ${schema}, or create the dataset first and grant it there`;
    case 'snowflake':
      return `ask an admin to run: GRANT USAGE, CREATE TABLE ON SCHEMA <database>.${schema} TO ROLE <the source's role> (with USAGE on its database)`;
    case 'databricks':
      return `ask an admin to run: GRANT USE SCHEMA, CREATE TABLE, SELECT, MODIFY ON SCHEMA <catalog>.${schema} TO <the principal> (with USE CATALOG on its catalog)`;
    case 'mysql':
      return 'MySQL sources do not support warehouse change detection: use changeDetection: local';
  }
}

/**
 * A short digest of the encoder's signature (rules version, mapping, options), written into the
 * fingerprint's SQL: a change of them moves every fingerprint, and the same values give the same
 * fingerprint on every warehouse.
 */
export function signatureDigest(signature: string): string {
  return createHash('sha256').update(signature).digest('hex').slice(0, 16);
}

/**
 * The fingerprint of a model row in SQL. Where the dialect has a cheap row hash (DuckDB, PostgreSQL), two
 * 64-bit hashes of the key's and the values' text forms (see snapshot-match.ts). Elsewhere the MD5 of
 * the signature digest and every mapped column's text form, each length-prefixed (`<length>:<text>`)
 * or `n` for NULL: an unambiguous encoding (a value starts with a digit, NULL with `n`, and the length
 * says where the text ends), a third cheaper than one with separators, the same on every warehouse.
 */
export function fingerprintSql(d: SnapshotDialect, digest: string, key: string, columns: readonly string[]): string {
  if (hashing(d)) {
    const { a, b } = fingerprintHashes(d, digest, [key, ...columns]);
    return fingerprintText(d, a, b);
  }
  const encoded = columns.map((c) => {
    const text = d.valueText(d.quote(c));
    return `COALESCE(CAST(LENGTH(${text}) AS ${d.textType}) || ':' || ${text}, 'n')`;
  });
  return d.md5Hex([`'${digest}'`, ...encoded].join(' || '));
}

/**
 * The change set's statements (see ChangeItem), over the model's resolved column names, read one
 * after another: the changed keys and the duplicated keys (when asked for) in the given slice of the
 * key space, and the counts of what stayed in. The changed keys are found by a narrow join (key
 * hashes and fingerprints only: a hash join of 10M wide rows needs several times the memory); their
 * rows and records are then fetched by key, which a warehouse does cheaply when the keys are few
 * (DuckDB pushes them into the scans as a filter). They are separate statements, not one UNION ALL:
 * DuckDB never answers a streamed UNION ALL whose first part outgrows its result buffer (a 1M-row
 * model with 10,000 changed rows hung forever).
 */
export function changeSetSql(
  d: SnapshotDialect,
  model: string,
  snapshot: string,
  p: {
    primaryKey: string;
    columns: readonly string[];
    digest: string;
    duplicates: boolean;
    /** Only keys whose hash falls in this slice. */
    range?: KeyRange;
    /** The snapshot holds nothing (a first sync): every model row is new, no join is needed. */
    empty?: boolean;
  },
): { changed: string[]; counts: string } {
  const q = d.quote;
  const T = d.textType;
  const I = d.integerType;
  const pk = q(p.primaryKey);
  const from = modelAsSubquery(model, d);
  const col = (table: string) => (c: string) => `${q(table)}.${q(c)}`;
  const [m, s, c, r, g] = ['m', 's', 'c', 'r', 'g'].map(col) as [(c: string) => string, (c: string) => string, (c: string) => string, (c: string) => string, (c: string) => string];
  const modelColumns = p.columns.map((_, i) => `m${i}`);
  const keyHash = d.keySha256(pk);
  // Keys the model holds more than once, with how many rows each.
  const duplicates = `SELECT ${q('pk')}, ${q('n')} FROM (SELECT ${q('pk')}, COUNT(*) AS ${q('n')} FROM (SELECT ${keyHash} AS ${q('pk')} FROM ${from} WHERE ${pk} IS NOT NULL) AS ${q('k')} GROUP BY ${q('pk')}) AS ${q('g')} WHERE ${q('n')} > 1`;
  const notDuplicate = (key: string) => (p.duplicates ? ` AND ${key} NOT IN (SELECT ${q('pk')} FROM (${duplicates}) AS ${q('d')})` : '');
  // The raw key comes along to fetch the changed rows by: matching it costs nothing, hashing every key again would.
  const inRange = (key: string) => (p.range ? ` AND ${inKeyRange(key, p.range)}` : '');
  const fingerprinted = `SELECT ${pk} AS ${q('m_key')}, ${keyHash} AS ${q('m_pk')}, ${fingerprintSql(d, p.digest, p.primaryKey, p.columns)} AS ${q('m_fp')} FROM ${from} WHERE ${pk} IS NOT NULL${inRange(keyHash)}`;
  const snapshotSlice = p.range ? `(SELECT * FROM ${snapshot} WHERE ${q('pk_hash')} IS NOT NULL${inRange(q('pk_hash'))})` : snapshot;
  const narrowSnapshot = `SELECT ${q('pk_hash')}, ${q('fingerprint')}, ${q('status')}, CASE WHEN ${q('cells')} IS NULL THEN 0 ELSE 1 END AS ${q('has_cells')} FROM ${snapshotSlice} AS ${q('t')}`;
  // New, changed, not synced, or departed.
  const changed = `(${m('m_pk')} IS NULL OR ${s('pk_hash')} IS NULL OR ${s('status')} <> 'synced' OR ${s('has_cells')} = 0 OR ${s('fingerprint')} <> ${m('m_fp')})`;
  const changedKeys =
    `SELECT COALESCE(${m('m_pk')}, ${s('pk_hash')}) AS ${q('k')}, ${m('m_key')} AS ${q('m_key')}, ${m('m_fp')} AS ${q('m_fp')} FROM (${fingerprinted}) AS ${q('m')}` +
    ` FULL OUTER JOIN (${narrowSnapshot}) AS ${q('s')} ON ${m('m_pk')} = ${s('pk_hash')} WHERE ${changed}`;
  const rows = `SELECT ${[...p.columns.map((name, i) => `${q(name)} AS ${q(modelColumns[i]!)}`), `${pk} AS ${q('r_key')}`].join(', ')} FROM ${from} WHERE ${pk} IS NOT NULL`;
  const record = (t: (c: string) => string) => [`${t('fingerprint')} AS ${q('s_fp')}`, `${t('cells')} AS ${q('s_cells')}`, `${t('filled_mask')} AS ${q('s_mask')}`, `${t('status')} AS ${q('s_status')}`, `${t('attempts')} AS ${q('s_attempts')}`, `${t('last_error')} AS ${q('s_error')}`];
  const nulls = (names: readonly string[], type?: string) => names.map((n) => `${type ? `CAST(NULL AS ${type})` : 'NULL'} AS ${q(n)}`);
  const branches =
    p.empty && !p.duplicates
      ? [
          `SELECT ${[`${keyHash} AS ${q('pk_hash')}`, `'c' AS ${q('kind')}`, ...p.columns.map((name, i) => `${q(name)} AS ${q(modelColumns[i]!)}`), `${fingerprintSql(d, p.digest, p.primaryKey, p.columns)} AS ${q('m_fp')}`, ...nulls(['s_fp', 's_cells'], T), ...nulls(['s_mask'], I), ...nulls(['s_status'], T), ...nulls(['s_attempts'], I), ...nulls(['s_error'], T), ...nulls(['n', 'n2'], I)].join(', ')}` +
            ` FROM ${from} WHERE ${pk} IS NOT NULL${inRange(keyHash)}`,
        ]
      : [
          `SELECT ${[`${c('k')} AS ${q('pk_hash')}`, `'c' AS ${q('kind')}`, ...modelColumns.map((name) => `${r(name)} AS ${q(name)}`), `${c('m_fp')} AS ${q('m_fp')}`, ...record(s), ...nulls(['n', 'n2'], I)].join(', ')}` +
            ` FROM (${changedKeys}) AS ${q('c')}` +
            ` LEFT JOIN (${rows}) AS ${q('r')} ON ${r('r_key')} = ${c('m_key')}` +
            ` LEFT JOIN ${snapshotSlice} AS ${q('s')} ON ${s('pk_hash')} = ${c('k')}` +
            ` WHERE ${c('k')} IS NOT NULL${notDuplicate(c('k'))}`,
        ];
  if (p.duplicates) {
    branches.push(
      `SELECT ${[`${g('pk')} AS ${q('pk_hash')}`, `'d' AS ${q('kind')}`, ...nulls(modelColumns), ...nulls(['m_fp'], T), ...record(s), `${g('n')} AS ${q('n')}`, ...nulls(['n2'], I)].join(', ')}` +
        ` FROM (${duplicates}) AS ${q('g')} LEFT JOIN ${snapshot} AS ${q('s')} ON ${s('pk_hash')} = ${g('pk')} WHERE ${g('pk')} IS NOT NULL${inRange(g('pk'))}`,
    );
  }
  // What stays in the warehouse, counted: the model's rows (and null keys), the snapshot's records (a few rows).
  const counts = [
    `SELECT ${[`CAST(NULL AS ${T}) AS ${q('pk_hash')}`, `'m' AS ${q('kind')}`, ...nulls(modelColumns), ...nulls(['m_fp', 's_fp', 's_cells'], T), ...nulls(['s_mask'], I), ...nulls(['s_status'], T), ...nulls(['s_attempts'], I), ...nulls(['s_error'], T), `CAST(COUNT(*) AS ${I}) AS ${q('n')}`, `CAST(SUM(CASE WHEN ${pk} IS NULL THEN 1 ELSE 0 END) AS ${I}) AS ${q('n2')}`].join(', ')} FROM ${from}`,
    `SELECT ${[`CAST(NULL AS ${T}) AS ${q('pk_hash')}`, `'s' AS ${q('kind')}`, ...nulls(modelColumns), ...nulls(['m_fp', 's_fp', 's_cells'], T), `${q('filled_mask')} AS ${q('s_mask')}`, `${q('status')} AS ${q('s_status')}`, ...nulls(['s_attempts'], I), ...nulls(['s_error'], T), `CAST(COUNT(*) AS ${I}) AS ${q('n')}`, `${q('has_cells')} AS ${q('n2')}`].join(', ')}` +
      ` FROM (SELECT ${q('filled_mask')}, ${q('status')}, CASE WHEN ${q('cells')} IS NULL THEN 0 ELSE 1 END AS ${q('has_cells')} FROM ${snapshot}) AS ${q('g')} GROUP BY ${q('filled_mask')}, ${q('status')}, ${q('has_cells')}`,
  ];
  return { changed: branches, counts: counts.join('\nUNION ALL\n') };
}

/** The temporary table the match's join is written to (SnapshotOps.materialize). */
const MATCHED_TABLE = 'audience_sync_matched';

/** Snapshot records per slice when a change set is read in slices. */
const SLICE_RECORDS = 1_000_000;
/** Steps of the key space a slice is cut on: its hashes' first three hex digits. */
const KEY_STEPS = 4096;

/** The slice [from, to) of the key space, in steps of KEY_STEPS. */
function keySlice(from: number, to: number): KeyRange {
  const hex = (n: number) => n.toString(16).padStart(3, '0');
  return to >= KEY_STEPS ? { from: hex(from) } : { from: hex(from), to: hex(to) };
}

/** [from, to) cut into `parts` slices (fewer when it holds fewer steps). */
function cutSlice(from: number, to: number, parts: number): Array<[number, number]> {
  const n = Math.max(1, Math.min(parts, to - from));
  return Array.from({ length: n }, (_, i) => [from + Math.floor(((to - from) * i) / n), from + Math.floor(((to - from) * (i + 1)) / n)]);
}

/** The warehouse ran out of memory (DuckDB; its streaming reads report a failure without its text). */
function outOfMemory(err: unknown): boolean {
  return /out of memory|stopped with an error after 0 rows/i.test(errorText(err));
}

async function allRows(chunks: AsyncIterable<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const chunk of chunks) rows.push(...chunk);
  return rows;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function storedOf(pk: string, r: Row): SnapshotRecord | undefined {
  const status = text(r.s_status);
  if (status === null) return undefined;
  return new SnapshotRecord(pk, text(r.s_fp) ?? '', text(r.s_cells), num(r.s_mask), status as SnapshotStatus, num(r.s_attempts), text(r.s_error));
}

/** Slices of an application at most (each a transaction, and a scan of the snapshot). */
const MAX_APPLY_SLICES = 64;

/**
 * One sync's snapshot (`<stateSchema>.audience_sync_<sync>`) and its stage table, in the sync's
 * warehouse. Writes name their keys in the stage first: replaying a whole `apply` after a kill
 * anywhere gives the same table. Only one process writes a sync's snapshot at a time (the sync's lock).
 */
export class WarehouseSnapshot {
  readonly table: string;
  readonly stage: string;
  /** The journal table, used where writes are cheap (journalHere). */
  readonly journal: string;
  /** The fingerprint check's record side, kept where the dialect says so (keepsBuckets). */
  readonly buckets: string;
  private readonly d: SnapshotDialect;
  private readonly ops: SnapshotOps;

  /** @throws SourceError when the source cannot keep a snapshot (MySQL). */
  constructor(
    private readonly source: Source,
    readonly schema: string,
    readonly sync: string,
  ) {
    if (!source.snapshot) throw new SourceError(`${source.type} sources cannot keep a snapshot for warehouse change detection: use changeDetection: local`);
    this.ops = source.snapshot;
    this.d = source.snapshot.dialect;
    this.table = this.d.table(schema, snapshotTableName(sync));
    this.stage = this.d.table(schema, `${snapshotTableName(sync)}_stage`);
    this.journal = this.d.table(schema, `${snapshotTableName(sync)}_journal`);
    this.buckets = this.d.table(schema, `${snapshotTableName(sync)}_buckets`);
  }

  /** A run's record writes go to the journal table here, not through our state store (see SnapshotOps.cheapWrites). */
  get journalHere(): boolean {
    return this.ops.cheapWrites === true;
  }

  private get keepsBuckets(): boolean {
    return hashing(this.d) && this.d.keepsBuckets === true;
  }

  /** `schema.table`, unquoted, for messages. */
  get name(): string {
    return `${this.schema}.${snapshotTableName(this.sync)}`;
  }

  /** Empties the snapshot (a move into it starts over). */
  async clear(): Promise<void> {
    await this.write(async () => {
      if (this.journalHere) await this.ops.execute(`DELETE FROM ${this.journal} WHERE TRUE`);
      if (this.keepsBuckets) await this.ops.execute(bucketTable.invalidate(this.buckets));
      await this.ops.execute(`DELETE FROM ${this.table} WHERE TRUE`);
      if (this.keepsBuckets) await this.ops.execute(bucketTable.startEmpty(this.d, this.buckets, this.table));
    });
  }

  /** Creates the schema (where the user may) and both tables when missing. */
  async prepare(): Promise<void> {
    const create = this.d.createSchema(this.schema);
    let schemaError: unknown;
    // The schema may exist already (an admin made it): only a failure to create the tables is fatal.
    if (create) await this.ops.execute(create).catch((err: unknown) => void (schemaError = err));
    try {
      await this.ops.execute(this.createTable(this.table, SNAPSHOT_COLUMNS));
      await this.ops.execute(this.createTable(this.stage, STAGE_COLUMNS));
      if (this.journalHere) await this.ops.execute(this.createTable(this.journal, JOURNAL_COLUMNS));
      if (this.keepsBuckets) {
        await this.ops.execute(bucketTable.create(this.d, this.buckets));
        await this.ops.execute(bucketTable.startEmpty(this.d, this.buckets, this.table));
      }
    } catch (err) {
      // The schema is missing: what stopped its creation is what to fix.
      if (schemaError !== undefined && /not exist|not found/i.test(errorText(err))) throw this.failure(`cannot create the state schema ${this.schema} for the snapshot of sync "${this.sync}": ${errorText(schemaError)}`, schemaError);
      throw this.failure(`cannot create the snapshot tables of sync "${this.sync}" in the state schema ${this.schema}: ${errorText(err)}`, err);
    }
  }

  /**
   * Applies writes (one per key) to the snapshot; returns how many. They go to the stage table
   * first, then the stage replaces their keys' records in one statement sequence (applyStage):
   * replaying the whole call after a kill anywhere gives the same table.
   */
  async apply(writes: () => AsyncIterable<readonly SnapshotWrite[]> | Iterable<readonly SnapshotWrite[]>): Promise<number> {
    let applied = 0;
    await this.write(async () => {
      await this.ops.execute(`DELETE FROM ${this.stage} WHERE TRUE`);
      for await (const chunk of writes()) {
        if (chunk.length === 0) continue;
        await this.ops.insertRows(this.stage, STAGE_COLUMNS, chunk.map(stageRow));
        applied += chunk.length;
      }
      if (applied > 0) await this.applyStage();
    });
    return applied;
  }

  /** Appends writes (one per key) to the journal table under sequence number `seq` (journalHere only). */
  async appendJournal(writes: readonly SnapshotWrite[], seq: number): Promise<void> {
    if (writes.length === 0) return;
    await this.write(() => this.ops.insertRows(this.journal, JOURNAL_COLUMNS, writes.map((w) => [...stageRow(w), seq])));
  }

  /** How many entries the journal table holds, and the newest one's sequence number (0 when none). */
  async journalSize(): Promise<{ entries: number; lastSeq: number }> {
    const q = this.d.quote;
    for await (const chunk of this.source.stream(`SELECT COUNT(*) AS ${q('n')}, MAX(${q('seq')}) AS ${q('s')} FROM ${this.journal}`)) return { entries: num(chunk[0]?.n), lastSeq: num(chunk[0]?.s) };
    return { entries: 0, lastSeq: 0 };
  }

  /** Journal applications can run beside the appends (SnapshotOps.executeAside), on a connection of their own. */
  get appliesAside(): boolean {
    return this.journalHere && this.ops.executeAside !== undefined;
  }

  /**
   * Applies the journal table's entries up to `upToSeq` (the newest per key) to the snapshot and
   * forgets them, in one transaction: a kill leaves all of it done or none. Where the dialect bounds
   * a transaction's entries (applySliceEntries), a slice of the key space at a time: each slice's
   * records and entries go together, so a kill between them leaves the rest for the next application.
   * `aside`: on the second connection (appliesAside), while appends of later entries go on.
   * `entries`: the journal's size, where the caller has just counted it.
   */
  async applyJournal(upToSeq: number, opts: { aside?: boolean; entries?: number } = {}): Promise<void> {
    const run = opts.aside && this.ops.executeAside ? this.ops.executeAside.bind(this.ops) : (sql: string) => this.ops.execute(sql, { light: true });
    const perSlice = this.d.applySliceEntries;
    const slices = perSlice === undefined ? 1 : Math.min(MAX_APPLY_SLICES, Math.ceil((opts.entries ?? (await this.journalSize()).entries) / perSlice));
    for (const range of slices > 1 ? keyRanges(slices) : [undefined]) await this.write(() => run(this.applyStatements(upToSeq, range)));
    if (this.d.vacuum) await this.write(() => run(this.d.vacuum!(this.journal)));
  }

  /** The transaction applying the journal's entries up to `upToSeq` whose key hashes are in `range` (all when undefined). */
  private applyStatements(upToSeq: number, range?: KeyRange): string {
    const q = this.d.quote;
    const columns = SNAPSHOT_COLUMNS.map(q).join(', ');
    const upTo = [`${q('seq')} <= ${Math.floor(upToSeq)}`, ...(range === undefined ? [] : [inKeyRange(q('pk_hash'), range)])].join(' AND ');
    // The newest entry per key: the one with the key's highest sequence number (a key has one entry per number).
    const newest = `SELECT ${q('pk_hash')} AS ${q('k')}, MAX(${q('seq')}) AS ${q('n')} FROM ${this.journal} WHERE ${upTo} GROUP BY ${q('pk_hash')}`;
    const entry = (c: string) => `${q('j')}.${q(c)}`;
    const keys = `SELECT ${q('pk_hash')} FROM ${this.journal} WHERE ${upTo}`;
    // The records to replace: found first by a parallel scan where the dialect can (see keepRows), else by key in the DELETE.
    const replacedTable = this.d.table(this.schema, `${snapshotTableName(this.sync)}_replaced`);
    const found = this.d.keepRows && hashing(this.d) ? [`DROP TABLE IF EXISTS ${replacedTable}`, this.d.keepRows(replacedTable, `SELECT ${this.d.rowId} AS ${q('r')} FROM ${this.table} WHERE ${q('pk_hash')} IN (${keys})`)] : [];
    const replaced = found.length > 0 && hashing(this.d) ? this.d.rowIdIn(`SELECT ${q('r')} FROM ${replacedTable}`) : `${q('pk_hash')} IN (${keys})`;
    const rows = `SELECT ${SNAPSHOT_COLUMNS.map(entry).join(', ')} FROM ${this.journal} AS ${q('j')} JOIN (${newest}) AS ${q('m')} ON ${entry('pk_hash')} = ${q('m')}.${q('k')} AND ${entry('seq')} = ${q('m')}.${q('n')} WHERE ${entry('op')} = 'upsert'`;
    const replace =
      this.keepsBuckets && hashing(this.d)
        ? [bucketTable.apply(this.d, this.buckets, this.table, replaced, { columns, rows }), bucketTable.compact(this.d, this.buckets)]
        : [`DELETE FROM ${this.table} WHERE ${replaced}`, `INSERT INTO ${this.table} (${columns}) ${rows}`];
    return [
      'BEGIN TRANSACTION',
      // Both tables grew since the planner last looked (a first sync's snapshot from nothing to millions).
      ...(this.d.analyze ? [this.d.analyze(this.journal)] : []),
      ...found,
      ...replace,
      ...(found.length > 0 ? [`DROP TABLE ${replacedTable}`] : []),
      `DELETE FROM ${this.journal} WHERE ${upTo}`,
      ...(this.d.analyze ? [this.d.analyze(this.table)] : []),
      'COMMIT',
    ].join(';\n');
  }

  /** Stage → snapshot: every staged key replaced, deletes dropped; the stage emptied. */
  private async applyStage(): Promise<void> {
    const q = this.d.quote;
    const columns = SNAPSHOT_COLUMNS.map(q).join(', ');
    if (this.d.analyze) await this.ops.execute(this.d.analyze(this.stage));
    // These writes do not keep the bucket table: the next check sums the snapshot again.
    if (this.keepsBuckets) await this.ops.execute(bucketTable.invalidate(this.buckets));
    await this.ops.execute(`DELETE FROM ${this.table} WHERE ${q('pk_hash')} IN (SELECT ${q('pk_hash')} FROM ${this.stage})`);
    await this.ops.execute(`INSERT INTO ${this.table} (${columns}) SELECT ${columns} FROM ${this.stage} WHERE ${q('op')} = 'upsert'`);
    await this.ops.execute(`DELETE FROM ${this.stage} WHERE TRUE`);
  }

  /**
   * The change set (see ChangeItem), read in chunks. A first sync (an empty snapshot) reads the model
   * without a join. Where the warehouse runs out of memory before the first changed row (DuckDB
   * joining a change set of hundreds of thousands of rows: after a switch, a rules change, a bulk
   * update), it is read again in slices of the key space (about SLICE_RECORDS snapshot records each,
   * at least 4), and a slice that runs out of memory too is cut in four, down to a single step.
   */
  async *changes(model: string, o: ChangeSetOptions): AsyncGenerator<ChangeItem[]> {
    const described = await this.source.columns(model);
    const available = described.map((c) => c.name);
    const resolve = (name: string) => this.source.findColumn(name, available) ?? name;
    const columns = o.columns.map(resolve);
    // The record count only where slices need it: counting a 10M-record snapshot is a scan of its own.
    const held = hashing(this.d) ? ((await this.hasRecords()) ? 1 : 0) : await this.count();
    const base = { primaryKey: resolve(o.primaryKey), columns, digest: signatureDigest(o.signature), duplicates: o.duplicates ?? false, empty: held === 0 };
    const read = (sql: string) => this.source.stream(sql, o.chunkRows === undefined ? {} : { chunkRows: o.chunkRows });
    const statements = (range?: KeyRange) => changeSetSql(this.d, model, this.table, { ...base, ...(range ? { range } : {}) });
    const items = async function* (rows: AsyncIterable<Row[]>): AsyncGenerator<ChangeItem[]> {
      for await (const chunk of rows) yield chunk.map((r) => changeItem(r, o.columns));
    };
    const firstCut = Math.max(4, Math.ceil(held / SLICE_RECORDS));
    const readChanged = async function* (span?: [number, number]): AsyncGenerator<ChangeItem[]> {
      let yielded = false;
      try {
        for (const sql of statements(span && keySlice(...span)).changed) {
          for await (const chunk of items(read(sql))) {
            yielded = true;
            yield chunk;
          }
        }
        return;
      } catch (err) {
        if (yielded || !outOfMemory(err) || (span !== undefined && span[1] - span[0] < 2)) throw err;
      }
      const [from, to] = span ?? [0, KEY_STEPS];
      for (const slice of cutSlice(from, to, span ? 4 : firstCut)) yield* readChanged(slice);
    };
    if (!hashing(this.d) || base.duplicates || base.empty) {
      yield* readChanged();
      yield* items(read(statements().counts));
      return;
    }
    // Matching fingerprints (see snapshot-match.ts): the check and the counts, then the buckets that differ.
    const check = matchCheckSql(this.d, model, this.table, base);
    const whole = (sql: string) => (this.ops.queryAll ? this.ops.queryAll(sql) : allRows(read(sql)));
    const { buckets, counts } = checkResult(await whole(check.rows), await whole(this.keepsBuckets ? await this.keptBuckets() : check.records));
    if (buckets.length > 0) {
      // Most buckets differ (a bulk change): looking at every one costs less than filtering them.
      // Records not synced are read (a scan of the snapshot of their own) only when there are some.
      const only = { buckets, everyBucket: buckets.length > BUCKETS / 2 };
      let yielded = false;
      try {
        const match = matchChangedSql(this.d, model, this.table, { ...base, ...only });
        for await (const chunk of items(mergeMatched(read(await this.matchedFirst(match))))) {
          yielded = true;
          yield chunk;
        }
      } catch (err) {
        if (yielded || !outOfMemory(err)) throw err;
        // DuckDB out of memory matching a bulk change: the join by key hash, which reads in slices.
        yield* readChanged();
      }
    }
    yield counts.map((r) => changeItem(r, o.columns));
  }

  /**
   * The match's reading statement, its join written to a temporary table first where the source can
   * (SnapshotOps.materialize), or with the join inside. A failure to write it (a user without the
   * TEMPORARY privilege) leaves the join inside.
   */
  private async matchedFirst(match: { unmatched: string; changes: (j: string) => string; whole: string }): Promise<string> {
    if (!this.ops.materialize) return match.whole;
    try {
      await this.ops.materialize(MATCHED_TABLE, match.unmatched);
      return match.changes(this.d.quote(MATCHED_TABLE));
    } catch (err) {
      if (outOfMemory(err)) throw err;
      return match.whole;
    }
  }

  /** The statement reading the bucket table, summed from the snapshot first when it is not whole. */
  private async keptBuckets(): Promise<string> {
    if (!hashing(this.d)) throw new Error('unreachable: only a hashing dialect keeps buckets');
    if (!(await this.bucketsWhole())) {
      const d = this.d;
      await this.write(() => this.ops.execute(['BEGIN TRANSACTION', ...bucketTable.rebuild(d, this.buckets, this.table), 'COMMIT'].join(';\n')));
    }
    return bucketTable.read(this.d, this.buckets);
  }

  /** Whether the bucket table holds the whole snapshot. */
  private async bucketsWhole(): Promise<boolean> {
    return (await allRows(this.source.stream(bucketTable.whole(this.d, this.buckets)))).some((r) => num(r.n) > 0);
  }

  /** Whether the snapshot holds any record (a first read of one row, not a count). */
  private async hasRecords(): Promise<boolean> {
    for await (const chunk of this.source.stream(`SELECT 1 AS ${this.d.quote('one')} FROM ${this.table} LIMIT 1`)) return chunk.length > 0;
    return false;
  }

  /** How many records the snapshot holds (0 when its table is missing is not assumed: that throws). */
  async count(): Promise<number> {
    for await (const chunk of this.source.stream(`SELECT COUNT(*) AS ${this.d.quote('n')} FROM ${this.table}`)) return num(chunk[0]?.n);
    return 0;
  }

  /** Records by status: from the bucket table where it is kept and whole (a scan of a 10M-record snapshot took 2.3 s). */
  async statusCounts(): Promise<Array<{ status: string; count: number }>> {
    const q = this.d.quote;
    const counts: Array<{ status: string; count: number }> = [];
    const kept = this.keepsBuckets && (await this.bucketsWhole());
    const sql = kept
      ? bucketTable.statusCounts(this.d, this.buckets)
      : `SELECT ${q('status')} AS ${q('status')}, COUNT(*) AS ${q('n')} FROM ${this.table} GROUP BY ${q('status')}`;
    for await (const chunk of this.source.stream(sql)) {
      for (const r of chunk) counts.push({ status: text(r.status) ?? '', count: num(r.n) });
    }
    return counts;
  }

  /** Every record, in no particular order. */
  async *records(chunkRows?: number): AsyncGenerator<SnapshotRecord[]> {
    const q = this.d.quote;
    const sql = `SELECT ${SNAPSHOT_COLUMNS.map((c) => `${q(c)} AS ${q(c === 'pk_hash' ? 'k' : c)}`).join(', ')} FROM ${this.table}`;
    for await (const chunk of this.source.stream(sql, chunkRows === undefined ? {} : { chunkRows })) yield chunk.map(recordOf);
  }

  /** Records that used up their attempts: count by last error, and the first few by key hash. */
  async givenUp(maxAttempts: number, sampleSize: number): Promise<{ byReason: Array<{ reason: string | null; count: number }>; samples: SnapshotRecord[] }> {
    const q = this.d.quote;
    const where = this.givenUpFilter(maxAttempts);
    const byReason: Array<{ reason: string | null; count: number }> = [];
    for await (const chunk of this.source.stream(`SELECT ${q('last_error')} AS ${q('reason')}, COUNT(*) AS ${q('n')} FROM ${this.table} WHERE ${where} GROUP BY ${q('last_error')}`)) {
      for (const r of chunk) byReason.push({ reason: text(r.reason), count: num(r.n) });
    }
    const samples: SnapshotRecord[] = [];
    if (sampleSize > 0 && byReason.length > 0) {
      const sql = `SELECT ${SNAPSHOT_COLUMNS.map((c) => `${q(c)} AS ${q(c === 'pk_hash' ? 'k' : c)}`).join(', ')} FROM ${this.table} WHERE ${where}`;
      for await (const chunk of this.source.stream(sql, { orderByKey: 'k', keyForm: 'text', chunkRows: sampleSize })) {
        samples.push(...chunk.map(recordOf));
        if (samples.length >= sampleSize) break;
      }
    }
    return { byReason, samples: samples.slice(0, sampleSize) };
  }

  /** Given-up records made pending again with no attempts spent (the last error is kept); returns how many. */
  async requeueGivenUp(maxAttempts: number): Promise<number> {
    const { byReason } = await this.givenUp(maxAttempts, 0);
    const count = byReason.reduce((sum, r) => sum + r.count, 0);
    if (count === 0) return 0;
    const q = this.d.quote;
    const values = SNAPSHOT_COLUMNS.map((c) => (c === 'status' ? `'pending'` : c === 'attempts' ? `CAST(0 AS ${this.d.integerType})` : q(c)));
    await this.write(async () => {
      await this.ops.execute(`DELETE FROM ${this.stage} WHERE TRUE`);
      await this.ops.execute(`INSERT INTO ${this.stage} (${STAGE_COLUMNS.map(q).join(', ')}) SELECT ${[...values, `'upsert'`].join(', ')} FROM ${this.table} WHERE ${this.givenUpFilter(maxAttempts)}`);
      await this.applyStage();
    });
    return count;
  }

  /**
   * What `doctor` checks: the tables can be created, and a table of the state schema written and
   * dropped (a probe table of its own: the stage may be in use by a run).
   */
  async checkWrite(): Promise<void> {
    await this.prepare();
    const probe = this.d.table(this.schema, `audience_sync__probe_${snapshotTableName(this.sync).slice('audience_sync_'.length)}`);
    await this.write(async () => {
      await this.ops.execute(this.createTable(probe, STAGE_COLUMNS));
      await this.ops.insertRows(probe, ['pk_hash', 'op'], [['audience-sync doctor probe', 'delete']]);
      await this.ops.execute(`DELETE FROM ${probe} WHERE TRUE`);
      await this.ops.execute(`DROP TABLE IF EXISTS ${probe}`);
    });
    await this.count();
  }

  /** Drops both tables (switching the sync back to local change detection). */
  async drop(): Promise<void> {
    await this.write(async () => {
      await this.ops.execute(`DROP TABLE IF EXISTS ${this.journal}`);
      if (this.keepsBuckets) await this.ops.execute(`DROP TABLE IF EXISTS ${this.buckets}`);
      await this.ops.execute(`DROP TABLE IF EXISTS ${this.stage}`);
      await this.ops.execute(`DROP TABLE IF EXISTS ${this.table}`);
    });
  }

  private givenUpFilter(maxAttempts: number): string {
    const q = this.d.quote;
    return `${q('status')} = 'failed' AND ${q('attempts')} >= ${Math.floor(maxAttempts)}`;
  }

  private createTable(table: string, columns: readonly string[]): string {
    const typed = columns.map((c) => `${this.d.quote(c)} ${INTEGER_COLUMNS.has(c) ? this.d.integerType : this.d.textType}`);
    return `CREATE TABLE IF NOT EXISTS ${table} (${typed.join(', ')})`;
  }

  private async write(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      throw this.failure(`cannot write the snapshot of sync "${this.sync}" (${this.name}): ${errorText(err)}`, err);
    }
  }

  private failure(message: string, err: unknown): SourceError {
    const advice = err instanceof SourceError && err.fix !== undefined ? err.fix : stateSchemaGrant(this.source.type, this.schema);
    return new SourceError(/ask an admin|GRANT|grant /i.test(message) ? message : `${message}; ${advice}`, { fix: advice });
  }
}

function stageRow(w: SnapshotWrite): Array<string | number | null> {
  if (w.op === 'delete') return [w.pk, null, null, null, null, null, null, 'delete'];
  return [w.pk, w.fingerprint, w.cellsText, w.filledMask, w.status, w.attempts, w.lastError, 'upsert'];
}

function recordOf(r: Row): SnapshotRecord {
  return new SnapshotRecord(String(r.k), text(r.fingerprint) ?? '', text(r.cells), num(r.filled_mask), (text(r.status) ?? 'pending') as SnapshotStatus, num(r.attempts), text(r.last_error));
}

function changeItem(r: Row, columns: readonly string[]): ChangeItem {
  const pkHash = String(r.pk_hash ?? '');
  switch (r.kind) {
    case 'm':
      return { kind: 'model', rows: num(r.n), nullKeys: num(r.n2) };
    case 's':
      return { kind: 'snapshot', status: text(r.s_status) ?? '', hasCells: num(r.n2) === 1, filledMask: num(r.s_mask), count: num(r.n) };
    case 'd': {
      const stored = storedOf(pkHash, r);
      return { kind: 'duplicate', pkHash, count: num(r.n), ...(stored ? { stored } : {}) };
    }
    default: {
      const stored = storedOf(pkHash, r);
      const fingerprint = text(r.m_fp);
      if (fingerprint === null) return { kind: 'row', pkHash, ...(stored ? { stored } : {}) };
      const row: Record<string, unknown> = {};
      columns.forEach((c, i) => (row[c] = r[`m${i}`]));
      return { kind: 'row', pkHash, row, fingerprint, ...(stored ? { stored } : {}) };
    }
  }
}
