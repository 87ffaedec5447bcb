import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FaultConfig } from '../../src/emulator/index.js';
import type { GraphClientEvent, UploadBatchResult, UploadOp } from '../../src/meta/index.js';
import { ACCOUNT, SCHEMA, memberIds, person, useTestEmulator, testClient } from './harness.js';

const emulator = useTestEmulator();

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const ids = (xs: number[]) => new Set(xs.map((i) => `crm-${i}`));
const rows = (xs: number[]) => xs.map(person);
const NO_FAULTS: FaultConfig = { rate: 0, kinds: [] };

/** A client whose first retry lifts the fault, so exactly one attempt fails. */
function clientFailingOnce(extra: Parameters<typeof testClient>[1] = {}) {
  const events: GraphClientEvent[] = [];
  const t = testClient(emulator(), {
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'retry') emulator().control.setFaults(NO_FAULTS);
    },
    ...extra,
  });
  return { ...t, events };
}

async function audienceWith(members: number[]): Promise<string> {
  const { client } = testClient(emulator());
  const { id } = await client.createCustomAudience(ACCOUNT, { name: `aud ${Math.random()}` });
  if (members.length > 0) await client.upload('add', id, SCHEMA, rows(members));
  return id;
}

describe('replace', () => {
  it('leaves exactly the uploaded set, over several batches of one session', async () => {
    const id = await audienceWith(range(0, 100));
    const { client, events } = testClient(emulator(), { batchRows: 20 });
    const results: UploadBatchResult[] = [];
    await client.upload('replace', id, SCHEMA, rows(range(50, 150)), { onBatch: (r) => void results.push(r) });
    expect(memberIds(emulator(), id)).toEqual(ids(range(50, 150)));
    expect(results.map((r) => r.batchSeq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(results.map((r) => r.sessionId)).size).toBe(1);
    expect(events.some((e) => e.type === 'session_restart')).toBe(false);
    expect((await client.getAudience(id, ['operation_status'])).operationStatus?.code).toBe(200);
  });

  it('starts a new session after batch 1 failed before reaching Meta', async () => {
    const id = await audienceWith(range(0, 30));
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'before', paths: '/usersreplace$' });
    const { client, events } = clientFailingOnce({ batchRows: 10 });
    const results: UploadBatchResult[] = [];
    await client.upload('replace', id, SCHEMA, rows(range(20, 50)), { onBatch: (r) => void results.push(r) });
    const restart = events.find((e) => e.type === 'session_restart');
    expect(restart).toBeDefined();
    if (restart?.type !== 'session_restart') throw new Error('no restart');
    expect(restart.newSessionId).not.toBe(restart.oldSessionId);
    expect(results.map((r) => [r.batchSeq, r.sessionId])).toEqual([
      [1, restart.newSessionId],
      [2, restart.newSessionId],
      [3, restart.newSessionId],
    ]);
    expect(memberIds(emulator(), id)).toEqual(ids(range(20, 50)));
  });

  it('never resends batch 1 in a session, even when batch 1 did reach Meta before the connection dropped', async () => {
    const id = await audienceWith(range(0, 30));
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: '/usersreplace$' });
    const { client, events } = clientFailingOnce({ batchRows: 10 });
    const results: UploadBatchResult[] = [];
    await client.upload('replace', id, SCHEMA, rows(range(20, 50)), { onBatch: (r) => void results.push(r) });
    const restarts = events.filter((e) => e.type === 'session_restart');
    // New session first; Meta says a replace is running, which proves batch 1 of the first session landed: continue that one.
    expect(restarts).toHaveLength(2);
    const [fresh, adopted] = restarts;
    if (fresh?.type !== 'session_restart' || adopted?.type !== 'session_restart') throw new Error('no restarts');
    expect(adopted.newSessionId).toBe(fresh.oldSessionId);
    expect(results.map((r) => [r.batchSeq, r.sessionId])).toEqual([
      [2, fresh.oldSessionId],
      [3, fresh.oldSessionId],
      [4, fresh.oldSessionId],
    ]);
    expect(memberIds(emulator(), id)).toEqual(ids(range(20, 50)));
    expect(emulator().control.audience(id)?.operationStatus).toBe(200);
  });

  it('retries later batches in the same session', async () => {
    const id = await audienceWith(range(0, 30));
    const { client, events } = clientFailingOnce({ batchRows: 10 });
    const session = client.openUploadSession('replace', id, SCHEMA);
    const first = await session.send(rows(range(100, 110)), { last: false });
    emulator().control.setFaults({ rate: 1, kinds: ['html5xx'], phase: 'after', paths: '/usersreplace$' });
    const second = await session.send(rows(range(110, 120)), { last: false });
    const third = await session.send(rows(range(120, 130)), { last: true });
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
    expect(events.some((e) => e.type === 'session_restart')).toBe(false);
    expect([first, second, third].map((r) => [r.batchSeq, r.sessionId])).toEqual([
      [1, first.sessionId],
      [2, first.sessionId],
      [3, first.sessionId],
    ]);
    expect(memberIds(emulator(), id)).toEqual(ids(range(100, 130)));
  });

  it('treats "session already finished" after a lost answer to the last batch as delivered', async () => {
    const id = await audienceWith(range(0, 30));
    const { client } = clientFailingOnce();
    const session = client.openUploadSession('replace', id, SCHEMA);
    await session.send(rows(range(40, 45)), { last: false });
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: '/usersreplace$' });
    const last = await session.send(rows(range(45, 50)), { last: true });
    expect(last.batchSeq).toBe(2);
    expect(memberIds(emulator(), id)).toEqual(ids(range(40, 50)));
  });

  it('reports a partial replace failure (2650/1870148) as replace_failed, and /users during a replace as replace_in_progress', async () => {
    const id = await audienceWith(range(0, 10));
    const { client } = testClient(emulator());
    emulator().control.failNextReplace(id);
    await expect(client.upload('replace', id, SCHEMA, rows(range(5, 15)))).rejects.toMatchObject({
      kind: 'replace_failed',
      subcode: 1870148,
      retryable: true,
    });
    const id2 = await audienceWith(range(0, 10));
    const session = client.openUploadSession('replace', id2, SCHEMA);
    await session.send(rows(range(0, 5)), { last: false });
    await expect(client.upload('add', id2, SCHEMA, rows([99]))).rejects.toMatchObject({ kind: 'replace_in_progress', subcode: 1870145 });
    await session.send(rows(range(5, 6)), { last: true });
    expect(memberIds(emulator(), id2)).toEqual(ids(range(0, 6)));
  });
});

describe('add/remove sessions', () => {
  it('after an ambiguous failure a batch goes to a fresh session; nothing is lost', async () => {
    const id = await audienceWith([]);
    const { client, events } = clientFailingOnce({ batchRows: 10 });
    const session = client.openUploadSession('add', id, SCHEMA);
    await session.send(rows(range(0, 10)), { last: false });
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: '/users$' });
    const last = await session.send(rows(range(10, 20)), { last: true });
    expect(events.filter((e) => e.type === 'session_restart')).toHaveLength(1);
    expect(last.batchSeq).toBe(1);
    expect(memberIds(emulator(), id)).toEqual(ids(range(0, 20)));
  });
});

it('an add that outlives the 90-minute session window continues in a new session', async () => {
  const id = await audienceWith([]);
  const { client, events } = testClient(emulator());
  const session = client.openUploadSession('add', id, SCHEMA);
  await session.send(rows(range(0, 10)), { last: false });
  emulator().control.advanceClock(91 * 60_000);
  const next = await session.send(rows(range(10, 20)), { last: true });
  expect(next.batchSeq).toBe(1);
  expect(events.filter((e) => e.type === 'session_restart')).toHaveLength(1);
  expect(memberIds(emulator(), id)).toEqual(ids(range(0, 20)));
});

describe('property: membership equals what the client was asked to deliver, despite transient faults', () => {
  const POOL = 40;
  const opArb = fc.record({
    op: fc.constantFrom<UploadOp>('add', 'remove', 'add', 'remove', 'replace'),
    members: fc.uniqueArray(fc.integer({ min: 0, max: POOL - 1 }), { minLength: 1, maxLength: 25 }),
  });

  it('for any sequence of add/remove/replace uploads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 1_000_000 }), async (ops, seed) => {
        emulator().control.reset();
        const id = await audienceWith([]);
        emulator().control.setFaults({ rate: 0.3, kinds: ['transient', 'unknown', 'html5xx', 'drop'], seed, phase: 'either', paths: '/users(replace)?$' });
        const { client } = testClient(emulator(), { batchRows: 7, retry: { maxAttempts: 12, baseDelayMs: 1, maxDelayMs: 5 } });
        const model = new Set<string>();
        for (const { op, members } of ops) {
          await client.upload(op, id, SCHEMA, rows(members));
          if (op === 'replace') model.clear();
          for (const m of members) {
            if (op === 'remove') model.delete(`crm-${m}`);
            else model.add(`crm-${m}`);
          }
        }
        expect(memberIds(emulator(), id)).toEqual(model);
      }),
      { numRuns: 25 },
    );
  });
});

describe('uploadSessions', () => {
  it("reads every page of the audience's sessions into numbers, processed only once Meta is done", async () => {
    const id = await audienceWith([]);
    emulator().control.setFlags({ sessionProcessingMs: 10_000, matchRate: 1, emptyFirstPage: true });
    const { client } = testClient(emulator(), { batchRows: 20 });
    await client.upload('add', id, SCHEMA, rows(range(0, 50)));
    await client.upload('add', id, SCHEMA, rows(range(50, 60)));
    const before = await client.uploadSessions(id);
    expect(before.map((s) => [s.numReceived, s.numMatched, s.processed])).toEqual([[50, 0, false], [10, 0, false]]);
    emulator().control.advanceClock(10_000);
    const after = await client.uploadSessions(id);
    expect(after.map((s) => [s.numReceived, s.numMatched, s.numInvalidEntries, s.progress, s.processed])).toEqual([[50, 50, 0, 100, true], [10, 10, 0, 100, true]]);
    expect(after[0]?.sessionId).toMatch(/^\d+$/);
    expect(after[0]?.endTime).toBeGreaterThan(0);
  });
});
