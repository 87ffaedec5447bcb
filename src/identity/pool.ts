/**
 * A worker-thread pool for big tables: the same records as encoder.encode(), in order, spread over cores.
 * Each encodeBatch() is cut into contiguous chunks handed to the least-busy workers; concurrent calls queue up.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRecordEncoder, type EncodedRecord, type IdentityOptions, type Mapping } from './encoder.js';
import type { MatchKey } from './keys.js';
import { type PackedRecords, unpackRecords } from './wire.js';

export interface EncoderPool {
  readonly schema: readonly MatchKey[];
  /** Encodes rows on the workers; resolves with one record per row, in order. */
  encodeBatch(rows: Record<string, unknown>[]): Promise<EncodedRecord[]>;
  /** Stops the workers; pending batches reject. */
  close(): Promise<void>;
}

/** Messages between the pool and its workers. */
export interface WorkerRequest {
  id: number;
  rows: Record<string, unknown>[];
}
export type WorkerReply = { id: number; packed: PackedRecords } | { id: number; error: string };

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
  resolve(records: EncodedRecord[]): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job>;
}

export function createEncoderPool(
  mapping: Mapping,
  options: IdentityOptions,
  opts: { threads?: number } = {},
): EncoderPool {
  // Validate here so a bad mapping throws MappingError synchronously, as createRecordEncoder does.
  const local = createRecordEncoder(mapping, options);
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const script = workerScript();
  let nextId = 1;
  let failure: Error | undefined;

  const slots: Slot[] = Array.from({ length: threads }, () => {
    const slot: Slot = { worker: new Worker(script, { workerData: { mapping, options } }), pending: new Map() };
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
    else job.resolve(unpackRecords(local.schema, reply.packed));
  }

  function fail(error: Error): void {
    failure ??= error;
    for (const slot of slots) {
      for (const job of slot.pending.values()) job.reject(error);
      slot.pending.clear();
    }
  }

  function run(rows: Record<string, unknown>[]): Promise<EncodedRecord[]> {
    const slot = slots.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));
    const id = nextId++;
    return new Promise<EncodedRecord[]>((resolve, reject) => {
      try {
        slot.worker.postMessage({ id, rows } satisfies WorkerRequest);
      } catch {
        // Rows holding values that cannot cross threads (functions, symbols…): encode them here instead.
        resolve(rows.map((row) => local.encode(row)));
        return;
      }
      slot.pending.set(id, { resolve, reject });
      slot.worker.ref();
    });
  }

  return {
    schema: local.schema,
    async encodeBatch(rows) {
      if (failure) throw failure;
      if (rows.length === 0) return [];
      const size = Math.max(MIN_CHUNK_ROWS, Math.ceil(rows.length / threads));
      const chunks: Promise<EncodedRecord[]>[] = [];
      for (let start = 0; start < rows.length; start += size) chunks.push(run(rows.slice(start, start + size)));
      const parts = await Promise.all(chunks);
      return parts.length === 1 ? parts[0]! : ([] as EncodedRecord[]).concat(...parts);
    },
    async close() {
      failure ??= new Error('The encoder pool is closed.');
      fail(failure);
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
