import type { CoverageBaseline } from './coverage.js';
import type { Cell, MetaMatch, RecordWrite, RunSummary, StoredRecord } from './types.js';

/** The engine's view of our own state store (implemented in src/state). */
export interface EngineStore {
  /** A sync's records ordered by key hash, in chunks. */
  streamRecords(sync: string): AsyncIterable<StoredRecord[]>;
  /** Applies one delivered batch's writes in one transaction. */
  applyRecordWrites(sync: string, writes: readonly RecordWrite[]): Promise<void>;
  getSyncInfo(sync: string): Promise<{ audienceId: string | null; schemaSignature: string | null } | undefined>;
  saveSyncInfo(sync: string, info: { audienceId: string; schemaSignature: string }): Promise<void>;
  /** The model's identifier coverage at the sync's last successful run, if there was one. */
  getCoverageBaseline(sync: string): Promise<CoverageBaseline | undefined>;
  saveCoverageBaseline(sync: string, baseline: CoverageBaseline): Promise<void>;
  acquireLock(sync: string, holder: string, ttlMs: number): Promise<boolean>;
  refreshLock(sync: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLock(sync: string, holder: string): Promise<void>;
  lockHolder(sync: string): Promise<string | undefined>;
  forceReleaseLock(sync: string): Promise<void>;
  startRun(sync: string, trigger: string): Promise<number>;
  finishRun(runId: number, summary: RunSummary): Promise<void>;
  /** Recent finished runs of the sync whose upload sessions Meta's match counts were not yet read for. */
  runsAwaitingMatch(sync: string): Promise<RunAwaitingMatch[]>;
  /** Records Meta's counts on a finished run. */
  recordMatch(runId: number, match: MetaMatch): Promise<void>;
  /**
   * Called once a run holds the sync's lock, before it reads the model: brings the sync's state where
   * its change detection wants it (a switch of mode, writes a killed run left unapplied). A throw fails the run.
   */
  prepareRun?(sync: string, warn: (message: string) => void): Promise<void>;
  /** Called as a run ends, still holding the lock, whatever its outcome: writes kept aside are applied where they belong. */
  settleRun?(sync: string, warn: (message: string) => void): Promise<void>;
}

export interface RunAwaitingMatch {
  runId: number;
  audienceId: string;
  sessionIds: readonly string[];
}

/** The engine's view of a warehouse (implemented in src/sources). */
export interface EngineSource {
  /**
   * The model's rows in chunks, ordered by the SHA-256 hex of the key's text form, each row carrying
   * that hash as `__pk` (null for a null key), projected on `columns`.
   */
  streamByKeyHash(sql: string, opts: { primaryKey: string; columns: string[]; chunkRows?: number }): AsyncIterable<Array<Record<string, unknown>>>;
  /** The model is read: free what reading it took before the run spends minutes sending. */
  release?(): Promise<void>;
  /**
   * Warehouse change detection: the warehouse compares the model with its snapshot of what Meta
   * acknowledged, and only changed keys come out. When present, runs read this instead of the whole
   * model and the store's records.
   */
  readonly changes?: ChangeSetReader;
}

export interface ChangeSetReader {
  /** The change set, in no particular order (see ChangeItem). `duplicates`: keys the model holds more than once come out once each. */
  read(sql: string, opts: { primaryKey: string; columns: string[]; signature: string; duplicates: boolean }): AsyncIterable<ChangeItem[]>;
}

/**
 * One item of a change set: a key whose row changed, is new, left the model or is not synced (its
 * model row and its snapshot record, either may be missing); a key the model holds `count` times; or
 * the counts of what did not leave the warehouse: the model's rows, the snapshot's records by status,
 * with or without cells, and which cells are filled.
 */
export type ChangeItem =
  | { kind: 'row'; pkHash: string; row?: Record<string, unknown>; fingerprint?: string; stored?: StoredRecord }
  | { kind: 'duplicate'; pkHash: string; count: number; stored?: StoredRecord }
  | { kind: 'model'; rows: number; nullKeys: number }
  | { kind: 'snapshot'; status: string; hasCells: boolean; filledMask: number; count: number };

/**
 * A failed upload, in the engine's terms. `batch`: Meta refused the rows of this batch (their data);
 * the run goes on and each record spends one of its attempts. `run`: nothing in the batch is at
 * fault (token, permission, terms, ad account, audience, throttling, an outage); the run stops and
 * no record spends an attempt. Any other error thrown by a send counts as `run`.
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    /** What happened and what to do about it. */
    message: string,
    readonly scope: 'batch' | 'run',
    /** The cause may go away by itself (throttling, an outage); otherwise someone has to act first. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface UploadResultLike {
  numInvalidEntries: number;
  /** Rows of the batch (0-based) Meta skipped as invalid, as far as its samples name them. */
  invalidEntries: ReadonlyArray<{ row: number; reason: string }>;
}

/** Groups items into batches: `add` returns the completed batch when the new item starts the next one. */
export interface Batcher<T> {
  add(item: T): T[] | undefined;
  /** The partly filled batch, if any. */
  flush(): T[] | undefined;
}

export interface EngineUploadSession {
  /** The session's id at Meta (it changes when a replace has to start over). */
  readonly sessionId: string;
  /** Cuts items into batches one request can carry (rows and exact bytes), at most `maxRows` each. */
  batcher<T>(rowOf: (item: T) => readonly Cell[], maxRows?: number): Batcher<T>;
  /** Throws a DeliveryError when the batch is refused. */
  send(rows: ReadonlyArray<readonly Cell[]>, opts: { last: boolean }): Promise<UploadResultLike>;
}

/** An audience as the engine needs to know it. */
export interface AudienceRef {
  id: string;
  name?: string;
  description?: string;
  /** -1 or absent while Meta has not computed a size. */
  approximateCountLowerBound?: number;
  approximateCountUpperBound?: number;
}

/** One upload session as Meta reports it. */
export interface SessionReportLike {
  sessionId: string;
  numReceived: number;
  numMatched: number;
  numInvalidEntries: number;
  /** Meta has finished matching: the counts are final. */
  processed: boolean;
}

/** The engine's view of the Graph API (implemented over src/meta in src/app/adapters.ts). */
export interface EngineGraph {
  /** One request that proves the token, the ad account and the audience; throws when any is wrong. */
  checkAudience(adAccountId: string, audienceId: string): Promise<AudienceRef>;
  /** Every customer-list audience of the ad account. */
  listAudiences(adAccountId: string): Promise<AudienceRef[]>;
  createCustomAudience(adAccountId: string, a: { name: string; description?: string; valueBased?: boolean }): Promise<{ id: string }>;
  openUploadSession(op: 'add' | 'remove' | 'replace', audienceId: string, schema: readonly string[], opts?: { estimatedTotal?: number }): EngineUploadSession;
  /** The audience's upload sessions with Meta's counts. */
  uploadSessions(audienceId: string): Promise<SessionReportLike[]>;
}
