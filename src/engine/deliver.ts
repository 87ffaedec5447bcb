import { failureWrite, intentWrite, successWrite, type Delivery } from './diff.js';
import { DeliveryError, type Batcher, type EngineGraph, type EngineStore, type EngineUploadSession } from './ports.js';
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
 * Sends a spool through one upload session, batch by batch, and commits our state after each
 * batch Meta acknowledged: a crash at any point re-sends at most the batch in flight. Returns the
 * number of batches whose rows Meta refused; throws a run-level DeliveryError when the run must stop.
 */
export async function deliverSpool(spool: Spool<Delivery>, o: DeliverOptions): Promise<number> {
  if (spool.size === 0) return 0;
  const session = o.graph.openUploadSession(o.op, o.audienceId, o.schema, { estimatedTotal: spool.size });
  let failedBatches = 0;
  let done = 0;
  // One batch of lookahead, so the last batch carries last_batch_flag.
  const batches = cut(spool.items(), session.batcher((d: Delivery) => d.c, o.batchRows))[Symbol.asyncIterator]();
  try {
    let next = await batches.next();
    while (!next.done) {
      const batch = next.value;
      next = await batches.next();
      if (!(await sendBatch(session, batch, next.done === true, o, { done, total: spool.size }))) failedBatches++;
      done += batch.length;
      o.onProgress?.(done, spool.size);
    }
  } finally {
    await batches.return(undefined);
    // Meta's match counts for this session are read later (pickUpMatches); removals match no one.
    if (done > 0 && o.op !== 'remove') (o.counts.uploadSessions ??= []).push(session.sessionId);
  }
  return failedBatches;
}

async function* cut<T>(items: AsyncIterable<T>, batcher: Batcher<T>): AsyncGenerator<T[]> {
  for await (const item of items) {
    const full = batcher.add(item);
    if (full) yield full;
  }
  const rest = batcher.flush();
  if (rest) yield rest;
}

/** Sends one batch and commits its outcome. False when Meta refused the batch's rows. */
async function sendBatch(session: EngineUploadSession, batch: Delivery[], last: boolean, o: DeliverOptions, progress: { done: number; total: number }): Promise<boolean> {
  if (o.op !== 'replace') {
    const intents: RecordWrite[] = [];
    for (const d of batch) {
      const w = intentWrite(d);
      if (w) intents.push(w);
    }
    await o.store.applyRecordWrites(o.sync, intents);
  }
  let invalid: Map<number, string>;
  try {
    const result = await session.send(batch.map((d) => d.c), { last });
    o.counts.numInvalidEntries += result.numInvalidEntries;
    invalid = new Map(result.invalidEntries.filter((e) => e.row >= 0 && e.row < batch.length).map((e) => [e.row, e.reason]));
  } catch (error) {
    // A replace session cannot go on past a refused batch; account-level errors hit every batch alike.
    if (!(error instanceof DeliveryError && error.scope === 'batch') || o.op === 'replace') throw stopped(error, o.op, progress);
    o.counts.failed += batch.length;
    await o.store.applyRecordWrites(o.sync, batch.flatMap((d) => refusedWrite(d, error.message, o) ?? []));
    for (const d of batch) sample(d, error.message, o);
    return false;
  }
  o.counts.delivered += batch.length - invalid.size;
  o.counts.failed += invalid.size;
  const writes: RecordWrite[] = [];
  batch.forEach((d, i) => {
    const reason = invalid.get(i);
    if (reason === undefined) {
      if (o.op === 'remove' && d.ok === 'forget') o.counts.removedFromAudience++;
      writes.push(successWrite(d));
      return;
    }
    // Meta skipped this row: the record spends an attempt, like a refused batch.
    const message = `Meta found this row invalid: ${reason}`;
    sample(d, message, o);
    const w = refusedWrite(d, message, o) ?? successWrite(d);
    writes.push(w.op === 'upsert' ? { ...w, lastError: message } : w);
  });
  await o.store.applyRecordWrites(o.sync, writes);
  return true;
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
