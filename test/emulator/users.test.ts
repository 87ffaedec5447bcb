import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { ACT, expectError, people, sha, withEmulator, type GraphTestClient } from './helpers.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator({ startTime: Date.UTC(2026, 2, 1) }));
});
afterAll(() => emu.close());
beforeEach(() => emu.control.reset());

const externIds = (id: string) => emu.control.members(id).map((m) => String(m.EXTERN_ID)).sort();

describe('schema validation (§6.8) and row cap (§6.9)', () => {
  it('unknown keys give 100 "Raw PII type is invalid"', async () => {
    const id = await graph.createAudience();
    const e = expectError(await graph.users(id, { schema: ['EXTERN_ID', 'SHOE_SIZE'], data: [['a', '42']] }));
    expect(e.code).toBe(100);
    expect(e.message).toMatch(/^\(#100\) Raw PII type is invalid, it should be one of /);
  });

  it('rows of the wrong width give 100 "Data is missing or does not match schema"', async () => {
    const id = await graph.createAudience();
    const e = expectError(await graph.users(id, { schema: ['EXTERN_ID', 'EMAIL'], data: [['a', sha('a')], ['b']] }));
    expect(e.message).toMatch(/Data is missing or does not match schema/);
    expect(emu.control.members(id)).toHaveLength(0);
    expect(expectError(await graph.users(id, { schema: ['EXTERN_ID'] })).code).toBe(100);
  });

  it('single-key schemas take flat arrays and tolerate nested one-cell rows', async () => {
    const id = await graph.createAudience();
    const r = await graph.users(id, { schema: 'EMAIL_SHA256', data: [sha('a@x.com'), [sha('b@x.com')]] });
    expect(r.body).toMatchObject({ num_received: 2, num_invalid_entries: 0 });
    expect(emu.control.members(id)).toHaveLength(2);
  });

  it('more than maxRows rows gives 100 (or 1/99 behind the flag), and nothing is applied', async () => {
    const id = await graph.createAudience();
    const rows = people(Array.from({ length: 10_001 }, (_, i) => `r${i}`));
    const e = expectError(await graph.users(id, rows));
    expect(e.code).toBe(100);
    expect(e.message).toMatch(/10001 received, at most 10000/);
    emu.control.setFlags({ rowCapError: 'unknown_99' });
    expect(expectError(await graph.users(id, rows))).toMatchObject({ code: 1, error_subcode: 99 });
    expect(emu.control.members(id)).toHaveLength(0);
    rows.data.pop();
    expect((await graph.users(id, rows)).body.num_received).toBe(10_000);
  });
});

describe('hash format (§6.10)', () => {
  it('badly formatted cells count as invalid entries without failing the request', async () => {
    const id = await graph.createAudience();
    const good = sha('ok@example.com');
    const data = [
      ['a', good, ''],
      ['b', 'raw@example.com', ''],
      ['c', good.toUpperCase(), ''],
      ['d', good.slice(1), ''],
      ['', '', ''],
      ['e', '', 'AECE52E7-03EE-455A-B3C4-E57283966239'],
      ['f', '', 'aece52e7-03ee-455a-b3c4-e57283966239'],
      ['', sha('g@example.com'), ''],
    ];
    const r = await graph.users(id, { schema: ['EXTERN_ID', 'EMAIL', 'MADID'], is_raw: true, data });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ num_received: 8, num_invalid_entries: 5 });
    const samples = r.body.invalid_entry_samples as Record<string, string>;
    expect(Object.keys(samples)).toEqual(['row 1', 'row 2', 'row 3', 'row 4', 'row 5']);
    expect(samples['row 1']).toBe('EMAIL: not a lowercase SHA-256 hex digest');
    expect(samples['row 4']).toBe('row has no identifier');
    expect(JSON.stringify(samples)).not.toContain('raw@example.com');
    expect(emu.control.members(id)).toEqual([
      { EXTERN_ID: 'a', EMAIL: good },
      { EXTERN_ID: 'f', MADID: 'aece52e7-03ee-455a-b3c4-e57283966239' },
      { EMAIL: sha('g@example.com') },
    ]);
  });

  it('invalid_entry_samples is capped at 100 and can be an array', async () => {
    const id = await graph.createAudience();
    emu.control.setFlags({ invalidSamplesShape: 'array' });
    const r = await graph.users(id, { schema: 'EMAIL_SHA256', data: Array.from({ length: 150 }, (_, i) => `plain${i}@x.com`) });
    expect(r.body.num_invalid_entries).toBe(150);
    expect(r.body.invalid_entry_samples).toHaveLength(100);
    expect((r.body.invalid_entry_samples as string[])[0]).toBe('row 0: EMAIL_SHA256: not a lowercase SHA-256 hex digest');
  });

  it('LOOKALIKE_VALUE needs a value-based audience and a number >= 0', async () => {
    const plain = await graph.createAudience();
    const payload = { schema: ['EXTERN_ID', 'LOOKALIKE_VALUE'], data: [['a', 44.5], ['b', -1], ['c', '3'], ['d', 0]] };
    expect(expectError(await graph.users(plain, payload)).message).toMatch(/value-based/);
    const valued = await graph.createAudience({ is_value_based: true });
    const r = await graph.users(valued, payload);
    expect(r.body).toMatchObject({ num_received: 4, num_invalid_entries: 2 });
    expect(emu.control.members(valued)).toEqual([
      { EXTERN_ID: 'a', LOOKALIKE_VALUE: 44.5 },
      { EXTERN_ID: 'd', LOOKALIKE_VALUE: 0 },
    ]);
  });
});

describe('membership (§6.11)', () => {
  it('adding twice is idempotent; a new email under the same EXTERN_ID updates that member', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b']));
    await graph.users(id, people(['a', 'b']));
    expect(emu.control.members(id)).toHaveLength(2);
    await graph.users(id, { schema: ['EXTERN_ID', 'EMAIL'], data: [['a', sha('new-a@example.com')]] });
    const members = emu.control.members(id);
    expect(members).toHaveLength(2);
    expect(members).toContainEqual({ EXTERN_ID: 'a', EMAIL: sha('new-a@example.com') });
  });

  it('removal by any matching key, EXTERN_ID alone included; removing a non-member still counts', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b', 'c']));
    await graph.removeUsers(id, { schema: ['EXTERN_ID'], data: [['a']] });
    await graph.removeUsers(id, { schema: ['EMAIL'], data: [[sha('b@example.com')]] });
    const r = await graph.removeUsers(id, { schema: ['EXTERN_ID'], data: [['zzz'], ['yyy']] });
    expect(r.body).toMatchObject({ num_received: 2, num_invalid_entries: 0 });
    expect(externIds(id)).toEqual(['c']);
    const again = await graph.removeUsers(id, { schema: ['EXTERN_ID'], data: [['a']] });
    expect(again.status).toBe(200);
  });

  it('usersofanyaudience removes from every customer-list audience of the account', async () => {
    const one = await graph.createAudience();
    const two = await graph.createAudience();
    await graph.users(one, people(['a', 'b']));
    await graph.users(two, people(['a', 'c']));
    const r = await graph.request('DELETE', `${ACT}/usersofanyaudience`, { json: { payload: { schema: ['EXTERN_ID'], data: [['a']] } } });
    expect(r.body).toMatchObject({ num_received: 1 });
    expect(externIds(one)).toEqual(['b']);
    expect(externIds(two)).toEqual(['c']);
  });
});

describe('data-source lock (§6.12)', () => {
  it('the first upload sets data_source; another family gives 2650 with the mismatch message', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a']));
    const e = expectError(await graph.users(id, { schema: 'EMAIL_SHA256', data: [sha('x@example.com')] }));
    expect(e.code).toBe(2650);
    expect(e.message).toMatch(/FILE_IMPORTED\.MULTI_HASHES, which does not support data source FILE_IMPORTED\.HASHES_OR_USER_IDS/);
    // A different multi-key schema is the same family.
    expect((await graph.users(id, people(['b'], ['EXTERN_ID', 'EMAIL', 'FN']))).status).toBe(200);
    // Removals by a single key are not uploads and are not locked.
    expect((await graph.removeUsers(id, { schema: 'EXTERN_ID', data: ['a'] })).status).toBe(200);
  });
});

describe('sessions on /users (§6.13)', () => {
  it('echoes session_id as a string, accumulates num_received, generates an id when absent', async () => {
    const id = await graph.createAudience();
    const s1 = await graph.users(id, people(['a', 'b']), { session_id: 9007199254740991, batch_seq: 1, last_batch_flag: false, estimated_num_total: 3 });
    expect(s1.body).toMatchObject({ session_id: '9007199254740991', num_received: 2 });
    const s2 = await graph.users(id, people(['c']), { session_id: '9007199254740991', batch_seq: 2, last_batch_flag: true });
    expect(s2.body).toMatchObject({ num_received: 3 });
    const none = await graph.users(id, people(['d']));
    expect(none.body.session_id).toMatch(/^\d+$/);
    expect(none.body.num_received).toBe(1);
  });

  it('re-sent batches are harmless, new batches after the last one or after 90 minutes are refused', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a']), { session_id: 5, batch_seq: 1, last_batch_flag: true });
    const dup = await graph.users(id, people(['a']), { session_id: 5, batch_seq: 1, last_batch_flag: true });
    expect(dup.body).toMatchObject({ num_received: 1 });
    expect(expectError(await graph.users(id, people(['b']), { session_id: 5, batch_seq: 2 }))).toMatchObject({ code: 2650, error_subcode: 1870159 });

    await graph.users(id, people(['c']), { session_id: 6, batch_seq: 1 });
    emu.control.advanceClock(90 * 60 * 1000 + 1);
    expect(expectError(await graph.users(id, people(['d']), { session_id: 6, batch_seq: 2 }))).toMatchObject({ code: 2650, error_subcode: 1870158 });
    expect(externIds(id)).toEqual(['a', 'c']);
  });

  it('batch_seq must be >= 1 and a session_id is unique per ad account', async () => {
    const id = await graph.createAudience();
    const other = await graph.createAudience();
    expect(expectError(await graph.users(id, people(['a']), { session_id: 7, batch_seq: 0 })).code).toBe(100);
    await graph.users(id, people(['a']), { session_id: 7, batch_seq: 1 });
    expect(expectError(await graph.users(other, people(['a']), { session_id: 7, batch_seq: 1 })).message).toMatch(/already used/);
    expect(expectError(await graph.removeUsers(id, people(['a']), { session_id: 7, batch_seq: 2 })).message).toMatch(/already used/);
  });

  it('GET {audience}/sessions lists sessions with numbers as strings', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b']), { session_id: 77, batch_seq: 1, last_batch_flag: true });
    const r = await graph.get(`${id}/sessions`);
    expect(r.body.data).toEqual([expect.objectContaining({ session_id: '77', stage: 'finished', num_received: '2', num_invalid_entries: '0' })]);
  });

  it('sessions report num_matched only once processed, decided by each hash and the per-key rate', async () => {
    emu.control.setFlags({ sessionProcessingMs: 60_000, matchRate: 0.5, matchRates: { PHONE: 0 } });
    const id = await graph.createAudience();
    const emails = Array.from({ length: 200 }, (_, i) => sha(`person${i}@example.com`));
    // Which rows match follows from the hash alone: its first four bytes below half of 2^32.
    const expected = emails.filter((h) => Number.parseInt(h.slice(0, 8), 16) < 2 ** 31).length;
    const rows = emails.map((h, i) => [`x${i}`, h, sha(`phone${i}`)]);
    await graph.users(id, { schema: ['EXTERN_ID', 'EMAIL', 'PHONE'], data: [...rows.slice(0, 150), ['bad', 'not-a-hash', '']] }, { session_id: 88, batch_seq: 1 });
    const uploading = (await graph.get(`${id}/sessions`)).body.data as Array<Record<string, unknown>>;
    expect(uploading[0]).toMatchObject({ session_id: '88', stage: 'uploading', num_matched: '0' });
    await graph.users(id, { schema: ['EXTERN_ID', 'EMAIL', 'PHONE'], data: rows.slice(150) }, { session_id: 88, batch_seq: 2, last_batch_flag: true });
    emu.control.advanceClock(30_000);
    const processing = ((await graph.get(`${id}/sessions`)).body.data as Array<Record<string, unknown>>)[0];
    expect(processing).toMatchObject({ stage: 'processing', progress: '50', num_received: '201', num_invalid_entries: '1', num_matched: '0' });
    emu.control.advanceClock(30_000);
    const done = ((await graph.get(`${id}/sessions`)).body.data as Array<Record<string, unknown>>)[0];
    expect(done).toMatchObject({ stage: 'finished', progress: '100', num_received: '201', num_invalid_entries: '1', num_matched: String(expected) });
    expect(expected).toBeGreaterThan(70);
    expect(expected).toBeLessThan(130);
    for (const field of ['start_time', 'end_time', 'num_received', 'num_matched', 'num_invalid_entries', 'progress']) expect(done?.[field]).toMatch(/^\d+$/);
  });
});

describe('flagged audiences (§6.15)', () => {
  it('471 blocks add, remove and replace with 100/1713230', async () => {
    const id = await graph.createAudience();
    emu.control.setAudienceStatus(id, 471);
    for (const r of [
      await graph.users(id, people(['a'])),
      await graph.removeUsers(id, people(['a'])),
      await graph.replace(id, people(['a']), { session_id: 1, batch_seq: 1, last_batch_flag: true }),
    ]) {
      expect(expectError(r)).toMatchObject({ code: 100, error_subcode: 1713230 });
    }
  });
});
