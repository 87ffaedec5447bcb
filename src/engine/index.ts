export { runSync, SyncBusyError, type EngineDeps, type RunOptions } from './run.js';
export { planSync, type SyncPlan } from './plan.js';
export type { AudienceRef, EngineGraph, EngineSource, EngineStore } from './ports.js';
export type { CoverageBaseline, ModelCoverage } from './coverage.js';
export { audienceMarker } from './audience.js';
export type { Cell, EngineEvent, ErrorSample, PlannedChanges, RecordWrite, RunCounts, RunStatus, RunSummary, StoredRecord, SyncMode, SyncSpec } from './types.js';
export { checkModelColumns, type ModelIssue } from './validate.js';
