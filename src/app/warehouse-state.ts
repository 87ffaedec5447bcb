/**
 * Where a sync's records live, and the moves between the two places. With local change detection
 * they are rows of our state store; with warehouse change detection they are the sync's snapshot
 * table in its warehouse. The record writes of a run wait in a journal until they are applied to
 * the snapshot (at the start of a run, every FLUSH_ROWS writes, and when the run ends, whatever its
 * outcome): a bounded journal in our state store, or, where the warehouse's writes are cheap
 * (DuckDB), a journal table beside the snapshot. An entry is forgotten only once the snapshot has it,
 * so a kill at any point loses no write and applies none twice.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { SyncConfig } from '../config/index.js';
import { acquireLock, SyncBusyError } from '../engine/run.js';
import type { EngineSource, EngineStore, RecordWrite, StoredRecord } from '../engine/index.js';
import { filledMask } from '../engine/coverage.js';
import { WarehouseSnapshot, type SnapshotRecord, type SnapshotWrite } from '../sources/snapshot.js';
import type { Source } from '../sources/index.js';
import type { JournalEntry, RecordCounts, RecordState, StateStore } from '../state/index.js';
import { GIVEN_UP_SAMPLES } from './given-up.js';

/**
 * Journal entries that trigger an application to the snapshot mid-run. It bounds our local state
 * (an entry holds a key hash, a fingerprint and the hashed cells: about 650 bytes with 8 match keys,
 * so at most about 130 MB) while keeping the warehouse statements few: a 10M-row first sync applies
 * its writes 50 times, each a handful of statements over the snapshot.
 */
export const FLUSH_ROWS = 200_000;
/**
 * How many times FLUSH_ROWS a journal in the warehouse holds before it is applied: it takes no local
 * space, and each application scans the snapshot's keys once (10M of them in a 10M-row first sync).
 */
const WAREHOUSE_JOURNAL_FACTOR = 5;

/** Journal entries (or records) per chunk on their way to the warehouse. */
const CHUNK_ROWS = 10_000;

/** The kv entry saying a sync's records are in its warehouse, and in which schema. */
const stateKey = (sync: string) => `warehouse-state:${sync}`;

export interface WarehouseState {
  readonly schema: string;
}

/** Where the sync's records are now: undefined for our own state store. */
export async function recordedWarehouseState(state: StateStore, sync: string): Promise<WarehouseState | undefined> {
  const text = await state.getValue(stateKey(sync));
  return text === undefined ? undefined : (JSON.parse(text) as WarehouseState);
}

const recordWarehouseState = (state: StateStore, sync: string, s: WarehouseState) => state.setValue(stateKey(sync), JSON.stringify(s));

/** The sync's records are in its warehouse no more (a reset dropped its snapshot). */
export async function forgetWarehouseState(state: StateStore, sync: string): Promise<void> {
  await state.deleteValue(stateKey(sync));
  await state.deleteValue(summaryKey(sync));
}

/** The kv entry holding what the dashboard shows of a warehouse sync's records. */
const summaryKey = (sync: string) => `warehouse-summary:${sync}`;

/**
 * What the dashboard and the API show of a warehouse sync's records (their counts by status, the
 * records given up), as the last run or retry left them: read from the snapshot once then, not on
 * every page view, which would keep a cloud warehouse awake (and billing) while a dashboard is open.
 */
export interface SnapshotSummary {
  readonly records: RecordCounts;
  readonly givenUp: { count: number; byReason: ReadonlyArray<{ reason: string; count: number }>; samples: Array<{ pk: string; cells: RecordState['cells']; attempts: number; lastError: string | null }> };
}

export async function readSnapshotSummary(state: StateStore, sync: string): Promise<SnapshotSummary | undefined> {
  const text = await state.getValue(summaryKey(sync));
  return text === undefined ? undefined : (JSON.parse(text) as SnapshotSummary);
}

/** Reads the summary from the snapshot and keeps it (after a run, a retry). */
export async function refreshSnapshotSummary(state: StateStore, snapshot: WarehouseSnapshot, maxAttempts: number, sampleSize: number): Promise<void> {
  const records: { -readonly [K in keyof RecordCounts]: number } = { synced: 0, pending: 0, failed: 0, total: 0 };
  for (const { status, count } of await snapshot.statusCounts()) {
    if (status === 'synced' || status === 'pending' || status === 'failed') records[status] += count;
    records.total += count;
  }
  // Given-up records are failed ones: with none, no scan of the snapshot for them.
  const givenUp = records.failed === 0 ? { count: 0, byReason: [], samples: [] } : await snapshotGivenUp(snapshot).givenUp(snapshot.sync, { maxAttempts, sampleSize });
  const summary: SnapshotSummary = {
    records,
    givenUp: { count: givenUp.count, byReason: givenUp.byReason, samples: givenUp.samples.map((r) => ({ pk: r.pk, cells: r.cells, attempts: r.attempts, lastError: r.lastError })) },
  };
  await state.setValue(summaryKey(snapshot.sync), JSON.stringify(summary));
}

/** The summary's given-up records in the state store's shape (see readGivenUp). */
export function summaryGivenUp(summary: SnapshotSummary | undefined): Pick<StateStore, 'givenUp'> {
  return {
    givenUp: async () => ({
      count: summary?.givenUp.count ?? 0,
      byReason: summary?.givenUp.byReason ?? [],
      samples: (summary?.givenUp.samples ?? []).map((r) => ({ pk: r.pk, fingerprint: '', cells: r.cells, status: 'failed' as const, attempts: r.attempts, lastError: r.lastError, hasCells: r.cells !== null, filledMask: () => 0, updatedAt: new Date(0) })),
    }),
  };
}

/**
 * Runs `fn` holding the sync's lock, as a run does (a lock left by a dead process on this host is
 * taken over); throws SyncBusyError while a run holds it.
 */
export async function withSyncLock<T>(state: StateStore, sync: string, fn: () => Promise<T>): Promise<T> {
  const store = { acquireLock: state.acquireLock, lockHolder: state.lockHolder, forceReleaseLock: state.forceReleaseLock };
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  if (!(await acquireLock(store, sync, holder, 60_000))) {
    throw new SyncBusyError(`sync "${sync}" is running (lock held by ${await state.lockHolder(sync)}); try again when it has finished`);
  }
  try {
    return await fn();
  } finally {
    await state.releaseLock(sync, holder).catch(() => undefined);
  }
}

/** The snapshot's given-up records in the state store's shape (see readGivenUp). */
export function snapshotGivenUp(snapshot: WarehouseSnapshot): Pick<StateStore, 'givenUp'> {
  return {
    async givenUp(_sync, o) {
      const { byReason, samples } = await snapshot.givenUp(o.maxAttempts, o.sampleSize ?? 5);
      const reasons = byReason.map((r) => ({ reason: r.reason ?? 'no reason was recorded', count: r.count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
      return { count: reasons.reduce((n, r) => n + r.count, 0), byReason: reasons, samples: samples.map((r) => Object.assign(r, { updatedAt: new Date(0) })) };
    },
  };
}

/** Record writes as the state store's batch: upserts and keys to forget. */
export function splitWrites(writes: readonly RecordWrite[]): { upsert: RecordState[]; remove: string[] } {
  const upsert: RecordState[] = [];
  const remove: string[] = [];
  for (const w of writes) {
    if (w.op === 'delete') remove.push(w.pk);
    else upsert.push({ pk: w.pk, fingerprint: w.fingerprint, cells: w.cells, status: w.status, attempts: w.attempts, lastError: w.lastError });
  }
  return { upsert, remove };
}

function snapshotWrite(r: RecordState): SnapshotWrite {
  const cellsText = r.cells === null ? null : JSON.stringify(r.cells);
  return { op: 'upsert', pk: r.pk, fingerprint: r.fingerprint, cellsText, filledMask: r.cells === null ? 0 : filledMask(r.cells), status: r.status, attempts: r.attempts, lastError: r.lastError };
}

/** A journal entry as a record (moving the records back into our state). */
function entryRecord(e: Extract<JournalEntry, { op: 'upsert' }>): RecordState {
  return { pk: e.pk, fingerprint: e.fingerprint, cells: e.cellsText === null ? null : (JSON.parse(e.cellsText) as RecordState['cells']), status: e.status, attempts: e.attempts, lastError: e.lastError };
}

async function* mapChunks<T, U>(chunks: AsyncIterable<readonly T[]>, f: (t: T) => U): AsyncGenerator<U[]> {
  for await (const chunk of chunks) yield chunk.map(f);
}

/** Where a run's record writes wait until they are applied to the snapshot. */
export interface Journal {
  readonly snapshot: WarehouseSnapshot;
  write(writes: readonly RecordWrite[]): Promise<void>;
  /** Applies every entry to the snapshot, then forgets them; returns how many. */
  flush(): Promise<number>;
}

/** The journal in our state store: for warehouses where each statement costs a round trip (or more). */
export class StateJournal implements Journal {
  /** Entries written since the last application. */
  private pending = 0;

  constructor(
    private readonly state: StateStore,
    readonly snapshot: WarehouseSnapshot,
    private readonly flushRows = FLUSH_ROWS,
    /** Frees what the warehouse took for the writes (DuckDB: a 200k-row application took ~200 MB of native memory). */
    private readonly release: () => Promise<void> = async () => undefined,
  ) {}

  async write(writes: readonly RecordWrite[]): Promise<void> {
    if (writes.length === 0) return;
    await this.state.writeJournal(this.snapshot.sync, splitWrites(writes));
    this.pending += writes.length;
    if (this.pending >= this.flushRows) await this.flush();
  }

  /** Applies every entry to the snapshot, then forgets them (not the ones written meanwhile); returns how many. */
  async flush(): Promise<number> {
    const sync = this.snapshot.sync;
    const { entries, lastSeq } = await this.state.journalSize(sync);
    if (entries > 0) {
      // Entries go as they are kept (their cells text is not parsed).
      await this.snapshot.apply(() => this.state.streamJournal(sync, { upToSeq: lastSeq, chunkRows: CHUNK_ROWS }));
      await this.state.clearJournal(sync, lastSeq);
      await this.release().catch(() => undefined);
    }
    this.pending = 0;
    return entries;
  }
}

/**
 * Writes in the warehouse's own journal table, beside the snapshot (where writes are cheap: DuckDB).
 * Each write is appended there under a new sequence number; an application replaces the snapshot's
 * records with the newest entry per key and forgets the entries in one transaction. Nothing of the
 * records passes through our state store, and applications can be few (the journal takes no local space).
 */
export class WarehouseJournal implements Journal {
  private pending = 0;
  private seq: number | undefined;
  /** An application running beside the appends (snapshot.appliesAside), and the entries it applies. */
  private applying: { done: Promise<void>; entries: number } | undefined;

  constructor(
    readonly snapshot: WarehouseSnapshot,
    private readonly flushRows = FLUSH_ROWS * WAREHOUSE_JOURNAL_FACTOR,
    private readonly release: () => Promise<void> = async () => undefined,
  ) {}

  async write(writes: readonly RecordWrite[]): Promise<void> {
    if (writes.length === 0) return;
    this.seq = (this.seq ?? (await this.snapshot.journalSize()).lastSeq) + 1;
    // One entry per key under one sequence number: the last write of a key wins, as across writes.
    const latest = new Map<string, SnapshotWrite>();
    for (const w of writes) latest.set(w.pk, w.op === 'delete' ? { op: 'delete', pk: w.pk } : snapshotWrite(w));
    await this.snapshot.appendJournal([...latest.values()], this.seq);
    this.pending += writes.length;
    if (this.pending < this.flushRows) return;
    if (!this.snapshot.appliesAside) {
      await this.flush();
      return;
    }
    // While delivery goes on (a 10M-row PostgreSQL first sync waited 7 s for each of its last
    // applications); one at a time, so the journal holds at most two applications' entries.
    const entries = await this.settleAside();
    const done = this.snapshot.applyJournal(this.seq, { aside: true });
    // Its failure surfaces where it is awaited (the next application, or flush).
    done.catch(() => undefined);
    this.applying = { done, entries: entries + this.pending };
    this.pending = 0;
  }

  async flush(): Promise<number> {
    const aside = await this.settleAside();
    const { entries, lastSeq } = await this.snapshot.journalSize();
    if (entries > 0) {
      await this.snapshot.applyJournal(lastSeq, { entries });
      await this.release().catch(() => undefined);
    }
    this.seq = lastSeq;
    this.pending = 0;
    return entries + aside;
  }

  /** Waits for the application running aside, if any; returns the writes it applied (it throws what it threw). */
  private async settleAside(): Promise<number> {
    const applying = this.applying;
    if (!applying) return 0;
    this.applying = undefined;
    await applying.done;
    return applying.entries;
  }
}

/**
 * The engine's source and store for one run (or plan) of a sync, by where its records are: the
 * whole model against our state, or the warehouse's change set against its snapshot, with record
 * writes going through the journal. `prepareRun` makes a switch of change detection first.
 */
export async function syncAdapters(
  sync: SyncConfig,
  stateSchema: string | undefined,
  source: Source,
  state: StateStore,
  base: { source: EngineSource; store: EngineStore },
  opts: { forPlan?: boolean; flushRows?: number } = {},
): Promise<{ source: EngineSource; store: EngineStore }> {
  const recorded = await recordedWarehouseState(state, sync.name);
  const wanted = sync.changeDetection === 'warehouse' && stateSchema !== undefined ? stateSchema : undefined;
  // A plan makes no switch: it reads the records where they are now (a new sync's where its runs will keep them).
  const schema = opts.forPlan ? (recorded?.schema ?? (wanted !== undefined && (await state.countRecords(sync.name)).total === 0 ? wanted : undefined)) : wanted;
  if (schema === undefined) {
    return { source: base.source, store: { ...base.store, prepareRun: (_name, warn) => (recorded ? moveToLocal(sync, source, state, recorded, warn) : Promise.resolve()) } };
  }
  const snapshot = new WarehouseSnapshot(source, schema, sync.name);
  const release = () => source.release();
  const journal: Journal = snapshot.journalHere
    ? new WarehouseJournal(snapshot, opts.flushRows, release)
    : new StateJournal(state, snapshot, opts.flushRows, release);
  if (opts.forPlan) {
    await journal.snapshot.prepare();
    // Writes a killed run left: applied first, as the next run would, or the plan shows what Meta already holds as to send.
    if (recorded?.schema === schema) await withSyncLock(state, sync.name, () => journal.flush()).catch((e: unknown) => {
      // A run is going on: its writes are its own to apply.
      if (!(e instanceof SyncBusyError)) throw e;
    });
  }
  // Whether this run changed the snapshot: the dashboard summary is read again only then (it scans the snapshot).
  let changed = false;
  return {
    source: { ...base.source, changes: { read: (sql, o) => journal.snapshot.changes(sql, o) } },
    store: {
      ...base.store,
      async *streamRecords() {
        // The records are in the warehouse: the change set carries the ones a run needs.
      },
      applyRecordWrites: (_name, writes) => {
        if (writes.length > 0) changed = true;
        return journal.write(writes);
      },
      async prepareRun(_name, warn) {
        await journal.snapshot.prepare();
        // From a snapshot in another schema: through our state, as a switch back and forth.
        if (recorded && recorded.schema !== schema) await moveToLocal(sync, source, state, recorded, warn);
        if (recorded?.schema !== schema) {
          await moveToWarehouse(sync, journal, state, warn);
          changed = true;
        }
        // A run that crashed after moving the records may have left them here too.
        else if ((await state.countRecords(sync.name)).total > 0) await state.clearRecords(sync.name);
        // Leftovers of a killed run: the change set must be computed against everything Meta acknowledged.
        if ((await journal.flush()) > 0) changed = true;
      },
      async settleRun(_name, warn) {
        try {
          await journal.flush();
        } catch (e) {
          warn(`could not apply this run's record writes to the snapshot ${journal.snapshot.name} (they are kept, and the next run applies them first): ${e instanceof Error ? e.message : String(e)}`);
          return;
        }
        if (!changed && (await readSnapshotSummary(state, sync.name)) !== undefined) return;
        await refreshSnapshotSummary(state, journal.snapshot, sync.maxAttempts, GIVEN_UP_SAMPLES).catch((e: unknown) =>
          warn(`could not count the records of the snapshot ${journal.snapshot.name} for the dashboard: ${e instanceof Error ? e.message : String(e)}`),
        );
      },
    },
  };
}

/**
 * Local (or another schema) → warehouse: the records move into the snapshot, then leave our state.
 * Their fingerprints are local ones, which the warehouse's never equal, so the next change set holds
 * every row once; classify finds their cells equal and nothing is sent again. With no records here
 * but a snapshot there (a state store lost or replaced), the snapshot is adopted.
 */
async function moveToWarehouse(sync: SyncConfig, journal: Journal, state: StateStore, warn: (m: string) => void): Promise<void> {
  const snapshot = journal.snapshot;
  const local = (await state.countRecords(sync.name)).total;
  if (local > 0) {
    // A move cut short left part of the records there: start over.
    await snapshot.clear();
    await snapshot.apply(() => mapChunks(state.streamRecords(sync.name), (r: StoredRecord) => snapshotWrite({ pk: r.pk, fingerprint: r.fingerprint, cells: r.cells, status: r.status, attempts: r.attempts, lastError: r.lastError })));
    await recordWarehouseState(state, sync.name, { schema: snapshot.schema });
    await state.clearRecords(sync.name);
    warn(`switched to warehouse change detection: ${local.toLocaleString('en-US')} records moved to ${snapshot.name}; this run reads every row once to take up the warehouse's fingerprints (nothing is re-sent)`);
    return;
  }
  const held = await snapshot.count();
  if (held > 0) {
    const known = 'id' in sync.audience || (await state.getSync(sync.name))?.audienceId != null;
    if (!known) {
      // A new audience is about to be created: what the snapshot says Meta holds is in another one.
      await snapshot.clear();
      warn(`the snapshot ${snapshot.name} held ${held.toLocaleString('en-US')} records for an audience this state no longer knows: it was cleared, and every row is sent to the new audience`);
    } else {
      warn(`adopted the snapshot ${snapshot.name} (${held.toLocaleString('en-US')} records) although this state store had no record of it (a lost or new state store): runs continue from it`);
    }
  }
  await recordWarehouseState(state, sync.name, { schema: snapshot.schema });
}

/**
 * Warehouse → local: the snapshot's records (with the journal's entries on top) move into our state,
 * then the snapshot tables are dropped. The local fingerprints differ from the warehouse's, so the
 * next run re-encodes every row once and re-sends none whose cells are the same.
 */
async function moveToLocal(sync: SyncConfig, source: Source, state: StateStore, recorded: WarehouseState, warn: (m: string) => void): Promise<void> {
  const snapshot = new WarehouseSnapshot(source, recorded.schema, sync.name);
  if (snapshot.journalHere) {
    // Writes a killed run left in the warehouse's journal table go into the snapshot first.
    await snapshot.prepare();
    await new WarehouseJournal(snapshot).flush();
  }
  let moved = 0;
  for await (const chunk of snapshot.records(CHUNK_ROWS)) {
    await state.commitBatch(sync.name, { upsert: chunk.map(recordState) });
    moved += chunk.length;
  }
  const { lastSeq } = await state.journalSize(sync.name);
  for await (const entries of state.streamJournal(sync.name, { upToSeq: lastSeq, chunkRows: CHUNK_ROWS })) {
    await state.commitBatch(sync.name, { upsert: entries.flatMap((e) => (e.op === 'upsert' ? [entryRecord(e)] : [])), remove: entries.flatMap((e) => (e.op === 'delete' ? [e.pk] : [])) });
  }
  await state.clearJournal(sync.name, lastSeq);
  await forgetWarehouseState(state, sync.name);
  const where = snapshot.name;
  try {
    await snapshot.drop();
    warn(`switched to local change detection: ${moved.toLocaleString('en-US')} records moved from ${where} (dropped) into the state store; this run reads every row once to take up local fingerprints (nothing is re-sent)`);
  } catch (e) {
    warn(`switched to local change detection: ${moved.toLocaleString('en-US')} records moved from ${where} into the state store, but the table could not be dropped (${e instanceof Error ? e.message : String(e)}): drop it and its _stage table yourself`);
  }
}

function recordState(r: SnapshotRecord): RecordState {
  return { pk: r.pk, fingerprint: r.fingerprint, cells: r.cells, status: r.status, attempts: r.attempts, lastError: r.lastError };
}
