export { ensureAudience, runSync, SyncBusyError, type EngineDeps, type RunOptions } from './run.js';
export { planSync, type SyncPlan } from './plan.js';
export { lowMatchSentence, matchHealth, pickUpMatches, runMatch, type MatchHealth, type RunMatch } from './match.js';
export { DeliveryError, type AudienceRef, type EngineGraph, type EngineSource, type EngineStore } from './ports.js';
export type { CoverageBaseline, ModelCoverage } from './coverage.js';
export { audienceMarker } from './audience.js';
export type { Cell, EngineEvent, ErrorSample, MetaMatch, PlannedChanges, RecordWrite, RunCounts, RunStatus, RunSummary, RunTimings, StoredRecord, SyncMode, SyncSpec } from './types.js';
export { checkModelColumns, type ModelIssue } from './validate.js';
export { readTimings, TIMING_LABELS } from './timings.js';
