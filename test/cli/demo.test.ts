import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { DemoReport } from '../../src/demo/index.js';
import { runCli } from './run-cli.js';

describe('audience-sync demo (real process, no account, no network)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'audience-sync-demo-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('syncs a synthetic warehouse twice around a data change and reports counts, coverage and the audience', async () => {
    const work = join(dir, 'text');
    const r = await runCli(['demo', '--rows', '20000', '--dir', work], { timeoutMs: 120_000 });
    expect(r.stderr).toContain('demo: creating a DuckDB warehouse of 20,000 synthetic, messy customers');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/demo-customers: success in [\d.]+s \(mirror, audience \d+, run #1\)/);
    expect(out).toContain('extracted 20,000 · added 20,000 · updated 0 · deleted 0 · unchanged 0');
    expect(out).toMatch(/identifier coverage \(20,000 rows encoded\):\n\s+EXTERN_ID\s+100\.0%/);
    expect(out).toMatch(/EMAIL\s+9\d\.\d%\s+dropped: not an email address/);
    expect(out).toMatch(/data changed: [\d,]+ customers added, [\d,]+ updated \(new email\), [\d,]+ deleted/);
    expect(out).toMatch(/demo-customers: success in [\d.]+s \(mirror, audience \d+, run #2\)/);
    expect(out).toMatch(/audience \d+ "audience-sync demo: all customers": ~[\d,]+ people/);
    expect(out).toContain('operation status 200 Normal');
    expect(out).toMatch(/delivery status\s+200/);
    expect(out).toMatch(/EMAIL\s+9\d\.\d%\s+dropped: not an email address \([\d,]+\); no value in [\d,]+/);

    // Run 2's summary adds up on its own, in words: each total is the sum of its parts.
    const num = (s: string) => Number(s.replace(/,/g, ''));
    const delivered = num(/run #2\)\n.* delivered ([\d,]+)/.exec(out)![1]!);
    const model = /the model now has ([\d,]+) customers = ([\d,]+) before − ([\d,]+) who left \+ ([\d,]+) new; of them, ([\d,]+) are unchanged \(nothing sent\), ([\d,]+) new and ([\d,]+) with a new email/.exec(out)!;
    const [now, before, left, joined, unchanged, joinedAgain, changed] = model.slice(1).map(num);
    expect(now).toBe(before! - left! + joined!);
    expect(now).toBe(unchanged! + joinedAgain! + changed!);
    const sent = /sent to Meta: ([\d,]+) rows = ([\d,]+) removals \+ ([\d,]+) adds/.exec(out)!.slice(1).map(num);
    expect(sent[0]).toBe(delivered);
    expect(sent[0]).toBe(sent[1]! + sent[2]!);
    const removals = /removals: ([\d,]+) = ([\d,]+) customers who left \+ ([\d,]+) customers whose old email is taken out before the new one goes in/.exec(out)!.slice(1).map(num);
    expect(removals[0]).toBe(sent[1]);
    expect(removals[0]).toBe(removals[1]! + removals[2]!);
    expect(removals[1]).toBe(left);
    const adds = /adds: ([\d,]+) = ([\d,]+) new customers \+ ([\d,]+) customers with a new email/.exec(out)!.slice(1).map(num);
    expect(adds[0]).toBe(sent[2]);
    expect(adds[0]).toBe(adds[1]! + adds[2]!);
    expect([adds[1], adds[2]]).toEqual([joined, changed]);
    expect(out).toMatch(/time: read model \d+(ms|\.\ds) · plan .* · commit \d+(ms|\.\ds)\n/);
    expect(out).toMatch(/done in [\d.]+s \(warehouse [\d.]+s, run 1 [\d.]+s, data change [\d.]+s, run 2 [\d.]+s\)/);
    // Messy data is normalized, never echoed: no raw email reaches the output.
    expect(out).not.toMatch(/@example\.com/i);
    expect(existsSync(join(work, 'warehouse.duckdb'))).toBe(false);
  }, 120_000);

  it('prints a JSON report and keeps its files with --keep', async () => {
    const work = join(dir, 'json');
    const r = await runCli(['demo', '--rows', '20000', '--dir', work, '--json', '--keep'], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DemoReport;
    const [first, second] = report.runs;
    expect(first.status).toBe('success');
    expect(first.counts).toMatchObject({ extracted: 20_000, added: 20_000, delivered: 20_000, failed: 0 });
    const { added, updated, deleted, rows } = report.changes;
    for (const share of [added, updated, deleted]) {
      expect(share).toBeGreaterThanOrEqual(200); // 1%
      expect(share).toBeLessThanOrEqual(1000); // 5%
    }
    expect(second).toMatchObject({ status: 'success', counts: { extracted: rows, added, updated, deleted, unchanged: 20_000 - deleted - updated, failed: 0 } });
    // Run 2's sends explained: removals are departures plus changed emails, adds are new plus changed.
    const story = report.secondRun;
    expect(story.model).toEqual({ before: 20_000, left: deleted, joined: added, now: rows, unchanged: 20_000 - deleted - updated, changed: updated });
    expect(story.removals.departed).toBe(deleted);
    expect(story.removals.total).toBe(story.removals.departed + story.removals.identifierChanged);
    expect(story.removals.identifierChanged).toBeGreaterThan(0);
    expect(story.removals.identifierChanged).toBeLessThanOrEqual(updated);
    expect(story.adds).toEqual({ total: added + updated, joined: added, changed: updated, retried: 0 });
    expect(story.sent).toBe(story.removals.total + story.adds.total);
    expect(second.counts.delivered).toBe(story.sent);
    // Every row has an EXTERN_ID, so the audience holds exactly the model's rows.
    expect(report.members).toBe(rows);
    expect(report.audience).toMatchObject({ subtype: 'CUSTOM', approximateCountLowerBound: rows, operationStatus: { code: 200 } });
    expect(report.seconds.total).toBeLessThan(60);
    const config = loadConfig(join(work, 'audience-sync.yml'), { META_ACCESS_TOKEN: 'x' });
    expect(config.syncs[0]?.name).toBe('demo-customers');
    expect(existsSync(join(work, 'warehouse.duckdb'))).toBe(true);
  }, 120_000);

  it('refuses a row count it cannot use', async () => {
    const r = await runCli(['demo', '--rows', 'lots', '--dir', join(dir, 'bad')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected a whole number from 100 to 50000000');
  });
});
