import type Database from 'better-sqlite3';
import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import type { StateDb } from './schema.js';
import type { DeliveredCell, GivenUpRecords, RecordBatch, RecordCounts, RecordState, RecordStatus, StoredRecord } from './types.js';
import { RECORD_STATUSES } from './types.js';

/** Rows per multi-row statement: 8 parameters each stays under SQLite's 32,766 limit. */
const ROWS_PER_STATEMENT = 1_000;

type Row = StateDb['records'];

/**
 * A record as read back. Its cells are parsed on first use: a diff reads every record of a sync on
 * every run but needs the cells of changed ones only, and parsing them all cost more than the rest.
 */
class LazyRecord implements StoredRecord {
  private parsed: DeliveredCell[] | null | undefined;
  readonly hasCells: boolean;
  constructor(
    readonly pk: string,
    readonly fingerprint: string,
    private readonly cellsText: string | null,
    readonly status: RecordStatus,
    readonly attempts: number,
    readonly lastError: string | null,
    private readonly updatedAtMs: number,
  ) {
    this.hasCells = cellsText !== null;
  }
  get cells(): DeliveredCell[] | null {
    if (this.parsed === undefined) this.parsed = this.cellsText === null ? null : (JSON.parse(this.cellsText) as DeliveredCell[]);
    return this.parsed;
  }
  filledMask(): number {
    return this.cellsText === null ? 0 : filledMaskOf(this.cellsText);
  }
  get updatedAt(): Date {
    return new Date(this.updatedAtMs);
  }
  toJSON() {
    return { pk: this.pk, fingerprint: this.fingerprint, cells: this.cells, status: this.status, attempts: this.attempts, lastError: this.lastError, updatedAt: this.updatedAt };
  }
}

/**
 * Which cells of a stored cells text (the JSON array `toRow` writes: strings and numbers) are not
 * "", as bits, read from the text itself: the identifier-coverage count needs this for every
 * unchanged record on every run, and parsing the cells cost ten times as much.
 */
export function filledMaskOf(text: string): number {
  let mask = 0;
  let i = 1; // past '['
  for (let cell = 0; i < text.length && text.charCodeAt(i) !== 0x5d /* ] */; cell++) {
    if (text.charCodeAt(i) === 0x22 /* " */) {
      if (text.charCodeAt(i + 1) !== 0x22) mask |= 1 << cell;
      // The closing quote is the first one not escaped by an odd run of backslashes.
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end === -1) return mask; // not text toRow wrote
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c /* \ */) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end + 1;
    } else {
      mask |= 1 << cell; // a number (LOOKALIKE_VALUE)
      const comma = text.indexOf(',', i);
      i = comma === -1 ? text.length - 1 : comma;
    }
    if (text.charCodeAt(i) === 0x2c /* , */) i++;
  }
  return mask;
}

function toStored(row: Row): StoredRecord {
  return new LazyRecord(row.pk, row.fingerprint, row.cells, row.status as RecordStatus, row.attempts, row.last_error, Number(row.updated_at));
}

function toRow(sync: string, record: RecordState, now: number): Row {
  if (!RECORD_STATUSES.includes(record.status)) throw new Error(`invalid record status "${String(record.status)}"`);
  return {
    sync,
    pk: record.pk,
    fingerprint: record.fingerprint,
    cells: record.cells === null ? null : JSON.stringify(record.cells),
    status: record.status,
    attempts: record.attempts,
    last_error: record.lastError,
    updated_at: now,
  };
}

const RAW_COLUMNS = 'pk, fingerprint, cells, status, attempts, last_error, updated_at';
type RawRecord = [string, string, string | null, string, number, string | null, number | bigint];

/**
 * The same pages as `streamRecords`, read through better-sqlite3's raw (array) mode: a diff reads
 * every record of a sync on every run, and building kysely's row objects was most of its cost.
 */
export async function* streamRecordsSqlite(sqlite: Database.Database, sync: string, chunkRows: number): AsyncGenerator<StoredRecord[]> {
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`chunkRows must be a positive integer, got ${chunkRows}`);
  const first = sqlite.prepare(`SELECT ${RAW_COLUMNS} FROM records WHERE sync = ? ORDER BY pk LIMIT ?`).raw();
  const next = sqlite.prepare(`SELECT ${RAW_COLUMNS} FROM records WHERE sync = ? AND pk > ? ORDER BY pk LIMIT ?`).raw();
  let after: string | undefined;
  for (;;) {
    const rows = (after === undefined ? first.all(sync, chunkRows) : next.all(sync, after, chunkRows)) as RawRecord[];
    if (rows.length > 0) {
      yield rows.map((r) => new LazyRecord(r[0], r[1], r[2], r[3] as RecordStatus, r[4], r[5], Number(r[6])));
    }
    if (rows.length < chunkRows) return;
    after = rows[rows.length - 1]![0];
  }
}

export async function* streamRecords(db: Kysely<StateDb>, sync: string, chunkRows: number): AsyncGenerator<StoredRecord[]> {
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`chunkRows must be a positive integer, got ${chunkRows}`);
  let after: string | undefined;
  for (;;) {
    let query = db.selectFrom('records').selectAll().where('sync', '=', sync);
    if (after !== undefined) query = query.where('pk', '>', after);
    const rows = await query.orderBy('pk').limit(chunkRows).execute();
    if (rows.length > 0) yield rows.map(toStored);
    const last = rows.at(-1);
    if (rows.length < chunkRows || last === undefined) return;
    after = last.pk;
  }
}

export async function listRecords(
  db: Kysely<StateDb>,
  sync: string,
  status: RecordStatus | readonly RecordStatus[] | undefined,
  limit: number | undefined,
): Promise<StoredRecord[]> {
  let query = db.selectFrom('records').selectAll().where('sync', '=', sync);
  if (status !== undefined) query = query.where('status', 'in', typeof status === 'string' ? [status] : [...status]);
  if (limit !== undefined) query = query.limit(limit);
  return (await query.orderBy('pk').execute()).map(toStored);
}

export async function countRecords(db: Kysely<StateDb>, sync: string): Promise<RecordCounts> {
  const rows = await db
    .selectFrom('records')
    .select((eb) => ['status', eb.fn.countAll().as('n')])
    .where('sync', '=', sync)
    .groupBy('status')
    .execute();
  const counts = { synced: 0, pending: 0, failed: 0, total: 0 };
  for (const row of rows) {
    const n = Number(row.n);
    if (row.status === 'synced' || row.status === 'pending' || row.status === 'failed') counts[row.status] += n;
    counts.total += n;
  }
  return counts;
}

/**
 * Records that used up their attempts: `failed`, with at least `maxAttempts` attempts (raising
 * maxAttempts gives the others more tries, so they are not given up any more).
 */
export async function givenUpRecords(db: Kysely<StateDb>, sync: string, maxAttempts: number, sampleSize: number): Promise<GivenUpRecords> {
  const givenUp = db.selectFrom('records').where('sync', '=', sync).where('status', '=', 'failed').where('attempts', '>=', maxAttempts);
  const [reasons, samples] = await Promise.all([
    givenUp
      .select((eb) => ['last_error', eb.fn.countAll().as('n')])
      .groupBy('last_error')
      .execute(),
    givenUp.selectAll().orderBy('pk').limit(sampleSize).execute(),
  ]);
  const byReason = reasons
    .map((r) => ({ reason: r.last_error ?? 'no reason was recorded', count: Number(r.n) }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  return { count: byReason.reduce((sum, r) => sum + r.count, 0), byReason, samples: samples.map(toStored) };
}

/** Puts given-up records back in the queue: pending with no attempts spent; the next run sends them. */
export async function requeueGivenUp(db: Kysely<StateDb>, sync: string, maxAttempts: number, now: number): Promise<number> {
  const result = await db
    .updateTable('records')
    .set({ status: 'pending', attempts: 0, updated_at: now })
    .where('sync', '=', sync)
    .where('status', '=', 'failed')
    .where('attempts', '>=', maxAttempts)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

const ROW_COLUMNS = ['sync', 'pk', 'fingerprint', 'cells', 'status', 'attempts', 'last_error', 'updated_at'] as const;

function upsertQuery(trx: Transaction<StateDb>, rows: Row[]) {
  return trx
    .insertInto('records')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['sync', 'pk']).doUpdateSet((eb) => ({
        fingerprint: eb.ref('excluded.fingerprint'),
        cells: eb.ref('excluded.cells'),
        status: eb.ref('excluded.status'),
        attempts: eb.ref('excluded.attempts'),
        last_error: eb.ref('excluded.last_error'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    );
}

/** The full-size upsert compiled once per store and reused with new parameters (building it costs more than running it). */
const compiledUpserts = new WeakMap<object, CompiledQuery>();

/** Writes a batch's records inside the caller's transaction, with multi-row statements. */
export async function writeRecords(trx: Transaction<StateDb>, sync: string, batch: RecordBatch, now: number, cacheKey: object): Promise<void> {
  const upsert = batch.upsert ?? [];
  for (let i = 0; i < upsert.length; i += ROWS_PER_STATEMENT) {
    const rows = upsert.slice(i, i + ROWS_PER_STATEMENT).map((r) => toRow(sync, r, now));
    if (rows.length < ROWS_PER_STATEMENT) {
      await upsertQuery(trx, rows).execute();
      continue;
    }
    let compiled = compiledUpserts.get(cacheKey);
    if (!compiled) {
      compiled = upsertQuery(trx, rows).compile();
      compiledUpserts.set(cacheKey, compiled);
    }
    const parameters = rows.flatMap((row) => ROW_COLUMNS.map((c) => row[c]));
    await trx.executeQuery({ ...compiled, parameters });
  }
  const remove = batch.remove ?? [];
  for (let i = 0; i < remove.length; i += ROWS_PER_STATEMENT) {
    await trx
      .deleteFrom('records')
      .where('sync', '=', sync)
      .where('pk', 'in', remove.slice(i, i + ROWS_PER_STATEMENT))
      .execute();
  }
}
