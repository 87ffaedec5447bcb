// The short chaos run of CI: a fixed seed and step count, so the schedule (churn, faults, kill
// points) is the same on every run; the invariants are checked after every step.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatChaosReport, runChaos } from '../../src/chaos/index.js';

const BUILT_RUNNER = new URL('../../dist/chaos/runner.js', import.meta.url).pathname;

describe('chaos run (short)', () => {
  it('keeps every invariant through churn, every fault kind and SIGKILLs, then converges', async () => {
    expect(existsSync(BUILT_RUNNER), 'run `npm run build` first').toBe(true);
    const lines: string[] = [];
    const report = await runChaos({ seed: 20260517, steps: 8, initialRows: 400, log: (l) => lines.push(l) });
    const text = formatChaosReport(report);
    expect(report.violations, `${lines.join('\n')}\n${text}`).toEqual([]);
    expect(report.runs.total).toBeGreaterThanOrEqual(8);
    expect(report.kills).toBeGreaterThan(0);
    expect(report.runs.viaCli).toBeGreaterThan(0);
    expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(report.syncs.map((s) => [s.name, s.settled])).toEqual([['duck', true], ['pg', true]]);
    for (const s of report.syncs) expect(s.members).toBe(s.people);
    expect(report.checks.mirror.passed).toBeGreaterThan(0);
    expect(report.checks['no-pii'].passed).toBe(report.runs.total);
    // One model per warehouse failing on a raw value, run through serve.
    expect(report.checks['no-pii-served']).toEqual({ passed: 2, failed: 0 });
  }, 180_000);

  it('keeps every invariant with warehouse change detection: snapshots in DuckDB and PostgreSQL, kills landing in journal applications', async () => {
    expect(existsSync(BUILT_RUNNER), 'run `npm run build` first').toBe(true);
    const lines: string[] = [];
    const report = await runChaos({ seed: 20260517, steps: 8, initialRows: 400, changeDetection: 'warehouse', log: (l) => lines.push(l) });
    const text = formatChaosReport(report);
    expect(report.violations, `${lines.join('\n')}\n${text}`).toEqual([]);
    expect(report.changeDetection).toBe('warehouse');
    expect(report.kills).toBeGreaterThan(0);
    expect(report.syncs.map((s) => [s.name, s.settled])).toEqual([['duck', true], ['pg', true]]);
    for (const s of report.syncs) expect(s.members).toBe(s.people);
    expect(report.checks.mirror.passed).toBeGreaterThan(0);
    expect(report.checks['state-complete'].passed).toBeGreaterThan(0);
    expect(report.checks['no-pii'].passed).toBe(report.runs.total);
    expect(report.checks['no-pii-served']).toEqual({ passed: 2, failed: 0 });
  }, 240_000);
});
