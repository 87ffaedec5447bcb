// Alert incidents and the alerts they called for. An incident changes state through one guarded
// statement (an insert that does nothing on conflict, or an update conditioned on the old state), so
// when several workers sharing the state see the same failed run, exactly one of them sends the alert.
import type { Kysely, Selectable } from 'kysely';
import type { StateDb } from './schema.js';
import type { AlertDraft, AlertRecord, AlertStatus, Incident, IncidentKey, IncidentState } from './types.js';

type Db = Kysely<StateDb>;

export async function getIncident(db: Db, key: IncidentKey): Promise<Incident | undefined> {
  const row = await db
    .selectFrom('alert_incidents')
    .selectAll()
    .where('destination', '=', key.destination)
    .where('subject', '=', key.subject)
    .where('condition', '=', key.condition)
    .executeTakeFirst();
  return row && { destination: row.destination, subject: row.subject, condition: row.condition, state: row.state as IncidentState, since: new Date(Number(row.since)), runId: row.run_id };
}

export async function claimIncident(
  db: Db,
  key: IncidentKey,
  from: IncidentState | undefined,
  to: { state: IncidentState; runId?: number | null },
  alert: AlertDraft | undefined,
  now: number,
): Promise<{ claimed: boolean; alertId?: number }> {
  const runId = to.runId ?? null;
  return db.transaction().execute(async (trx) => {
    let claimed: boolean;
    if (from === undefined) {
      const result = await trx
        .insertInto('alert_incidents')
        .values({ ...key, state: to.state, since: now, run_id: runId, updated_at: now })
        .onConflict((oc) => oc.columns(['destination', 'subject', 'condition']).doNothing())
        .executeTakeFirst();
      claimed = Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
    } else {
      const result = await trx
        .updateTable('alert_incidents')
        .set({ state: to.state, since: now, run_id: runId, updated_at: now })
        .where('destination', '=', key.destination)
        .where('subject', '=', key.subject)
        .where('condition', '=', key.condition)
        .where('state', '=', from)
        // A move made from an older run than the last one is stale (another process saw a newer run).
        .$if(runId !== null, (q) => q.where((eb) => eb.or([eb('run_id', 'is', null), eb('run_id', '<=', runId)])))
        .executeTakeFirst();
      claimed = result.numUpdatedRows > 0n;
    }
    if (!claimed || !alert) return { claimed };
    const row = await trx
      .insertInto('alert_deliveries')
      .values({ ...key, kind: alert.kind, title: alert.title, run_id: alert.runId, created_at: now, status: 'pending', attempts: 0, error: null, finished_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { claimed, alertId: Number(row.id) };
  });
}

export async function finishAlert(db: Db, id: number, outcome: { status: 'delivered' | 'failed'; attempts: number; error?: string | null }, now: number): Promise<void> {
  await db
    .updateTable('alert_deliveries')
    .set({ status: outcome.status, attempts: outcome.attempts, error: outcome.error ?? null, finished_at: now })
    .where('id', '=', id)
    .execute();
}

function toAlert(row: Selectable<StateDb['alert_deliveries']>): AlertRecord {
  return {
    id: Number(row.id),
    destination: row.destination,
    subject: row.subject,
    condition: row.condition,
    kind: row.kind as AlertRecord['kind'],
    title: row.title,
    runId: row.run_id,
    createdAt: new Date(Number(row.created_at)),
    status: row.status as AlertStatus,
    attempts: row.attempts,
    error: row.error,
    finishedAt: row.finished_at === null ? null : new Date(Number(row.finished_at)),
  };
}

export async function listAlerts(db: Db, status: AlertStatus | readonly AlertStatus[] | undefined, limit: number): Promise<AlertRecord[]> {
  let query = db.selectFrom('alert_deliveries').selectAll();
  if (status !== undefined) query = query.where('status', 'in', typeof status === 'string' ? [status] : [...status]);
  return (await query.orderBy('id', 'desc').limit(limit).execute()).map(toAlert);
}
