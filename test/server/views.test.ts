import { describe, expect, it } from 'vitest';
import { html } from '../../src/server/html.js';
import { Metrics } from '../../src/server/metrics.js';
import { runChart } from '../../src/server/views/chart.js';
import { runPage } from '../../src/server/views/pages.js';
import type { RunView } from '../../src/server/index.js';

const frame = { session: undefined, loginRequired: false };

function run(over: Partial<RunView> = {}): RunView {
  return {
    id: 3,
    sync: 'loyalty',
    trigger: 'api',
    status: 'failed',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:02.000Z',
    durationMs: 2000,
    counts: { extracted: 10, added: 4, deleted: 1, failed: 2, rejectedByReason: { 'EMAIL: not an email': 3 }, warnings: ['mapping changed'] },
    error: null,
    errorSamples: [{ pkHash: 'ab'.repeat(32), reason: 'batch refused' }],
    match: null,
    ...over,
  };
}

describe('HTML escaping', () => {
  it('escapes interpolated values but not nested fragments', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p title="${'"x"'}">${inner}${['<a>', 1]}</p>`.text).toBe('<p title="&quot;x&quot;"><b>&lt;i&gt;</b>&lt;a&gt;1</p>');
  });

  it('a run page never lets an error message or a sync name inject markup', () => {
    const page = runPage(frame, run({ sync: '<script>x</script>', error: '<img src=x onerror=alert(1)>' })).text;
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>x');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('EMAIL: not an email');
    expect(page).toContain('ab'.repeat(32));
  });
});

describe('run chart', () => {
  it('says there is nothing to chart before the first run', () => {
    expect(runChart([])).toContain('No runs yet');
  });

  it('draws a point per run and series, oldest first, with escaped tooltips', () => {
    const svg = runChart([
      { at: new Date('2026-01-02T00:00:00Z'), runId: 2, added: 5, removed: 1, failed: 0 },
      { at: new Date('2026-01-01T00:00:00Z'), runId: 1, added: 100, removed: 0, failed: 3 },
    ]);
    expect(svg.match(/<circle /g)).toHaveLength(6);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg.indexOf('run 1 ')).toBeLessThan(svg.indexOf('run 2 '));
    for (const tick of ['>0<', '>25<', '>50<', '>75<', '>100<']) expect(svg).toContain(tick); // 4 round steps
  });
});

describe('metrics', () => {
  it('renders the Prometheus text format with escaped labels', () => {
    const m = new Metrics();
    m.inc('audience_sync_runs_total', { sync: 'a"b', status: 'success' });
    m.recordGraphEvent({ type: 'throttle', method: 'POST', path: 'x', waitMs: 1500, code: 80003 });
    m.recordGraphEvent({ type: 'retry', method: 'POST', path: 'x', attempt: 1, delayMs: 10, code: 2, reason: 'transient' });
    const text = m.render();
    expect(text).toContain('audience_sync_runs_total{sync="a\\"b",status="success"} 1');
    expect(text).toContain('audience_sync_meta_errors_total{code="80003"} 1');
    expect(text).toContain('audience_sync_meta_errors_total{code="2"} 1');
    expect(text).toContain('audience_sync_meta_throttle_wait_seconds_total 1.500');
    expect(text).toMatch(/^# TYPE audience_sync_runs_total counter$/m);
  });
});
