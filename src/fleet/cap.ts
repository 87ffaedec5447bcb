/**
 * The per-ad-account concurrency cap shared by every worker: a counting semaphore made of PostgreSQL
 * session advisory locks, one lock key per slot. A slot is held on its own connection for the length of
 * a run, so a worker that dies (even by SIGKILL) loses its connection and PostgreSQL frees its slots at
 * once: no lease to expire, no table to clean up.
 */
import { createHash, randomInt } from 'node:crypto';
import pg from 'pg';

/** The advisory-lock key of one slot of one ad account: 64 bits of a SHA-256, as PostgreSQL's bigint. */
export function capLockKey(adAccountId: string, slot: number): bigint {
  const digest = createHash('sha256').update(`audience-sync/ad-account-cap/${adAccountId}/${slot}`).digest();
  return digest.readBigInt64BE(0);
}

/** Slot numbers in a random order, so waiting workers spread over the slots instead of all probing slot 0 first. */
function shuffledSlots(count: number): number[] {
  const slots = Array.from({ length: count }, (_, i) => i);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  return slots;
}

export interface CapSlot {
  readonly adAccountId: string;
  readonly slot: number;
  /** Frees the slot; safe to call more than once. */
  release(): Promise<void>;
}

export interface AccountCap {
  /**
   * A slot of the account, waiting up to `waitMs` for one to free up; undefined when none did.
   * Waiters are served in arrival order across all processes, so a worker that just freed a slot
   * does not take it straight back while others wait.
   */
  acquire(adAccountId: string, waitMs: number): Promise<CapSlot | undefined>;
  close(): Promise<void>;
}

export interface AccountCapOptions {
  readonly databaseUrl: string;
  readonly maxConcurrent: number;
  /** Most slots this process holds or waits for at once (its concurrency); sizes the connection pool. */
  readonly maxHeld: number;
}

/** How often the first waiter in line looks for a freed slot. */
const PROBE_MS = 50;
/** PostgreSQL's lock_not_available: the wait for the line timed out. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Waiters line up on one more advisory lock per account (the turnstile): PostgreSQL queues blocked
 * lock requests in order, and only the waiter at the front probes the slots. Whoever takes a slot
 * leaves the turnstile to the next in line.
 */
export function openAccountCap(options: AccountCapOptions): AccountCap {
  // One connection per lane: it waits in line, then holds its slot on the same session.
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.maxHeld + 1, application_name: 'audience-sync cap' });
  // A dropped idle connection must not crash the worker; the next query reports the problem.
  pool.on('error', () => {});

  async function probe(client: pg.PoolClient, adAccountId: string): Promise<{ slot: number; key: string } | undefined> {
    for (const slot of shuffledSlots(options.maxConcurrent)) {
      const key = capLockKey(adAccountId, slot).toString();
      const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [key]);
      if (rows[0]?.ok) return { slot, key };
    }
    return undefined;
  }

  return {
    async acquire(adAccountId, waitMs) {
      const deadline = Date.now() + waitMs;
      const turnstile = capLockKey(adAccountId, -1).toString();
      const client = await pool.connect();
      try {
        await client.query(`set lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
        try {
          await client.query('select pg_advisory_lock($1::bigint)', [turnstile]);
        } catch (err) {
          if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
          client.release();
          return undefined;
        }
        let got = await probe(client, adAccountId);
        while (!got && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, PROBE_MS));
          got = await probe(client, adAccountId);
        }
        await client.query('select pg_advisory_unlock($1::bigint)', [turnstile]);
        if (got) return heldSlot(client, adAccountId, got.slot, got.key);
      } catch (err) {
        // A broken connection is dropped from the pool (and with it any lock it held).
        client.release(err as Error);
        throw err;
      }
      client.release();
      return undefined;
    },
    close: () => pool.end(),
  };
}
function heldSlot(client: pg.PoolClient, adAccountId: string, slot: number, key: string): CapSlot {
  let released = false;
  return {
    adAccountId,
    slot,
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query('select pg_advisory_unlock($1::bigint)', [key]);
        client.release();
      } catch (err) {
        // Destroying the connection frees the lock as well.
        client.release(err as Error);
      }
    },
  };
}
