/** Where a record stands with Meta. */
export type RecordStatus = 'synced' | 'pending' | 'failed';
export const RECORD_STATUSES = ['synced', 'pending', 'failed'] as const satisfies readonly RecordStatus[];

/** A cell as delivered to Meta: a SHA-256 hex digest, EXTERN_ID, MADID or LOOKALIKE_VALUE. Never raw PII. */
export type DeliveredCell = string | number;

/** What the engine writes for one primary key of one sync. */
export interface RecordState {
  readonly pk: string;
  /** Hash of the mapped, normalized cells of the model row. */
  readonly fingerprint: string;
  /** Cells last delivered to Meta (enough to remove the user later); null when never delivered. */
  readonly cells: readonly DeliveredCell[] | null;
  readonly status: RecordStatus;
  readonly attempts: number;
  readonly lastError: string | null;
}

export interface StoredRecord extends RecordState {
  readonly updatedAt: Date;
  /** Whether `cells` is non-null, known without parsing them. */
  readonly hasCells: boolean;
  /** Bit i set when cell i holds a value (is not ""), known without parsing the cells; 0 without cells. */
  filledMask(): number;
}

export interface RecordCounts {
  readonly synced: number;
  readonly pending: number;
  readonly failed: number;
  readonly total: number;
}

/** Records that used up their attempts: how many, why, and the first few by key hash. */
export interface GivenUpRecords {
  readonly count: number;
  /** Counts by the last error, most frequent first. */
  readonly byReason: ReadonlyArray<{ readonly reason: string; readonly count: number }>;
  readonly samples: readonly StoredRecord[];
}

/**
 * A record write waiting in the journal (warehouse change detection), the newest per key; its cells
 * as the JSON text they are kept in (they go to the warehouse as text), with `filledMask` read from it.
 */
export type JournalEntry =
  | { readonly seq: number; readonly op: 'delete'; readonly pk: string }
  | {
      readonly seq: number;
      readonly op: 'upsert';
      readonly pk: string;
      readonly fingerprint: string;
      readonly cellsText: string | null;
      readonly filledMask: number;
      readonly status: RecordStatus;
      readonly attempts: number;
      readonly lastError: string | null;
    };

export interface SyncState {
  readonly name: string;
  /** Audience the sync delivers to (recorded when `audience: { create }` created it). */
  readonly audienceId: string | null;
  /** The match-key schema last delivered, to detect a mapping change on a live audience. */
  readonly schemaSignature: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Fields of a sync's state to change; omitted fields are kept. */
export interface SyncStatePatch {
  readonly audienceId?: string | null;
  readonly schemaSignature?: string | null;
}

/** One delivered batch: written in one transaction. */
export interface RecordBatch {
  /** Records to insert or overwrite (every field is written). */
  readonly upsert?: readonly RecordState[];
  /** Primary keys to forget (e.g. removed from the audience). */
  readonly remove?: readonly string[];
  /** Sync-level state to change in the same transaction. */
  readonly sync?: SyncStatePatch;
}

export type RunStatus = 'running' | 'success' | 'partial' | 'failed';

/** A record that could not be delivered, for the run report. Identifiers are hashed only. */
export interface ErrorSample {
  readonly pk: string;
  readonly reason: string;
  readonly identifiers?: Readonly<Record<string, string>>;
}

/** Counters of a run (extracted, added, rejected by reason, ...): any JSON-serializable object. */
export type RunCounts = Readonly<Record<string, unknown>>;

export interface RunRecord {
  readonly id: number;
  readonly sync: string;
  /** What started the run, e.g. `cli`, `schedule`, `api`. */
  readonly trigger: string;
  readonly status: RunStatus;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly counts: RunCounts;
  readonly error: string | null;
  readonly errorSamples: readonly ErrorSample[];
}

export interface RunOutcome {
  readonly status: Exclude<RunStatus, 'running'>;
  readonly counts: RunCounts;
  readonly error?: string | null;
  readonly errorSamples?: readonly ErrorSample[];
}

/** Whether an alert incident is going on (`active`) or over (`ok`). */
export type IncidentState = 'active' | 'ok';

/** What an incident is about: one condition of one subject, as seen by one alert destination. */
export interface IncidentKey {
  readonly destination: string;
  /** The sync's name, or `connection:<name>` for a token's expiry. */
  readonly subject: string;
  readonly condition: string;
}

export interface Incident extends IncidentKey {
  readonly state: IncidentState;
  /** When it entered its state. */
  readonly since: Date;
  /** The run that moved it there, if a run did. */
  readonly runId: number | null;
}

/** An alert an incident's change calls for: `firing` when it starts, `resolved` when it is over. */
export interface AlertDraft {
  readonly kind: 'firing' | 'resolved';
  /** One line saying what happened (no personal data, no secrets). */
  readonly title: string;
  readonly runId: number | null;
}

export type AlertStatus = 'pending' | 'delivered' | 'failed';

export interface AlertRecord extends IncidentKey, AlertDraft {
  readonly id: number;
  readonly createdAt: Date;
  /** `pending` while it is being sent (or when the process sending it stopped). */
  readonly status: AlertStatus;
  readonly attempts: number;
  /** Why it could not be delivered (never the destination's URL). */
  readonly error: string | null;
  readonly finishedAt: Date | null;
}

/**
 * audience-sync's own state: per-sync record state, run history, run locks and a small key/value store.
 * Every method is atomic; a `RecordBatch` is committed in a single transaction.
 */
export interface StateStore {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';

  getSync(name: string): Promise<SyncState | undefined>;
  /** Creates the sync's row if needed and applies the patch. */
  updateSync(name: string, patch: SyncStatePatch): Promise<void>;
  /**
   * Forgets a sync's records and schema signature (its runs stay). The audience id is kept unless
   * `forgetAudience` is set, so an audience created by a previous run is not created twice; a
   * forgotten one leaves the sync with audienceId null, which asks the next run for a new audience.
   */
  resetSync(name: string, opts?: { forgetAudience?: boolean }): Promise<void>;
  /** Forgets a sync's records only (its audience, schema signature, runs and journal stay): they moved to the warehouse. */
  clearRecords(name: string): Promise<void>;

  /**
   * A sync's records ordered by pk in UTF-8 byte order (see `compareKeys`), in chunks, read page by
   * page (keyset pagination) so batches can be committed while the stream is open. A page is never
   * re-read, and the stream ends at the first short page.
   */
  streamRecords(sync: string, opts?: { chunkRows?: number }): AsyncIterable<StoredRecord[]>;
  /** Records of a sync with the given status(es), ordered by pk. */
  listRecords(sync: string, opts?: { status?: RecordStatus | readonly RecordStatus[]; limit?: number }): Promise<StoredRecord[]>;
  countRecords(sync: string): Promise<RecordCounts>;
  commitBatch(sync: string, batch: RecordBatch): Promise<void>;
  /** Records given up: `failed` with at least `maxAttempts` attempts; `sampleSize` (default 5) of them in key-hash order. */
  givenUp(sync: string, opts: { maxAttempts: number; sampleSize?: number }): Promise<GivenUpRecords>;
  /** Makes the given-up records pending again with no attempts spent, so the next run retries them; returns how many. */
  requeueGivenUp(sync: string, opts: { maxAttempts: number }): Promise<number>;

  /**
   * Warehouse change detection's journal: a batch of record writes kept until they are applied to the
   * sync's snapshot in its warehouse; a key's later write replaces its earlier one. One transaction.
   */
  writeJournal(sync: string, batch: Pick<RecordBatch, 'upsert' | 'remove'>): Promise<void>;
  /** Journal entries up to `upToSeq` (all by default), by key, read page by page. */
  streamJournal(sync: string, opts?: { upToSeq?: number; chunkRows?: number }): AsyncIterable<JournalEntry[]>;
  /** How many entries the journal holds for the sync, and the newest one's sequence number (0 when none). */
  journalSize(sync: string): Promise<{ entries: number; lastSeq: number }>;
  /** Forgets the sync's entries up to `upToSeq`: they were applied to the snapshot. */
  clearJournal(sync: string, upToSeq: number): Promise<void>;

  startRun(sync: string, trigger: string): Promise<number>;
  /** Stores counts while a run is in progress (visible to `runs` even if the process dies). */
  updateRunCounts(id: number, counts: RunCounts): Promise<void>;
  finishRun(id: number, outcome: RunOutcome): Promise<void>;
  /** Marks a sync's runs still `running` (left by a crashed process) as failed; returns how many. */
  failAbandonedRuns(sync: string, error: string): Promise<number>;
  getRun(id: number): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(opts?: { sync?: string; limit?: number }): Promise<RunRecord[]>;

  /** Takes the sync's lock unless another holder has a live one; an expired lock is taken over. */
  acquireLock(sync: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Extends a lock we hold; false when it was lost (expired and taken over). */
  refreshLock(sync: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLock(sync: string, holder: string): Promise<void>;
  /** Who holds the sync's lock (live or expired), if anyone. */
  lockHolder(sync: string): Promise<string | undefined>;
  /** Drops the lock whoever holds it: only for a holder known to be dead. */
  forceReleaseLock(sync: string): Promise<void>;

  /** An alert incident, if one was ever recorded. */
  getIncident(key: IncidentKey): Promise<Incident | undefined>;
  /**
   * Moves an incident from `from` (undefined: not recorded yet) to `to` only if it is still in
   * `from`, in one atomic statement, so of several processes seeing the same change exactly one
   * claims it; a move with a run id older than the one that moved it last is refused as stale.
   * The claimant's alert, if any, is recorded as pending in the same transaction.
   */
  claimIncident(key: IncidentKey, from: IncidentState | undefined, to: { state: IncidentState; runId?: number | null }, alert?: AlertDraft): Promise<{ claimed: boolean; alertId?: number }>;
  /** Records how sending an alert ended. */
  finishAlert(id: number, outcome: { status: 'delivered' | 'failed'; attempts: number; error?: string | null }): Promise<void>;
  /** Alerts, newest first. */
  listAlerts(opts?: { status?: AlertStatus | readonly AlertStatus[]; limit?: number }): Promise<AlertRecord[]>;

  getValue(key: string): Promise<string | undefined>;
  setValue(key: string, value: string): Promise<void>;
  deleteValue(key: string): Promise<void>;

  close(): Promise<void>;
}
