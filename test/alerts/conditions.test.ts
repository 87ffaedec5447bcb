// The pure side of the conditions: coverage and match-rate drops against the usual value, and the
// token's expiry in days.
import { describe, expect, it } from 'vitest';
import { measureDrops } from '../../src/alerts/index.js';
import { tokenFinding } from '../../src/alerts/conditions.js';
import type { RunRecord } from '../../src/state/index.js';

function run(id: number, counts: Record<string, unknown>): RunRecord {
  const at = new Date(Date.UTC(2026, 0, 1, 0, id));
  return { id, sync: 'loyalty', trigger: 'schedule', status: 'success', startedAt: at, finishedAt: at, counts, error: null, errorSamples: [] };
}
const coverage = (email: number, phone = 100) => ({ modelCoverage: { rows: 100, usable: { EMAIL: email, PHONE: phone } } });
const match = (rate: number) => ({ metaMatch: { received: 1000, matched: rate * 10, invalid: 0, rate: rate / 100, at: '2026-01-01T00:00:00Z' } });

describe('measureDrops', () => {
  it("compares each key's coverage with its median over the earlier runs (newest first)", () => {
    const runs = [run(4, coverage(60)), run(3, coverage(95)), run(2, coverage(90)), run(1, coverage(20))];
    expect(measureDrops(runs, 20)).toEqual([{ measure: 'EMAIL coverage', now: 60, usual: 90, points: 30, runId: 4 }]);
    expect(measureDrops(runs, 30)).toEqual([]);
  });

  it("compares Meta's match rate of the latest run Meta reported on, skipping runs without counts", () => {
    const runs = [run(5, {}), run(4, match(30)), run(3, {}), run(2, match(55)), run(1, match(60))];
    expect(measureDrops(runs, 20)).toEqual([{ measure: 'Meta match rate', now: 30, usual: 57.5, points: 27.5, runId: 4 }]);
  });

  it('needs two earlier runs to know what is usual', () => {
    expect(measureDrops([run(2, { ...coverage(10), ...match(1) }), run(1, { ...coverage(100), ...match(90) })], 5)).toEqual([]);
  });
});

describe('tokenFinding', () => {
  const now = new Date('2026-05-01T00:00:00Z');
  it('is active within the days asked for, or when Meta rejects the token, and says so', () => {
    const soon = tokenFinding({ connection: 'default', valid: true, expiresAt: new Date('2026-05-02T12:00:00Z') }, 7, now);
    expect(soon).toMatchObject({ active: true, subject: 'connection:default', firing: 'The Meta token of connection "default" expires in 1 day (2026-05-02T12:00:00.000Z)' });
    expect(tokenFinding({ connection: 'default', valid: true, expiresAt: new Date('2026-06-01T00:00:00Z') }, 7, now).active).toBe(false);
    expect(tokenFinding({ connection: 'default', valid: true }, 7, now)).toMatchObject({ active: false, resolved: 'The Meta token of connection "default" is valid again' });
    expect(tokenFinding({ connection: 'b', valid: false, reason: 'rejected' }, 7, now)).toMatchObject({ active: true, firing: 'The Meta token of connection "b" is no longer accepted by Meta' });
  });
});
