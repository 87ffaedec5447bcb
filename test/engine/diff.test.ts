import { describe, expect, it } from 'vitest';
import { classify, failureWrite, hasStaleIdentifier, planRecord, successWrite, type Classified } from '../../src/engine/diff.js';
import type { EncodedRecord } from '../../src/identity/index.js';
import type { StoredRecord, SyncMode } from '../../src/engine/types.js';

const enc = (cells: Array<string | number>, rejected = false): EncodedRecord => ({ cells, dropped: [], rejected, reasons: rejected ? ['no usable identifier'] : [] });
const ctx = (cells: Array<string | number>, rejected = false) => {
  let encodes = 0;
  return {
    fingerprint: (row: Record<string, unknown>) => String(row.fp),
    encode: () => {
      encodes++;
      return enc(cells, rejected);
    },
    maxAttempts: 3,
    get encodes() {
      return encodes;
    },
  };
};
const rec = (over: Partial<StoredRecord> = {}): StoredRecord => {
  const r = { pk: 'k', fingerprint: 'f1', cells: ['id1', 'h1'] as StoredRecord['cells'], status: 'synced' as const, attempts: 0, lastError: null, ...over };
  return { ...r, hasCells: r.cells !== null };
};

describe('classify', () => {
  it('does not encode an unchanged synced row', () => {
    const c = ctx(['id1', 'h1']);
    expect(classify({ fp: 'f1' }, rec(), c).change).toBe('unchanged');
    expect(c.encodes).toBe(0);
  });
  it('treats a raw change that normalizes to the same cells as unchanged', () => {
    expect(classify({ fp: 'f2' }, rec(), ctx(['id1', 'h1'])).change).toBe('unchanged');
  });
  it('finds added, updated, deleted, retry, rejected and exhausted records', () => {
    expect(classify({ fp: 'f1' }, undefined, ctx(['id1', 'h1'])).change).toBe('added');
    expect(classify({ fp: 'f2' }, rec(), ctx(['id1', 'h2'])).change).toBe('updated');
    expect(classify(undefined, rec(), ctx([])).change).toBe('deleted');
    expect(classify({ fp: 'f1' }, rec({ status: 'pending', attempts: 1 }), ctx(['id1', 'h1'])).change).toBe('retry');
    expect(classify({ fp: 'f2' }, rec(), ctx(['', ''], true)).change).toBe('rejected');
    expect(classify({ fp: 'f1' }, rec({ status: 'failed', attempts: 3 }), ctx(['id1', 'h1'])).change).toBe('failed');
    // New data gives an exhausted record a fresh start.
    expect(classify({ fp: 'f9' }, rec({ status: 'failed', attempts: 3 }), ctx(['id1', 'h9'])).change).toBe('updated');
  });
});

describe('planRecord', () => {
  const cls = (change: Classified['change'], cells: Array<string | number> = ['id1', 'h2'], fingerprint = 'f2'): Classified => ({ change, fingerprint, encoded: enc(cells) });
  const modes: SyncMode[] = ['upsert', 'delete', 'mirror', 'replace'];

  it('upsert never removes and delete never adds', () => {
    for (const change of ['added', 'updated', 'retry', 'deleted', 'rejected', 'unchanged'] as const) {
      expect(planRecord('upsert', 'k', cls(change), rec(), { staleRemoval: true }).remove).toBeUndefined();
      expect(planRecord('delete', 'k', cls(change), rec(), { staleRemoval: true }).deliver).toBeUndefined();
    }
  });

  it('mirror removes a departed record with the cells it was sent with, then forgets it', () => {
    const plan = planRecord('mirror', 'k', { change: 'deleted' }, rec(), { staleRemoval: true });
    expect(plan.remove?.c).toEqual(['id1', 'h1']);
    expect(successWrite(plan.remove!)).toEqual({ op: 'delete', pk: 'k' });
  });

  it('mirror takes a stale identifier out before adding the new one', () => {
    const plan = planRecord('mirror', 'k', cls('updated', ['id1', 'h2']), rec(), { staleRemoval: true });
    expect(plan.remove?.c).toEqual(['id1', 'h1']);
    expect(successWrite(plan.remove!)).toMatchObject({ cells: null, status: 'pending' });
    expect(plan.deliver?.c).toEqual(['id1', 'h2']);
    expect(successWrite(plan.deliver!)).toMatchObject({ fingerprint: 'f2', cells: ['id1', 'h2'], status: 'synced', attempts: 0 });
    // A newly filled key is no stale identifier.
    expect(planRecord('mirror', 'k', cls('updated', ['id1', 'h1', 'x'].slice(0, 2)), rec({ cells: ['id1', ''] }), { staleRemoval: true }).remove).toBeUndefined();
  });

  it('replace re-sends unchanged rows from their stored cells and forgets departed ones after the swap', () => {
    expect(planRecord('replace', 'k', { change: 'unchanged', fingerprint: 'f1' }, rec(), { staleRemoval: true }).deliver?.c).toEqual(['id1', 'h1']);
    expect(planRecord('replace', 'k', { change: 'deleted' }, rec(), { staleRemoval: true }).afterReplace).toEqual({ op: 'delete', pk: 'k' });
  });

  it('counts failed attempts against the same data and marks the record failed at maxAttempts', () => {
    const plan = planRecord('mirror', 'k', cls('retry', ['id1', 'h1'], 'f1'), rec({ status: 'pending', attempts: 2, cells: null }), { staleRemoval: true });
    expect(failureWrite('k', plan.deliver!.f!, 'boom', 3)).toMatchObject({ status: 'failed', attempts: 3, lastError: 'boom' });
    expect(failureWrite('k', plan.deliver!.f!, 'boom', 5)).toMatchObject({ status: 'pending', attempts: 3 });
  });

  it('plans something sensible for every mode and change', () => {
    for (const mode of modes) for (const change of ['added', 'updated', 'retry', 'deleted', 'rejected', 'unchanged', 'failed'] as const) {
      expect(() => planRecord(mode, 'k', cls(change), change === 'added' ? undefined : rec(), { staleRemoval: true })).not.toThrow();
    }
  });
});

describe('hasStaleIdentifier', () => {
  it('ignores lookalike values and newly filled cells', () => {
    expect(hasStaleIdentifier(['a', '', 1], ['a', 'b', 2])).toBe(false);
    expect(hasStaleIdentifier(['a', 'b'], ['a', 'c'])).toBe(true);
  });
});
