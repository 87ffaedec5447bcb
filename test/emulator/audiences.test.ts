import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { ACT, expectError, people, withEmulator, type GraphTestClient } from './helpers.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator());
});
afterAll(() => emu.close());
beforeEach(() => emu.control.reset());

describe('create (§6.5)', () => {
  it('returns a string id above 2^53 that survives as text', async () => {
    const r = await graph.post(`${ACT}/customaudiences`, { name: 'Big ids', subtype: 'CUSTOM' });
    expect(r.text).toMatch(/^\{"id":"\d{17,}"\}$/);
    const id = r.body.id as string;
    expect(BigInt(id) > 2n ** 53n).toBe(true);
    expect(Number.isSafeInteger(Number(id))).toBe(false);
    expect((await graph.get(id)).body).toEqual({ id });
  });

  it('refuses a missing name, a bad customer_file_source, and accounts without ToS', async () => {
    expect(expectError(await graph.post(`${ACT}/customaudiences`, { subtype: 'CUSTOM' })).message).toMatch(/name is required/);
    expect(expectError(await graph.post(`${ACT}/customaudiences`, { name: 'x', customer_file_source: 'NOPE' })).code).toBe(100);
    emu.control.setTos(ACT, false);
    expect(expectError(await graph.post(`${ACT}/customaudiences`, { name: 'x' }))).toMatchObject({ code: 200, error_subcode: 1870090 });
    const tos = await graph.get(ACT, { fields: 'tos_accepted,user_tos_accepted,account_id' });
    expect(tos.body).toEqual({ id: ACT, tos_accepted: {}, user_tos_accepted: {}, account_id: ACT.slice(4) });
    emu.control.setTos(ACT, true);
    expect((await graph.get(ACT, { fields: 'tos_accepted' })).body.tos_accepted).toEqual({ custom_audience_tos: 1 });
    expect((await graph.post(`${ACT}/customaudiences`, { name: 'x' })).status).toBe(200);
  });

  it('the API ToS edge records acceptance', async () => {
    emu.control.setTos(ACT, false);
    expect((await graph.post(`${ACT}/customaudiencestos`, { tos_id: '215449065224656' })).body).toEqual({ success: true });
    expect((await graph.get(ACT, { fields: 'tos_accepted' })).body.tos_accepted).toEqual({ custom_audience_tos: 1 });
  });

  it('enforces the per-account audience cap with a clear 100', async () => {
    emu.control.setFlags({ audienceCap: 2 });
    await graph.createAudience();
    await graph.createAudience();
    const e = expectError(await graph.post(`${ACT}/customaudiences`, { name: 'third' }));
    expect(e.code).toBe(100);
    expect(e.message).toMatch(/most allowed is 2.*Delete audiences/);
  });
});

describe('read (§6.6)', () => {
  it('returns id plus only the requested fields, with status objects and size bounds', async () => {
    const id = await graph.createAudience({ description: 'd', is_value_based: false });
    const bare = await graph.get(id);
    expect(bare.body).toEqual({ id });
    const r = await graph.get(id, {
      fields: 'name,description,subtype,operation_status,delivery_status,data_source,approximate_count_lower_bound,approximate_count_upper_bound,is_value_based,account_id',
    });
    expect(r.body).toMatchObject({
      id,
      name: 'Test audience',
      description: 'd',
      subtype: 'CUSTOM',
      account_id: ACT.slice(4),
      is_value_based: false,
      operation_status: { code: 200, description: 'Normal' },
      delivery_status: { code: 300 },
      data_source: { type: 'UNKNOWN' },
      approximate_count_lower_bound: 0,
    });
  });

  it('delivery_status is 300 below the threshold and 200 at or above it', async () => {
    emu.control.setFlags({ deliveryThreshold: 3 });
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b']));
    expect((await graph.get(id, { fields: 'delivery_status' })).body.delivery_status).toMatchObject({ code: 300 });
    await graph.users(id, people(['c']));
    const r = await graph.get(id, { fields: 'delivery_status,approximate_count_lower_bound,approximate_count_upper_bound,data_source' });
    expect(r.body).toMatchObject({
      delivery_status: { code: 200 },
      approximate_count_lower_bound: 3,
      approximate_count_upper_bound: 3,
      data_source: { type: 'FILE_IMPORTED', sub_type: 'MULTI_HASHES' },
    });
  });

  it('a test hook sets any operation status; 471 fills fields_violating_integrity_policy', async () => {
    const id = await graph.createAudience();
    for (const code of [414, 415, 441]) {
      emu.control.setAudienceStatus(id, code);
      expect((await graph.get(id, { fields: 'operation_status' })).body.operation_status).toMatchObject({ code });
    }
    emu.control.setAudienceStatus(id, 471, ['EMAIL', 'PHONE']);
    const r = await graph.get(id, { fields: 'operation_status,fields_violating_integrity_policy' });
    expect(r.body.fields_violating_integrity_policy).toEqual(['EMAIL', 'PHONE']);
  });
});

describe('list (§6.7)', () => {
  it('follows cursors page by page, with no next on the last page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await graph.createAudience({ name: `aud ${i}` }));
    const seen: string[] = [];
    let page = await graph.get(`${ACT}/customaudiences`, { fields: 'id,name', limit: '3' });
    let pages = 1;
    for (;;) {
      const data = page.body.data as Array<{ id: string; name: string }>;
      seen.push(...data.map((d) => d.id));
      const paging = page.body.paging as { next?: string; cursors: { after: string } };
      if (!paging.next) break;
      const next = new URL(paging.next);
      expect(next.searchParams.has('access_token')).toBe(false);
      expect(next.searchParams.get('after')).toBe(paging.cursors.after);
      const res = await fetch(next, { headers: { Authorization: `Bearer ${graph.token}` } });
      page = { ...page, body: (await res.json()) as Record<string, unknown> };
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it('can return an empty first page that still has next (flag)', async () => {
    await graph.createAudience();
    emu.control.setFlags({ emptyFirstPage: true });
    const first = await graph.get(`${ACT}/customaudiences`);
    expect(first.body.data).toEqual([]);
    const next = (first.body.paging as { next: string }).next;
    const res = await fetch(next, { headers: { Authorization: `Bearer ${graph.token}` } });
    const second = (await res.json()) as { data: unknown[]; paging?: { next?: string } };
    expect(second.data).toHaveLength(1);
    expect(second.paging?.next).toBeUndefined();
  });

  it('a limit above the ceiling gives code 1 (reduce the amount of data)', async () => {
    const r = await graph.get(`${ACT}/customaudiences`, { limit: '5000' });
    expect(r.status).toBe(500);
    expect(expectError(r)).toMatchObject({ code: 1 });
    expect(expectError(r).message).toMatch(/reduce the amount of data/);
  });

  it('me/adaccounts is paginated and me/permissions lists scopes', async () => {
    emu.control.addAdAccount({ id: 'act_2000000000000002', name: 'Second' });
    const first = await graph.get('me/adaccounts', { fields: 'id,account_id,name,account_status', limit: '1' });
    expect(first.body.data).toEqual([{ id: ACT, account_id: ACT.slice(4), name: 'Emulator Ad Account', account_status: 1 }]);
    const after = (first.body.paging as { cursors: { after: string } }).cursors.after;
    const second = await graph.get('me/adaccounts', { fields: 'account_id', limit: '1', after });
    expect(second.body.data).toEqual([{ id: 'act_2000000000000002', account_id: '2000000000000002' }]);
    expect((second.body.paging as { next?: string }).next).toBeUndefined();
    const perms = await graph.get('me/permissions');
    expect(perms.body.data).toContainEqual({ permission: 'ads_management', status: 'granted' });
  });
});

describe('delete (§6.16)', () => {
  it('returns success, then reads give 100/33; lookalike dependency gives 2656', async () => {
    const id = await graph.createAudience();
    emu.control.setLookalikeDependency(id, true);
    expect(expectError(await graph.request('DELETE', id)).code).toBe(2656);
    emu.control.setLookalikeDependency(id, false);
    expect((await graph.request('DELETE', id)).body).toEqual({ success: true });
    expect(expectError(await graph.get(id, { fields: 'name' }))).toMatchObject({ code: 100, error_subcode: 33 });
    expect(expectError(await graph.users(id, people(['a'])))).toMatchObject({ code: 100, error_subcode: 33 });
    const list = await graph.get(`${ACT}/customaudiences`);
    expect(list.body.data).toEqual([]);
  });
});
