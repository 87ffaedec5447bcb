import { failureWrite, intentWrite, successWrite, type Delivery } from './diff.js';
import { DeliveryError, type Batcher, type EngineGraph, type EngineStore, type UploadResultLike } from './ports.js';
import { addSample } from './scan.js';
import type { Spool } from './spool.js';
import type { ErrorSample, RecordWrite, RunCounts } from './types.js';

export interface DeliverOptions {
  op: 'add' | 'remove' | 'replace';
  sync: string;
  audienceId: string;
  schema: readonly string[];
  /** Rows per request at most (the sync's batchRows); bytes are the session's to limit. */
  batchRows?: number;
  maxAttempts: number;
  graph: EngineGraph;
  store: EngineStore;
  counts: RunCounts;
  samples: ErrorSample[];
  externIdIndex: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Sends a spool through one upload session at Meta's pace: one request in flight at a time, and while
 * it is out, the previous batch's outcome is committed and the next batch is cut from the spool, its
 * intents written (they are durable before it goes out). A crash at any point re-sends at most the
 * batches whose outcome is not committed yet: the one in flight and the one before it. Returns the
 * number of batches whose rows Meta refused; throws a run-level DeliveryError when the run must stop,
 * once what Meta acknowledged before it is committed.
 */
export async function deliverSpool(spool: Spool<Delivery>, o: DeliverOptions): Promise<number> {
  if (spool.size === 0) return 0;
  const session = o.graph.openUploadSession(o.op, o.audienceId, o.schema, { estimatedTotal: spool.size });
  const total = spool.size;
  let failedBatches = 0;
  let answered = 0;
  let committed = 0;
  const batches = cut(spool.items(), session.batcher((d: Delivery) => d.c, o.batchRows))[Symbol.asyncIterator]();
  /** The next batch, ready to go out: its intents are in the store. */
  const prepare = async (): Promise<CutBatch<Delivery> | undefined> => {
    const next = await batches.next();
    if (next.done) return undefined;
    // A removal marks its record pending too (intentWrite): see there.
    if (o.op !== 'replace') await o.store.applyRecordWrites(o.sync, next.value.batch.flatMap((d) => intentWrite(d) ?? []));
    return next.value;
  };
  /** Commits a batch's outcome; done means committed. */
  const commit = async (outcome: Outcome): Promise<void> => {
    await o.store.applyRecordWrites(o.sync, outcome.writes);
    committed += outcome.rows;
    o.onProgress?.(committed, total);
  };
  // The outcome of the last answered batch: committed while the next request is out.
  let uncommitted: Outcome | undefined;
  try {
    let current = await prepare();
    while (current) {
      const { batch, last } = current;
      const previous = uncommitted;
      uncommitted = undefined;
      const answer = settle(session.send(batch.map((d) => d.c), { last }));
      const ready = settle(
        requestLeft().then(async () => {
          if (previous) await commit(previous);
          return last ? undefined : prepare();
        }),
      );
      const [sent, next] = await Promise.all([answer, ready]);
      if (!sent.ok && !(sent.error instanceof DeliveryError && sent.error.scope === 'batch' && o.op !== 'replace')) {
        // A replace session cannot go on past a refused batch; account-level errors hit every batch alike.
        throw stopped(sent.error, o.op, { done: answered, total });
      }
      if (!next.ok) throw next.error;
      uncommitted = { rows: batch.length, writes: sent.ok ? acknowledged(batch, sent.value, o) : refused(batch, sent.error as DeliveryError, o) };
      if (!sent.ok) failedBatches++;
      answered += batch.length;
      current = next.value;
    }
    if (uncommitted) await commit(uncommitted);
  } finally {
    await batches.return(undefined);
    // Meta's match counts for this session are read later (pickUpMatches); removals match no one.
    if (answered > 0 && o.op !== 'remove') (o.counts.uploadSessions ??= []).push(session.sessionId);
  }
  return failedBatches;
}

interface Outcome {
  rows: number;
  writes: RecordWrite[];
}

/**
 * Resolves once the event loop has turned, so that a request just started gets on the wire before
 * the state is written: a SQLite write holds the event loop until its transaction ends.
 */
function requestLeft(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface CutBatch<T> {
  batch: T[];
  /** Nothing comes after it: it carries last_batch_flag. */
  last: boolean;
}

async function* cut<T>(items: AsyncIterable<T>, batcher: Batcher<T>): AsyncGenerator<CutBatch<T>> {
  for await (const item of items) {
    // A completed batch comes back when the item starts the next one: it is not the last.
    const full = batcher.add(item);
    if (full) yield { batch: full, last: false };
  }
  const rest = batcher.flush();
  if (rest) yield { batch: rest, last: true };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Waits for `p` without throwing, so two concurrent steps can both finish before either's failure is acted on. */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Counts and samples a batch Meta took (some rows may be invalid); returns the state writes of its outcome. */
function acknowledged(batch: Delivery[], result: UploadResultLike, o: DeliverOptions): RecordWrite[] {
  o.counts.numInvalidEntries += result.numInvalidEntries;
  const invalid = new Map(result.invalidEntries.filter((e) => e.row >= 0 && e.row < batch.length).map((e) => [e.row, e.reason]));
  o.counts.delivered += batch.length - invalid.size;
  o.counts.failed += invalid.size;
  return batch.map((d, i) => {
    const reason = invalid.get(i);
    if (reason === undefined) {
      if (o.op === 'remove' && d.ok === 'forget') o.counts.removedFromAudience++;
      return successWrite(d);
    }
    // Meta skipped this row: the record spends an attempt, like a refused batch.
    const message = `Meta found this row invalid: ${reason}`;
    sample(d, message, o);
    const w = refusedWrite(d, message, o) ?? successWrite(d);
    return w.op === 'upsert' ? { ...w, lastError: message } : w;
  });
}

/** Counts and samples a batch whose rows Meta refused; returns the state writes: each record spends an attempt. */
function refused(batch: Delivery[], error: DeliveryError, o: DeliverOptions): RecordWrite[] {
  o.counts.failed += batch.length;
  for (const d of batch) sample(d, error.message, o);
  return batch.flatMap((d) => refusedWrite(d, error.message, o) ?? []);
}

/** The record after Meta refused its row; undefined when a refusal changes nothing (replace). */
function refusedWrite(d: Delivery, reason: string, o: DeliverOptions): RecordWrite | undefined {
  if (!d.f) return undefined;
  // An add may have reached Meta even though it was refused here (a lost answer, a wrong sample): keep the cells sent.
  return failureWrite(d.k, o.op === 'add' ? { ...d.f, cells: d.c } : d.f, reason, o.maxAttempts);
}

function sample(d: Delivery, reason: string, o: DeliverOptions): void {
  addSample(o.samples, d.k, reason, d.c, o.externIdIndex);
}

/** The error that stops the run: what happened, what to do (the cause's message says both), and what is left. */
function stopped(error: unknown, op: DeliverOptions['op'], p: { done: number; total: number }): DeliveryError {
  const message = error instanceof Error ? error.message : String(error);
  const retryable = error instanceof DeliveryError ? error.retryable : false;
  const left = `${p.total - p.done} of ${p.total} rows to ${op} were left for the next run.`;
  return new DeliveryError(`${message}${/[.!?]$/.test(message) ? '' : '.'} ${left}`, 'run', retryable, { cause: error });
}
