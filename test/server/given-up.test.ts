// The API side of records given up (they used up their attempts) and of run timings, over HTTP
// against a real world: DuckDB, the emulator, SQLite state, `serve` on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveWorld, type ServedWorld } from './helpers.js';

let s: ServedWorld;
beforeAll(async () => {
  s = await serveWorld({ rows: 25, world: { sync: { maxAttempts: 1, batchRows: 5 } } });
});
afterAll(() => s?.close());

describe('given-up records and timings in the API', () => {
  it('shows the records given up on the sync, and POST /retry puts them back in the queue', async () => {
    // Meta finds 5 rows invalid: with maxAttempts 1 those records are given up.
    s.world.emulator.control.setFlags({ invalidCells: ['u0', 'u1', 'u2', 'u3', 'u4'] });
    const refused = await s.api('POST', '/api/syncs/loyalty/runs');
    const run = await s.waitForRun(refused.body.runId);
    s.world.emulator.control.setFlags({ invalidCells: [] });
    expect(run.status).toBe('partial');

    const sync = (await s.api('GET', '/api/syncs/loyalty')).body;
    expect(sync.givenUp).toMatchObject({ count: 5, maxAttempts: 1, reasons: [{ count: 5, reason: expect.stringMatching(/invalid/) }] });
    expect(sync.givenUp.samples).toHaveLength(5);
    for (const sample of sync.givenUp.samples) {
      expect(sample).toEqual({ pkHash: expect.stringMatching(/^[0-9a-f]{64}$/), externId: expect.stringMatching(/^u\d+$/), reason: expect.stringMatching(/invalid/), attempts: 1 });
    }
    expect(JSON.stringify(sync)).not.toMatch(/example\.com|650 ?2/i);
    expect((await s.api('GET', '/api/syncs')).body.syncs[0].givenUp.count).toBe(5);

    const retried = await s.api('POST', '/api/syncs/loyalty/retry');
    expect(retried).toMatchObject({ status: 200, body: { sync: 'loyalty', requeued: 5 } });
    expect((await s.api('GET', '/api/syncs/loyalty')).body.givenUp).toMatchObject({ count: 0, samples: [] });
    expect((await s.api('POST', '/api/syncs/nope/retry')).status).toBe(404);
    expect((await s.api('POST', '/api/syncs/loyalty/retry', { body: [1] })).status).toBe(400);

    const next = await s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    expect(next).toMatchObject({ status: 'success', counts: { added: 0, retried: 5 } });
    expect(s.world.memberIds()).toHaveLength(25);
  });

  it("gives each run's time per phase with its counts", async () => {
    const [latest] = (await s.api('GET', '/api/syncs/loyalty/runs?limit=1')).body.runs;
    const { timings } = (await s.api('GET', `/api/runs/${latest.id}`)).body.counts;
    expect(Object.keys(timings).sort()).toEqual(['addMs', 'commitMs', 'planMs', 'readModelMs', 'removeMs']);
    expect(timings.addMs).toBeGreaterThan(0);
    const doc = (await s.api('GET', '/openapi.json')).body;
    expect(doc.components.schemas.Run.properties.counts.properties.timings).toEqual({ $ref: '#/components/schemas/RunTimings' });
    expect(doc.components.schemas.Sync.properties.givenUp).toEqual({ $ref: '#/components/schemas/GivenUp' });
  });
});

describe('a warehouse sync on the dashboard', () => {
  let w: ServedWorld;
  beforeAll(async () => {
    w = await serveWorld({
      rows: 25,
      world: { sync: { maxAttempts: 1, batchRows: 5, changeDetection: 'warehouse' }, source: { type: 'duckdb', path: './warehouse.duckdb', stateSchema: 'audience_sync' } },
    });
  });
  afterAll(() => w?.close());

  it('shows the records kept in the snapshot and those given up, as the last run or retry left them', async () => {
    w.world.emulator.control.setFlags({ invalidCells: ['u0', 'u1', 'u2'] });
    const run = await w.waitForRun((await w.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    w.world.emulator.control.setFlags({ invalidCells: [] });
    expect(run.status).toBe('partial');
    const sync = (await w.api('GET', '/api/syncs/loyalty')).body;
    expect(sync.records).toEqual({ synced: 22, pending: 0, failed: 3, total: 25 });
    expect(sync.givenUp).toMatchObject({ count: 3, maxAttempts: 1 });
    expect(sync.givenUp.samples.map((s: { externId: string }) => s.externId).sort()).toEqual(['u0', 'u1', 'u2']);

    expect((await w.api('POST', '/api/syncs/loyalty/retry')).body).toEqual({ sync: 'loyalty', requeued: 3 });
    expect((await w.api('GET', '/api/syncs/loyalty')).body).toMatchObject({ records: { synced: 22, pending: 3, failed: 0, total: 25 }, givenUp: { count: 0, samples: [] } });
    await w.waitForRun((await w.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    expect((await w.api('GET', '/api/syncs/loyalty')).body.records).toEqual({ synced: 25, pending: 0, failed: 0, total: 25 });
  });
});
