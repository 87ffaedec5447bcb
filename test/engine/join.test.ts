import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { joinByKey, KeyOrderError, type Joined } from '../../src/engine/join.js';
import type { StoredRecord } from '../../src/engine/types.js';

async function* chunks<T>(items: T[], size: number): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
const stored = (pk: string): StoredRecord => ({ pk, fingerprint: 'fp', cells: ['x'], hasCells: true, status: 'synced', attempts: 0, lastError: null });
const row = (pk: string | null) => ({ __pk: pk, v: pk });
async function collect(it: AsyncIterable<Joined>): Promise<Joined[]> {
  const out: Joined[] = [];
  for await (const j of it) out.push(j);
  return out;
}

describe('joinByKey', () => {
  it('pairs model rows with stored records by key, in order', async () => {
    const out = await collect(joinByKey(chunks([row('a'), row('c'), row('d')], 2), chunks([stored('b'), stored('c'), stored('e')], 1)));
    expect(out.map((j) => (j.kind === 'pair' ? `${j.pkHash}:${j.row ? 'm' : ''}${j.stored ? 's' : ''}` : j.kind))).toEqual([
      'a:m', 'b:s', 'c:ms', 'd:m', 'e:s',
    ]);
  });

  it('reports duplicate keys once with their count and null keys apart', async () => {
    const out = await collect(joinByKey(chunks([row('a'), row('a'), row('a'), row('b'), row(null)], 2), chunks([stored('a')], 5)));
    expect(out).toEqual([
      { kind: 'duplicate_pk', pkHash: 'a', count: 3, stored: stored('a') },
      { kind: 'pair', pkHash: 'b', row: row('b'), stored: undefined },
      { kind: 'null_pk' },
    ]);
  });

  it('fails loudly when the model is not in key order', async () => {
    await expect(collect(joinByKey(chunks([row('b'), row('a')], 5), chunks([], 1)))).rejects.toBeInstanceOf(KeyOrderError);
  });

  it('visits every key of either side exactly once (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 4 })), fc.uniqueArray(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 4 })), async (m, s) => {
        const model = [...m].sort();
        const state = [...s].sort();
        const out = await collect(joinByKey(chunks(model.map(row), 3), chunks(state.map(stored), 2)));
        const keys = out.map((j) => (j.kind === 'pair' ? j.pkHash : ''));
        expect(keys).toEqual([...new Set([...model, ...state])].sort());
        for (const j of out) {
          if (j.kind !== 'pair') continue;
          expect(j.row !== undefined).toBe(model.includes(j.pkHash));
          expect(j.stored !== undefined).toBe(state.includes(j.pkHash));
        }
      }),
      { numRuns: 200 },
    );
  });
});
