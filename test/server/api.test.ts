import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../src/server/index.js';
import { customers } from '../support/world.js';
import { serveWorld, type ServedWorld } from './helpers.js';

let s: ServedWorld;

beforeAll(async () => {
  s = await serveWorld({ rows: 25 });
});
afterAll(() => s?.close());

describe('JSON API over HTTP against a real world', () => {
  it('lists the syncs with status, audience id and no run yet', async () => {
    const r = await s.api('GET', '/api/syncs');
    expect(r.status).toBe(200);
    expect(r.body.syncs).toHaveLength(1);
    expect(r.body.syncs[0]).toMatchObject({ name: 'loyalty', mode: 'mirror', status: 'never', lastRun: null, audienceId: s.world.audienceId, nextRunAt: null });
  });

  it('triggers a run (202 with its id), then shows it with its counts', async () => {
    const started = await s.api('POST', '/api/syncs/loyalty/runs');
    expect(started.status).toBe(202);
    expect(started.body.runId).toEqual(expect.any(Number));
    expect(started.headers.get('location')).toBe(`/api/runs/${started.body.runId}`);
    const run = await s.waitForRun(started.body.runId);
    expect(run).toMatchObject({ sync: 'loyalty', trigger: 'api', status: 'success' });
    expect(run.counts).toMatchObject({ extracted: 25, added: 25 });
    expect(s.world.memberIds()).toHaveLength(25);

    const runs = await s.api('GET', '/api/syncs/loyalty/runs?limit=5');
    expect(runs.body.runs.map((x: { id: number }) => x.id)).toContain(started.body.runId);
    const sync = await s.api('GET', '/api/syncs/loyalty');
    expect(sync.body).toMatchObject({ status: 'success', lastRun: { id: started.body.runId }, records: { total: 25 } });
  });

  it('answers 409 while the sync is already running', async () => {
    s.world.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 400, paths: '/users$' });
    try {
      await s.world.setCustomers([...Array.from({ length: 25 }, (_, i) => ({ user_id: `u${i}`, email: `user${i}@example.com` })), { user_id: 'new1', email: 'new1@example.com' }]);
      const first = await s.api('POST', '/api/syncs/loyalty/runs', { body: { force: true } });
      expect(first.status).toBe(202);
      const second = await s.api('POST', '/api/syncs/loyalty/runs');
      expect(second.status).toBe(409);
      expect(second.body.error).toMatch(/already running/);
      await s.waitForRun(first.body.runId);
    } finally {
      s.world.emulator.control.setFaults({ rate: 0, kinds: [] });
    }
  });

  it('sends a test record: hashed cells only, and Meta\'s answer', async () => {
    const r = await s.api('POST', '/api/syncs/loyalty/test-record', { body: { primaryKey: 'u3' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ sync: 'loyalty', audienceId: s.world.audienceId, numReceived: 1, numInvalidEntries: 0 });
    const email = r.body.cells[r.body.schema.indexOf('EMAIL')];
    expect(email).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.cells[r.body.schema.indexOf('EXTERN_ID')]).toBe('u3');
    expect(JSON.stringify(r.body)).not.toMatch(/example\.com/i);

    const missing = await s.api('POST', '/api/syncs/loyalty/test-record', { body: { primaryKey: 'nobody' } });
    expect(missing.status).toBe(422);
  });

  it('lists and creates audiences', async () => {
    const created = await s.api('POST', '/api/audiences', { body: { name: 'from the api' } });
    expect(created.status).toBe(201);
    const list = await s.api('GET', '/api/audiences');
    expect(list.body.audiences.map((a: { id: string }) => a.id)).toEqual(expect.arrayContaining([s.world.audienceId, created.body.id]));
    expect((await s.api('POST', '/api/audiences', { body: {} })).status).toBe(400);
  });

  it('reports audience health and the token source', async () => {
    const r = await s.api('GET', '/api/syncs/loyalty/health');
    expect(r.status).toBe(200);
    expect(r.body.audience).toMatchObject({ audienceId: s.world.audienceId, sizeLower: expect.any(Number) });
    expect(r.body.token).toMatchObject({ tokenSource: 'config', connectEnabled: false });
  });

  it('answers 404 for unknown syncs, runs and paths, and 405 for a wrong method', async () => {
    expect((await s.api('GET', '/api/syncs/nope')).status).toBe(404);
    expect((await s.api('GET', '/api/runs/99999')).status).toBe(404);
    expect((await s.api('GET', '/api/nothing')).status).toBe(404);
    const wrong = await s.api('DELETE', '/api/syncs');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
  });

  it('serves /healthz and Prometheus /metrics with runs by status', async () => {
    expect((await s.api('GET', '/healthz')).body).toMatchObject({ status: 'ok' });
    const m = await s.api('GET', '/metrics');
    expect(m.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toMatch(/^audience_sync_runs_total\{sync="loyalty",status="success"\} [1-9]/m);
    expect(m.body).toMatch(/^audience_sync_records_total\{sync="loyalty",outcome="added"\} \d+/m);
    expect(m.body).toMatch(/^audience_sync_meta_requests_total\{status="200"\} \d+/m);
    expect(m.body).toMatch(/^# TYPE audience_sync_meta_throttle_waits_total counter/m);
  });

  it('describes every API and system route in /openapi.json', async () => {
    const doc = (await s.api('GET', '/openapi.json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    const documented = new Set(Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    const served = routes.filter((r) => r.kind !== 'page').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    expect([...documented].sort()).toEqual([...served].sort());
  });

  it('never shows a raw email, phone or token in pages or API answers', async () => {
    const bodies = await Promise.all(['/', '/syncs/loyalty', '/runs/1', '/api/syncs', '/api/syncs/loyalty/runs', '/metrics', '/api/connection'].map((p) => s.api('GET', p)));
    for (const b of bodies) {
      expect(b.status).toBe(200);
      const text = typeof b.body === 'string' ? b.body : JSON.stringify(b.body);
      expect(text).not.toMatch(/example\.com/i);
      expect(text).not.toMatch(/650 ?2000/);
      expect(text).not.toContain(s.world.env.META_ACCESS_TOKEN);
    }
  });
});

describe('CSRF protection', () => {
  it('refuses API POSTs a cross-site form could send, and foreign origins', async () => {
    const form = await fetch(`${s.server.url}/api/syncs/loyalty/runs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'force=true' });
    expect(form.status).toBe(415);
    const foreign = await s.api('POST', '/api/audiences', { body: { name: 'x' }, headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    const crossSite = await s.api('POST', '/api/audiences', { body: { name: 'x' }, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
  });

  it('refuses a dashboard form without its CSRF token, or with another session\'s', async () => {
    const page = await fetch(`${s.server.url}/syncs/loyalty`);
    const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
    expect(token).toBeTruthy();
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${s.server.url}/syncs/loyalty/run`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers }, body });
    expect((await post('')).status).toBe(403);
    expect((await post('_csrf=forged')).status).toBe(403);
    expect((await fetch(`${s.server.url}/syncs/loyalty/run`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${token}` })).status).toBe(403);
    expect((await post(`_csrf=${encodeURIComponent(token ?? '')}`, { origin: 'https://evil.example' })).status).toBe(403);
    // The real form goes through.
    const ok = await post(`_csrf=${encodeURIComponent(token ?? '')}`, { origin: s.server.url });
    expect(ok.status).toBe(303);
    const runs = (await s.api('GET', '/api/syncs/loyalty/runs')).body.runs;
    await s.waitForRun(runs[0].id);
  });

  it('refuses Host names it does not serve (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${s.server.url}/api/syncs`, { headers: { host: 'attacker.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });
});

describe('Connect with Facebook (without a browser)', () => {
  let c: ServedWorld;
  beforeAll(async () => {
    c = await serveWorld({ rows: 1, meta: { appId: '4242', appSecret: 'app-secret' }, env: { AUDIENCE_SYNC_SECRET_KEY: '' } });
  });
  afterAll(() => c?.close());

  it('refuses to start without AUDIENCE_SYNC_SECRET_KEY, saying how to set one', async () => {
    const r = await fetch(`${c.server.url}/connect`, { redirect: 'manual' });
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/Refusing to connect: AUDIENCE_SYNC_SECRET_KEY is not set.*openssl rand -hex 32/s);
  });

  it('refuses a callback whose state does not belong to the browser session', async () => {
    const r = await fetch(`${c.server.url}/connect/callback?code=abc&state=forged`, { redirect: 'manual' });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('does not belong to this browser session');
    expect((await c.api('GET', '/api/connection')).body).toMatchObject({ tokenSource: 'config', connectEnabled: true, expiresAt: null });
  });

  it('redirects /connect to the dialog with the app id, callback URL, state and ads_management', async () => {
    const keyed = await serveWorld({ rows: 1, meta: { appId: '4242', appSecret: 'app-secret' } });
    try {
      const r = await fetch(`${keyed.server.url}/connect`, { redirect: 'manual' });
      expect(r.status).toBe(303);
      const to = new URL(r.headers.get('location') ?? '');
      expect(`${to.origin}${to.pathname}`).toBe(`${keyed.world.emulator.url}/v25.0/dialog/oauth`);
      expect(to.searchParams.get('client_id')).toBe('4242');
      expect(to.searchParams.get('redirect_uri')).toBe(`${keyed.server.url}/connect/callback`);
      expect(to.searchParams.get('scope')).toBe('ads_management');
      expect(to.searchParams.get('state')?.length).toBeGreaterThanOrEqual(32);
    } finally {
      await keyed.close();
    }
  });
});

describe('what a run says', () => {
  let f: ServedWorld;
  beforeAll(async () => {
    f = await serveWorld({ rows: 5 });
  });
  afterAll(() => f?.close());

  it('a run whose token Meta rejects is failed in the API and on the dashboard, though it had nothing to send', async () => {
    const ok = await f.api('POST', '/api/syncs/loyalty/runs');
    expect((await f.waitForRun(ok.body.runId)).status).toBe('success');
    f.world.emulator.control.setTokenState(String(f.world.env.META_ACCESS_TOKEN), 'expired');
    try {
      const started = await f.api('POST', '/api/syncs/loyalty/runs');
      const run = await f.waitForRun(started.body.runId);
      expect(run).toMatchObject({ status: 'failed', counts: { extracted: 0, delivered: 0 } });
      expect(run.error).toMatch(/could not be checked before reading the model.*access token rejected/);
      expect((await f.api('GET', '/api/syncs/loyalty')).body).toMatchObject({ status: 'failed', lastRun: { id: started.body.runId } });
      for (const path of ['/', '/syncs/loyalty']) expect((await f.api('GET', path)).body).toContain('<span class="badge s-failed">failed</span>');
    } finally {
      f.world.emulator.control.setTokenState(String(f.world.env.META_ACCESS_TOKEN), 'valid');
    }
  });
  it('a refusal names the override of the API and counts nothing as done; with the override the run goes through', async () => {
    await f.world.setCustomers(customers(1));
    const refused = await f.waitForRun((await f.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    expect(refused.error).toMatch(/would remove 4 of 5 records .*start it again with \{"force": true\} or raise maxRemovalShare/);
    expect(refused.counts).toMatchObject({ deleted: 0, planned: { deleted: 4 } });
    expect((await f.waitForRun((await f.api('POST', '/api/syncs/loyalty/runs', { body: { force: true } })).body.runId)).status).toBe('success');
    expect(f.world.memberIds()).toHaveLength(1);
  });
});
