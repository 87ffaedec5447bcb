/** Scheduled and on-demand sync runs for the always-on service. */
export { nextTick, previousTick, missedTick } from './schedule.js';
export { SyncRunner, type RunRequest, type StartedRun, type SyncRunnerDeps } from './runner.js';
export { Scheduler, systemClock, type RunStarter, type SchedulerClock, type SchedulerEvent, type SchedulerOptions } from './scheduler.js';
