import { failureWrite, intentWrite, successWrite, type Delivery } from './diff.js';
import type { EngineGraph, EngineStore } from './ports.js';
import type { Spool } from './spool.js';
import type { ErrorSample, RecordWrite, RunCounts } from './types.js';

/** Errors that concern one batch's data: the batch fails, the run goes on. Anything else stops the run. */
const BATCH_LEVEL_KINDS = new Set(['invalid_request']);

export class DeliveryAborted extends Error {
  constructor(
    message: string,
    readonly fatal: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DeliverOptions {
  op: 'add' | 'remove' | 'replace';
  sync: string;
  audienceId: string;
  schema: readonly string[];
  batchRows: number;
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
 * number of batches that failed.
 */
export async function deliverSpool(spool: Spool<Delivery>, o: DeliverOptions): Promise<number> {
  if (spool.size === 0) return 0;
  const session = o.graph.openUploadSession(o.op, o.audienceId, o.schema, { estimatedTotal: spool.size });
  let failedBatches = 0;
  let done = 0;
  // One batch of lookahead, so the last batch carries last_batch_flag.
  const batches = spool.batches(o.batchRows)[Symbol.asyncIterator]();
  let next = await batches.next();
  while (!next.done) {
    const batch = next.value;
    next = await batches.next();
    const last = next.done === true;
    const rows = batch.map((d) => d.c);
    if (o.op === 'add') {
      const intents: RecordWrite[] = [];
      for (const d of batch) {
        const w = intentWrite(d);
        if (w) intents.push(w);
      }
      await o.store.applyRecordWrites(o.sync, intents);
    }
    try {
      const result = await session.send(rows, { last });
      o.counts.delivered += rows.length;
      if (o.op === 'remove') o.counts.removedFromAudience += batch.filter((d) => d.ok === 'forget').length;
      o.counts.numInvalidEntries += result.numInvalidEntries;
      await o.store.applyRecordWrites(o.sync, batch.map(successWrite));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const kind = (error as { kind?: string }).kind;
      failedBatches++;
      o.counts.failed += batch.length;
      const writes: RecordWrite[] = [];
      // An add may have reached Meta even though it failed here (a lost answer): keep the cells sent.
      for (const d of batch) if (d.f) writes.push(failureWrite(d.k, o.op === 'add' ? { ...d.f, cells: d.c } : d.f, message, o.maxAttempts));
      await o.store.applyRecordWrites(o.sync, writes);
      for (const d of batch.slice(0, Math.max(0, 5 - o.samples.length))) o.samples.push(sampleOf(d, message, o.externIdIndex));
      // A replace session cannot go on past a refused batch, and account-level errors hit every batch alike.
      if (o.op === 'replace' || kind === undefined || !BATCH_LEVEL_KINDS.has(kind)) {
        throw new DeliveryAborted(message, kind !== 'transient' && kind !== 'throttled', { cause: error });
      }
    }
    done += batch.length;
    o.onProgress?.(done, spool.size);
  }
  return failedBatches;
}

function sampleOf(d: Delivery, reason: string, externIdIndex: number): ErrorSample {
  const externId = externIdIndex >= 0 ? d.c[externIdIndex] : undefined;
  return { pkHash: d.k, reason, ...(typeof externId === 'string' && externId !== '' ? { externId } : {}) };
}
