import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEncoderPool, createRecordEncoder, MappingError, type Mapping } from '../../src/identity/index.js';
import { balancedShare, callerShare, createShareTuner, MODEL_COSTS } from '../../src/identity/share.js';
import { packedRecordReader, packedRowReader, packRecords, packRows, unpackRecords } from '../../src/identity/wire.js';

// The workers run the compiled encoder (dist/); CI builds before testing, a fresh clone may not have.
beforeAll(() => {
  if (!existsSync(new URL('../../dist/identity/encoderWorker.js', import.meta.url))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: new URL('../..', import.meta.url), stdio: 'inherit' });
  }
});

const MAPPING: Mapping = { EXTERN_ID: 'id', EMAIL: 'email', PHONE: 'phone', FN: 'fn', COUNTRY: 'country', DOBY: 'born' };
const OPTIONS = { defaultPhoneCountry: 'US', now: new Date('2026-01-01T00:00:00Z') };

function rows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i % 7 === 0 ? null : `crm-${i}`,
    email: i % 5 === 0 ? 'broken' : ` User${i}@Example.com `,
    phone: i % 3 === 0 ? `020 7183 ${String(1000 + (i % 9000))}` : `(650) 555-${String(1000 + (i % 9000))}`,
    fn: i % 11 === 0 ? 42 : `Zoë-${i}`,
    country: i % 3 === 0 ? 'United Kingdom' : 'usa',
    born: i % 4 === 0 ? new Date(Date.UTC(1950 + (i % 60), i % 12, 1 + (i % 28))) : 10n ** 3n + BigInt(i % 900),
  }));
}

describe('createEncoderPool', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it.each([2, 3])('gives the same records as encode(), in order, across concurrent batches (%i threads)', async (threads) => {
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads });
    close = () => pool.close();
    const local = createRecordEncoder(MAPPING, OPTIONS);
    expect(pool.schema).toEqual(local.schema);
    // Several rounds with every batch released, so later batches are written into recycled hash buffers.
    for (let round = 0; round < 3; round++) {
      const batches = [rows(3000), rows(10), rows(0), rows(1200).reverse(), rows(600)];
      const results = await Promise.all(batches.map((b) => pool.encodeBatch(b)));
      batches.forEach((batch, i) => {
        const expected = batch.map((r) => local.encode(r));
        expect(results[i]!.count).toBe(batch.length);
        expect(results[i]!.records()).toEqual(expected);
        // One record at a time, across the parts the threads encoded (drops and rejections included).
        if (round === 0) expect(expected.map((_, at) => results[i]!.record(at))).toEqual(expected);
      });
      for (const result of results) result.release();
    }
  });

  it('refuses to read a released batch, whose buffers may already hold a later batch', async () => {
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 2 });
    close = () => pool.close();
    const batch = await pool.encodeBatch(rows(1000));
    expect(() => batch.record(1000)).toThrow(RangeError);
    expect(batch.record(0)).toEqual(createRecordEncoder(MAPPING, OPTIONS).encode(rows(1)[0]!));
    batch.release();
    expect(() => batch.record(0)).toThrow(/released/);
    expect(() => batch.records()).toThrow(/released/);
    const next = await pool.encodeBatch(rows(1000).reverse());
    expect(next.records()).toEqual(rows(1000).reverse().map((r) => createRecordEncoder(MAPPING, OPTIONS).encode(r)));
  });

  it('encodes rows that cannot cross threads in the calling thread', async () => {
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 2 });
    close = () => pool.close();
    // Enough rows that the pool hands them to its worker.
    const odd = [{ id: 'a', email: () => 'x' }, { id: Symbol('s') }, ...rows(1000)];
    const local = createRecordEncoder(MAPPING, OPTIONS);
    expect((await pool.encodeBatch(odd as Record<string, unknown>[])).records()).toEqual(odd.map((r) => local.encode(r as Record<string, unknown>)));
  });

  it('throws MappingError up front and rejects batches after close', async () => {
    expect(() => createEncoderPool({ NOPE: 'x' } as Mapping, {})).toThrow(MappingError);
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 1 });
    await pool.close();
    await expect(pool.encodeBatch(rows(5))).rejects.toThrow(/closed/);
  });
});

describe('the thread wire format', () => {
  const local = createRecordEncoder(MAPPING, OPTIONS);
  const columns = [...new Set(Object.values(MAPPING))] as string[];

  it('round-trips rows column by column, nulls, numbers, dates and bigints included', () => {
    const batch = [...rows(50), null as unknown as Record<string, unknown>, {}];
    const packed = structuredClone(packRows(columns, batch));
    const rowAt = packedRowReader(columns, packed);
    for (let i = 0; i < batch.length; i++) {
      expect(local.encode(rowAt(i))).toEqual(local.encode(batch[i]!));
    }
  });

  it('round-trips records, empty hashed cells, drops and rejections, reusing a spare buffer', () => {
    const batch = rows(300);
    const records = batch.map((r) => local.encode(r));
    expect(records.some((r) => r.dropped.length > 0)).toBe(true);
    expect(records.some((r) => r.cells.includes(''))).toBe(true);
    const first = packRecords(local.schema, records.length, (i) => records[i]!);
    expect(unpackRecords(local.schema, structuredClone(first))).toEqual(records);
    const recordAt = packedRecordReader(local.schema, first);
    records.forEach((record, i) => expect(recordAt(i)).toEqual(record));
    // A smaller batch written into the first one's buffer: the tail left from before is ignored.
    const fewer = records.slice(0, 40).reverse();
    const second = packRecords(local.schema, fewer.length, (i) => fewer[i]!, first.hashes);
    expect(second.hashes).toBe(first.hashes);
    expect(unpackRecords(local.schema, second)).toEqual(fewer);
  });

  it('refuses a hashed cell that is not a digest, instead of shifting every later hash', () => {
    const record = { ...local.encode(rows(1)[0]!) };
    record.cells = record.cells.map((c, i) => (local.schema[i] === 'EMAIL' ? 'short' : c));
    expect(() => packRecords(local.schema, 1, () => record)).toThrow(/EMAIL cell is not a SHA-256/);
  });

  it('gives the calling thread a share that shrinks as workers grow', () => {
    expect(callerShare(0)).toBe(1);
    expect(callerShare(1)).toBeGreaterThan(0.45);
    expect(callerShare(1)).toBeLessThan(0.55);
    expect(callerShare(3)).toBeLessThan(callerShare(1));
    expect(callerShare(16)).toBe(0);
  });
});

describe('the caller\'s share, learned', () => {
  it('balances both sides for the costs given', () => {
    const costs = { caller: 2, handoff: 0.5, worker: 3 };
    for (const workers of [1, 2, 3]) {
      const s = balancedShare(costs, workers);
      const callerTime = s * costs.caller + (1 - s) * costs.handoff;
      const workerTime = ((1 - s) / workers) * costs.worker;
      expect(callerTime).toBeCloseTo(workerTime, 10);
    }
    expect(balancedShare({ caller: 1, handoff: 0, worker: 0 }, 1)).toBe(0);
    expect(balancedShare(MODEL_COSTS, 1)).toBe(callerShare(1));
  });

  it('starts from the model and follows measured speeds once it has them all', () => {
    const tuner = createShareTuner(1);
    expect(tuner.share).toBe(callerShare(1));
    tuner.observe('caller', 100, 1000);
    tuner.observe('handoff', 20, 1000);
    expect(tuner.share).toBe(callerShare(1)); // no worker timing yet
    // The worker's core is twice as slow as the model says: the caller takes more.
    for (let i = 0; i < 30; i++) tuner.observe('worker', 230, 1000);
    const slowWorker = tuner.share;
    expect(slowWorker).toBeCloseTo(balancedShare({ caller: 0.1, handoff: 0.02, worker: 0.23 }, 1), 2);
    expect(slowWorker).toBeGreaterThan(callerShare(1));
    // Then the caller's core slows down: the share moves back towards the worker, gradually.
    tuner.observe('caller', 300, 1000);
    expect(tuner.share).toBeLessThan(slowWorker);
    expect(tuner.share).toBeGreaterThan(balancedShare({ caller: 0.3, handoff: 0.02, worker: 0.23 }, 1));
  });

  it('never leaves the workers without rows, however slow they look', () => {
    const tuner = createShareTuner(1);
    tuner.observe('caller', 10, 1000);
    tuner.observe('handoff', 1, 1000);
    tuner.observe('worker', 100_000, 1000);
    expect(tuner.share).toBe(0.9);
    tuner.observe('worker', Number.NaN, 1000);
    tuner.observe('worker', 5, 0);
    expect(tuner.share).toBe(0.9);
  });
});
