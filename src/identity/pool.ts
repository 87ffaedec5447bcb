/**
 * A worker-thread pool for big tables: the same records as encoder.encode(), in order, spread over cores.
 * Each encodeBatch() is cut into contiguous chunks: one per worker, and on few cores a share the calling thread
 * encodes itself while the workers run (share.ts). Concurrent calls queue up on the workers. Records
 * come back packed (batch.ts), so the calling thread spends almost nothing per row but handing it off.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type EncodedBatch, packedBatch } from './batch.js';
import { createShareTuner } from './share.js';
import { createRecordEncoder, mappedColumns, type IdentityOptions, type Mapping } from './encoder.js';
import type { MatchKey } from './keys.js';
import { hashBytesPerRecord, type PackedRecords, type PackedRows, packRecords, packRows } from './wire.js';

export interface EncoderPool {
  readonly schema: readonly MatchKey[];
  /** Encodes rows on the workers and the calling thread; resolves with one record per row, in order. */
  encodeBatch(rows: Record<string, unknown>[]): Promise<EncodedBatch>;
  /** Stops the workers; pending batches reject. */
  close(): Promise<void>;
}

export interface EncoderPoolOptions {
  /** Threads that encode, the calling one included (so threads - 1 workers). Default: the number of cores. */
  threads?: number;
}

/** Messages between the pool and its workers. */
export interface WorkerSetup {
  mapping: Mapping;
  options: IdentityOptions;
  /** The source columns the mapping reads, in the order rows are packed. */
  columns: string[];
}
export interface WorkerRequest {
  id: number;
  rows: PackedRows;
  /** A hash buffer the worker sent earlier, handed back for reuse. */
  spare?: ArrayBuffer;
}
/** `ms`: the worker's busy time for the chunk (reading its rows and encoding them), to balance the caller's share. */
export type WorkerReply = { id: number; packed: PackedRecords; ms: number } | { id: number; error: string };

/** Below this many rows a chunk is not worth a trip to another thread. */
const MIN_CHUNK_ROWS = 256;

/**
 * The compiled worker script. Next to this module in dist/; when running from sources (tests), the built copy.
 */
function workerScript(): URL {
  const beside = new URL('./encoderWorker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL(beside.href.replace('/src/identity/', '/dist/identity/'));
  if (built.href !== beside.href && existsSync(fileURLToPath(built))) return built;
  throw new Error('The encoder worker script is missing: run `npm run build` first (it compiles dist/identity/encoderWorker.js).');
}

interface Job {
  resolve(records: PackedRecords): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job>;
}

/** Released hash buffers kept for reuse; a few per thread cover the batches in flight. */
const SPARES_PER_THREAD = 3;

export function createEncoderPool(mapping: Mapping, options: IdentityOptions, opts: EncoderPoolOptions = {}): EncoderPool {
  // Validate here so a bad mapping throws MappingError synchronously, as createRecordEncoder does.
  const local = createRecordEncoder(mapping, options);
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const tuner = createShareTuner(threads - 1);
  const setup: WorkerSetup = { mapping, options, columns: mappedColumns(mapping) };
  const script = threads > 1 ? workerScript() : undefined;
  let nextId = 1;
  let failure: Error | undefined;

  const slots: Slot[] = Array.from({ length: threads - 1 }, () => {
    const slot: Slot = { worker: new Worker(script!, { workerData: setup }), pending: new Map() };
    slot.worker.unref();
    slot.worker.on('message', (reply: WorkerReply) => settle(slot, reply));
    slot.worker.on('error', (error) => fail(new Error(`An identity worker failed: ${error.message}`)));
    slot.worker.on('exit', (code) => {
      if (code !== 0 && !failure) fail(new Error(`An identity worker stopped unexpectedly (exit code ${code}).`));
    });
    return slot;
  });

  function settle(slot: Slot, reply: WorkerReply): void {
    const job = slot.pending.get(reply.id);
    if (!job) return;
    slot.pending.delete(reply.id);
    if (slot.pending.size === 0) slot.worker.unref();
    if ('error' in reply) job.reject(new Error(`Identity worker error: ${reply.error}`));
    else {
      tuner.observe('worker', reply.ms, reply.packed.count);
      job.resolve(reply.packed);
    }
  }

  function fail(error: Error): void {
    failure ??= error;
    for (const slot of slots) {
      for (const job of slot.pending.values()) job.reject(error);
      slot.pending.clear();
    }
  }

  const spares: ArrayBuffer[] = [];
  const recycle = (hashes: ArrayBuffer) => {
    if (spares.length < SPARES_PER_THREAD * threads) spares.push(hashes);
  };
  const hashBytesPerRow = hashBytesPerRecord(local.schema);
  /** A released buffer that holds `rows` records' hashes, if there is one. */
  function spareFor(rows: number): ArrayBuffer | undefined {
    const i = spares.findIndex((b) => b.byteLength >= rows * hashBytesPerRow);
    return i < 0 ? undefined : spares.splice(i, 1)[0];
  }

  function encodeHere(rows: Record<string, unknown>[]): PackedRecords {
    const start = performance.now();
    const packed = packRecords(local.schema, rows.length, (i) => local.encode(rows[i]!), spareFor(rows.length));
    if (rows.length >= MIN_CHUNK_ROWS) tuner.observe('caller', performance.now() - start, rows.length);
    return packed;
  }

  function send(rows: Record<string, unknown>[]): Promise<PackedRecords> | PackedRecords {
    const slot = slots.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));
    const id = nextId++;
    let request: WorkerRequest;
    try {
      request = { id, rows: packRows(setup.columns, rows) };
      const spare = spareFor(rows.length);
      if (spare) request.spare = spare;
      slot.worker.postMessage(request, request.spare ? [request.spare] : []);
    } catch {
      // Rows holding values that cannot cross threads (functions, symbols…): encode them here instead.
      return encodeHere(rows);
    }
    slot.worker.ref();
    return new Promise<PackedRecords>((resolve, reject) => slot.pending.set(id, { resolve, reject }));
  }

  return {
    schema: local.schema,
    async encodeBatch(rows) {
      if (failure) throw failure;
      // The caller's share is the tail of the batch, so the parts follow each other in order.
      const handedOff = slots.length === 0 || rows.length < 2 * MIN_CHUNK_ROWS ? 0 : Math.round(rows.length * (1 - tuner.share));
      const size = Math.max(MIN_CHUNK_ROWS, Math.ceil(handedOff / slots.length));
      const parts: Array<Promise<PackedRecords> | PackedRecords> = [];
      const handoffStart = performance.now();
      for (let start = 0; start < handedOff; start += size) parts.push(send(rows.slice(start, Math.min(start + size, handedOff))));
      if (handedOff > 0) tuner.observe('handoff', performance.now() - handoffStart, handedOff);
      if (handedOff < rows.length) parts.push(encodeHere(handedOff === 0 ? rows : rows.slice(handedOff)));
      return packedBatch(local.schema, await Promise.all(parts), recycle);
    },
    async close() {
      failure ??= new Error('The encoder pool is closed.');
      fail(failure);
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
