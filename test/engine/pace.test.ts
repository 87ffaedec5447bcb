// Delivery at Meta's pace: one upload request in flight per session, and while it is out the previous batch's
// outcome is committed and the next batch's intents are written. Real DuckDB, the emulator over HTTP (taking
// uploadLatencyMs to answer each upload), SQLite or PostgreSQL state; the engine's store and graph are wiretapped
// (every call passes through) to see in which order it wrote and sent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { engineGraph, engineSource, engineStore } from '../../src/app/adapters.js';
import { toSyncSpec } from '../../src/app/workspace.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { runSync, type EngineEvent, type EngineGraph, type EngineStore, type RecordWrite, type RunSummary } from '../../src/engine/index.js';
import { openStateStore } from '../../src/state/index.js';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { createWorld, customers, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

type Step = 'send' | 'intents' | 'commit';
/** One thing the engine did, as seen at its ports: started or ended, the n-th of its kind (1-based). */
interface Event {
  step: Step;
  edge: 'start' | 'end';
  n: number;
  at: number;
}

interface Tapped {
  summary: RunSummary;
  events: Event[];
  /** Per send: the rows sent, its last_batch_flag and its upload session. */
  sends: Array<{ rows: number; last: boolean; session: string }>;
  /** Per state write during delivery: the record keys it wrote. */
  writes: Record<'intents' | 'commit', string[][]>;
  /** The add phase's progress events, with how many port events had happened before each. */
  progress: Array<{ done: number; total: number | undefined; after: number }>;
}

/**
 * One run of the world's sync through the engine's real parts (as the CLI wires them), with the state writes
 * and upload requests recorded in the order they started and ended. `onSend(n)` runs as the n-th request starts.
 */
async function tappedRun(w: World, onSend: (n: number) => void = () => undefined): Promise<Tapped> {
  const ws = w.workspace();
  const workDir = mkdtempSync(join(tmpdir(), 'audience-sync-pace-'));
  const events: Event[] = [];
  const sends: Tapped['sends'] = [];
  const writes: Tapped['writes'] = { intents: [], commit: [] };
  const counts: Record<Step, number> = { send: 0, intents: 0, commit: 0 };
  const progress: Tapped['progress'] = [];
  const during = async <T>(step: Step, fn: () => Promise<T>): Promise<T> => {
    const n = ++counts[step];
    events.push({ step, edge: 'start', n, at: performance.now() });
    try {
      return await fn();
    } finally {
      events.push({ step, edge: 'end', n, at: performance.now() });
    }
  };
  try {
    const sync = ws.sync('loyalty');
    const [source, state] = await Promise.all([ws.source(sync.source), ws.state()]);
    const store = engineStore(state);
    const tappedStore: EngineStore = {
      ...store,
      applyRecordWrites(name, batch: readonly RecordWrite[]) {
        if (batch.length === 0) return store.applyRecordWrites(name, batch);
        // Intents: Meta may hold these cells from now on, nothing is acknowledged yet.
        const step = batch.every((r) => r.op === 'upsert' && r.status === 'pending' && r.lastError === null) ? 'intents' : 'commit';
        writes[step].push(batch.map((r) => r.pk));
        return during(step, () => store.applyRecordWrites(name, batch));
      },
    };
    const graph = engineGraph(ws.graph());
    const tappedGraph: EngineGraph = {
      ...graph,
      openUploadSession(...args) {
        const session = graph.openUploadSession(...args);
        return {
          get sessionId() {
            return session.sessionId;
          },
          batcher: (rowOf, maxRows) => session.batcher(rowOf, maxRows),
          send(rows, opts) {
            sends.push({ rows: rows.length, last: opts.last, session: session.sessionId });
            onSend(sends.length);
            return during('send', () => session.send(rows, opts));
          },
        };
      },
    };
    const onEvent = (e: EngineEvent) => {
      if (e.type === 'progress' && e.phase === 'add') progress.push({ done: e.done, total: e.total, after: events.length });
    };
    const summary = await runSync(toSyncSpec(sync), { source: engineSource(source), store: tappedStore, graph: tappedGraph, adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, workDir, onEvent });
    return { summary, events, sends, writes, progress };
  } finally {
    await ws.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Position of an event in the order things happened. */
function at(events: Event[], step: Step, edge: 'start' | 'end', n: number): number {
  const i = events.findIndex((e) => e.step === step && e.edge === edge && e.n === n);
  if (i < 0) throw new Error(`no ${step} ${n} ${edge} in ${JSON.stringify(events.map((e) => `${e.step}${e.n}:${e.edge}`))}`);
  return i;
}

describe.each(STATE_KINDS)('delivery at Meta\'s pace with %s state', (kind) => {
  const stores = stateWorlds(kind, 'pace');

  it('keeps one request in flight; while it is out, the previous batch is committed and the next batch\'s intents are written', async () => {
    world = await stores.createWorld({ sync: { batchRows: 40 } });
    const model = customers(200);
    await world.setCustomers(model);
    world.emulator.control.setFlags({ uploadLatencyMs: 250 });
    const { summary, events, sends, writes, progress } = await tappedRun(world);
    expect(summary.error).toBeUndefined();
    expect(summary.status).toBe('success');
    expect(summary.counts).toMatchObject({ added: 200, delivered: 200 });
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());

    const batches = 5;
    expect(sends).toEqual(Array.from({ length: batches }, (_, i) => ({ rows: 40, last: i === batches - 1, session: sends[0]!.session })));
    expect(world.emulator.control.peakConcurrency()).toBe(1);
    // Batch n's intents and its commit are about the same records.
    expect(writes.intents).toHaveLength(batches);
    expect(writes.commit).toEqual(writes.intents);
    for (let n = 1; n <= batches; n++) {
      // A batch goes out only once its intents are durable, and after the request before it was answered.
      expect(at(events, 'intents', 'end', n)).toBeLessThan(at(events, 'send', 'start', n));
      if (n > 1) expect(at(events, 'send', 'end', n - 1)).toBeLessThan(at(events, 'send', 'start', n));
      if (n > 1) {
        // Its intents were written while the request before it was out.
        expect(at(events, 'send', 'start', n - 1)).toBeLessThan(at(events, 'intents', 'start', n));
        expect(at(events, 'intents', 'end', n)).toBeLessThan(at(events, 'send', 'end', n - 1));
      }
      if (n < batches) {
        // Its outcome was committed while the next request was out.
        expect(at(events, 'send', 'start', n + 1)).toBeLessThan(at(events, 'commit', 'start', n));
        expect(at(events, 'commit', 'end', n)).toBeLessThan(at(events, 'send', 'end', n + 1));
      } else {
        expect(at(events, 'send', 'end', n)).toBeLessThan(at(events, 'commit', 'start', n));
      }
    }
    // Progress counts committed rows, batch by batch, once each commit is in.
    expect(progress.map((p) => [p.done, p.total])).toEqual([[40, 200], [80, 200], [120, 200], [160, 200], [200, 200]]);
    progress.forEach((p, i) => expect(p.after).toBeGreaterThan(at(events, 'commit', 'end', i + 1)));
  });

  it('replace sends its batches in order in one session, one at a time, committing each while the next is out', async () => {
    world = await stores.createWorld({ mode: 'replace', sync: { batchRows: 40 } });
    await world.setCustomers(customers(100));
    expect((await world.run()).status).toBe('success');
    const model = customers(160, 60);
    await world.setCustomers(model);
    world.emulator.control.setFlags({ uploadLatencyMs: 200 });
    world.emulator.control.clearRequestLog();
    const { summary, events, sends, writes } = await tappedRun(world);
    expect(summary.status).toBe('success');
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());
    const batches = 4;
    expect(sends).toEqual(Array.from({ length: batches }, (_, i) => ({ rows: 40, last: i === batches - 1, session: sends[0]!.session })));
    expect(world.emulator.control.requestLog().filter((e) => e.path.endsWith('/usersreplace'))).toHaveLength(batches);
    expect(world.emulator.control.peakConcurrency()).toBe(1);
    // A replace writes no intents; each batch's outcome is committed while the next one is out. The records
    // that left the model are forgotten once the whole replace went through.
    expect(writes.intents).toEqual([]);
    expect(writes.commit.slice(0, batches).map((keys) => keys.length)).toEqual([40, 40, 40, 40]);
    for (let n = 1; n < batches; n++) {
      expect(at(events, 'send', 'start', n + 1)).toBeLessThan(at(events, 'commit', 'start', n));
      expect(at(events, 'commit', 'end', n)).toBeLessThan(at(events, 'send', 'end', n + 1));
    }
    expect(at(events, 'send', 'end', batches)).toBeLessThan(at(events, 'commit', 'start', batches));
  });

  it('a run-level error stops the run once what Meta acknowledged is committed', async () => {
    world = await stores.createWorld({ sync: { batchRows: 30, maxAttempts: 2 } });
    const model = customers(150);
    await world.setCustomers(model);
    world.emulator.control.setFlags({ uploadLatencyMs: 100 });
    const emulator = world.emulator;
    // The token expires as the third request goes out, while the second batch's outcome is being committed.
    const { summary, events } = await tappedRun(world, (n) => {
      if (n === 3) emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    });
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(/access token rejected.*90 of 150 rows to add were left for the next run/s);
    expect(summary.counts).toMatchObject({ delivered: 60, failed: 0 });
    // Batch 2 was committed before the run stopped; nothing was sent or committed after the refused request.
    expect(events.filter((e) => e.step === 'send' && e.edge === 'start')).toHaveLength(3);
    expect(events.filter((e) => e.step === 'commit' && e.edge === 'end').map((e) => e.n)).toEqual([1, 2]);
    const state = await openStateStore(stores.stateUrlOf(world));
    try {
      const records = await state.listRecords('loyalty');
      // The two acknowledged batches are committed; the third (sent, refused) and the fourth (cut while the
      // third was out) are known with their cells, pending, with no attempt spent.
      expect(records.filter((r) => r.status === 'synced')).toHaveLength(60);
      const pending = records.filter((r) => r.status === 'pending');
      expect(pending).toHaveLength(60);
      for (const r of pending) expect(r).toMatchObject({ attempts: 0, lastError: null, hasCells: true });
    } finally {
      await state.close();
    }
    emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
    const rerun = await world.run();
    expect(rerun.status).toBe('success');
    expect(rerun.counts).toMatchObject({ unchanged: 60, retried: 60, added: 30, delivered: 90 });
    expect(world.memberIds()).toEqual(model.map((c) => String(c.user_id)).sort());
  });
});

describe('the pace of a run', () => {
  it('is Meta\'s: a delivery takes the requests\' time, not requests × (latency + commit + the next batch\'s preparation)', async () => {
    // Big batches, so that each one's state writes and preparation take long enough to show.
    world = await createWorld({ sync: { batchRows: 5000 } });
    await world.setCustomers(customers(30_000));
    const latency = 600;
    world.emulator.control.setFlags({ uploadLatencyMs: latency });
    const { summary, events } = await tappedRun(world);
    expect(summary.status).toBe('success');
    const batches = 6;
    const spent = (step: Step) => {
      let ms = 0;
      for (let n = 1; n <= batches; n++) {
        const end = events.find((e) => e.step === step && e.edge === 'end' && e.n === n)!;
        const start = events.find((e) => e.step === step && e.edge === 'start' && e.n === n)!;
        ms += end.at - start.at;
      }
      return ms;
    };
    const sending = spent('send');
    const writing = spent('intents') + spent('commit');
    const t = summary.timings;
    const delivery = t.addMs + t.commitMs;
    expect(sending).toBeGreaterThanOrEqual(batches * latency);
    // Without overlap, every state write falls between two requests: delivery ≥ sending + writing.
    // At Meta's pace only the first batch's intents and the last batch's commit do.
    expect(delivery - sending).toBeLessThan(writing / 2);
    // The commit phase counts only the writes the run waited for, not those hidden behind a request.
    expect(t.commitMs).toBeLessThan(writing / 2);
  });
});
