import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../src/cli/progress.js';
import { emptyCounts } from '../../src/engine/types.js';
import type { EngineEvent } from '../../src/engine/index.js';

function capture(tty: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY: tty, columns: 160, rows: 40, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const events: EngineEvent[] = [
  { type: 'run_started', runId: 1 },
  { type: 'phase', phase: 'extract' },
  { type: 'progress', phase: 'extract', done: 1200 },
  { type: 'planned', counts: { ...emptyCounts(), extracted: 1200, added: 30, updated: 2, deleted: 5, unchanged: 1160, rejected: 3 }, toRemove: 5, toSend: 32 },
  { type: 'phase', phase: 'safeguards' },
  { type: 'phase', phase: 'remove', total: 5 },
  { type: 'progress', phase: 'remove', done: 5, total: 5 },
  { type: 'phase', phase: 'add', total: 32 },
  { type: 'progress', phase: 'add', done: 32, total: 32 },
];

describe('progress output', () => {
  it('prints plain lines with the plan when output is not a terminal', () => {
    const out = capture(false);
    const p = progressReporter('loyalty', { stream: out.stream });
    for (const e of events) p.onEvent(e);
    p.stop();
    expect(out.text()).toContain('loyalty: plan: added 30 · updated 2 · deleted 5 · unchanged 1,160 · rejected 3 → sending 5 removals, 32 rows');
    expect(out.text()).toContain('loyalty: adding (32 rows)');
    expect(out.text()).not.toContain('\u001b[');
  });

  it('draws a live table on a terminal: model read, plan, one bar per phase', () => {
    const out = capture(true);
    const p = progressReporter('loyalty', { stream: out.stream });
    for (const e of events) p.onEvent(e);
    p.stop();
    const text = out.text();
    expect(text).toMatch(/loyalty reading model\s+1200 rows/);
    expect(text).toMatch(/loyalty plan\s+added 30 · updated 2/);
    expect(text).toMatch(/loyalty removing\s+\[[^\]]+\] 5\/5 rows/);
    expect(text).toMatch(/loyalty adding\s+\[[^\]]+\] 32\/32 rows/);
  });

  it('is silent with quiet', () => {
    const out = capture(true);
    const p = progressReporter('loyalty', { stream: out.stream, quiet: true });
    for (const e of events) p.onEvent(e);
    p.stop();
    expect(out.text()).toBe('');
  });
});
