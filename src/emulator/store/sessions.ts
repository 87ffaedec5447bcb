/** Upload sessions (docs/graph-api.md, "Uploads: payload, sessions, limits"): unique per ad account, 90-minute window, batch sequencing. */

export type UploadOp = 'add' | 'remove' | 'replace';

export type SessionStage = 'open' | 'finished' | 'timed_out' | 'failed';

export interface UploadSessionRecord {
  sessionId: string;
  accountId: string;
  audienceId: string;
  op: UploadOp;
  /** Clock ms of the first batch. */
  startedAt: number;
  lastBatchAt: number;
  stage: SessionStage;
  seqs: Set<number>;
  numReceived: number;
  numInvalid: number;
  numMatched: number;
}

export class SessionTable {
  private readonly sessions = new Map<string, UploadSessionRecord>();

  get(accountId: string, sessionId: string): UploadSessionRecord | undefined {
    return this.sessions.get(keyOf(accountId, sessionId));
  }

  open(init: { accountId: string; sessionId: string; audienceId: string; op: UploadOp; now: number }): UploadSessionRecord {
    const record: UploadSessionRecord = {
      sessionId: init.sessionId,
      accountId: init.accountId,
      audienceId: init.audienceId,
      op: init.op,
      startedAt: init.now,
      lastBatchAt: init.now,
      stage: 'open',
      seqs: new Set(),
      numReceived: 0,
      numInvalid: 0,
      numMatched: 0,
    };
    this.sessions.set(keyOf(init.accountId, init.sessionId), record);
    return record;
  }

  forAudience(audienceId: string): UploadSessionRecord[] {
    return [...this.sessions.values()].filter((s) => s.audienceId === audienceId);
  }

  all(): UploadSessionRecord[] {
    return [...this.sessions.values()];
  }

  clear(): void {
    this.sessions.clear();
  }
}

export function isExpired(session: UploadSessionRecord, now: number, windowMs: number): boolean {
  return now - session.startedAt > windowMs;
}

function keyOf(accountId: string, sessionId: string): string {
  return `${accountId}:${sessionId}`;
}
