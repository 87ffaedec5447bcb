// serve picks up Meta's match counts in the background, without another run, and shows them in the
// API and in /metrics; the run itself never waits for Meta.
import { afterEach, describe, expect, it } from 'vitest';
import { serveWorld, type ServedWorld } from './helpers.js';

let s: ServedWorld | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await read();
    if (done(v)) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("Meta's match counts in serve", () => {
  it('are recorded in the background once Meta has processed the upload, then shown by the API and /metrics', async () => {
    const served = (s = await serveWorld({ rows: 40, server: { matchCheckMs: 20 } }));
    const emu = served.world.emulator.control;
    emu.setFlags({ sessionProcessingMs: 10 * 60_000, matchRate: 0.5, matchRates: { PHONE: 0 } });

    const started = await served.api('POST', '/api/syncs/loyalty/runs');
    const run = await served.waitForRun(started.body.runId);
    expect(run.status).toBe('success');
    expect(run.match).toBeNull();
    expect(run.counts.uploadSessions).toHaveLength(1);

    // Meta is still processing: several background passes go by and nothing is recorded.
    await until(() => Promise.resolve(emu.requestLog().filter((e) => e.path.endsWith('/sessions')).length), (n) => n >= 2, 'two background reads');
    expect((await served.api('GET', `/api/runs/${run.id}`)).body.match).toBeNull();

    emu.advanceClock(10 * 60_000);
    const picked = await until(() => served.api('GET', `/api/runs/${run.id}`), (r) => r.body.match !== null, 'the background pick-up');
    const match = picked.body.match as { received: number; matched: number; invalid: number; rate: number };
    expect(match.received).toBe(40);
    expect(match.matched).toBeGreaterThan(5);
    expect(match.matched).toBeLessThan(35);
    expect(match.rate).toBeCloseTo(match.matched / 40);
    // No second run did it.
    expect((await served.api('GET', '/api/syncs/loyalty/runs')).body.runs).toHaveLength(1);

    const sync = (await served.api('GET', '/api/syncs/loyalty')).body;
    expect(sync.match).toMatchObject({ latest: { runId: run.id, received: 40, matched: match.matched }, usualRate: null, low: false, warning: null });

    const metrics = (await served.api('GET', '/metrics')).body as string;
    expect(metrics).toContain('audience_sync_meta_received_rows{sync="loyalty"} 40');
    expect(metrics).toContain(`audience_sync_meta_matched_rows{sync="loyalty"} ${match.matched}`);
    expect(metrics).toContain(`audience_sync_meta_match_rate{sync="loyalty"} ${match.rate.toFixed(3)}`);
  });
});
