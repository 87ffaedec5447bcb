// One run per sync: a lock row with an expiry, so a crashed holder cannot block the sync forever.
import type { Kysely } from 'kysely';
import type { StateDb } from './schema.js';

/** Inserts the lock, or takes it over when it expired or is already ours; one atomic statement. */
export async function acquireLock(db: Kysely<StateDb>, sync: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
  const result = await db
    .insertInto('locks')
    .values({ sync, holder, acquired_at: now, expires_at: now + ttlMs })
    .onConflict((oc) =>
      oc
        .column('sync')
        .doUpdateSet((eb) => ({
          holder: eb.ref('excluded.holder'),
          acquired_at: eb.ref('excluded.acquired_at'),
          expires_at: eb.ref('excluded.expires_at'),
        }))
        .where((eb) => eb.or([eb('locks.expires_at', '<=', now), eb('locks.holder', '=', holder)])),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** Still ours if nobody took it over, even past its expiry. */
export async function refreshLock(db: Kysely<StateDb>, sync: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
  const result = await db
    .updateTable('locks')
    .set({ expires_at: now + ttlMs })
    .where('sync', '=', sync)
    .where('holder', '=', holder)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function releaseLock(db: Kysely<StateDb>, sync: string, holder: string): Promise<void> {
  await db.deleteFrom('locks').where('sync', '=', sync).where('holder', '=', holder).execute();
}

export async function lockHolder(db: Kysely<StateDb>, sync: string): Promise<string | undefined> {
  const row = await db.selectFrom('locks').select('holder').where('sync', '=', sync).executeTakeFirst();
  return row?.holder;
}

export async function forceReleaseLock(db: Kysely<StateDb>, sync: string): Promise<void> {
  await db.deleteFrom('locks').where('sync', '=', sync).execute();
}
