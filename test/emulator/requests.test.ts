import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN, type RunningEmulator } from '../../src/emulator/index.js';
import { ACT, expectError, people, V, withEmulator, type GraphTestClient } from './helpers.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator());
});
afterAll(() => emu.close());
beforeEach(() => emu.control.reset());

const auth = { Authorization: `Bearer ${DEFAULT_TOKEN}` };

describe('request encodings (§6.4)', () => {
  it('form-urlencoded with payload and session as JSON strings', async () => {
    const id = await graph.createAudience();
    const r = await graph.request('POST', `${id}/users`, {
      form: { payload: JSON.stringify(people(['a', 'b'])), session: JSON.stringify({ session_id: 11, batch_seq: 1, last_batch_flag: true }) },
    });
    expect(r.body).toMatchObject({ audience_id: id, session_id: '11', num_received: 2, num_invalid_entries: 0 });
    expect(emu.control.members(id)).toHaveLength(2);
  });

  it('multipart form data', async () => {
    const id = await graph.createAudience();
    const form = new FormData();
    form.set('payload', JSON.stringify(people(['m1'])));
    form.set('session', JSON.stringify({ session_id: 12, batch_seq: 1, last_batch_flag: true }));
    const res = await fetch(`${emu.url}/${V}/${id}/users`, { method: 'POST', headers: auth, body: form });
    expect(res.status).toBe(200);
    expect(emu.control.members(id)).toEqual([{ EXTERN_ID: 'm1', EMAIL: people(['m1']).data[0]?.[1] }]);
  });

  it('JSON bodies with nested objects or with JSON strings', async () => {
    const id = await graph.createAudience();
    expect((await graph.post(`${id}/users`, { payload: people(['j1']) })).status).toBe(200);
    expect((await graph.post(`${id}/users`, { payload: JSON.stringify(people(['j2'])) })).status).toBe(200);
    expect(emu.control.members(id).map((m) => m.EXTERN_ID).sort()).toEqual(['j1', 'j2']);
  });

  it('POST with method=DELETE removes, and a real DELETE with a body removes', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b', 'c']));
    const viaOverride = await graph.request('POST', `${id}/users`, { form: { method: 'DELETE', payload: JSON.stringify({ schema: ['EXTERN_ID'], data: [['a']] }) } });
    expect(viaOverride.status).toBe(200);
    const viaDelete = await graph.removeUsers(id, { schema: ['EXTERN_ID'], data: [['b']] });
    expect(viaDelete.status).toBe(200);
    expect(emu.control.members(id).map((m) => m.EXTERN_ID)).toEqual(['c']);
    const log = emu.control.requestLog();
    expect(log.at(-2)?.method).toBe('DELETE');
  });

  it('query-string params on GET and DELETE', async () => {
    const id = await graph.createAudience();
    const read = await graph.get(id, { fields: 'name' });
    expect(read.body).toEqual({ id, name: 'Test audience' });
    const del = await graph.request('DELETE', id, { query: {} });
    expect(del.body).toEqual({ success: true });
  });

  it('unparsable JSON in payload gives 100; an unparsable JSON body gives 100', async () => {
    const id = await graph.createAudience();
    const bad = await graph.request('POST', `${id}/users`, { form: { payload: '{"schema": [' } });
    expect(expectError(bad).code).toBe(100);
    const res = await fetch(`${emu.url}/${V}/${id}/users`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{oops' });
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(100);
  });
});

describe('size limits (§6.9)', () => {
  it('URLs above the limit get an HTML 414 page', async () => {
    const res = await fetch(`${emu.url}/${V}/me?x=${'a'.repeat(70_000)}`, { headers: auth });
    expect(res.status).toBe(414);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/<html/);
  });

  it('bodies above the limit give code 1 JSON, or an HTML 500 page behind the flag', async () => {
    const id = await graph.createAudience();
    emu.control.setFlags({ maxBodyBytes: 10_000 });
    const big = people(Array.from({ length: 200 }, (_, i) => `id-${i}`));
    const json = await graph.users(id, big);
    expect([json.status, expectError(json).code]).toEqual([500, 1]);
    emu.control.setFlags({ oversizeBody: 'html' });
    const html = await graph.users(id, big);
    expect(html.status).toBe(500);
    expect(html.text).toMatch(/<html/);
    expect(emu.control.members(id)).toHaveLength(0);
  });
});

describe('routing and versions (§6.1)', () => {
  it('unknown paths and objects give 100/33', async () => {
    for (const path of ['nothing/here/at/all', '99999999999999999', `${ACT}/adsets`, 'act_424242/customaudiences']) {
      const e = expectError(await graph.get(path));
      expect([e.code, e.error_subcode, e.type]).toEqual([100, 33, 'GraphMethodException']);
    }
  });

  it('any vNN.N is served; configured expired versions give 2635', async () => {
    const res = await fetch(`${emu.url}/v21.0/me`, { headers: auth });
    expect(res.status).toBe(200);
    emu.control.setFlags({ rejectedVersions: ['v21.0'] });
    const r = await fetch(`${emu.url}/v21.0/me`, { headers: auth });
    expect(((await r.json()) as { error: { code: number } }).error.code).toBe(2635);
  });
});

describe('error envelope (§6.20)', () => {
  it('has message prefixed (#code), type, code, is_transient, fbtrace_id; statuses follow the code', async () => {
    const id = await graph.createAudience();
    const e = expectError(await graph.get(id, { fields: 'bogus' }));
    expect(e.message).toBe('(#100) Tried accessing nonexisting field (bogus) on node type (CustomAudience)');
    expect(e).toMatchObject({ type: 'OAuthException', code: 100, is_transient: false });
    expect(e.fbtrace_id).toMatch(/^[A-Za-z0-9_-]{11}$/);
    emu.control.setTos(ACT, false);
    const tos = await graph.post(`${ACT}/customaudiences`, { name: 'x' });
    expect(tos.status).toBe(403);
    expect(expectError(tos)).toMatchObject({ code: 200, error_subcode: 1870090 });
    expect(expectError(tos).error_user_msg).toContain('https://business.facebook.com/ads/manage/customaudiences/tos/?act=');
  });
});
