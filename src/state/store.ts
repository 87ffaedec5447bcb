import type Database from 'better-sqlite3';
import { Migrator, type Kysely } from 'kysely';
import * as alerts from './alerts.js';
import * as journal from './journal.js';
import * as locks from './locks.js';
import * as records from './records.js';
import * as runs from './runs.js';
import { migrationProvider, type Dialect, type StateDb } from './schema.js';
import type { StateStore, SyncState, SyncStatePatch } from './types.js';

export interface StoreOptions {
  /** Clock in epoch ms (tests move it to expire locks). */
  readonly now?: () => number;
}

/** The SQLite handle under kysely, for the few reads that are too hot for its row objects. */
export interface StoreInternals {
  readonly sqlite?: Database.Database;
}

/** Brings the schema up to date; safe to run on every open and from several processes. */
export async function migrate(db: Kysely<StateDb>, dialect: Dialect): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider(dialect),
    migrationTableName: 'audience_sync_migrations',
    migrationLockTableName: 'audience_sync_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`could not migrate the state store${failed ? ` (migration ${failed})` : ''}: ${(error as Error).message}`);
  }
}

async function updateSync(db: Kysely<StateDb>, name: string, patch: SyncStatePatch, now: number): Promise<void> {
  const set: Partial<StateDb['syncs']> = { updated_at: now };
  if (patch.audienceId !== undefined) set.audience_id = patch.audienceId;
  if (patch.schemaSignature !== undefined) set.schema_signature = patch.schemaSignature;
  await db
    .insertInto('syncs')
    .values({
      name,
      audience_id: patch.audienceId ?? null,
      schema_signature: patch.schemaSignature ?? null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('name').doUpdateSet(set))
    .execute();
}

/** Wraps a migrated Kysely instance in the `StateStore` interface. */
export function createStateStore(db: Kysely<StateDb>, kind: Dialect, opts: StoreOptions = {}, internals: StoreInternals = {}): StateStore {
  const now = opts.now ?? Date.now;
  return {
    kind,

    async getSync(name) {
      const row = await db.selectFrom('syncs').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) return undefined;
      const state: SyncState = {
        name: row.name,
        audienceId: row.audience_id,
        schemaSignature: row.schema_signature,
        createdAt: new Date(Number(row.created_at)),
        updatedAt: new Date(Number(row.updated_at)),
      };
      return state;
    },
    updateSync: (name, patch) => updateSync(db, name, patch, now()),
    async resetSync(name, resetOpts = {}) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('records').where('sync', '=', name).execute();
        await trx.deleteFrom('journal').where('sync', '=', name).execute();
        // A forgotten audience leaves the row with no audience id, so the next run knows a new audience is wanted.
        const set = resetOpts.forgetAudience ? { audience_id: null, schema_signature: null } : { schema_signature: null };
        await trx.updateTable('syncs').set({ ...set, updated_at: now() }).where('name', '=', name).execute();
      });
    },

    async clearRecords(name) {
      await db.deleteFrom('records').where('sync', '=', name).execute();
    },

    streamRecords: (sync, streamOpts = {}) =>
      internals.sqlite
        ? records.streamRecordsSqlite(internals.sqlite, sync, streamOpts.chunkRows ?? 10_000)
        : records.streamRecords(db, sync, streamOpts.chunkRows ?? 10_000),
    listRecords: (sync, listOpts = {}) => records.listRecords(db, sync, listOpts.status, listOpts.limit),
    countRecords: (sync) => records.countRecords(db, sync),
    givenUp: (sync, o) => records.givenUpRecords(db, sync, o.maxAttempts, o.sampleSize ?? 5),
    requeueGivenUp: (sync, o) => records.requeueGivenUp(db, sync, o.maxAttempts, now()),
    // Straight through better-sqlite3 unless a kysely transaction is open on the connection (it would take the writes in).
    writeJournal: async (sync, batch) => (internals.sqlite && !internals.sqlite.inTransaction ? journal.writeJournalSqlite(internals.sqlite, sync, batch) : journal.writeJournal(db, sync, batch)),
    streamJournal: (sync, streamOpts = {}) =>
      internals.sqlite
        ? journal.streamJournalSqlite(internals.sqlite, sync, streamOpts.upToSeq, streamOpts.chunkRows ?? 10_000)
        : journal.streamJournal(db, sync, streamOpts.upToSeq, streamOpts.chunkRows ?? 10_000),
    journalSize: (sync) => journal.journalSize(db, sync),
    async clearJournal(sync, upToSeq) {
      await journal.clearJournal(db, sync, upToSeq);
      if (internals.sqlite) journal.compactSqlite(internals.sqlite);
    },
    async commitBatch(sync, batch) {
      const at = now();
      await db.transaction().execute(async (trx) => {
        await records.writeRecords(trx, sync, batch, at, db);
        if (batch.sync) await updateSync(trx, sync, batch.sync, at);
      });
    },

    startRun: (sync, trigger) => runs.startRun(db, sync, trigger, now()),
    updateRunCounts: (id, counts) => runs.updateRunCounts(db, id, counts),
    finishRun: (id, outcome) => runs.finishRun(db, id, outcome, now()),
    failAbandonedRuns: (sync, error) => runs.failAbandonedRuns(db, sync, error, now()),
    getRun: (id) => runs.getRun(db, id),
    listRuns: (listOpts = {}) => runs.listRuns(db, listOpts.sync, listOpts.limit ?? 20),

    acquireLock: (sync, holder, ttlMs) => locks.acquireLock(db, sync, holder, ttlMs, now()),
    refreshLock: (sync, holder, ttlMs) => locks.refreshLock(db, sync, holder, ttlMs, now()),
    releaseLock: (sync, holder) => locks.releaseLock(db, sync, holder),
    lockHolder: (sync) => locks.lockHolder(db, sync),
    forceReleaseLock: (sync) => locks.forceReleaseLock(db, sync),

    getIncident: (key) => alerts.getIncident(db, key),
    claimIncident: (key, from, to, alert) => alerts.claimIncident(db, key, from, to, alert, now()),
    finishAlert: (id, outcome) => alerts.finishAlert(db, id, outcome, now()),
    listAlerts: (listOpts = {}) => alerts.listAlerts(db, listOpts.status, listOpts.limit ?? 50),

    async getValue(key) {
      const row = await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    },
    async setValue(key, value) {
      const at = now();
      await db
        .insertInto('kv')
        .values({ key, value, updated_at: at })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at }))
        .execute();
    },
    async deleteValue(key) {
      await db.deleteFrom('kv').where('key', '=', key).execute();
    },

    close: () => db.destroy(),
  };
}
