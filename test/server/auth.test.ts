import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld } from '../support/world.js';
import { loadConfig } from '../../src/config/index.js';
import { isLoopbackHost, ServeRefusedError, startServer } from '../../src/server/index.js';
import { adminTokenFor } from '../../src/server/security.js';
import { serveWorld, type ServedWorld } from './helpers.js';

const ADMIN = 'admin-token-for-tests-0123456789';

describe('binding beyond loopback', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('refuses to start on 0.0.0.0 without an admin token (and never listens)', async () => {
    const world = await createWorld();
    try {
      const config = await loadConfig(world.configPath, world.env);
      const env = { ...world.env, AUDIENCE_SYNC_ADMIN_TOKEN: '' };
      await expect(startServer({ config, env, host: '0.0.0.0', port: 0, logLevel: 'silent' })).rejects.toThrow(ServeRefusedError);
      await expect(startServer({ config, env, host: '0.0.0.0', port: 0, logLevel: 'silent' })).rejects.toThrow(/AUDIENCE_SYNC_ADMIN_TOKEN/);
      expect(() => adminTokenFor('10.1.2.3', {})).toThrow(/refusing to listen on 10\.1\.2\.3/);
      expect(() => adminTokenFor('0.0.0.0', { AUDIENCE_SYNC_ADMIN_TOKEN: 'short' })).toThrow(/too short/);
      expect(adminTokenFor('0.0.0.0', { AUDIENCE_SYNC_ADMIN_TOKEN: ADMIN })).toBe(ADMIN);
      expect(adminTokenFor('127.0.0.1', {})).toBeUndefined();
    } finally {
      await world.close();
    }
  });
});

describe('with an admin token', () => {
  let s: ServedWorld;
  beforeAll(async () => {
    s = await serveWorld({ env: { AUDIENCE_SYNC_ADMIN_TOKEN: ADMIN } });
  });
  afterAll(() => s?.close());

  it('API calls need the Bearer token', async () => {
    const none = await s.api('GET', '/api/syncs');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await s.api('GET', '/api/syncs', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
    const ok = await s.api('GET', '/api/syncs', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
    const run = await s.api('POST', '/api/syncs/loyalty/runs', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(run.status).toBe(202);
    await s.waitForRun(run.body.runId, { authorization: `Bearer ${ADMIN}` });
  });

  it('health and the OpenAPI document stay open; /metrics needs the token too', async () => {
    for (const p of ['/healthz', '/openapi.json']) expect((await s.api('GET', p)).status).toBe(200);
    const closed = await s.api('GET', '/metrics');
    expect(closed.status).toBe(401);
    expect(closed.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const scraped = await s.api('GET', '/metrics', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(scraped.status).toBe(200);
    expect(scraped.body).toMatch(/^# TYPE audience_sync_runs_total counter/m);
    expect(scraped.body).not.toContain(ADMIN);
  });

  it('server.publicMetrics opens /metrics (and nothing else)', async () => {
    const open = await serveWorld({ env: { AUDIENCE_SYNC_ADMIN_TOKEN: ADMIN }, settings: { publicMetrics: true } });
    try {
      expect((await open.api('GET', '/metrics')).status).toBe(200);
      expect((await open.api('GET', '/api/syncs')).status).toBe(401);
    } finally {
      await open.close();
    }
  });

  it('the dashboard asks for the token on a login form, then uses a session cookie', async () => {
    const home = await fetch(`${s.server.url}/`, { redirect: 'manual' });
    expect(home.status).toBe(303);
    expect(home.headers.get('location')).toBe('/login');
    const cookie = (home.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(home.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Lax/);

    const login = await fetch(`${s.server.url}/login`, { headers: { cookie } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1] ?? '';
    const post = (token: string) =>
      fetch(`${s.server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: s.server.url },
        body: new URLSearchParams({ _csrf: csrf, token }).toString(),
      });
    const wrong = await post('not-the-token');
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain(ADMIN);
    const right = await post(ADMIN);
    expect(right.status).toBe(303);
    const session = (right.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(session).not.toBe(cookie); // a new session id on login

    const page = await fetch(`${s.server.url}/`, { headers: { cookie: session } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('loyalty');
    expect(html).not.toContain(ADMIN);
    // The old, pre-login session is worth nothing.
    expect((await fetch(`${s.server.url}/`, { headers: { cookie }, redirect: 'manual' })).status).toBe(303);
    // A logged-in session may also read the API.
    expect((await s.api('GET', '/api/syncs', { headers: { cookie: session } })).status).toBe(200);
  });
});
