/**
 * Compact forms of rows and encoded records for crossing worker threads. Cloning thousands of small objects
 * or strings costs the receiving thread about as much as encoding them did, so:
 * - rows go as one array of values per mapped column (no per-row objects, no repeated property names);
 * - records come back as the hex digits of every hash back to back in a transferred buffer (no copy, no
 *   string per hash to clone), one array for the unhashed cells, and only the few records that have drops.
 * The receiver decodes the hex buffer to one string and slices the hashes out of it (V8 makes slices of a flat
 * string without copying).
 */
import type { EncodedRecord } from './encoder.js';
import { isHashedKey, type MatchKey } from './keys.js';

/** A batch of rows: `columns[c][r]` is row r's value of the c-th column name. */
export interface PackedRows {
  count: number;
  columns: unknown[][];
}

export function packRows(columnNames: readonly string[], rows: readonly unknown[]): PackedRows {
  const columns = columnNames.map((name) =>
    rows.map((row) => (row !== null && typeof row === 'object' ? (row as Record<string, unknown>)[name] : undefined)),
  );
  return { count: rows.length, columns };
}

/**
 * A reader of packed rows by index. The row object it returns is reused from one call to the next, so the
 * caller must not keep it (the encoder does not).
 */
export function packedRowReader(columnNames: readonly string[], packed: PackedRows): (index: number) => Record<string, unknown> {
  const row: Record<string, unknown> = Object.fromEntries(columnNames.map((name) => [name, undefined]));
  return (index) => {
    for (let c = 0; c < columnNames.length; c++) row[columnNames[c]!] = packed.columns[c]![index];
    return row;
  };
}

export interface PackedRecords {
  count: number;
  /**
   * Hashed cells in row-major order as 64 hex digits each (latin1 bytes); an empty cell is 64 spaces. It may be
   * longer than that: the rest is unused.
   */
  hashes: ArrayBuffer;
  /** Unhashed cells (EXTERN_ID, MADID, LOOKALIKE_VALUE) in row-major order. */
  plain: Array<string | number>;
  /** Records with drops or a rejection: [row index, dropped, rejected, reasons]. */
  unusual: Array<[number, EncodedRecord['dropped'], boolean, string[]]>;
}

const HASH_LENGTH = 64;
const EMPTY_HASH = ' '.repeat(HASH_LENGTH);

/**
 * Buffer's own latin1 writer, which buffer.write(text, offset, 'latin1') calls after parsing its arguments;
 * called directly it packs hashes about a third faster. Node has it on every Buffer but leaves it out of the types.
 */
type LatinBuffer = Buffer & { latin1Write(text: string, offset: number): number };

/** Where record `index`'s cells are in a packed batch (hashed and unhashed cells come in fixed numbers per record). */
function layout(schema: readonly MatchKey[]) {
  const hashed = schema.map((k) => isHashedKey(k));
  const hashedCount = hashed.filter(Boolean).length;
  return { hashed, hashedCount, plainCount: hashed.length - hashedCount };
}

/**
 * Packs `count` records, asking for each in turn: a record is dropped as soon as it is packed, so the packer
 * never holds a batch of record objects (keeping thousands alive costs the garbage collector more than packing).
 * `spare` is a buffer from an earlier batch to write into when it is big enough: a fresh multi-megabyte buffer
 * costs a page fault per 4 KiB, which is a noticeable share of packing.
 */
export function packRecords(
  schema: readonly MatchKey[],
  count: number,
  recordAt: (index: number) => EncodedRecord,
  spare?: ArrayBuffer,
): PackedRecords {
  const { hashed } = layout(schema);
  const bytes = count * hashBytesPerRecord(schema);
  const hashes = (spare !== undefined && spare.byteLength >= bytes ? Buffer.from(spare) : Buffer.allocUnsafeSlow(bytes)) as LatinBuffer;
  const plain: Array<string | number> = [];
  const unusual: PackedRecords['unusual'] = [];
  let offset = 0;
  for (let r = 0; r < count; r++) {
    const record = recordAt(r);
    for (let i = 0; i < hashed.length; i++) {
      const cell = record.cells[i]!;
      if (!hashed[i]) plain.push(cell);
      // A hashed cell is '' or 64 hex digits; anything else would shift every later hash, so it is checked.
      else if (typeof cell === 'string' && cell.length === HASH_LENGTH) offset += hashes.latin1Write(cell, offset);
      else if (cell === '') offset += hashes.latin1Write(EMPTY_HASH, offset);
      else throw new Error(`A ${schema[i]} cell is not a SHA-256 hex digest.`);
    }
    if (record.rejected || record.dropped.length > 0) unusual.push([r, record.dropped, record.rejected, record.reasons]);
  }
  return { count, hashes: hashes.buffer as ArrayBuffer, plain, unusual };
}

/** The drops of record `index`, found by bisection: packRecords lists unusual records in row order. */
function unusualAt(packed: PackedRecords, index: number): PackedRecords['unusual'][number] | undefined {
  let lo = 0;
  let hi = packed.unusual.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (packed.unusual[mid]![0] < index) lo = mid + 1;
    else hi = mid;
  }
  const found = packed.unusual[lo];
  return found?.[0] === index ? found : undefined;
}

/**
 * Record `index` of a packed batch; `digitsAt(offset)` reads the 64 digits of a hashed cell at that byte offset
 * ('' for an empty cell). The layout is worked out once, so reading record by record costs no more per record.
 */
function recordReader(schema: readonly MatchKey[], packed: PackedRecords, digitsAt: (offset: number) => string): (index: number) => EncodedRecord {
  const { hashed, hashedCount, plainCount } = layout(schema);
  return (index) => {
    const cells = new Array<string | number>(hashed.length);
    let h = index * hashedCount * HASH_LENGTH;
    let p = index * plainCount;
    for (let i = 0; i < hashed.length; i++) {
      if (hashed[i]) {
        cells[i] = digitsAt(h);
        h += HASH_LENGTH;
      } else {
        cells[i] = packed.plain[p++]!;
      }
    }
    const unusual = unusualAt(packed, index);
    if (!unusual) return { cells, dropped: [], rejected: false, reasons: [] };
    const [, dropped, rejected, reasons] = unusual;
    return { cells, dropped, rejected, reasons };
  };
}

/** Every record of a packed batch. */
export function unpackRecords(schema: readonly MatchKey[], packed: PackedRecords): EncodedRecord[] {
  // One string for all the digits: the cells are slices of it, which V8 makes without copying.
  const digits = Buffer.from(packed.hashes).toString('latin1', 0, packed.count * hashBytesPerRecord(schema));
  const read = recordReader(schema, packed, (h) => (digits.charCodeAt(h) === 32 ? '' : digits.slice(h, h + HASH_LENGTH)));
  return Array.from({ length: packed.count }, (_, index) => read(index));
}

/** A reader of single records of a packed batch, by index, without decoding the others. */
export function packedRecordReader(schema: readonly MatchKey[], packed: PackedRecords): (index: number) => EncodedRecord {
  const bytes = Buffer.from(packed.hashes);
  return recordReader(schema, packed, (h) => (bytes[h] === 32 ? '' : bytes.toString('latin1', h, h + HASH_LENGTH)));
}

/** Bytes of hash digits a record of `schema` takes in a packed batch. */
export function hashBytesPerRecord(schema: readonly MatchKey[]): number {
  return layout(schema).hashedCount * HASH_LENGTH;
}
