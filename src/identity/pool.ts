/**
 * A worker-thread pool for big tables: the same records as encoder.encode(), in order, spread over cores.
 * Each encodeBatch() is cut into contiguous chunks: one per worker, and on few cores a share the calling thread
 * encodes itself while the workers run (see callerShare). Concurrent calls queue up on the workers.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRecordEncoder, mappedColumns, type EncodedRecord, type IdentityOptions, type Mapping } from './encoder.js';
import type { MatchKey } from './keys.js';
import { type PackedRecords, type PackedRows, packRows, unpackRecords } from './wire.js';

export interface EncoderPool {
  readonly schema: readonly MatchKey[];
  /** Encodes rows on the workers and the calling thread; resolves with one record per row, in order. */
  encodeBatch(rows: Record<string, unknown>[]): Promise<EncodedRecord[]>;
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
export type WorkerReply = { id: number; packed: PackedRecords } | { id: number; error: string };

/** Below this many rows a chunk is not worth a trip to another thread. */
const MIN_CHUNK_ROWS = 256;
/** What packing a row for a worker and unpacking its record costs the caller, relative to a worker encoding it. */
const HANDOFF_COST = 0.15;
/**
 * What encoding a row costs the caller relative to a worker: the caller's records are objects and strings it
 * holds until the batch resolves, which the garbage collector keeps copying; a worker's come back packed.
 */
const CALLER_ENCODE_COST = 1.4;

/**
 * The share of a batch the calling thread encodes itself so that it finishes with the workers: it pays
 * CALLER_ENCODE_COST for each of its rows and HANDOFF_COST for each row a worker gets. Measured on 2 cores,
 * one worker and the caller at 0.38 beat 0.5 and 0.3; from about 7 workers on the caller only hands off.
 */
export function callerShare(workers: number): number {
  if (workers <= 0) return 1;
  const perWorker = 1 / workers;
  return Math.max(0, (perWorker - HANDOFF_COST) / (CALLER_ENCODE_COST - HANDOFF_COST + perWorker));
}

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
  resolve(records: EncodedRecord[]): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job>;
  /** The hash buffer of the worker's last reply, unpacked and free to go back. */
  spare?: ArrayBuffer;
}

export function createEncoderPool(mapping: Mapping, options: IdentityOptions, opts: EncoderPoolOptions = {}): EncoderPool {
  // Validate here so a bad mapping throws MappingError synchronously, as createRecordEncoder does.
  const local = createRecordEncoder(mapping, options);
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const share = callerShare(threads - 1);
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
      job.resolve(unpackRecords(local.schema, reply.packed));
      slot.spare = reply.packed.hashes;
    }
  }

  function fail(error: Error): void {
    failure ??= error;
    for (const slot of slots) {
      for (const job of slot.pending.values()) job.reject(error);
      slot.pending.clear();
    }
  }

  function encodeHere(rows: Record<string, unknown>[]): EncodedRecord[] {
    return rows.map((row) => local.encode(row));
  }

  function send(rows: Record<string, unknown>[]): Promise<EncodedRecord[]> {
    const slot = slots.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));
    const id = nextId++;
    try {
      const spare = slot.spare;
      slot.spare = undefined;
      const request: WorkerRequest = { id, rows: packRows(setup.columns, rows), ...(spare ? { spare } : {}) };
      slot.worker.postMessage(request, spare ? [spare] : []);
    } catch {
      // Rows holding values that cannot cross threads (functions, symbols…): encode them here instead.
      return Promise.resolve(encodeHere(rows));
    }
    slot.worker.ref();
    return new Promise<EncodedRecord[]>((resolve, reject) => slot.pending.set(id, { resolve, reject }));
  }

  return {
    schema: local.schema,
    async encodeBatch(rows) {
      if (failure) throw failure;
      if (rows.length === 0) return [];
      // The caller's share is the tail of the batch, so the parts concatenate in order.
      const handedOff = slots.length === 0 || rows.length < 2 * MIN_CHUNK_ROWS ? 0 : Math.round(rows.length * (1 - share));
      const size = Math.max(MIN_CHUNK_ROWS, Math.ceil(handedOff / slots.length));
      const parts: Array<Promise<EncodedRecord[]> | EncodedRecord[]> = [];
      for (let start = 0; start < handedOff; start += size) parts.push(send(rows.slice(start, Math.min(start + size, handedOff))));
      if (handedOff < rows.length) parts.push(encodeHere(handedOff === 0 ? rows : rows.slice(handedOff)));
      const done = await Promise.all(parts);
      return done.length === 1 ? done[0]! : ([] as EncodedRecord[]).concat(...done);
    },
    async close() {
      failure ??= new Error('The encoder pool is closed.');
      fail(failure);
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
