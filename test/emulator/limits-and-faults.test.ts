import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { ACT, expectError, GraphTestClient, people, withEmulator } from './helpers.js';

let emu: RunningEmulator;
let graph: GraphTestClient;

beforeAll(async () => {
  ({ emu, graph } = await withEmulator({ startTime: Date.UTC(2026, 2, 1, 12, 0, 0) }));
});
afterAll(() => emu.close());
beforeEach(() => emu.control.reset());

const bucUsage = (h: Headers) => {
  const buc = JSON.parse(h.get('x-business-use-case-usage') ?? '{}') as Record<string, Array<{ type: string; call_count: number; estimated_time_to_regain_access: number }>>;
  return buc[ACT.slice(4)]?.[0];
};

describe('rate limiting (§6.18)', () => {
  it('emits usage headers on every response, including errors', async () => {
    const ok = await graph.get(`${ACT}/customaudiences`);
    expect(JSON.parse(ok.headers.get('x-app-usage') ?? '')).toHaveProperty('call_count');
    expect(JSON.parse(ok.headers.get('x-ad-account-usage') ?? '')).toHaveProperty('acc_id_util_pct');
    expect(bucUsage(ok.headers)).toMatchObject({ type: 'custom_audience' });
    const err = await graph.get('404404');
    expect(err.headers.get('x-app-usage')).not.toBeNull();
  });

  it('at 100% returns 80003 with estimated_time_to_regain_access > 0 until the clock moves on', async () => {
    emu.control.setRateLimit({ budgetPerHour: 4 });
    for (let i = 0; i < 3; i++) expect((await graph.get(`${ACT}/customaudiences`)).status).toBe(200);
    const at100 = await graph.get(`${ACT}/customaudiences`);
    expect(bucUsage(at100.headers)?.call_count).toBe(100);
    const throttled = await graph.get(`${ACT}/customaudiences`);
    expect(throttled.status).toBe(400);
    expect(expectError(throttled)).toMatchObject({ code: 80003, is_transient: true });
    expect(bucUsage(throttled.headers)?.estimated_time_to_regain_access).toBeGreaterThan(0);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another account is not affected.
    emu.control.addAdAccount({ id: '3000000000000003' });
    expect((await graph.get('act_3000000000000003/customaudiences')).status).toBe(200);
    emu.control.advanceClock(30 * 60_000);
    expect(expectError(await graph.get(`${ACT}/customaudiences`)).code).toBe(80003);
    emu.control.advanceClock(31 * 60_000);
    const after = await graph.get(`${ACT}/customaudiences`);
    expect(after.status).toBe(200);
    expect(bucUsage(after.headers)?.call_count).toBe(25);
  });

  it.each([
    [17, 2446079, 400],
    [613, 1487742, 400],
    [4, undefined, 403],
  ] as const)('bucket kind %i gives subcode %s and HTTP %i', async (kind, subcode, httpStatus) => {
    emu.control.setRateLimit({ budgetPerHour: 1, kind });
    await graph.get(`${ACT}/customaudiences`);
    const r = await graph.get(`${ACT}/customaudiences`);
    expect(r.status).toBe(httpStatus);
    expect(expectError(r).code).toBe(kind);
    expect(expectError(r).error_subcode).toBe(subcode);
  });

  it('per-account budgets', async () => {
    emu.control.setRateLimit({ adAccountId: ACT.slice(4), budgetPerHour: 1 });
    await graph.get(`${ACT}/customaudiences`);
    expect(expectError(await graph.get(`${ACT}/customaudiences`)).code).toBe(80003);
  });
});

describe('fault injection (§6.19)', () => {
  const always = (kind: Parameters<RunningEmulator['control']['setFaults']>[0]['kinds'][number], extra = {}) =>
    emu.control.setFaults({ rate: 1, kinds: [kind], seed: 7, ...extra });

  it('transient: code 2, is_transient, 503', async () => {
    always('transient');
    const r = await graph.get('me');
    expect(r.status).toBe(503);
    expect(expectError(r)).toMatchObject({ code: 2, is_transient: true });
  });

  it('unknown: code 1, 500', async () => {
    always('unknown');
    const r = await graph.get('me');
    expect([r.status, expectError(r).code]).toEqual([500, 1]);
  });

  it('throttle: 80003 with usage at 100 and time to regain > 0', async () => {
    always('throttle');
    const r = await graph.get(`${ACT}/customaudiences`);
    expect(expectError(r).code).toBe(80003);
    expect(bucUsage(r.headers)).toMatchObject({ call_count: 100 });
    expect(bucUsage(r.headers)?.estimated_time_to_regain_access).toBeGreaterThan(0);
  });

  it('html5xx: an HTML error page', async () => {
    always('html5xx');
    const r = await graph.get('me');
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('drop: the connection closes without an answer', async () => {
    always('drop');
    await expect(graph.get('me')).rejects.toThrow();
    expect(emu.control.requestLog().at(-1)).toMatchObject({ fault: 'drop', status: 0 });
  });

  it('latency: the answer comes late but right', async () => {
    always('latency', { latencyMs: 150 });
    const started = performance.now();
    const r = await graph.get('me');
    expect(r.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('uploadLatencyMs: uploads (add, remove, replace) are answered that late, with their work done; other calls are not held', async () => {
    const id = await graph.createAudience();
    emu.control.setFlags({ uploadLatencyMs: 300 });
    const timed = async <T>(call: () => Promise<T>) => {
      const started = performance.now();
      const result = await call();
      return { result, ms: performance.now() - started };
    };
    const add = await timed(() => graph.users(id, people(['a', 'b'])));
    expect(add.result.status).toBe(200);
    expect(add.ms).toBeGreaterThanOrEqual(290);
    expect(emu.control.members(id)).toHaveLength(2);
    const remove = await timed(() => graph.removeUsers(id, people(['a'])));
    expect(remove.result.status).toBe(200);
    expect(remove.ms).toBeGreaterThanOrEqual(290);
    expect(emu.control.members(id)).toHaveLength(1);
    const replace = await timed(() => graph.replace(id, people(['c', 'd', 'e']), { session_id: 7, batch_seq: 1, last_batch_flag: true }));
    expect(replace.result.status).toBe(200);
    expect(replace.ms).toBeGreaterThanOrEqual(290);
    expect(emu.control.members(id)).toHaveLength(3);
    const read = await timed(() => graph.get(id, { fields: 'name' }));
    expect(read.result.status).toBe(200);
    expect(read.ms).toBeLessThan(290);
    const uploads = emu.control.requestLog().filter((e) => /\/users(replace)?$/.test(e.path));
    expect(uploads).toHaveLength(3);
    for (const e of uploads) expect(e.endedAt - e.startedAt).toBeGreaterThanOrEqual(290);
  });

  it('token_expiry: the token becomes expired (190/463) and stays so', async () => {
    always('token_expiry');
    expect(expectError(await graph.get('me'))).toMatchObject({ code: 190, error_subcode: 463 });
    emu.control.setFaults({ rate: 0, kinds: [] });
    expect(expectError(await graph.get('me')).error_subcode).toBe(463);
  });

  it("phase 'after' applies the work and then fails (an ambiguous failure)", async () => {
    const id = await graph.createAudience();
    always('transient', { phase: 'after', paths: '/users$' });
    expect(expectError(await graph.users(id, people(['a']))).code).toBe(2);
    expect(emu.control.members(id)).toHaveLength(1);
  });

  it('is reproducible with a seed and limited to matching paths', async () => {
    const run = async () => {
      emu.control.setFaults({ rate: 0.5, kinds: ['transient', 'unknown'], seed: 42, paths: '^/v25\\.0/me$' });
      const codes: Array<number | undefined> = [];
      for (let i = 0; i < 12; i++) codes.push((await graph.get('me')).body.error?.code);
      expect((await graph.get(`${ACT}/customaudiences`)).status).toBe(200);
      return codes;
    };
    const first = await run();
    expect(first.some((c) => c === undefined)).toBe(true);
    expect(first.some((c) => c !== undefined)).toBe(true);
    expect(await run()).toEqual(first);
  });
});

describe('request log', () => {
  it('records method, path, account, audience, times, status, rows and error codes, never tokens', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a', 'b', 'c']));
    await graph.request('GET', id, { auth: 'param', query: { fields: 'name' } });
    emu.control.setTos(ACT, false);
    await graph.users(id, people(['d']));
    const log = emu.control.requestLog();
    expect(log).toHaveLength(4);
    expect(log[1]).toMatchObject({ method: 'POST', path: `/v25.0/${id}/users`, adAccountId: ACT.slice(4), audienceId: id, status: 200, rows: 3 });
    expect(log[1]!.endedAt).toBeGreaterThanOrEqual(log[1]!.startedAt);
    expect(log[3]).toMatchObject({ status: 403, errorCode: 200, errorSubcode: 1870090, rows: 1 });
    expect(JSON.stringify(log)).not.toContain(graph.token);
  });

  it('measures peak concurrency per ad account', async () => {
    emu.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 120 });
    await Promise.all([graph.get(`${ACT}/customaudiences`), graph.get(`${ACT}/customaudiences`), graph.get(`${ACT}/customaudiences`)]);
    expect(emu.control.peakConcurrency(ACT.slice(4))).toBe(3);
    emu.control.clearRequestLog();
    for (let i = 0; i < 3; i++) await graph.get(`${ACT}/customaudiences`);
    expect(emu.control.peakConcurrency(ACT.slice(4))).toBe(1);
  });
});

describe('control over HTTP and the data file', () => {
  it('serves members, status, ToS, tokens, faults, clock, requests and reset under /_emulator', async () => {
    const id = await graph.createAudience();
    await graph.users(id, people(['a']));
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${emu.url}/_emulator${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await call('GET', `/audiences/${id}/members`)).body.data).toEqual([expect.objectContaining({ EXTERN_ID: 'a' })]);
    expect((await call('GET', `/audiences/${id}`)).body).toMatchObject({ id, size: 1, operationStatus: 200 });
    await call('POST', `/audiences/${id}/status`, { code: 471 });
    expect(expectError(await graph.users(id, people(['b']))).error_subcode).toBe(1713230);
    await call('POST', '/tos', { adAccountId: ACT, accepted: false });
    expect(expectError(await graph.post(`${ACT}/customaudiences`, { name: 'x' })).error_subcode).toBe(1870090);
    await call('POST', '/tokens', { token: 'second', scopes: ['ads_management'] });
    await call('POST', '/tokens/state', { token: 'second', state: 'logged_out' });
    expect(expectError(await new GraphTestClient(emu, 'second').get('me')).error_subcode).toBe(467);
    await call('POST', '/faults', { rate: 1, kinds: ['transient'] });
    expect(expectError(await graph.get('me')).code).toBe(2);
    const before = (await call('GET', '/clock')).body.now as number;
    expect((await call('POST', '/clock/advance', { ms: 1000 })).body.now).toBe(before + 1000);
    expect(((await call('GET', '/requests')).body.data as unknown[]).length).toBeGreaterThan(0);
    expect((await call('GET', '/concurrency')).body.peak).toBeGreaterThanOrEqual(1);
    expect((await call('POST', '/nope')).status).toBe(404);
    expect((await call('POST', '/reset')).body).toEqual({ ok: true });
    expect((await graph.get('me')).status).toBe(200);
    expect((await call('GET', '/audiences')).body).toEqual([]);
  });

  it('file-backed mode keeps audiences and members across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emu-'));
    const dataFile = join(dir, 'store.json');
    try {
      const first = await startEmulator({ dataFile });
      const g1 = new GraphTestClient(first);
      const id = await g1.createAudience();
      await g1.users(id, people(['a', 'b']));
      await first.close();
      const second = await startEmulator({ dataFile });
      try {
        expect(second.control.members(id).map((m) => m.EXTERN_ID).sort()).toEqual(['a', 'b']);
        const g2 = new GraphTestClient(second);
        expect((await g2.get(id, { fields: 'data_source' })).body.data_source).toMatchObject({ sub_type: 'MULTI_HASHES' });
        const another = await g2.createAudience();
        expect(another).not.toBe(id);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
