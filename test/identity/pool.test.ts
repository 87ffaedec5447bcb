import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEncoderPool, createRecordEncoder, MappingError, type Mapping } from '../../src/identity/index.js';

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

  it('gives the same records as encode(), in order, across concurrent batches', async () => {
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 2 });
    close = () => pool.close();
    const local = createRecordEncoder(MAPPING, OPTIONS);
    expect(pool.schema).toEqual(local.schema);
    const batches = [rows(3000), rows(10), rows(0), rows(1200).reverse()];
    const results = await Promise.all(batches.map((b) => pool.encodeBatch(b)));
    batches.forEach((batch, i) => expect(results[i]).toEqual(batch.map((r) => local.encode(r))));
  });

  it('encodes rows that cannot cross threads in the calling thread', async () => {
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 1 });
    close = () => pool.close();
    const odd = [{ id: 'a', email: () => 'x' }, { id: Symbol('s') }];
    const local = createRecordEncoder(MAPPING, OPTIONS);
    expect(await pool.encodeBatch(odd as Record<string, unknown>[])).toEqual(odd.map((r) => local.encode(r as Record<string, unknown>)));
  });

  it('throws MappingError up front and rejects batches after close', async () => {
    expect(() => createEncoderPool({ NOPE: 'x' } as Mapping, {})).toThrow(MappingError);
    const pool = createEncoderPool(MAPPING, OPTIONS, { threads: 1 });
    await pool.close();
    await expect(pool.encodeBatch(rows(5))).rejects.toThrow(/closed/);
  });
});
