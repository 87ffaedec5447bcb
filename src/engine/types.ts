import type { IdentityOptions, Mapping, MatchKey } from '../identity/index.js';
import type { ModelCoverage } from './coverage.js';

export type Cell = string | number;
export type SyncMode = 'upsert' | 'delete' | 'mirror' | 'replace';

/** Everything the engine needs to know about one sync, already resolved from config. */
export interface SyncSpec {
  name: string;
  model: string;
  primaryKey: string;
  mode: SyncMode;
  mapping: Mapping;
  identity: IdentityOptions;
  audience: { id: string } | { create: { name: string; description?: string; valueBased?: boolean } };
  maxAttempts: number;
  maxRemovalShare: number;
  /** Refuse when a mapped key's share of usable rows falls below this fraction of the last successful run's. */
  minCoverageRatio: number;
  batchRows?: number;
  /** local (default): diff against our state; warehouse: the warehouse computes the change set (EngineSource.changes). */
  changeDetection?: 'local' | 'warehouse';
}

/** What the state store keeps per (sync, primary key). The key itself is kept only as a SHA-256. */
export interface StoredRecord {
  /** SHA-256 (hex) of the primary key's text form: the state keys records by it. */
  pk: string;
  fingerprint: string;
  /** The cells that take this record out of the audience again (hashes, EXTERN_ID, MADID, value); null when none are there. */
  readonly cells: readonly Cell[] | null;
  /** `cells !== null`, without touching (and so parsing) the cells. */
  readonly hasCells: boolean;
  /** `filledMask(cells)` (0 without cells), read without parsing the cells where the store can. */
  filledMask?(): number;
  status: 'synced' | 'pending' | 'failed';
  attempts: number;
  lastError: string | null;
}

export type RecordWrite =
  | ({ op: 'upsert' } & Omit<StoredRecord, 'hasCells' | 'filledMask'>)
  | { op: 'delete'; pk: string };

/** How one primary key moved since the last committed state. */
export type ChangeKind = 'added' | 'updated' | 'retry' | 'unchanged' | 'deleted' | 'rejected' | 'failed';

export interface RunCounts {
  extracted: number;
  /** With warehouse change detection: the rows of the change set that left the warehouse (changed, new and departed keys). */
  changeSetRows?: number;
  added: number;
  updated: number;
  deleted: number;
  unchanged: number;
  retried: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  /** Rows Meta acknowledged (adds, removes or replace rows). */
  delivered: number;
  /** Rows in batches Meta refused, plus records that used up their attempts. */
  failed: number;
  removedFromAudience: number;
  numInvalidEntries: number;
  /** Per match key: rows with a usable value, among the rows encoded this run. */
  coverage: Partial<Record<MatchKey, { usable: number; dropReasons: Record<string, number> }>>;
  encoded: number;
  /** Per match key: rows with a usable value, over the whole model (set once the model was read). */
  modelCoverage?: ModelCoverage;
  /** Upload sessions of this run that brought people in (add or replace), to read Meta's match counts from later. */
  uploadSessions?: string[];
  /** Meta's counts for those sessions, recorded once Meta has processed every one of them (a later run or `serve` picks them up). */
  metaMatch?: MetaMatch;
  /** The audience's approximate size as Meta reported it when the run started (-1 or absent: not computed yet). */
  audienceSize?: { lower: number; upper: number };
  /** Set when a safeguard refused the run: what it would have done. Its own added, updated and deleted are 0, since nothing was sent. */
  planned?: PlannedChanges;
}

/** What Meta made of a run's uploads: rows received, matched to people, and found invalid. */
export interface MetaMatch {
  received: number;
  matched: number;
  invalid: number;
  /** matched ÷ received (0 when nothing was received). */
  rate: number;
  /** When the counts were picked up (ISO time). */
  at: string;
}

/** The changes a refused run had planned. */
export interface PlannedChanges {
  added: number;
  updated: number;
  deleted: number;
  retried: number;
  /** Rows it would have sent: removals, then adds (or the replace upload). */
  toRemove: number;
  toSend: number;
}

export interface ErrorSample {
  /** SHA-256 of the primary key: samples never hold a raw key or raw personal data. */
  pkHash: string;
  externId?: string;
  reason: string;
}

export type RunStatus = 'success' | 'partial' | 'failed';

/**
 * Milliseconds a run spent in each phase. They never overlap: readModel is the wait for the
 * warehouse; plan the rest of the scan (diff against the state, identity, safeguards); remove and add
 * the sends to Meta (add also a replace upload); commit every write of our own state.
 */
export interface RunTimings {
  readModelMs: number;
  planMs: number;
  removeMs: number;
  addMs: number;
  commitMs: number;
}

export interface RunSummary {
  runId?: number;
  sync: string;
  audienceId?: string;
  mode: SyncMode;
  status: RunStatus;
  startedAt: string;
  finishedAt: string;
  counts: RunCounts;
  error?: string;
  errorSamples: ErrorSample[];
  warnings: string[];
  timings: RunTimings;
}

export type EngineEvent =
  | { type: 'run_started'; runId: number }
  /** The diff is known: what the run is about to send (before the safeguards' verdict). */
  | { type: 'planned'; counts: RunCounts; toRemove: number; toSend: number }
  | { type: 'phase'; phase: 'extract' | 'safeguards' | 'remove' | 'add' | 'replace' | 'commit'; total?: number }
  | { type: 'progress'; phase: 'extract' | 'remove' | 'add' | 'replace'; done: number; total?: number }
  | { type: 'warning'; message: string };

export function emptyCounts(): RunCounts {
  return {
    extracted: 0,
    added: 0,
    updated: 0,
    deleted: 0,
    unchanged: 0,
    retried: 0,
    rejected: 0,
    rejectedByReason: {},
    delivered: 0,
    failed: 0,
    removedFromAudience: 0,
    numInvalidEntries: 0,
    coverage: {},
    encoded: 0,
  };
}

export type { Mapping };
