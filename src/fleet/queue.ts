/**
 * The queue of due runs, kept by pg-boss in the state database (schema `pgboss`). One job = one run of
 * one sync. The queue's `short` policy with the sync's name as singleton key holds at most one *queued*
 * job per sync, so ticks that pile up while a sync waits collapse into one; a job whose worker stopped
 * answering is failed by pg-boss after `jobTimeoutSeconds` and retried by another worker.
 */
import PgBoss from 'pg-boss';
import type { FleetSettings } from './settings.js';

export const RUN_QUEUE = 'audience-sync-runs';

/** How often a failed or timed-out job is tried again before it is left failed. */
const RETRY_LIMIT = 3;
const RETRY_DELAY_SECONDS = 5;

export interface RunJobData {
  readonly sync: string;
  /** What asked for the run: `schedule`, `schedule:catch-up`, ... */
  readonly trigger: string;
}

export interface RunJob extends RunJobData {
  readonly id: string;
}

/** What a finished job records in pg-boss (`output`): never PII, only outcome and ids. */
export type JobOutput = Readonly<Record<string, string | number | boolean | null>>;

export interface RunQueue {
  /** Queues a run of `sync`; false when one is already waiting (it covers this request). */
  enqueue(sync: string, trigger: string): Promise<boolean>;
  /** The oldest due job, now marked active for this worker; undefined when none is due. */
  take(): Promise<RunJob | undefined>;
  complete(job: RunJob, output: JobOutput): Promise<void>;
  /** Fails the job; pg-boss retries it (up to its retry limit) on any worker. */
  fail(job: RunJob, error: string): Promise<void>;
  /**
   * Gives a job that cannot start yet back to the queue, due in `seconds`, without using up a retry:
   * queues the same run again (unless a run of the sync is already waiting) and completes this job.
   */
  defer(job: RunJob, seconds: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RunQueueOptions {
  /** Most database connections pg-boss may open. */
  readonly maxConnections?: number;
  onError?(error: Error): void;
}

/** pg-boss finds timed-out jobs during maintenance: run it often enough that expiry is noticed promptly. */
export function maintenanceIntervalSeconds(jobTimeoutSeconds: number): number {
  return Math.max(1, Math.min(120, Math.floor(jobTimeoutSeconds / 10)));
}

/** Attempts at opening the queue when workers starting together deadlock on pg-boss's setup. */
const OPEN_ATTEMPTS = 5;

/** PostgreSQL's "deadlock detected": the transaction was chosen as the victim and is meant to be retried. */
function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return e?.code === '40P01' || (typeof e?.message === 'string' && /deadlock detected/.test(e.message));
}

/**
 * Starts pg-boss on the state database (installing its schema on first use) and makes sure the run queue
 * exists. Workers started together on a fresh database can deadlock creating the queue's tables: PostgreSQL
 * aborts one of them, which then tries again after a short random wait.
 */
export async function openRunQueue(settings: FleetSettings, options: RunQueueOptions = {}): Promise<RunQueue> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRunQueue(settings, options);
    } catch (err) {
      if (attempt >= OPEN_ATTEMPTS || !(isDeadlock(err) || isDeadlock((err as Error | undefined)?.cause))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400 * attempt));
    }
  }
}

async function startRunQueue(settings: FleetSettings, options: RunQueueOptions): Promise<RunQueue> {
  const boss = new PgBoss({
    connectionString: settings.databaseUrl,
    max: options.maxConnections ?? 3,
    application_name: 'audience-sync queue',
    // We schedule with our own cron (src/scheduler); pg-boss only keeps the queue.
    schedule: false,
    supervise: true,
    maintenanceIntervalSeconds: maintenanceIntervalSeconds(settings.jobTimeoutSeconds),
    // Frequent schedules make many small jobs: keep finished ones in the live table for an hour
    // (failed ones for a week, for inspection), then pg-boss moves them to pgboss.archive.
    archiveCompletedAfterSeconds: 3600,
    archiveFailedAfterSeconds: 7 * 24 * 3600,
  });
  // pg-boss reports lost connections and failed maintenance as events; unhandled, they would crash the process.
  boss.on('error', (error) => options.onError?.(error));
  try {
    await boss.start();
    const queue = {
      policy: 'short',
      retryLimit: RETRY_LIMIT,
      retryDelay: RETRY_DELAY_SECONDS,
      retryBackoff: true,
      expireInSeconds: settings.jobTimeoutSeconds,
    } as const;
    // createQueue keeps an existing queue as it is; updateQueue applies a changed jobTimeoutSeconds.
    await boss.createQueue(RUN_QUEUE, { name: RUN_QUEUE, ...queue });
    await boss.updateQueue(RUN_QUEUE, { name: RUN_QUEUE, ...queue });
  } catch (err) {
    await boss.stop({ graceful: false }).catch(() => undefined);
    throw new Error(`cannot open the run queue in the state database: ${(err as Error).message}; check state.url and that the database accepts connections`, {
      cause: err,
    });
  }

  return {
    async enqueue(sync, trigger) {
      const data: RunJobData = { sync, trigger };
      const id = await boss.send(RUN_QUEUE, data, { singletonKey: sync });
      return id !== null;
    },
    async defer(job, seconds) {
      const data: RunJobData = { sync: job.sync, trigger: job.trigger };
      // Queued again first, so the run is never lost in between; a waiting job of the sync already covers it.
      await boss.send(RUN_QUEUE, data, { singletonKey: job.sync, startAfter: Math.max(1, Math.ceil(seconds)) });
      await boss.complete(RUN_QUEUE, job.id, { deferred: "the sync's ad account was at its cap" });
    },
    async take() {
      const [job] = await boss.fetch<RunJobData>(RUN_QUEUE, { batchSize: 1 });
      return job ? { id: job.id, sync: job.data.sync, trigger: job.data.trigger } : undefined;
    },
    async complete(job, output) {
      await boss.complete(RUN_QUEUE, job.id, output);
    },
    async fail(job, error) {
      await boss.fail(RUN_QUEUE, job.id, { error });
    },
    stop: () => boss.stop({ graceful: false, timeout: 5000 }),
  };
}
