import { describe, expect, it } from 'vitest';
import type { FaultKind } from '../../src/emulator/index.js';
import { MetaApiError } from '../../src/meta/index.js';
import { ACCOUNT, SCHEMA, TOKEN, memberIds, person, useTestEmulator, testClient } from './harness.js';

const emulator = useTestEmulator();

async function failure(p: Promise<unknown>): Promise<MetaApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MetaApiError);
  const e = err as MetaApiError;
  expect(e.message).not.toContain(TOKEN);
  expect(e.userAction).toBeTruthy();
  expect(e.message).toContain(e.userAction);
  return e;
}

async function newAudience(name = 'errors'): Promise<string> {
  return (await testClient(emulator()).client.createCustomAudience(ACCOUNT, { name })).id;
}

describe('fatal errors carry a kind and tell the user what to do', () => {
  it('expired token (190/463)', async () => {
    emulator().control.setTokenState(TOKEN, 'expired');
    const e = await failure(testClient(emulator()).client.me());
    expect(e).toMatchObject({ kind: 'auth', code: 190, subcode: 463, retryable: false });
    expect(e.userAction).toMatch(/Re-authorize: the token expired/);
  });

  it('password changed and logged out tokens (190/460, 190/467)', async () => {
    emulator().control.setTokenState(TOKEN, 'password_changed');
    expect(await failure(testClient(emulator()).client.me())).toMatchObject({ kind: 'auth', subcode: 460 });
    emulator().control.setTokenState(TOKEN, 'logged_out');
    expect(await failure(testClient(emulator()).client.me())).toMatchObject({ kind: 'auth', subcode: 467 });
  });

  it('unknown token (190, no subcode)', async () => {
    const e = await failure(testClient(emulator(), { accessToken: 'not-a-known-token' }).client.adAccounts());
    expect(e).toMatchObject({ kind: 'auth', code: 190, subcode: undefined });
    expect(e.message).not.toContain('not-a-known-token');
  });

  it('missing ads_management (294 or 200)', async () => {
    const audienceId = await newAudience();
    emulator().control.setScopes(TOKEN, []);
    const e = await failure(testClient(emulator()).client.upload('add', audienceId, SCHEMA, [person(1)]));
    expect(e.kind).toBe('permission');
    expect([294, 200]).toContain(e.code);
    expect(e.userAction).toMatch(/ads_management/);
  });

  it('custom audience ToS not accepted (200/1870090) links to the ToS page of the account', async () => {
    const audienceId = await newAudience();
    emulator().control.setTos(ACCOUNT, false);
    const link = `https://business.facebook.com/ads/manage/customaudiences/tos/?act=${ACCOUNT}`;
    const onCreate = await failure(testClient(emulator()).client.createCustomAudience(`act_${ACCOUNT}`, { name: 'x' }));
    expect(onCreate).toMatchObject({ kind: 'tos', code: 200, subcode: 1870090 });
    expect(onCreate.userAction).toContain(link);
    // A client that never saw the audience looks its account up to build the link.
    const onUpload = await failure(testClient(emulator()).client.upload('add', audienceId, SCHEMA, [person(1)]));
    expect(onUpload).toMatchObject({ kind: 'tos', subcode: 1870090 });
    expect(onUpload.message).toContain(link);
  });

  it('flagged audience (471 blocks uploads with 100/1713230)', async () => {
    const audienceId = await newAudience();
    emulator().control.setAudienceStatus(audienceId, 471);
    const e = await failure(testClient(emulator()).client.upload('remove', audienceId, SCHEMA, [person(1)]));
    expect(e).toMatchObject({ kind: 'flagged', code: 100, subcode: 1713230, retryable: false });
    expect((await testClient(emulator()).client.getAudience(audienceId)).fieldsViolatingIntegrityPolicy).toEqual(['EMAIL']);
  });

  it('object not found (100/33), for reads and uploads', async () => {
    const { client } = testClient(emulator());
    expect(await failure(client.getAudience('2385000000000000099'))).toMatchObject({ kind: 'not_found', code: 100, subcode: 33 });
    const audienceId = await newAudience();
    await client.deleteAudience(audienceId);
    expect(await failure(client.upload('add', audienceId, SCHEMA, [person(1)]))).toMatchObject({ kind: 'not_found' });
  });

  it('bad schema key (100, invalid_request)', async () => {
    const audienceId = await newAudience();
    const e = await failure(testClient(emulator()).client.upload('add', audienceId, ['EMAIL', 'SHOE_SIZE'], [['a', 'b']]));
    expect(e).toMatchObject({ kind: 'invalid_request', code: 100 });
  });

  it('retired API version (2635)', async () => {
    emulator().control.setFlags({ rejectedVersions: ['v22.0'] });
    const e = await failure(testClient(emulator(), { apiVersion: 'v22.0' }).client.me());
    expect(e).toMatchObject({ kind: 'deprecated_version', code: 2635 });
  });
});

describe('throttling', () => {
  it('waits as long as the usage headers say, then succeeds', async () => {
    emulator().control.setRateLimit({ budgetPerHour: 3 });
    const { client, waits, events } = testClient(emulator(), { maxThrottleWaitMs: 2 * 60 * 60_000 });
    const audienceId = (await client.createCustomAudience(ACCOUNT, { name: 'throttled' })).id;
    for (let i = 0; i < 4; i++) await client.getAudience(audienceId, ['name']);
    expect(waits.length).toBeGreaterThanOrEqual(1);
    const throttle = events.find((e) => e.type === 'throttle');
    expect(throttle).toMatchObject({ type: 'throttle', code: 80003 });
    // The emulator puts the limit back ~60 min away (all calls fell in one minute): we waited at least that long.
    expect(waits[0]).toBeGreaterThanOrEqual(59 * 60_000);
    expect(waits[0]).toBeLessThanOrEqual(61 * 60_000 * 1.1);
  });

  it.each([17, 613, 4] as const)('treats limit %i as a throttle too', async (kind) => {
    emulator().control.setRateLimit({ budgetPerHour: 1, kind });
    const { client, events } = testClient(emulator(), { maxThrottleWaitMs: 2 * 60 * 60_000 });
    await client.customAudienceTosAccepted(ACCOUNT);
    await client.customAudienceTosAccepted(ACCOUNT);
    expect(events.filter((e) => e.type === 'throttle').map((e) => (e.type === 'throttle' ? e.code : 0))).toEqual([kind]);
  });

  it('gives up with a throttled error saying when to retry when the wait exceeds maxThrottleWaitMs', async () => {
    emulator().control.setRateLimit({ budgetPerHour: 1 });
    const { client, waits } = testClient(emulator(), { maxThrottleWaitMs: 15 * 60_000 });
    await client.customAudienceTosAccepted(ACCOUNT);
    const e = await failure(client.customAudienceTosAccepted(ACCOUNT));
    expect(e).toMatchObject({ kind: 'throttled', code: 80003, retryable: true });
    expect(e.userAction).toMatch(/run the sync again after \d{4}-\d\d-\d\dT/);
    expect(e.regainAccessMs).toBeGreaterThan(15 * 60_000);
    expect(waits).toEqual([]);
  });
});

describe('transient faults are retried', () => {
  it.each<FaultKind>(['transient', 'unknown', 'html5xx', 'drop'])('%s: uploads still land completely', async (kind) => {
    const audienceId = await newAudience();
    emulator().control.setFaults({ rate: 0.4, kinds: [kind], seed: 11, paths: '/users$', phase: 'either' });
    const { client, events } = testClient(emulator(), { batchRows: 100 });
    const rows = Array.from({ length: 1000 }, (_, i) => person(i));
    const summary = await client.upload('add', audienceId, SCHEMA, rows);
    expect(summary.rows).toBe(1000);
    expect(events.filter((e) => e.type === 'retry').length).toBeGreaterThan(0);
    expect(memberIds(emulator(), audienceId).size).toBe(1000);
  });

  it('a slow answer past requestTimeoutMs counts as transient', async () => {
    const { client, events } = testClient(emulator(), { requestTimeoutMs: 150 });
    emulator().control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 400, paths: '/me$' });
    const pending = client.me();
    // Let the first attempt time out, then lift the fault so a retry can succeed.
    await new Promise((r) => setTimeout(r, 250));
    emulator().control.setFaults({ rate: 0, kinds: [] });
    expect((await pending).id).toMatch(/^\d+$/);
    expect(events.find((e) => e.type === 'retry')).toMatchObject({ reason: expect.stringMatching(/no response within 150 ms/) });
  });

  it('gives up after maxAttempts and says so', async () => {
    emulator().control.setFaults({ rate: 1, kinds: ['html5xx'] });
    const { client, waits } = testClient(emulator(), { retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 } });
    const e = await failure(client.me());
    expect(e).toMatchObject({ kind: 'transient', retryable: true, httpStatus: 502 });
    expect(e.message).toMatch(/gave up after 4 attempts/);
    expect(waits).toHaveLength(3);
    expect(emulator().control.requestLog()).toHaveLength(4);
  });

  it('an ambiguous failure on create does not create a second audience', async () => {
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: '/customaudiences$' });
    const { client, events } = testClient(emulator(), {
      onEvent: (e) => {
        events.push(e);
        // Only the POST is faulted: lift the fault once the create was dropped.
        if (e.type === 'retry') emulator().control.setFaults({ rate: 0, kinds: [] });
      },
    });
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'once only' });
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
    const live = emulator().control.audiences().filter((a) => !a.deleted);
    expect(live.map((a) => a.id)).toEqual([id]);
  });

  it('a delete whose answer was lost counts as done when the retry finds it gone', async () => {
    const audienceId = await newAudience();
    emulator().control.setFaults({ rate: 1, kinds: ['drop'], phase: 'after', paths: `^/v25.0/${audienceId}$` });
    let retries = 0;
    const { client } = testClient(emulator(), {
      onEvent: (e) => {
        if (e.type !== 'retry') return;
        retries++;
        emulator().control.setFaults({ rate: 0, kinds: [] });
      },
    });
    await client.deleteAudience(audienceId);
    expect(retries).toBe(1);
    expect(emulator().control.audience(audienceId)?.deleted).toBe(true);
  });
});
