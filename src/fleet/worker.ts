/**
 * A worker of the fleet: `concurrency` lanes, each of which takes a due job from the queue, takes a
 * slot of the cap of that sync's own ad account, and runs the sync through the engine. A job whose
 * account has no slot free within a second goes back to the queue (due a poll interval later) and the
 * lane takes the next one, so a busy account never holds up the syncs of another: a job is only active
 * while it runs, and no worker sits on a job it cannot start.
 */
import { randomInt } from 'node:crypto';
import { Workspace } from '../app/workspace.js';
import type { Config } from '../config/index.js';
import { SyncBusyError, type RunStatus } from '../engine/index.js';
import { startFleetAlerts, type FleetAlertOptions } from './alerts.js';
import { openAccountCap, type CapSlot } from './cap.js';
import { openRunQueue, type RunJob } from './queue.js';
import { fleetSettings } from './settings.js';

export type WorkerEvent =
  | { type: 'run_started'; sync: string; jobId: string; capSlot: number }
  | { type: 'run_finished'; sync: string; jobId: string; status: RunStatus; runId?: number; durationMs: number; delivered: number; failed: number; error?: string }
  /** The sync was already running elsewhere: that run covers this job. */
  | { type: 'run_skipped'; sync: string; jobId: string; reason: string }
  /** The sync's ad account had no free slot: the job went back to the queue. */
  | { type: 'run_deferred'; sync: string; jobId: string; adAccountId: string }
  /** The run could not start (bad model, state unreachable, ...): pg-boss retries the job. */
  | { type: 'job_failed'; sync: string; jobId: string; error: string }
  /** Trouble reaching the queue or the cap; the lane pauses and tries again. */
  | { type: 'error'; error: string };

export interface WorkerOptions {
  /** Runs this worker executes at once. */
  readonly concurrency: number;
  onEvent?(event: WorkerEvent): void;
  /** The config's alerts: after each run this worker checks the sync, and it checks the schedules. */
  readonly alerts?: Omit<FleetAlertOptions, 'tokenCheckMs'>;
}

export interface FleetWorker {
  /** Names of the syncs running in this worker now. */
  running(): string[];
  /**
   * Stops taking jobs and waits for the runs in flight. Past `timeoutMs` it gives their jobs back
   * (failed, so another worker retries them) and returns; the runs' locks pass on when this process exits.
   */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
}

/** Longest wait for a slot of the job's account before the job goes back to the queue. */
const SLOT_WAIT_MS = 1000;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function startWorker(config: Config, options: WorkerOptions): Promise<FleetWorker> {
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError(`concurrency must be a whole number ≥ 1, not ${options.concurrency}`);
  const settings = fleetSettings(config);
  const emit = options.onEvent ?? (() => undefined);
  const queue = await openRunQueue(settings, {
    maxConnections: 2,
    onError: (e) => emit({ type: 'error', error: `run queue: ${e.message}` }),
  });
  const cap = openAccountCap({ databaseUrl: settings.databaseUrl, maxConcurrent: settings.maxConcurrentPerAdAccount, maxHeld: options.concurrency });
  const alerts = await startFleetAlerts(config, { databaseUrl: settings.databaseUrl }, { ...options.alerts, checkTokens: false });
  const inFlight = new Map<string, RunJob>();

  const pollMs = settings.pollIntervalSeconds * 1000;
  let stopping = false;
  const wakers = new Set<() => void>();
  /** The poll interval ±20%, so idle lanes of many workers do not probe in lockstep; cut short by stop(). */
  const pause = () =>
    new Promise<void>((resolve) => {
      const ms = pollMs * (0.8 + randomInt(401) / 1000);
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });

  async function execute(job: RunJob, slot: CapSlot): Promise<void> {
    emit({ type: 'run_started', sync: job.sync, jobId: job.id, capSlot: slot.slot });
    inFlight.set(job.id, job);
    const started = Date.now();
    // A fresh workspace per run: warehouses are opened only while a run reads them.
    const ws = new Workspace(config);
    try {
      const summary = await ws.run(job.sync, { trigger: 'worker' });
      emit({
        type: 'run_finished',
        sync: job.sync,
        jobId: job.id,
        status: summary.status,
        ...(summary.runId !== undefined ? { runId: summary.runId } : {}),
        durationMs: Date.now() - started,
        delivered: summary.counts.delivered,
        failed: summary.counts.failed,
        // The run's own error (as stored in the run history: no personal data).
        ...(summary.error !== undefined ? { error: summary.error } : {}),
      });
      // Checked and sent in the background: a slow receiver never holds the lane.
      alerts?.center.afterRun(job.sync);
      // A failed run is in the run history; the next tick runs the sync again, so the job is done.
      await queue.complete(job, { status: summary.status, runId: summary.runId ?? null });
    } catch (err) {
      if (err instanceof SyncBusyError) {
        emit({ type: 'run_skipped', sync: job.sync, jobId: job.id, reason: err.message });
        await queue.complete(job, { skipped: 'the sync was already running' });
      } else {
        emit({ type: 'job_failed', sync: job.sync, jobId: job.id, error: message(err) });
        await queue.fail(job, message(err));
      }
    } finally {
      inFlight.delete(job.id);
      await ws.close().catch(() => undefined);
    }
  }

  /** Runs the job under its ad account's cap, or gives it back when the account has no free slot. */
  async function runCapped(job: RunJob): Promise<void> {
    const adAccountId = settings.adAccounts[job.sync];
    if (adAccountId === undefined) {
      const error = `this worker's config ${config.configPath} has no sync "${job.sync}": the scheduler and every worker sharing a state database must load the same syncs`;
      emit({ type: 'job_failed', sync: job.sync, jobId: job.id, error });
      await queue.fail(job, error);
      return;
    }
    // A short wait in line: a slot freed meanwhile is taken, and lanes probing together do not defer each other.
    const slot = await cap.acquire(adAccountId, Math.min(pollMs, SLOT_WAIT_MS));
    if (!slot) {
      await queue.defer(job, settings.pollIntervalSeconds);
      emit({ type: 'run_deferred', sync: job.sync, jobId: job.id, adAccountId });
      return;
    }
    try {
      await execute(job, slot);
    } finally {
      await slot.release();
    }
  }

  async function lane(): Promise<void> {
    while (!stopping) {
      let idle = false;
      try {
        const job = await queue.take();
        if (job) await runCapped(job);
        else idle = true;
      } catch (err) {
        emit({ type: 'error', error: message(err) });
        idle = true;
      }
      if (idle && !stopping) await pause();
    }
  }

  const lanes = Array.from({ length: options.concurrency }, () => lane());

  return {
    running: () => [...inFlight.values()].map((j) => j.sync),
    async stop({ timeoutMs = 600_000 } = {}) {
      stopping = true;
      for (const wake of [...wakers]) wake();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const late = await Promise.race([Promise.all(lanes).then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        await Promise.allSettled([...inFlight.values()].map((job) => queue.fail(job, 'the worker stopped before the run finished')));
        // The runs still hold their slots' connections, which the cap's pool would wait for: they close when the process exits.
        await Promise.allSettled([queue.stop(), alerts?.close()]);
        return;
      }
      await Promise.allSettled([queue.stop(), cap.close(), alerts?.close()]);
    },
  };
}
