import { describe, expect, it } from 'vitest';
import { GraphClient, MetaApiError, appSecretProof } from '../../src/meta/index.js';
import { ACCOUNT, SCHEMA, TOKEN, memberIds, person, sha, useTestEmulator, testClient } from './harness.js';
import { startWiretap } from './wiretap.js';

const emulator = useTestEmulator();

describe('account and token calls', () => {
  it('reads the user, ad accounts, permissions and ToS state', async () => {
    const { client } = testClient(emulator());
    expect((await client.me()).id).toMatch(/^\d+$/);
    const accounts = await client.adAccounts();
    expect(accounts).toContainEqual(expect.objectContaining({ id: `act_${ACCOUNT}`, accountId: ACCOUNT, accountStatus: 1 }));
    expect(await client.permissions()).toContainEqual({ permission: 'ads_management', status: 'granted' });
    expect(await client.customAudienceTosAccepted(ACCOUNT)).toBe(true);
    expect(await client.customAudienceTosAccepted(`act_${ACCOUNT}`)).toBe(true);
    emulator().control.setTos(ACCOUNT, false);
    expect(await client.customAudienceTosAccepted(ACCOUNT)).toBe(false);
  });

  it('follows every page of the ad account list', async () => {
    for (let i = 2; i <= 60; i++) emulator().control.addAdAccount({ id: `10000000000${String(i).padStart(5, '0')}`, name: `acct ${i}` });
    const { client } = testClient(emulator());
    expect(await client.adAccounts()).toHaveLength(60);
  });
});

describe('audiences', () => {
  it('creates, reads, lists and deletes with ids kept as strings', async () => {
    const { client } = testClient(emulator());
    const { id } = await client.createCustomAudience(`act_${ACCOUNT}`, { name: 'Churn risk', description: 'd', valueBased: false });
    expect(typeof id).toBe('string');
    expect(BigInt(id) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    const info = await client.getAudience(id);
    expect(info).toMatchObject({
      id,
      accountId: ACCOUNT,
      name: 'Churn risk',
      description: 'd',
      subtype: 'CUSTOM',
      customerFileSource: 'USER_PROVIDED_ONLY',
      isValueBased: false,
      operationStatus: { code: 200 },
      deliveryStatus: { code: 300 },
    });
    expect(await client.getAudience(id, ['name'])).toEqual({ id, name: 'Churn risk' });
    expect((await client.listAudiences(ACCOUNT)).map((a) => a.id)).toEqual([id]);
    await client.deleteAudience(id);
    await expect(client.getAudience(id)).rejects.toMatchObject({ kind: 'not_found', code: 100, subcode: 33 });
    expect(await client.listAudiences(ACCOUNT)).toEqual([]);
  });

  it('checks token, ad account and audience with one read of the audience, refusing one of another account', async () => {
    const { client } = testClient(emulator());
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'checked', description: 'mine' });
    emulator().control.clearRequestLog();
    expect(await client.checkAudience(`act_${ACCOUNT}`, id)).toEqual({ id, accountId: ACCOUNT, name: 'checked', description: 'mine', approximateCountLowerBound: 0, approximateCountUpperBound: 0 });
    expect(emulator().control.requestLog().map((e) => `${e.method} ${e.path}`)).toEqual([`GET /v25.0/${id}`]);

    emulator().control.addAdAccount({ id: '2000000000000002', name: 'other', tosAccepted: true });
    await expect(client.checkAudience('act_2000000000000002', id)).rejects.toThrow(`audience ${id} belongs to ad account act_${ACCOUNT}, not to act_2000000000000002`);
    emulator().control.setTokenState(TOKEN, 'expired');
    await expect(client.checkAudience(ACCOUNT, id)).rejects.toMatchObject({ kind: 'auth', code: 190 });
  });

  it('lists an account with many audiences across pages, including an empty page that has next', async () => {
    const { client } = testClient(emulator());
    const created: string[] = [];
    for (let i = 0; i < 47; i++) created.push((await client.createCustomAudience(ACCOUNT, { name: `aud ${i}` })).id);
    emulator().control.setFlags({ emptyFirstPage: true });
    emulator().control.clearRequestLog();
    const listed = await client.listAudiences(ACCOUNT);
    expect(listed.map((a) => a.id).sort()).toEqual([...created].sort());
    const pages = emulator().control.requestLog().filter((r) => r.path.endsWith('/customaudiences'));
    expect(pages.length).toBeGreaterThanOrEqual(4); // empty first page + 3 pages of at most 20
  });

  it('reports size bounds and data source after an upload', async () => {
    const { client } = testClient(emulator());
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'sized' });
    await client.upload('add', id, SCHEMA, Array.from({ length: 1500 }, (_, i) => person(i)));
    const info = await client.getAudience(id);
    expect(info.approximateCountLowerBound).toBeGreaterThan(1000);
    expect(info.deliveryStatus?.code).toBe(200);
    expect(info.dataSource).toMatchObject({ type: 'FILE_IMPORTED', subType: 'MULTI_HASHES' });
  });
});

describe('uploads', () => {
  it('sends 25,000 rows as 3 requests of one session: batch_seq 1,2,3, last flag only on 3, estimated total', async () => {
    const tap = await startWiretap(emulator().url);
    try {
      const { client } = testClient(emulator(), { graphUrl: tap.url });
      const { id } = await client.createCustomAudience(ACCOUNT, { name: 'big' });
      const rows = Array.from({ length: 25_000 }, (_, i) => person(i));
      const results: Array<{ batchSeq: number; rows: number; sessionId: string }> = [];
      const summary = await client.upload('add', id, SCHEMA, rows, { estimatedTotal: 25_000, onBatch: (r) => void results.push(r) });
      expect(summary).toEqual({ batches: 3, rows: 25_000, numInvalidEntries: 0, invalidEntrySamples: [] });

      const uploads = tap.requests.filter((r) => r.url.includes('/users'));
      expect(uploads).toHaveLength(3);
      const bodies = uploads.map((r) => JSON.parse(r.body) as { payload: { schema: string[]; is_raw: boolean; data: string[][] }; session: Record<string, unknown> });
      expect(bodies.map((b) => b.payload.data.length)).toEqual([10_000, 10_000, 5_000]);
      expect(bodies.map((b) => b.session.batch_seq)).toEqual([1, 2, 3]);
      expect(bodies.map((b) => b.session.last_batch_flag)).toEqual([false, false, true]);
      expect(bodies.map((b) => b.session.estimated_num_total)).toEqual([25_000, 25_000, 25_000]);
      expect(new Set(bodies.map((b) => b.session.session_id)).size).toBe(1);
      expect(Number.isSafeInteger(bodies[0]?.session.session_id)).toBe(true);
      for (const b of bodies) expect(b.payload).toMatchObject({ schema: [...SCHEMA], is_raw: true });
      expect(results.map((r) => r.batchSeq)).toEqual([1, 2, 3]);
      expect(results[2]?.sessionId).toBe(String(bodies[0]?.session.session_id));

      expect(memberIds(emulator(), id).size).toBe(25_000);
      const log = emulator().control.requestLog().filter((r) => r.path.endsWith('/users'));
      expect(log.map((r) => r.rows)).toEqual([10_000, 10_000, 5_000]);
    } finally {
      await tap.close();
    }
  });

  it('never puts a removal payload in the URL', async () => {
    const tap = await startWiretap(emulator().url);
    try {
      const { client } = testClient(emulator(), { graphUrl: tap.url });
      const { id } = await client.createCustomAudience(ACCOUNT, { name: 'removals' });
      const rows = Array.from({ length: 3000 }, (_, i) => person(i));
      await client.upload('add', id, SCHEMA, rows);
      await client.upload('remove', id, SCHEMA, rows.slice(0, 2000));
      expect(memberIds(emulator(), id).size).toBe(1000);

      const removal = tap.requests.filter((r) => r.url.includes('/users')).at(-1);
      expect(removal?.method).toBe('POST');
      expect(removal?.url).not.toMatch(/payload|session|crm-|[0-9a-f]{64}/);
      expect(removal?.url.length).toBeLessThan(200);
      expect(JSON.parse(removal?.body ?? '{}')).toMatchObject({ method: 'DELETE', payload: { data: expect.any(Array) } });
      expect(emulator().control.requestLog().filter((r) => r.path.endsWith('/users')).at(-1)?.method).toBe('DELETE');
      // The token travels only in the Authorization header, never in a URL.
      for (const r of tap.requests) expect(r.url).not.toContain(TOKEN);
    } finally {
      await tap.close();
    }
  });

  it('splits by the byte budget as well as by rows', async () => {
    const tap = await startWiretap(emulator().url);
    try {
      const budget = 32 * 1024;
      const { client } = testClient(emulator(), { graphUrl: tap.url, maxBatchBytes: budget });
      const { id } = await client.createCustomAudience(ACCOUNT, { name: 'bytes' });
      const sizes: number[] = [];
      await client.upload('add', id, SCHEMA, Array.from({ length: 1000 }, (_, i) => person(i)), { onBatch: (r) => void sizes.push(r.rows) });
      expect(sizes.length).toBeGreaterThanOrEqual(5);
      expect(sizes.reduce((a, b) => a + b)).toBe(1000);
      for (const r of tap.requests.filter((x) => x.url.includes('/users'))) {
        expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(budget);
      }
      expect(memberIds(emulator(), id).size).toBe(1000);
    } finally {
      await tap.close();
    }
  });

  it('streams rows from an async iterable', async () => {
    const { client } = testClient(emulator(), { batchRows: 300 });
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'stream' });
    async function* rows() {
      for (let i = 0; i < 1000; i++) yield person(i);
    }
    const summary = await client.upload('add', id, SCHEMA, rows());
    expect(summary).toMatchObject({ batches: 4, rows: 1000 });
    expect(memberIds(emulator(), id).size).toBe(1000);
  });

  it('reports invalid entries, given as an object or an array, as a list of strings', async () => {
    const { client } = testClient(emulator());
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'invalid' });
    const rows = [person(1), ['crm-2', 'NOT-A-HASH', ''], ['crm-3', sha('x').toUpperCase(), '']];
    const a = await client.upload('add', id, SCHEMA, rows);
    expect(a.numInvalidEntries).toBe(2);
    expect(a.invalidEntrySamples).toHaveLength(2);
    for (const s of a.invalidEntrySamples) expect(typeof s).toBe('string');
    emulator().control.setFlags({ invalidSamplesShape: 'array' });
    const b = await client.upload('add', id, SCHEMA, rows);
    expect(b.numInvalidEntries).toBe(2);
    expect(b.invalidEntrySamples).toHaveLength(2);
  });

  it('names the rows of a batch Meta found invalid, whichever shape the samples come in', async () => {
    const { client } = testClient(emulator());
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'invalid rows' });
    const rows = [person(1), ['crm-2', 'NOT-A-HASH', ''], person(3), ['crm-4', sha('x').toUpperCase(), '']];
    for (const shape of ['object', 'array'] as const) {
      emulator().control.setFlags({ invalidSamplesShape: shape });
      const r = await client.openUploadSession('add', id, SCHEMA).send(rows, { last: true });
      expect(r.numInvalidEntries).toBe(2);
      expect(r.invalidEntries).toEqual([
        { row: 1, reason: 'EMAIL: not a lowercase SHA-256 hex digest' },
        { row: 3, reason: 'EMAIL: not a lowercase SHA-256 hex digest' },
      ]);
    }
  });

  it('refuses batches that break the contract before sending them', async () => {
    const { client } = testClient(emulator(), { batchRows: 10 });
    const { id } = await client.createCustomAudience(ACCOUNT, { name: 'contract' });
    const session = client.openUploadSession('add', id, SCHEMA);
    await expect(session.send(Array.from({ length: 11 }, (_, i) => person(i)), { last: false })).rejects.toThrow(/more than the 10 allowed/);
    await expect(session.send([['only-one-cell']], { last: false })).rejects.toThrow(/row 0 has 1 cells but the schema has 3 keys/);
    await session.send([person(1)], { last: true });
    await expect(session.send([person(2)], { last: true })).rejects.toThrow(/already sent its last batch/);
    await expect(client.upload('replace', id, SCHEMA, [])).rejects.toThrow(/remove its members instead/);
    expect(() => client.openUploadSession('add', 'act_1', SCHEMA)).toThrow(/Audience id "act_1" is not valid/);
  });
});

describe('appsecret_proof', () => {
  it('is sent when configured, and missing or wrong proofs fail with advice', async () => {
    const secret = 'appsecret123';
    emulator().control.setAppSecret(secret);
    const good = testClient(emulator(), { appSecret: secret }).client;
    expect((await good.me()).id).toMatch(/^\d+$/);

    const none = testClient(emulator()).client;
    const missing = await none.me().catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MetaApiError);
    expect(missing).toMatchObject({ kind: 'auth', code: 100 });
    expect((missing as MetaApiError).userAction).toMatch(/app secret/);

    const wrong = testClient(emulator(), { appSecret: 'not-the-secret' }).client;
    await expect(wrong.me()).rejects.toMatchObject({ kind: 'auth', code: 100, message: expect.stringMatching(/Invalid appsecret_proof/) });
  });

  it('puts the HMAC of the token in the query string', async () => {
    const tap = await startWiretap(emulator().url);
    try {
      const client = new GraphClient({ accessToken: TOKEN, graphUrl: tap.url, appSecret: 's3cret' });
      await client.me();
      const url = new URL(tap.requests[0]?.url ?? '', 'http://x');
      expect(url.searchParams.get('appsecret_proof')).toBe(appSecretProof(TOKEN, 's3cret'));
      expect(url.searchParams.get('access_token')).toBeNull();
    } finally {
      await tap.close();
    }
  });
});
