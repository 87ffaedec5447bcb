/** The worker fleet: a run queue in the state PostgreSQL (pg-boss), a scheduler that fills it, workers that drain it under a per-ad-account cap. */
export { fleetSettings, FleetSetupError, type FleetSettings } from './settings.js';
export { startWorker, type FleetWorker, type WorkerEvent, type WorkerOptions } from './worker.js';
export { startFleetScheduler, type FleetScheduler, type FleetSchedulerEvent, type FleetSchedulerOptions } from './scheduler.js';
export { openRunQueue, RUN_QUEUE, type RunJob, type RunQueue } from './queue.js';
export { openAccountCap, capLockKey, type AccountCap, type CapSlot } from './cap.js';
export { startFleetAlerts, type FleetAlertOptions, type FleetAlerts } from './alerts.js';
