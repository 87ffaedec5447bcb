import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const BUCKETS = 16;
/** Key prefixes per bucket buffer (8 bytes each). */
const BUFFER_KEYS = 4096;
/** Beyond this many prefixes, full buffers go to files in the work folder: a first sync of 100M keys must not hold 800 MB. */
const MEMORY_KEYS = 1_000_000;

/**
 * Tells whether a stream of key hashes (lowercase hex SHA-256, in no particular order) repeats one,
 * in bounded memory: the first 64 bits of each are kept (in the work folder once there are many),
 * then sorted bucket by bucket. Two different keys share 64 bits with odds of about 1 in 400,000 at
 * 10M keys; such a false alarm only costs a second, exact pass.
 */
export class KeyTally {
  private readonly buffers = Array.from({ length: BUCKETS }, () => new Uint32Array(BUFFER_KEYS * 2));
  private readonly filled = new Array<number>(BUCKETS).fill(0);
  private readonly kept: Uint32Array[][] = Array.from({ length: BUCKETS }, () => []);
  private readonly files: Array<string | undefined> = new Array<string | undefined>(BUCKETS).fill(undefined);
  private inMemory = 0;

  /** `memoryKeys`: how many prefixes stay in memory before the rest go to files in `dir`. */
  constructor(
    private readonly dir: string,
    private readonly memoryKeys = MEMORY_KEYS,
  ) {}

  add(pkHash: string): void {
    const bucket = hexDigit(pkHash.charCodeAt(0)) % BUCKETS;
    const buffer = this.buffers[bucket]!;
    const at = this.filled[bucket]! * 2;
    // Little-endian pairs: read back as one 64-bit value (the order does not matter, only equality).
    buffer[at] = hex32(pkHash, 8);
    buffer[at + 1] = hex32(pkHash, 0);
    if (++this.filled[bucket]! === BUFFER_KEYS) this.spill(bucket);
  }

  /** True when some key came twice (or, rarely, two keys share their first 64 bits). */
  hasRepeats(): boolean {
    for (let b = 0; b < BUCKETS; b++) {
      const parts: Uint32Array[] = [...this.kept[b]!, this.buffers[b]!.subarray(0, this.filled[b]! * 2)];
      const file = this.files[b];
      if (file) {
        const bytes = readFileSync(file);
        parts.unshift(new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
      }
      const total = parts.reduce((n, p) => n + p.length, 0);
      const all = new Uint32Array(total);
      let offset = 0;
      for (const p of parts) {
        all.set(p, offset);
        offset += p.length;
      }
      const keys = new BigUint64Array(all.buffer, 0, total / 2).sort();
      for (let i = 1; i < keys.length; i++) if (keys[i] === keys[i - 1]) return true;
    }
    return false;
  }

  dispose(): void {
    for (const f of this.files) if (f) rmSync(f, { force: true });
    this.files.fill(undefined);
  }

  private spill(bucket: number): void {
    const full = this.buffers[bucket]!;
    if (this.inMemory < this.memoryKeys) {
      this.kept[bucket]!.push(full.slice());
      this.inMemory += BUFFER_KEYS;
    } else {
      const file = (this.files[bucket] ??= join(this.dir, `keys-${bucket}.bin`));
      appendFileSync(file, new Uint8Array(full.buffer, full.byteOffset, full.byteLength));
    }
    this.filled[bucket] = 0;
  }
}

function hexDigit(code: number): number {
  return code <= 57 ? code - 48 : (code | 32) - 87;
}

/** Eight hex digits from `at`, as an unsigned 32-bit number. */
function hex32(text: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) v = (v << 4) | hexDigit(text.charCodeAt(i));
  return v >>> 0;
}
