import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appsecretProof, DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { ACT, expectError, withEmulator, type GraphTestClient } from './helpers.js';
import type { RunningEmulator } from '../../src/emulator/index.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator({ startTime: Date.UTC(2026, 0, 1) }));
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.control.reset();
  graph.token = DEFAULT_TOKEN;
});

describe('access token', () => {
  it('is accepted as a Bearer header or as the access_token param', async () => {
    expect((await graph.request('GET', 'me', { auth: 'bearer' })).body).toMatchObject({ id: '100000000000001' });
    expect((await graph.request('GET', 'me', { auth: 'param' })).status).toBe(200);
    const form = await graph.request('POST', `${ACT}/customaudiences`, { auth: 'none', form: { access_token: DEFAULT_TOKEN, name: 'via form' } });
    expect(form.status).toBe(200);
  });

  it('missing token gives 104, unknown token 190 without subcode and a WWW-Authenticate header', async () => {
    const missing = await graph.request('GET', 'me', { auth: 'none' });
    expect(expectError(missing).code).toBe(104);
    graph.token = 'nope';
    const unknown = await graph.get('me');
    expect(unknown.status).toBe(400);
    const e = expectError(unknown);
    expect(e.code).toBe(190);
    expect(e.error_subcode).toBeUndefined();
    expect(e.type).toBe('OAuthException');
    expect(unknown.headers.get('www-authenticate')).toMatch(/^OAuth "Facebook Platform" "invalid_token"/);
  });

  it.each([
    ['expired', 463],
    ['password_changed', 460],
    ['logged_out', 467],
  ] as const)('a %s token gives 190/%i', async (state, subcode) => {
    emu.control.setTokenState(DEFAULT_TOKEN, state);
    const e = expectError(await graph.get('me'));
    expect([e.code, e.error_subcode, e.is_transient]).toEqual([190, subcode, false]);
  });

  it('a token limited to some ad accounts sees only those: the others and their audiences answer 100/33, each token with its own state', async () => {
    emu.control.addAdAccount({ id: '2000000000000002', name: 'Other business' });
    emu.control.addToken({ token: 'other-business', adAccounts: ['act_2000000000000002'] });
    const mine = (await graph.request('POST', `${ACT}/customaudiences`, { form: { name: 'mine' } })).body.id as string;
    graph.token = 'other-business';
    const listed = await graph.get('me/adaccounts', { fields: 'account_id' });
    expect((listed.body.data as Array<{ account_id: string }>).map((a) => a.account_id)).toEqual(['2000000000000002']);
    expect((await graph.request('POST', 'act_2000000000000002/customaudiences', { form: { name: 'theirs' } })).status).toBe(200);
    for (const path of [`${ACT}/customaudiences`, mine]) {
      const e = expectError(await graph.get(path));
      expect([e.code, e.error_subcode]).toEqual([100, 33]);
    }
    // One token expiring leaves the other valid.
    emu.control.setTokenState('other-business', 'expired');
    expect(expectError(await graph.get('me')).error_subcode).toBe(463);
    graph.token = DEFAULT_TOKEN;
    expect((await graph.get('me')).status).toBe(200);
    expect((await graph.get('me/adaccounts')).body.data).toHaveLength(2);
  });

  it("a token of an app that requires appsecret_proof needs a proof made with that app's secret", async () => {
    emu.control.addToken({ token: 'app-token', appSecret: 'app-secret-1' });
    graph.token = 'app-token';
    expect(expectError(await graph.get('me')).message).toMatch(/appsecret_proof/);
    expect(expectError(await graph.get('me', { appsecret_proof: appsecretProof('another-secret', 'app-token') })).message).toMatch(/appsecret_proof/);
    expect((await graph.get('me', { appsecret_proof: appsecretProof('app-secret-1', 'app-token') })).status).toBe(200);
    graph.token = DEFAULT_TOKEN;
    expect((await graph.get('me')).status).toBe(200);
  });

  it('a token with expiresAt expires when the clock passes it', async () => {
    emu.control.addToken({ token: 'short-lived', expiresAt: emu.control.now() + 60_000 });
    graph.token = 'short-lived';
    expect((await graph.get('me')).status).toBe(200);
    emu.control.advanceClock(60_000);
    expect(expectError(await graph.get('me')).error_subcode).toBe(463);
  });

  it('without ads_management: reads work with ads_read, writes give 200; with neither scope 294', async () => {
    emu.control.setScopes(DEFAULT_TOKEN, ['ads_read']);
    expect((await graph.get(`${ACT}/customaudiences`)).status).toBe(200);
    const write = await graph.post(`${ACT}/customaudiences`, { name: 'x' });
    expect(write.status).toBe(403);
    expect(expectError(write).code).toBe(200);
    emu.control.setScopes(DEFAULT_TOKEN, ['public_profile']);
    expect(expectError(await graph.get(`${ACT}/customaudiences`)).code).toBe(294);
    const perms = await graph.get('me/permissions');
    expect(perms.body.data).toEqual([{ permission: 'public_profile', status: 'granted' }]);
  });
});

describe('appsecret_proof', () => {
  it('matches the spec test vectors', () => {
    expect(appsecretProof('appsecret123', 'EAAtesttoken123')).toBe('2ebb24d32ce521989c437b05afd52c634dac1de78e7c6d2ea6b3a60f2e2323b9');
    expect(appsecretProof('appsecret123', 'EAAtesttoken123', '1700000000')).toBe('76e7334fe715b865275c0fa603910d5e4855707278762b6eae8feb203c7e7496');
  });

  it('is required when the app secret is set: missing and wrong proofs give 100 GraphMethodException', async () => {
    emu.control.addToken({ token: 'EAAtesttoken123' });
    emu.control.setAppSecret('appsecret123');
    graph.token = 'EAAtesttoken123';
    const missing = expectError(await graph.get('me'));
    expect([missing.code, missing.type]).toEqual([100, 'GraphMethodException']);
    expect(missing.message).toBe('(#100) API calls from the server require an appsecret_proof argument');
    const wrong = expectError(await graph.get('me', { appsecret_proof: 'ab'.repeat(32) }));
    expect(wrong.message).toMatch(/Invalid appsecret_proof/);
    const ok = await graph.get('me', { appsecret_proof: '2ebb24d32ce521989c437b05afd52c634dac1de78e7c6d2ea6b3a60f2e2323b9' });
    expect(ok.status).toBe(200);
    const timed = await graph.get('me', {
      appsecret_proof: '76e7334fe715b865275c0fa603910d5e4855707278762b6eae8feb203c7e7496',
      appsecret_time: '1700000000',
    });
    expect(timed.status).toBe(200);
    // The plain proof is not valid for the time variant.
    const mixed = await graph.get('me', { appsecret_proof: '2ebb24d32ce521989c437b05afd52c634dac1de78e7c6d2ea6b3a60f2e2323b9', appsecret_time: '1700000000' });
    expect(expectError(mixed).message).toMatch(/Invalid appsecret_proof/);
  });
});
