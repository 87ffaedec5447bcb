import type { Kysely, Selectable } from 'kysely';
import { redactEmailAddresses } from '../sources/redact.js';
import type { StateDb } from './schema.js';
import type { ErrorSample, RunCounts, RunOutcome, RunRecord, RunStatus } from './types.js';

type Row = Selectable<StateDb['runs']>;

function toRun(row: Row): RunRecord {
  return {
    id: Number(row.id),
    sync: row.sync,
    trigger: row.trigger,
    status: row.status as RunStatus,
    startedAt: new Date(Number(row.started_at)),
    finishedAt: row.finished_at === null ? null : new Date(Number(row.finished_at)),
    counts: JSON.parse(row.counts) as RunCounts,
    error: row.error,
    errorSamples: JSON.parse(row.error_samples) as ErrorSample[],
  };
}

export async function startRun(db: Kysely<StateDb>, sync: string, trigger: string, now: number): Promise<number> {
  const row = await db
    .insertInto('runs')
    .values({ sync, trigger, status: 'running', started_at: now, finished_at: null, counts: '{}', error: null, error_samples: '[]' })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

export async function updateRunCounts(db: Kysely<StateDb>, id: number, counts: RunCounts): Promise<void> {
  await db.updateTable('runs').set({ counts: JSON.stringify(counts) }).where('id', '=', id).execute();
}

export async function finishRun(db: Kysely<StateDb>, id: number, outcome: RunOutcome, now: number): Promise<void> {
  const result = await db
    .updateTable('runs')
    .set({
      status: outcome.status,
      finished_at: now,
      counts: JSON.stringify(outcome.counts),
      // Sources redact their own errors; this catches an address any other error quotes.
      error: outcome.error == null ? null : redactEmailAddresses(outcome.error),
      error_samples: JSON.stringify(outcome.errorSamples ?? []),
    })
    .where('id', '=', id)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw new Error(`run ${id} does not exist in the state store`);
}

export async function failAbandonedRuns(db: Kysely<StateDb>, sync: string, error: string, now: number): Promise<number> {
  const result = await db
    .updateTable('runs')
    .set({ status: 'failed', finished_at: now, error })
    .where('sync', '=', sync)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function getRun(db: Kysely<StateDb>, id: number): Promise<RunRecord | undefined> {
  const row = await db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRun(row) : undefined;
}

export async function listRuns(db: Kysely<StateDb>, sync: string | undefined, limit: number): Promise<RunRecord[]> {
  let query = db.selectFrom('runs').selectAll();
  if (sync !== undefined) query = query.where('sync', '=', sync);
  return (await query.orderBy('id', 'desc').limit(limit).execute()).map(toRun);
}
