/**
 * What the encoder pool gives back: a batch of records kept packed (hashes as hex digits in buffers, see
 * wire.ts) until someone reads them. Turning 10,000 records into objects and strings costs the receiving
 * thread a good share of what encoding them cost a worker, and a caller that only forwards the cells (to a
 * request body, a file) or reads a few never needs them all, so records are built on demand.
 */
import type { EncodedRecord } from './encoder.js';
import type { MatchKey } from './keys.js';
import { packedRecordReader, type PackedRecords, unpackRecords } from './wire.js';

export interface EncodedBatch {
  readonly count: number;
  /** Record `index` (0-based, in the order of the rows given), built on demand. */
  record(index: number): EncodedRecord;
  /** Every record, in order. */
  records(): EncodedRecord[];
  /**
   * Optional: says the batch is no longer needed, so its buffers can be reused for later batches (a fresh
   * multi-megabyte buffer per batch costs page faults). Reading the batch after release() throws.
   */
  release(): void;
}

/** A batch made of packed parts that follow each other (one per thread that encoded a share). */
export function packedBatch(
  schema: readonly MatchKey[],
  parts: readonly PackedRecords[],
  recycle: (hashes: ArrayBuffer) => void = () => {},
): EncodedBatch {
  const starts: number[] = [];
  let count = 0;
  for (const part of parts) {
    starts.push(count);
    count += part.count;
  }
  // One reader per part, made when a record of that part is first read.
  const readers: Array<((index: number) => EncodedRecord) | undefined> = [];
  let released = false;
  const live = () => {
    if (released) throw new Error('This encoded batch was released; read it before calling release().');
    return parts;
  };
  return {
    count,
    record(index) {
      if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`No record ${index} in a batch of ${count}.`);
      // The last part that starts at or before index.
      let p = parts.length - 1;
      while (starts[p]! > index) p--;
      const part = live()[p]!;
      const read = (readers[p] ??= packedRecordReader(schema, part));
      return read(index - starts[p]!);
    },
    records() {
      const all = live().map((part) => unpackRecords(schema, part));
      return all.length === 1 ? all[0]! : ([] as EncodedRecord[]).concat(...all);
    },
    release() {
      if (released) return;
      released = true;
      for (const part of parts) recycle(part.hashes);
    },
  };
}
