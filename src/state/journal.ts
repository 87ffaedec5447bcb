// Warehouse change detection keeps a sync's records in its warehouse; the record writes of a run wait
// here until they are applied there (see src/app/warehouse-state.ts), so a kill loses none of them.
import type Database from 'better-sqlite3';
import type { CompiledQuery, Kysely } from 'kysely';
import { filledMaskOf } from './records.js';
import type { JournalTable, StateDb } from './schema.js';
import { RECORD_STATUSES, type JournalEntry, type RecordBatch, type RecordStatus } from './types.js';

/** Rows per multi-row statement: 9 parameters each stays under SQLite's 32,766 limit. */
const ROWS_PER_STATEMENT = 1_000;

const COLUMNS = ['sync', 'pk', 'op', 'fingerprint', 'cells', 'status', 'attempts', 'last_error', 'seq'] as const;

function upsertQuery(trx: Kysely<StateDb>, rows: JournalTable[]) {
  return trx
    .insertInto('journal')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['sync', 'pk']).doUpdateSet((eb) => ({
        op: eb.ref('excluded.op'),
        fingerprint: eb.ref('excluded.fingerprint'),
        cells: eb.ref('excluded.cells'),
        status: eb.ref('excluded.status'),
        attempts: eb.ref('excluded.attempts'),
        last_error: eb.ref('excluded.last_error'),
        seq: eb.ref('excluded.seq'),
      })),
    );
}

/** The full-size upsert compiled once per store and reused with new parameters (building it costs more than running it). */
const compiledUpserts = new WeakMap<object, CompiledQuery>();

export async function writeJournal(db: Kysely<StateDb>, sync: string, batch: Pick<RecordBatch, 'upsert' | 'remove'>): Promise<void> {
  const rows: JournalTable[] = [];
  for (const r of batch.upsert ?? []) {
    if (!RECORD_STATUSES.includes(r.status)) throw new Error(`invalid record status "${String(r.status)}"`);
    rows.push({ sync, pk: r.pk, op: 'upsert', fingerprint: r.fingerprint, cells: r.cells === null ? null : JSON.stringify(r.cells), status: r.status, attempts: r.attempts, last_error: r.lastError, seq: 0 });
  }
  for (const pk of batch.remove ?? []) rows.push({ sync, pk, op: 'delete', fingerprint: null, cells: null, status: null, attempts: null, last_error: null, seq: 0 });
  if (rows.length === 0) return;
  // A key written twice in one batch: its last write wins, as it would across batches.
  const latest = [...new Map(rows.map((r) => [r.pk, r])).values()];
  await db.transaction().execute(async (trx) => {
    const last = await trx.selectFrom('journal').select((eb) => eb.fn.max('seq').as('seq')).where('sync', '=', sync).executeTakeFirst();
    const seq = Number(last?.seq ?? 0) + 1;
    for (let i = 0; i < latest.length; i += ROWS_PER_STATEMENT) {
      const rows = latest.slice(i, i + ROWS_PER_STATEMENT).map((r) => ({ ...r, seq }));
      if (rows.length < ROWS_PER_STATEMENT) {
        await upsertQuery(trx, rows).execute();
        continue;
      }
      let compiled = compiledUpserts.get(db);
      if (!compiled) {
        compiled = upsertQuery(trx, rows).compile();
        compiledUpserts.set(db, compiled);
      }
      await trx.executeQuery({ ...compiled, parameters: rows.flatMap((row) => COLUMNS.map((c) => row[c])) });
    }
  });
}

/**
 * `writeJournal` through better-sqlite3: one prepared row upsert run per entry inside a transaction
 * costs a third of kysely's multi-row statements (a warehouse sync writes every record twice: its
 * intent, then its outcome).
 */
export function writeJournalSqlite(sqlite: Database.Database, sync: string, batch: Pick<RecordBatch, 'upsert' | 'remove'>): void {
  const upsert = batch.upsert ?? [];
  const remove = batch.remove ?? [];
  if (upsert.length + remove.length === 0) return;
  for (const r of upsert) if (!RECORD_STATUSES.includes(r.status)) throw new Error(`invalid record status "${String(r.status)}"`);
  const statements = sqliteStatements(sqlite);
  sqlite.transaction(() => {
    const last = statements.lastSeq.get(sync) as number | bigint | null;
    const seq = Number(last ?? 0) + 1;
    // Later entries for a key replace earlier ones, in the batch as across batches.
    for (const r of upsert) statements.upsert.run(sync, r.pk, 'upsert', r.fingerprint, r.cells === null ? null : JSON.stringify(r.cells), r.status, r.attempts, r.lastError, seq);
    for (const pk of remove) statements.upsert.run(sync, pk, 'delete', null, null, null, null, null, seq);
  })();
}

const preparedBySqlite = new WeakMap<Database.Database, { upsert: Database.Statement; lastSeq: Database.Statement }>();
function sqliteStatements(sqlite: Database.Database) {
  let prepared = preparedBySqlite.get(sqlite);
  if (!prepared) {
    prepared = {
      upsert: sqlite.prepare(
        `INSERT INTO journal (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')}) ON CONFLICT (sync, pk) DO UPDATE SET ` +
          COLUMNS.filter((c) => c !== 'sync' && c !== 'pk').map((c) => `${c} = excluded.${c}`).join(', '),
      ),
      lastSeq: sqlite.prepare('SELECT max(seq) FROM journal WHERE sync = ?').pluck(),
    };
    preparedBySqlite.set(sqlite, prepared);
  }
  return prepared;
}

export async function* streamJournal(db: Kysely<StateDb>, sync: string, upToSeq: number | undefined, chunkRows: number): AsyncGenerator<JournalEntry[]> {
  let after: string | undefined;
  for (;;) {
    let query = db.selectFrom('journal').selectAll().where('sync', '=', sync);
    if (upToSeq !== undefined) query = query.where('seq', '<=', upToSeq);
    if (after !== undefined) query = query.where('pk', '>', after);
    const rows = await query.orderBy('pk').limit(chunkRows).execute();
    if (rows.length > 0) yield rows.map(toEntry);
    if (rows.length < chunkRows) return;
    after = rows[rows.length - 1]!.pk;
  }
}

const RAW_COLUMNS = 'pk, op, fingerprint, cells, status, attempts, last_error, seq';
type RawEntry = [string, string, string | null, string | null, string | null, number | null, string | null, number | bigint];

/** The same pages as `streamJournal`, through better-sqlite3's raw (array) mode: kysely's row objects cost more than the read. */
export async function* streamJournalSqlite(sqlite: Database.Database, sync: string, upToSeq: number | undefined, chunkRows: number): AsyncGenerator<JournalEntry[]> {
  const upTo = upToSeq ?? Number.MAX_SAFE_INTEGER;
  const first = sqlite.prepare(`SELECT ${RAW_COLUMNS} FROM journal WHERE sync = ? AND seq <= ? ORDER BY pk LIMIT ?`).raw();
  const next = sqlite.prepare(`SELECT ${RAW_COLUMNS} FROM journal WHERE sync = ? AND seq <= ? AND pk > ? ORDER BY pk LIMIT ?`).raw();
  let after: string | undefined;
  for (;;) {
    const rows = (after === undefined ? first.all(sync, upTo, chunkRows) : next.all(sync, upTo, after, chunkRows)) as RawEntry[];
    if (rows.length > 0) yield rows.map((r) => toEntry({ sync, pk: r[0], op: r[1], fingerprint: r[2], cells: r[3], status: r[4], attempts: r[5], last_error: r[6], seq: Number(r[7]) }));
    if (rows.length < chunkRows) return;
    after = rows[rows.length - 1]![0];
  }
}

export async function journalSize(db: Kysely<StateDb>, sync: string): Promise<{ entries: number; lastSeq: number }> {
  const row = await db
    .selectFrom('journal')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.max('seq').as('seq')])
    .where('sync', '=', sync)
    .executeTakeFirst();
  return { entries: Number(row?.n ?? 0), lastSeq: Number(row?.seq ?? 0) };
}

export async function clearJournal(db: Kysely<StateDb>, sync: string, upToSeq: number): Promise<void> {
  await db.deleteFrom('journal').where('sync', '=', sync).where('seq', '<=', upToSeq).execute();
}

/** Free pages above which a cleared journal gives its space back: 16 MiB of 4 KiB pages. */
const COMPACT_MIN_FREE_PAGES = 4096;

/**
 * A SQLite file never shrinks by itself: the pages a flushed journal freed would keep the state file
 * at the size of the largest journal ever held. Once most of the file is free pages, VACUUM gives them
 * back (PostgreSQL reuses freed space itself), so a warehouse sync's local state stays small.
 */
export function compactSqlite(sqlite: Database.Database): void {
  const free = Number(sqlite.pragma('freelist_count', { simple: true }));
  const pages = Number(sqlite.pragma('page_count', { simple: true }));
  if (free < COMPACT_MIN_FREE_PAGES || free * 2 < pages) return;
  sqlite.exec('VACUUM');
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
}


function toEntry(r: JournalTable): JournalEntry {
  const seq = Number(r.seq);
  if (r.op === 'delete') return { seq, op: 'delete', pk: r.pk };
  return {
    seq,
    op: 'upsert',
    pk: r.pk,
    fingerprint: r.fingerprint ?? '',
    cellsText: r.cells,
    filledMask: r.cells === null ? 0 : filledMaskOf(r.cells),
    status: (r.status ?? 'pending') as RecordStatus,
    attempts: r.attempts ?? 0,
    lastError: r.last_error,
  };
}
