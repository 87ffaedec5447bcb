import type { StoredRecord } from './types.js';

/** Model rows carry `__pk`: the SHA-256 (hex) of the primary key's text form, or null for a null key. */
export const PK_FIELD = '__pk';

export type Joined =
  | { kind: 'pair'; pkHash: string; row: Record<string, unknown> | undefined; stored: StoredRecord | undefined }
  | { kind: 'null_pk' }
  | { kind: 'duplicate_pk'; pkHash: string; count: number; stored: StoredRecord | undefined };

/** Walks an async stream of chunks one item at a time, with one item of lookahead. */
class Cursor<T> {
  private chunk: T[] = [];
  private index = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<T[]>) {}

  async peek(): Promise<T | undefined> {
    while (this.index >= this.chunk.length) {
      if (this.done) return undefined;
      const next = await this.it.next();
      if (next.done) {
        this.done = true;
        return undefined;
      }
      this.chunk = next.value;
      this.index = 0;
    }
    return this.chunk[this.index];
  }

  async next(): Promise<T | undefined> {
    const item = await this.peek();
    if (item !== undefined) this.index++;
    return item;
  }
}

export class KeyOrderError extends Error {}

/**
 * Merge-joins the model (ordered by key hash) with the stored records (ordered by key hash), so a
 * diff of any size runs in constant memory. Duplicate keys in the model come out once, as
 * `duplicate_pk`; rows with a null key come out as `null_pk`. Keys out of order are a bug in the
 * source's ordering: fail loudly rather than diff wrongly (nothing has been sent at this point).
 */
export async function* joinByKey(
  model: AsyncIterable<Array<Record<string, unknown>>>,
  stored: AsyncIterable<StoredRecord[]>,
): AsyncGenerator<Joined> {
  const rows = new Cursor(model[Symbol.asyncIterator]());
  const records = new Cursor(stored[Symbol.asyncIterator]());
  let previous = '';

  const nextKeyedRow = async (): Promise<{ pkHash: string; row: Record<string, unknown>; count: number } | 'null' | undefined> => {
    const row = await rows.next();
    if (row === undefined) return undefined;
    const pkHash = row[PK_FIELD];
    if (typeof pkHash !== 'string') return 'null';
    if (pkHash <= previous && previous !== '') {
      throw new KeyOrderError(`model rows arrived out of key order (${pkHash.slice(0, 12)} after ${previous.slice(0, 12)}); nothing was sent`);
    }
    previous = pkHash;
    let count = 1;
    for (let peeked = await rows.peek(); peeked !== undefined && peeked[PK_FIELD] === pkHash; peeked = await rows.peek()) {
      await rows.next();
      count++;
    }
    return { pkHash, row, count };
  };

  let current = await nextKeyedRow();
  for (;;) {
    if (current === 'null') {
      yield { kind: 'null_pk' };
      current = await nextKeyedRow();
      continue;
    }
    const record = await records.peek();
    if (current === undefined && record === undefined) return;
    if (current !== undefined && (record === undefined || current.pkHash < record.pk)) {
      yield emit(current, undefined);
      current = await nextKeyedRow();
    } else if (current === undefined || (record !== undefined && record.pk < current.pkHash)) {
      await records.next();
      yield { kind: 'pair', pkHash: record!.pk, row: undefined, stored: record };
    } else {
      await records.next();
      yield emit(current, record);
      current = await nextKeyedRow();
    }
  }
}

function emit(current: { pkHash: string; row: Record<string, unknown>; count: number }, stored: StoredRecord | undefined): Joined {
  return current.count > 1
    ? { kind: 'duplicate_pk', pkHash: current.pkHash, count: current.count, stored }
    : { kind: 'pair', pkHash: current.pkHash, row: current.row, stored };
}
