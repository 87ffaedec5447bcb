/**
 * `serve --scheduler-only`: the service's cron scheduler (src/scheduler), but each due tick becomes a
 * job in the run queue instead of a run in this process. Workers anywhere take the jobs. Any number of
 * schedulers may run (e.g. one per availability zone): a tick that finds its sync's job still queued
 * adds nothing.
 */
import type { Config } from '../config/index.js';
import { Scheduler, type RunStarter, type SchedulerEvent, type StartedRun } from '../scheduler/index.js';
import { openStateStore } from '../state/index.js';
import { startFleetAlerts, type FleetAlertOptions } from './alerts.js';
import { openRunQueue } from './queue.js';
import { fleetSettings } from './settings.js';

export type FleetSchedulerEvent =
  | { type: 'enqueued'; sync: string; trigger: string }
  /** A job of the sync was still waiting: it covers this tick. */
  | { type: 'already_queued'; sync: string; trigger: string }
  | { type: 'enqueue_failed'; sync: string; error: string }
  | { type: 'error'; error: string };

export interface FleetSchedulerOptions {
  onEvent?(event: FleetSchedulerEvent): void;
  /** The config's alerts: the scheduler checks the schedules and the Meta token. */
  readonly alerts?: FleetAlertOptions;
}

export interface FleetScheduler {
  /** When the sync is next due; null without a schedule. */
  nextRun(sync: string): Date | null;
  stop(): Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function startFleetScheduler(config: Config, options: FleetSchedulerOptions = {}): Promise<FleetScheduler> {
  const settings = fleetSettings(config);
  const emit = options.onEvent ?? (() => undefined);
  const state = await openStateStore(settings.databaseUrl);
  let queue;
  try {
    queue = await openRunQueue(settings, { maxConnections: 2, onError: (e) => emit({ type: 'error', error: `run queue: ${e.message}` }) });
  } catch (err) {
    await state.close();
    throw err;
  }
  const runQueue = queue;

  // The scheduler starts runs through a RunStarter; here "starting" means queueing, and the run's
  // outcome lives in the run history written by whichever worker takes the job.
  const enqueuer: RunStarter = {
    // Overlap is prevented downstream: one queued job per sync, and the engine's lock on the worker side.
    isRunning: () => false,
    start(name, request): StartedRun {
      const queued = runQueue.enqueue(name, request.trigger).then(
        (added) => emit(added ? { type: 'enqueued', sync: name, trigger: request.trigger } : { type: 'already_queued', sync: name, trigger: request.trigger }),
        (err: unknown) => emit({ type: 'enqueue_failed', sync: name, error: message(err) }),
      );
      const finished = Promise.reject(new Error(`sync "${name}" runs on a worker; its outcome is in the run history`));
      finished.catch(() => undefined);
      return { runId: queued.then(() => undefined), finished };
    },
  };

  const scheduler = new Scheduler({
    syncs: config.syncs,
    runner: enqueuer,
    async lastRunStart(name) {
      const [last] = await state.listRuns({ sync: name, limit: 1 });
      return last?.startedAt ?? null;
    },
    onEvent(e: SchedulerEvent) {
      if (e.type === 'failed_to_start') emit({ type: 'enqueue_failed', sync: e.sync, error: message(e.error) });
    },
  });
  // Before the catch-up ticks: a schedule the fleet missed while no scheduler ran is reported.
  let alerts;
  try {
    alerts = await startFleetAlerts(config, { state }, { ...options.alerts, checkTokens: true });
    await alerts?.center.idle();
    await scheduler.start();
  } catch (err) {
    scheduler.stop();
    await alerts?.close();
    await Promise.allSettled([runQueue.stop(), state.close()]);
    throw err;
  }
  const fleetAlerts = alerts;

  return {
    nextRun: (sync) => scheduler.nextRun(sync),
    async stop() {
      scheduler.stop();
      await fleetAlerts?.close();
      await Promise.allSettled([runQueue.stop(), state.close()]);
    },
  };
}
