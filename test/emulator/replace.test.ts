import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { expectError, people, withEmulator, type GraphTestClient } from './helpers.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator({ startTime: Date.UTC(2026, 2, 1) }));
});
afterAll(() => emu.close());
beforeEach(() => emu.control.reset());

const externIds = (id: string) => emu.control.members(id).map((m) => String(m.EXTERN_ID)).sort();
const status = async (id: string) => ((await graph.get(id, { fields: 'operation_status' })).body.operation_status as { code: number }).code;

async function seeded(ids: string[]): Promise<string> {
  const id = await graph.createAudience();
  await graph.users(id, people(ids));
  return id;
}

describe('usersreplace (§6.14)', () => {
  it('seq 1 starts the run (414), batches stage, the last flag swaps membership atomically and returns to 200', async () => {
    const id = await seeded(['old1', 'old2']);
    const r1 = await graph.replace(id, people(['n1', 'n2']), { session_id: 100, batch_seq: 1, last_batch_flag: false });
    expect(r1.body).toMatchObject({ audience_id: id, session_id: '100', num_received: 2 });
    expect(await status(id)).toBe(414);
    expect(externIds(id)).toEqual(['old1', 'old2']);
    await graph.replace(id, people(['n3']), { session_id: 100, batch_seq: 2, last_batch_flag: false });
    // Duplicates of later batches are tolerated.
    const dup = await graph.replace(id, people(['n3']), { session_id: 100, batch_seq: 2, last_batch_flag: false });
    expect(dup.body.num_received).toBe(3);
    const last = await graph.replace(id, people(['n4']), { session_id: 100, batch_seq: 3, last_batch_flag: true });
    expect(last.body.num_received).toBe(4);
    expect(externIds(id)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(await status(id)).toBe(200);
  });

  it('a second replace or a /users call while one runs gives 2650/1870145; a resent seq 1 too', async () => {
    const id = await seeded(['a']);
    await graph.replace(id, people(['b']), { session_id: 200, batch_seq: 1 });
    expect(expectError(await graph.replace(id, people(['c']), { session_id: 201, batch_seq: 1 }))).toMatchObject({ code: 2650, error_subcode: 1870145 });
    expect(expectError(await graph.replace(id, people(['b']), { session_id: 200, batch_seq: 1 }))).toMatchObject({ error_subcode: 1870145 });
    expect(expectError(await graph.users(id, people(['d'])))).toMatchObject({ code: 2650, error_subcode: 1870145 });
    emu.control.setFlags({ rejectUsersDuringReplace: false });
    expect((await graph.users(id, people(['d']))).status).toBe(200);
  });

  it('a replace cannot start while the audience is updating (441)', async () => {
    const id = await seeded(['a']);
    emu.control.setAudienceStatus(id, 441);
    expect(expectError(await graph.replace(id, people(['b']), { session_id: 1, batch_seq: 1 })).error_subcode).toBe(1870145);
  });

  it('a non-1 seq with no open session gives 1870147', async () => {
    const id = await seeded(['a']);
    expect(expectError(await graph.replace(id, people(['b']), { session_id: 300, batch_seq: 2 }))).toMatchObject({ code: 2650, error_subcode: 1870147 });
    expect(externIds(id)).toEqual(['a']);
  });

  it('a batch after the last flag gives 1870159', async () => {
    const id = await seeded(['a']);
    await graph.replace(id, people(['b']), { session_id: 400, batch_seq: 1, last_batch_flag: true });
    expect(expectError(await graph.replace(id, people(['c']), { session_id: 400, batch_seq: 2 })).error_subcode).toBe(1870159);
    expect(externIds(id)).toEqual(['b']);
  });

  it('a run past 90 minutes swaps in what arrived; later batches give 1870158', async () => {
    const id = await seeded(['a']);
    await graph.replace(id, people(['b']), { session_id: 500, batch_seq: 1 });
    await graph.replace(id, people(['c']), { session_id: 500, batch_seq: 2 });
    emu.control.advanceClock(90 * 60 * 1000 + 1);
    expect(await status(id)).toBe(200);
    expect(externIds(id)).toEqual(['b', 'c']);
    expect(expectError(await graph.replace(id, people(['d']), { session_id: 500, batch_seq: 3, last_batch_flag: true })).error_subcode).toBe(1870158);
    expect((await graph.users(id, people(['d']))).status).toBe(200);
  });

  it('injected failure gives 1870148, status 415, membership untouched; a new session can run', async () => {
    const id = await seeded(['a']);
    emu.control.failNextReplace(id);
    expect(expectError(await graph.replace(id, people(['b']), { session_id: 600, batch_seq: 1 }))).toMatchObject({ code: 2650, error_subcode: 1870148 });
    expect(await status(id)).toBe(415);
    expect(externIds(id)).toEqual(['a']);
    expect(expectError(await graph.replace(id, people(['b']), { session_id: 600, batch_seq: 2 })).error_subcode).toBe(1870148);
    await graph.replace(id, people(['c']), { session_id: 601, batch_seq: 1, last_batch_flag: true });
    expect(externIds(id)).toEqual(['c']);
    expect(await status(id)).toBe(200);
  });

  it('refuses at or above the size threshold (1870144), on non-CUSTOM audiences, and on value-based mismatch', async () => {
    emu.control.setFlags({ replaceMaxMembers: 2 });
    const big = await seeded(['a', 'b']);
    expect(expectError(await graph.replace(big, people(['c']), { session_id: 700, batch_seq: 1 })).error_subcode).toBe(1870144);
    const website = await graph.createAudience({ subtype: 'WEBSITE' });
    expect(expectError(await graph.replace(website, people(['c']), { session_id: 701, batch_seq: 1 })).message).toMatch(/CUSTOM/);
    const valued = await graph.createAudience({ is_value_based: true });
    expect(expectError(await graph.replace(valued, people(['c']), { session_id: 702, batch_seq: 1 })).message).toMatch(/LOOKALIKE_VALUE/);
    const ok = await graph.replace(valued, { schema: ['EXTERN_ID', 'LOOKALIKE_VALUE'], data: [['c', 1.5]] }, { session_id: 703, batch_seq: 1, last_batch_flag: true });
    expect(ok.status).toBe(200);
  });

  it('session is required', async () => {
    const id = await seeded(['a']);
    expect(expectError(await graph.post(`${id}/usersreplace`, { payload: people(['b']) })).code).toBe(100);
  });
});
