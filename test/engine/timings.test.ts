// Per-phase timings of a run: recorded in the summary and the run history, shown by `runs`.
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/index.js';
import { PhaseTimer } from '../../src/engine/timings.js';
import type { EngineGraph } from '../../src/engine/index.js';
import { createWorld, customers, cliOn, type World } from '../support/world.js';


let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('PhaseTimer', () => {
  it('counts a nested phase once: the inner phase pauses the outer one', async () => {
    let now = 0;
    const timer = new PhaseTimer(() => now);
    await timer.time('plan', async () => {
      now += 10;
      await timer.time('readModel', async () => {
        now += 5;
      });
      now += 1;
      await timer.time('commit', async () => {
        now += 3;
      });
    });
    now += 100; // outside any phase: not counted
    await timer.time('add', async () => {
      now += 7;
      await timer.time('commit', async () => {
        now += 2;
        throw new Error('a failed write still stops its clock');
      }).catch(() => undefined);
    });
    expect(timer.timings()).toEqual({ readModelMs: 5, planMs: 11, removeMs: 0, addMs: 7, commitMs: 5 });
  });

  it('gives the time of an upload request in flight to its phase, not to the state writes done meanwhile', async () => {
    let now = 0;
    const timer = new PhaseTimer(() => now);
    const gate = () => {
      let open!: () => void;
      return { opened: new Promise<void>((r) => (open = r)), open: () => open() };
    };
    const answer = gate();
    const written = gate();
    const session = { sessionId: 's', batcher: () => ({ add: () => undefined, flush: () => undefined }), send: async () => { await answer.opened; return { numInvalidEntries: 0, invalidEntries: [] }; } };
    const graph = timer.graph({ openUploadSession: () => session } as unknown as EngineGraph);
    await timer.time('add', async () => {
      const request = graph.openUploadSession('add', 'a', []).send([], { last: true });
      // A commit starts while the request is out and ends 40 ms after the answer came at 100 ms.
      const commit = timer.time('commit', () => written.opened);
      now = 100;
      answer.open();
      await request;
      now = 140;
      written.open();
      await commit;
      now = 150; // reading the next batch, nothing in flight
    });
    expect(timer.timings()).toMatchObject({ addMs: 110, commitMs: 40 });
  });
});

describe('run timings', () => {
  it('are in every run summary, in the run history (runs, runs --json), and never overlap', async () => {
    world = await createWorld({ sync: { batchRows: 200 } });
    await world.setCustomers(customers(1200));
    const first = await world.run();
    expect(first.status).toBe('success');
    const t = first.timings;
    expect(Object.keys(t).sort()).toEqual(['addMs', 'commitMs', 'planMs', 'readModelMs', 'removeMs']);
    for (const v of Object.values(t)) expect(Number.isInteger(v) && v >= 0).toBe(true);
    expect(t.readModelMs).toBeGreaterThan(0);
    expect(t.planMs).toBeGreaterThan(0);
    expect(t.addMs).toBeGreaterThan(0);
    expect(t.commitMs).toBeGreaterThan(0);
    expect(t.removeMs).toBe(0); // nothing to remove on a first run
    const total = Date.parse(first.finishedAt) - Date.parse(first.startedAt);
    expect(t.readModelMs + t.planMs + t.removeMs + t.addMs + t.commitMs).toBeLessThanOrEqual(total + 5);

    await world.setCustomers(customers(1000));
    const second = await world.run();
    expect(second.counts.deleted).toBe(200);
    expect(second.timings.removeMs).toBeGreaterThan(0);

    const state = await openStateStore(`sqlite://${world.statePath}`);
    try {
      const runs = await state.listRuns({ sync: 'loyalty' });
      expect(runs.map((r) => r.counts.timings)).toEqual([second.timings, first.timings]);
    } finally {
      await state.close();
    }
    const json = JSON.parse((await cliOn(world, 'runs', 'loyalty', '--json')).stdout) as Array<{ counts: { timings: unknown } }>;
    expect(json[0]!.counts.timings).toEqual(second.timings);
    const text = (await cliOn(world, 'runs', 'loyalty')).stdout;
    expect(text).toMatch(/#2 loyalty success .*\n {4}time: read model \d+(ms|\.\ds) · plan \d+(ms|\.\ds) · remove \d+(ms|\.\ds) · add \d+(ms|\.\ds) · commit \d+(ms|\.\ds)\n/);
  });
});
