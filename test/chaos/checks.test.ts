// The chaos run's own parts: the seeded schedule, the model's independent oracle, the PII scan and
// the invariant checks (each must be able to fail, or the chaos run proves nothing).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRecordEncoder } from '../../src/identity/index.js';
import {
  checkMirror,
  checkRetryBudget,
  checkStateComplete,
  checkTrackedMembers,
  createRng,
  FAULT_KINDS,
  findPii,
  pkHash,
  planStep,
  Population,
  type RecordView,
} from '../../src/chaos/index.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const MAPPING = { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', COUNTRY: 'country' };

function population(seed: number, people = 200): Population {
  const p = new Population('x', createRng(seed), { next: 0 });
  p.churn({ adds: people, readds: 0, updates: 0, cosmetic: 0, removes: 0, nullKeys: 0 });
  return p;
}

describe('schedule', () => {
  it('is a pure function of the seed', () => {
    const plans = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, (_, i) => planStep(rng, i, ['duck', 'pg']));
    };
    expect(plans(42)).toEqual(plans(42));
    expect(plans(42)).not.toEqual(plans(43));
  });

  it('reaches every fault kind and both kill kinds, and keeps minute-long throttles away from the real CLI', () => {
    const rng = createRng(7);
    const plans = Array.from({ length: 300 }, (_, i) => planStep(rng, i, ['duck']));
    const kinds = new Set(plans.flatMap((p) => p.faults?.kinds ?? []));
    expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    expect(new Set(plans.map((p) => p.kill.kind))).toEqual(new Set(['none', 'timer', 'users-request']));
    expect(plans.some((p) => p.via === 'cli')).toBe(true);
    expect(plans.filter((p) => p.via === 'cli').some((p) => p.faults?.kinds.includes('throttle'))).toBe(false);
  });
});

describe('model oracle', () => {
  it("expects exactly the hashes the identity code produces, through churn and cosmetic changes", () => {
    const p = population(3);
    p.churn({ adds: 20, readds: 3, updates: 40, cosmetic: 40, removes: 30, nullKeys: 2 });
    const encoder = createRecordEncoder(MAPPING, { defaultPhoneCountry: 'US' });
    const expected = p.expected();
    const rows = p.rows();
    expect(rows.filter((r) => r.user_id === null)).toHaveLength(2);
    const keyed = rows.filter((r) => r.user_id !== null);
    expect(keyed.map((r) => r.user_id).sort()).toEqual([...expected.keys()].sort());
    for (const row of keyed) {
      const encoded = encoder.encode(row as unknown as Record<string, unknown>);
      const want = expected.get(row.user_id!)!;
      expect(encoded.dropped, row.user_id!).toEqual([]);
      expect([encoded.cells[0], encoded.cells[1], encoded.cells[2]]).toEqual([want.externId, want.emailHash, want.phoneHash]);
    }
    // No two people ever share an email (the emulator would merge them into one member).
    const emails = keyed.map((r) => r.email.trim().toLowerCase());
    expect(new Set(emails).size).toBe(emails.length);
  });
});

describe('PII scan', () => {
  const p = population(5, 20);
  const row = p.rows()[3]!;
  const needles = p.piiNeedles();

  it('finds raw emails, phones and names in any formatting, amid binary noise', () => {
    const noise = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256)).toString('latin1');
    const text = `${noise}${row.email.toUpperCase()}\u0000${noise}tel:${row.phone}|${noise}"${row.first_name}"`;
    const kinds = findPii(text, needles).map((h) => h.kind).sort();
    expect(kinds).toEqual(['email', 'name', 'phone']);
    const digits = row.phone.replace(/\D/g, '').slice(-10);
    expect(findPii(`x${digits.slice(0, 3)}-${digits.slice(3, 6)}-${digits.slice(6)}x`, needles)).toHaveLength(1);
  });

  it('finds them in JSON log lines and HTML pages, where escapes hide where a token starts', () => {
    const email = row.email.trim().toLowerCase();
    expect(findPii(JSON.stringify({ error: `failed\n${email}` }), needles).map((h) => h.kind)).toEqual(['email']);
    expect(findPii(`<td>it&#39;s ${row.first_name}&amp;${email}</td>`, needles).map((h) => h.kind).sort()).toEqual(['email', 'name']);
  });

  it('does not mistake hashes of the same values for raw data, nor report the values themselves', () => {
    const hashed = p.rows().map((r) => [sha(r.email.trim().toLowerCase()), sha(r.phone), sha(r.first_name.toLowerCase()), r.user_id]).flat().join(',');
    expect(findPii(hashed, needles)).toEqual([]);
    const hits = findPii(row.email, needles);
    expect(hits).toHaveLength(1);
    expect(JSON.stringify(hits)).not.toContain(row.email.trim().toLowerCase());
  });
});

describe('invariant checks', () => {
  const p = population(9, 5);
  const expected = p.expected();
  const members = [...expected.values()].map((m) => ({ EXTERN_ID: m.externId, EMAIL: m.emailHash, PHONE: m.phoneHash, FN: 'f', COUNTRY: 'c' }));
  const synced = (key: string): RecordView => ({ pk: pkHash(key), status: 'synced', attempts: 0, hasCells: true });
  const keys = [...expected.keys()];

  it('mirror: passes on the exact audience, fails on a missing, extra, stale or duplicated member', () => {
    expect(checkMirror(expected, members)).toEqual([]);
    expect(checkMirror(expected, members.slice(1))[0]).toMatch(/1 model rows missing/);
    expect(checkMirror(expected, [...members, { EXTERN_ID: 'ghost' }])[0]).toMatch(/not in the model: ghost/);
    expect(checkMirror(expected, [{ ...members[0]!, EMAIL: sha('old') }, ...members.slice(1)])[0]).toMatch(/outdated/);
    expect(checkMirror(expected, [...members, members[0]!]).join()).toMatch(/held by several members/);
  });

  it('state-complete: every model key synced, nothing left over', () => {
    expect(checkStateComplete(keys, keys.map(synced))).toEqual([]);
    expect(checkStateComplete(keys, keys.slice(1).map(synced))[0]).toMatch(/no state record/);
    expect(checkStateComplete(keys, [...keys.slice(1).map(synced), { ...synced(keys[0]!), status: 'pending' }])[0]).toMatch(/not synced/);
    expect(checkStateComplete(keys.slice(1), keys.map(synced))[0]).toMatch(/no longer in the model/);
  });

  it('retry-budget: pending within the budget, failed only once it is used up', () => {
    const r = (status: RecordView['status'], attempts: number): RecordView => ({ pk: pkHash(`${status}${attempts}`), status, attempts, hasCells: true });
    expect(checkRetryBudget([r('pending', 4), r('failed', 5), r('synced', 0)], 5)).toEqual([]);
    expect(checkRetryBudget([r('pending', 5)], 5)[0]).toMatch(/still pending/);
    expect(checkRetryBudget([r('failed', 2)], 5)[0]).toMatch(/before using/);
  });

  it('tracked-members: a member that left the model must still be tracked with its cells', () => {
    const gone = keys[0]!;
    const stillThere = new Set(keys.slice(1));
    expect(checkTrackedMembers(members, stillThere, keys.map(synced))).toEqual([]);
    expect(checkTrackedMembers(members, stillThere, keys.slice(1).map(synced))[0]).toMatch(new RegExp(`not tracked.*${gone}`));
    expect(checkTrackedMembers(members, stillThere, [{ ...synced(gone), hasCells: false }, ...keys.slice(1).map(synced)])).toHaveLength(1);
  });
});
