import type { BatchLimits } from './batches.js';

/** One cell of an upload row: a hash, an unhashed id (EXTERN_ID, MADID) or a LOOKALIKE_VALUE number. */
export type Cell = string | number;

export type UploadOp = 'add' | 'remove' | 'replace';

export interface AudienceStatus {
  code: number;
  description: string;
}

/** What Meta reports about a customer-list audience. Only fields that were asked for (and returned) are set. */
export interface AudienceInfo {
  id: string;
  accountId?: string;
  name?: string;
  description?: string;
  subtype?: string;
  customerFileSource?: string;
  /** -1 (or absent) means Meta has not computed a size yet. */
  approximateCountLowerBound?: number;
  approximateCountUpperBound?: number;
  operationStatus?: AudienceStatus;
  deliveryStatus?: AudienceStatus;
  dataSource?: { type?: string; subType?: string; creationParams?: string };
  isValueBased?: boolean;
  /** Unix seconds. */
  timeCreated?: number;
  timeUpdated?: number;
  timeContentUpdated?: number;
  deleteTime?: number;
  fieldsViolatingIntegrityPolicy?: string[];
}

/** One upload session as Meta reports it on `{audience}/sessions`, its numeric strings read as numbers. */
export interface UploadSessionReport {
  sessionId: string;
  stage: string;
  /** 0–100; Meta's counts are final only at 100. */
  progress: number;
  numReceived: number;
  numMatched: number;
  numInvalidEntries: number;
  /** Unix seconds; 0 while the session is open. */
  startTime: number;
  endTime: number;
  /** Meta has finished matching the session's rows: its counts will not change any more. */
  processed: boolean;
}

export type CustomerFileSource = 'USER_PROVIDED_ONLY' | 'PARTNER_PROVIDED_ONLY' | 'BOTH_USER_AND_PARTNER_PROVIDED';

export interface NewAudience {
  name: string;
  description?: string;
  /** Default USER_PROVIDED_ONLY. */
  customerFileSource?: CustomerFileSource;
  /** Set when LOOKALIKE_VALUE will be uploaded. */
  valueBased?: boolean;
}

/** A lookalike of a customer-list audience (the origin needs people in it). */
export interface NewLookalike {
  name: string;
  originAudienceId: string;
  /** ISO 3166-1 alpha-2, e.g. US. */
  country: string;
  /** Share of the country's population, 0.01–0.20. */
  ratio: number;
  /** Default `similarity`. */
  type?: 'similarity' | 'reach' | 'custom_ratio';
  description?: string;
}

export interface AdAccount {
  /** With the act_ prefix, as Meta returns it. */
  id: string;
  /** Digits only. */
  accountId: string;
  name?: string;
  accountStatus?: number;
}

export interface Permission {
  permission: string;
  status: string;
}

/** One of Meta's invalid-entry samples that names a row of the request. */
export interface InvalidEntry {
  /** 0-based row of the batch ("row 3"). */
  row: number;
  reason: string;
}

export interface UploadBatchResult {
  /** The batch_seq this batch was finally accepted under (a replace can restart, see sessions.ts). */
  batchSeq: number;
  rows: number;
  /** Meta counts everything received in the session so far, not just this batch. */
  numReceived: number;
  numInvalidEntries: number;
  invalidEntrySamples: string[];
  /** The same samples with the row they name, so a caller can tell which of its rows Meta skipped. */
  invalidEntries: InvalidEntry[];
  sessionId: string;
}

export interface UploadSummary {
  batches: number;
  rows: number;
  numInvalidEntries: number;
  /** At most 100, like Meta's own sample list. */
  invalidEntrySamples: string[];
}

export interface UploadSession {
  /** Numeric string <= 2^53-1. Can change after an ambiguous failure (see sessions.ts). */
  readonly sessionId: string;
  /** Rows and serialized bytes one request of this session may carry (cut batches with BatchBuilder). */
  readonly limits: BatchLimits;
  /** rows.length must be <= batchRows. Retries internally. */
  send(rows: ReadonlyArray<readonly Cell[]>, opts: { last: boolean }): Promise<UploadBatchResult>;
}

/** Emitted for logs and metrics. Never carries the token, row data or full URLs. */
export type GraphClientEvent =
  | { type: 'request'; method: string; path: string; status: number; durationMs: number; maxUsagePct: number }
  | {
      type: 'retry';
      method: string;
      path: string;
      attempt: number;
      delayMs: number;
      code?: number;
      subcode?: number;
      reason: string;
    }
  | { type: 'throttle'; method: string; path: string; waitMs: number; code?: number; subcode?: number }
  | { type: 'session_restart'; audienceId: string; op: UploadOp; oldSessionId: string; newSessionId: string; reason: string };
