/**
 * A compact form of encoded records for crossing worker threads. Cloning thousands of small record objects
 * costs the receiving thread about as much as encoding them did; this form is one string holding every
 * 64-character hash back to back, one array for the unhashed cells, and only the few records that have drops.
 * The receiver slices the hashes out (V8 makes slices of a flat string without copying).
 */
import type { EncodedRecord } from './encoder.js';
import { isHashedKey, type MatchKey } from './keys.js';

export interface PackedRecords {
  count: number;
  /** Hashed cells in row-major order, 64 characters each; an empty cell is 64 spaces. */
  hashes: string;
  /** Unhashed cells (EXTERN_ID, MADID, LOOKALIKE_VALUE) in row-major order. */
  plain: Array<string | number>;
  /** Records with drops or a rejection: [row index, dropped, rejected, reasons]. */
  unusual: Array<[number, EncodedRecord['dropped'], boolean, string[]]>;
}

const HASH_LENGTH = 64;
const EMPTY_HASH = ' '.repeat(HASH_LENGTH);

export function packRecords(schema: readonly MatchKey[], records: EncodedRecord[]): PackedRecords {
  const hashed = schema.map((k) => isHashedKey(k));
  const hashes: string[] = [];
  const plain: Array<string | number> = [];
  const unusual: PackedRecords['unusual'] = [];
  for (let r = 0; r < records.length; r++) {
    const record = records[r]!;
    for (let i = 0; i < hashed.length; i++) {
      const cell = record.cells[i]!;
      if (hashed[i]) hashes.push(cell === '' ? EMPTY_HASH : (cell as string));
      else plain.push(cell);
    }
    if (record.rejected || record.dropped.length > 0) unusual.push([r, record.dropped, record.rejected, record.reasons]);
  }
  return { count: records.length, hashes: hashes.join(''), plain, unusual };
}

export function unpackRecords(schema: readonly MatchKey[], packed: PackedRecords): EncodedRecord[] {
  const hashed = schema.map((k) => isHashedKey(k));
  const records = new Array<EncodedRecord>(packed.count);
  const { hashes, plain } = packed;
  let h = 0;
  let p = 0;
  for (let r = 0; r < packed.count; r++) {
    const cells = new Array<string | number>(hashed.length);
    for (let i = 0; i < hashed.length; i++) {
      if (hashed[i]) {
        cells[i] = hashes.charCodeAt(h) === 32 ? '' : hashes.slice(h, h + HASH_LENGTH);
        h += HASH_LENGTH;
      } else {
        cells[i] = plain[p++]!;
      }
    }
    records[r] = { cells, dropped: [], rejected: false, reasons: [] };
  }
  for (const [r, dropped, rejected, reasons] of packed.unusual) {
    const record = records[r]!;
    record.dropped = dropped;
    record.rejected = rejected;
    record.reasons = reasons;
  }
  return records;
}
