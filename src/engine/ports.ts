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
}

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
