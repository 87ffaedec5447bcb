export { openStateStore, parseStateUrl, StateStoreError, type StateLocation } from './open.js';
export type { StoreOptions } from './store.js';
export { compareKeys } from './order.js';
export type {
  AlertDraft,
  AlertRecord,
  AlertStatus,
  Incident,
  IncidentKey,
  IncidentState,
  DeliveredCell,
  ErrorSample,
  GivenUpRecords,
  JournalEntry,
  RecordBatch,
  RecordCounts,
  RecordState,
  RecordStatus,
  RunCounts,
  RunOutcome,
  RunRecord,
  RunStatus,
  StateStore,
  StoredRecord,
  SyncState,
  SyncStatePatch,
} from './types.js';
