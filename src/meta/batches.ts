import type { Cell } from './types.js';

/** Meta's documented cap on rows per /users or /usersreplace request. */
export const MAX_ROWS_PER_REQUEST = 10_000;

export interface BatchLimits {
  maxRows: number;
  /** Budget for the serialized rows of one batch (the `data` array), in UTF-8 bytes. */
  maxBytes: number;
}

/** Splits rows into batches of at most `maxRows` rows and `maxBytes` serialized bytes, keeping order. */
export function planBatches(rows: Cell[][], limits: BatchLimits): Cell[][][] {
  const batches: Cell[][][] = [];
  const builder = new BatchBuilder(limits, (row: Cell[]) => row);
  for (const row of rows) {
    const full = builder.add(row);
    if (full) batches.push(full);
  }
  const rest = builder.flush();
  if (rest) batches.push(rest);
  return batches;
}

/**
 * Incremental form of planBatches for streamed items that each carry one row: `add` returns a
 * completed batch when the new item's row does not fit (the item then starts the next batch). A single
 * row larger than maxBytes travels alone.
 */
export class BatchBuilder<T> {
  private items: T[] = [];
  private bytes = 1; // the enclosing "[" of the data array
  private readonly maxRows: number;
  private readonly maxBytes: number;

  constructor(
    limits: BatchLimits,
    private readonly rowOf: (item: T) => readonly Cell[],
  ) {
    if (!(limits.maxRows >= 1)) throw new RangeError(`maxRows must be at least 1, got ${limits.maxRows}`);
    this.maxRows = Math.min(Math.floor(limits.maxRows), MAX_ROWS_PER_REQUEST);
    this.maxBytes = limits.maxBytes;
  }

  add(item: T): T[] | undefined {
    const size = rowJsonBytes(this.rowOf(item)) + 1; // plus "," or "]"
    let completed: T[] | undefined;
    if (this.items.length > 0 && (this.items.length >= this.maxRows || this.bytes + size > this.maxBytes)) {
      completed = this.take();
    }
    this.items.push(item);
    this.bytes += size;
    return completed;
  }

  /** The partly filled batch, if any. */
  flush(): T[] | undefined {
    return this.items.length > 0 ? this.take() : undefined;
  }

  private take(): T[] {
    const batch = this.items;
    this.items = [];
    this.bytes = 1;
    return batch;
  }
}

// Characters JSON.stringify escapes or that take more than one UTF-8 byte.
const NEEDS_EXACT_SIZE = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/;

/** Exact size of JSON.stringify(row) in UTF-8 bytes, with a fast path for plain ASCII cells (hashes). */
export function rowJsonBytes(row: readonly Cell[]): number {
  let bytes = 1 + Math.max(0, row.length - 1) + 1; // brackets and commas
  for (const cell of row) {
    if (typeof cell === 'number') bytes += JSON.stringify(cell).length;
    else if (NEEDS_EXACT_SIZE.test(cell)) bytes += Buffer.byteLength(JSON.stringify(cell));
    else bytes += cell.length + 2;
  }
  return bytes;
}
