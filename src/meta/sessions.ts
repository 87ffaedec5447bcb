import type { BatchLimits } from './batches.js';
import { MetaApiError } from './errors.js';
import type { GraphRequest, GraphTransport } from './transport.js';
import { toUploadResponse } from './responses.js';
import type { Cell, GraphClientEvent, UploadBatchResult, UploadOp, UploadSession } from './types.js';

/** 2650/1870158: the session is older than Meta's 90-minute window. */
const SESSION_EXPIRED = 1870158;

export interface SessionDeps {
  transport: GraphTransport;
  op: UploadOp;
  audienceId: string;
  schema: readonly string[];
  estimatedTotal?: number;
  /** What one request of this session may carry. */
  limits: BatchLimits;
  newSessionId: () => string;
  onEvent: (e: GraphClientEvent) => void;
  /** Turns a thrown error into the one the caller sees (adds the ToS link, for instance). */
  explain: (err: unknown) => Promise<unknown>;
}

export function openSession(deps: SessionDeps): UploadSession {
  return deps.op === 'replace' ? new ReplaceSession(deps) : new UsersSession(deps);
}

/** Shared by both session kinds: argument checks, request shape and response reading. */
abstract class BaseSession implements UploadSession {
  protected currentId: string;
  protected nextSeq = 1;
  protected lastNumReceived = 0;
  private finished = false;

  constructor(protected readonly deps: SessionDeps) {
    this.currentId = deps.newSessionId();
  }

  get sessionId(): string {
    return this.currentId;
  }

  get limits(): BatchLimits {
    return this.deps.limits;
  }

  async send(rows: Cell[][], opts: { last: boolean }): Promise<UploadBatchResult> {
    this.check(rows);
    try {
      const result = await this.deliver(rows, opts.last);
      if (opts.last) this.finished = true;
      return result;
    } catch (err) {
      throw await this.deps.explain(err);
    }
  }

  protected abstract deliver(rows: Cell[][], last: boolean): Promise<UploadBatchResult>;

  /** One attempt at sending `rows` as batch `seq` of the current session. */
  protected async post(seq: number, rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    const sessionId = this.currentId;
    const response = toUploadResponse(await this.deps.transport.attempt(this.request(sessionId, seq, rows, last)));
    this.lastNumReceived = response.numReceived;
    return {
      batchSeq: seq,
      rows: rows.length,
      numReceived: response.numReceived,
      numInvalidEntries: response.numInvalidEntries,
      invalidEntrySamples: response.invalidEntrySamples,
      invalidEntries: response.invalidEntries,
      sessionId,
    };
  }

  /** Abandons the current session for a fresh one, starting again at batch 1. */
  protected restart(reason: string): void {
    const oldSessionId = this.currentId;
    this.currentId = this.deps.newSessionId();
    this.nextSeq = 1;
    this.deps.onEvent({ type: 'session_restart', audienceId: this.deps.audienceId, op: this.deps.op, oldSessionId, newSessionId: this.currentId, reason });
  }

  protected get label(): Pick<GraphRequest, 'method' | 'path'> {
    return { method: 'POST', path: `${this.deps.audienceId}/${this.deps.op === 'replace' ? 'usersreplace' : 'users'}` };
  }

  /**
   * The payload always travels in the JSON body, removals included (POST with method=DELETE): a DELETE
   * with its payload in the URL breaks beyond a few thousand hashes and leaks hashes into access logs.
   */
  private request(sessionId: string, seq: number, rows: Cell[][], last: boolean): GraphRequest {
    const session: Record<string, unknown> = { session_id: Number(sessionId), batch_seq: seq, last_batch_flag: last };
    if (this.deps.estimatedTotal !== undefined) session.estimated_num_total = this.deps.estimatedTotal;
    const body: Record<string, unknown> = { payload: { schema: this.deps.schema, is_raw: true, data: rows }, session };
    if (this.deps.op === 'remove') body.method = 'DELETE';
    return { ...this.label, body: JSON.stringify(body) };
  }

  private check(rows: Cell[][]): void {
    const problem =
      this.finished
        ? 'the session already sent its last batch'
        : rows.length === 0
          ? 'a batch needs at least one row'
          : rows.length > this.deps.limits.maxRows
            ? `a batch holds ${rows.length} rows, more than the ${this.deps.limits.maxRows} allowed per request`
            : badArityMessage(rows, this.deps.schema.length);
    if (problem !== undefined) {
      throw new MetaApiError(
        { kind: 'invalid_request', retryable: false, ambiguous: false, detail: problem, userAction: 'This is a bug in the caller of the upload session; please report it.' },
        `Upload to audience ${this.deps.audienceId} not sent`,
      );
    }
  }
}

/** Names the first row whose cell count differs from the schema (by index only: rows hold personal data). */
function badArityMessage(rows: Cell[][], width: number): string | undefined {
  const index = rows.findIndex((row) => row.length !== width);
  return index < 0 ? undefined : `row ${index} has ${rows[index]?.length} cells but the schema has ${width} keys`;
}

/**
 * Add and remove (/users). These are set operations, so a repeat is harmless. After an ambiguous
 * failure the batch is resent as batch 1 of a fresh session rather than repeated in the old one: that
 * avoids both a duplicate batch_seq and, when the lost batch was the last one, a batch after
 * last_batch_flag, which Meta rejects. Rows already received in the abandoned session stay applied.
 * A session that outlives Meta's 90-minute window is likewise continued in a fresh one.
 */
class UsersSession extends BaseSession {
  private async postNext(rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    const result = await this.post(this.nextSeq, rows, last);
    this.nextSeq++;
    return result;
  }

  protected deliver(rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    return this.deps.transport.withRetries(this.label, async () => {
      try {
        return await this.postNext(rows, last);
      } catch (err) {
        if (err instanceof MetaApiError && err.retryable && err.ambiguous) {
          this.restart(`batch ${this.nextSeq} may or may not have reached Meta (${err.detail})`);
        } else if (err instanceof MetaApiError && err.subcode === SESSION_EXPIRED) {
          // A long (e.g. throttled) upload outlived the 90-minute window: carry on in a new session.
          this.restart('the session passed its 90-minute window');
          return await this.postNext(rows, last);
        }
        throw err;
      }
    });
  }
}

/**
 * Replace (/usersreplace), following Meta's rules: batch 1 starts the replace and must never be sent
 * twice in one session; later batches may be repeated. So every retry of batch 1 goes out as batch 1 of
 * a new session, while later batches retry in place.
 */
class ReplaceSession extends BaseSession {
  private started = false;
  /** Sessions whose batch 1 failed ambiguously: one of them may in fact have started the replace. */
  private readonly uncertainStarts: string[] = [];

  protected deliver(rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    return this.started ? this.deliverLater(rows, last) : this.deliverFirst(rows, last);
  }

  private async deliverFirst(rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    try {
      const result = await this.deps.transport.withRetries(this.label, async () => {
        try {
          return await this.post(1, rows, last);
        } catch (err) {
          if (err instanceof MetaApiError && (err.kind === 'transient' || err.kind === 'throttled')) {
            if (err.ambiguous) this.uncertainStarts.push(this.currentId);
            this.restart(`batch 1 of a replace cannot be resent in the same session (${err.detail})`);
          }
          throw err;
        }
      });
      this.started = true;
      this.nextSeq = 2;
      return result;
    } catch (err) {
      // "A replace is already running" right after an ambiguous batch 1 means that batch did arrive.
      if (err instanceof MetaApiError && err.kind === 'replace_in_progress' && this.uncertainStarts.length > 0) {
        return this.adoptUncertainStart(rows, last, err);
      }
      throw err;
    }
  }

  /**
   * Continues the session whose batch 1 did reach Meta, resending those rows as its batch 2 (a replace
   * collects a set, so the repeat is harmless). A session that never started answers 1870147.
   */
  private async adoptUncertainStart(rows: Cell[][], last: boolean, original: MetaApiError): Promise<UploadBatchResult> {
    const abandoned = this.currentId;
    for (const candidate of [...this.uncertainStarts].reverse()) {
      this.currentId = candidate;
      this.nextSeq = 2;
      this.started = true;
      try {
        const result = await this.deliverLater(rows, last);
        this.deps.onEvent({ type: 'session_restart', audienceId: this.deps.audienceId, op: 'replace', oldSessionId: abandoned, newSessionId: candidate, reason: 'an earlier batch 1 had reached Meta after all' });
        return result;
      } catch (err) {
        if (!(err instanceof MetaApiError && err.subcode === 1870147)) throw err;
      }
    }
    this.currentId = abandoned;
    this.nextSeq = 1;
    this.started = false;
    throw original;
  }

  private async deliverLater(rows: Cell[][], last: boolean): Promise<UploadBatchResult> {
    const seq = this.nextSeq;
    let uncertain = false;
    try {
      const result = await this.deps.transport.withRetries(this.label, async () => {
        try {
          return await this.post(seq, rows, last);
        } catch (err) {
          if (err instanceof MetaApiError && err.ambiguous) uncertain = true;
          throw err;
        }
      });
      this.nextSeq = seq + 1;
      return result;
    } catch (err) {
      // "Session already finished" after an ambiguous final batch: that batch went through and closed it.
      if (last && uncertain && err instanceof MetaApiError && err.subcode === 1870159) {
        this.nextSeq = seq + 1;
        return {
          batchSeq: seq,
          rows: rows.length,
          numReceived: this.lastNumReceived + rows.length, // Meta's own count was lost with the response
          numInvalidEntries: 0,
          invalidEntrySamples: [],
          invalidEntries: [],
          sessionId: this.currentId,
        };
      }
      throw err;
    }
  }
}
