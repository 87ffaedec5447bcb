// The service's defences, over real HTTP: sessions only at login, throttled and logged wrong admin
// tokens, request bodies that must arrive in time, and a warning when "Connect with Facebook" cannot
// store its token.
import { request } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveWorld, type ServedWorld } from './helpers.js';

const ADMIN = 'admin-token-for-tests-0123456789';

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const firstCookie = (res: Response) => (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

async function login(s: ServedWorld, token: string, opts: { localAddress?: string } = {}): Promise<{ status: number; session: string }> {
  const page = await fetch(`${s.server.url}/login`);
  const cookie = firstCookie(page);
  const body = new URLSearchParams({ _csrf: csrfOf(await page.text()), token }).toString();
  // node:http for the source address: throttling is per client address.
  return new Promise((resolve, reject) => {
    const req = request(
      `${s.server.url}/login`,
      { method: 'POST', localAddress: opts.localAddress, headers: { cookie, origin: s.server.url, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, session: String(res.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '' });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('sessions are created only at login', () => {
  let s: ServedWorld;
  beforeAll(async () => {
    s = await serveWorld({ env: { AUDIENCE_SYNC_ADMIN_TOKEN: ADMIN } });
  });
  afterAll(() => s?.close());

  it('10,001 anonymous requests leave the store alone and the signed-in admin signed in', async () => {
    const admin = await login(s, ADMIN);
    expect(admin.status).toBe(303);
    expect(s.server.context.sessions.size).toBe(1);

    const total = 10_001;
    let sent = 0;
    const worker = async () => {
      while (sent < total) {
        sent++;
        const r = await fetch(`${s.server.url}/login`);
        await r.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));

    expect(s.server.context.sessions.size).toBe(1);
    const home = await fetch(`${s.server.url}/`, { headers: { cookie: admin.session }, redirect: 'manual' });
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('loyalty');
  }, 180_000);

  it('an anonymous visitor still gets a working login form (its CSRF token comes from a cookie)', async () => {
    const page = await fetch(`${s.server.url}/login`);
    expect(page.headers.get('set-cookie')).toMatch(/^audience_sync_visitor=[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax/);
    const cookie = firstCookie(page);
    const csrf = csrfOf(await page.text());
    const again = await fetch(`${s.server.url}/login`, { headers: { cookie } });
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(csrfOf(await again.text())).toBe(csrf);
    // Another visitor's token does not fit this cookie.
    const other = csrfOf(await (await fetch(`${s.server.url}/login`)).text());
    const post = (token: string) =>
      fetch(`${s.server.url}/login`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: s.server.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: token, token: ADMIN }).toString() });
    expect((await post(other)).status).toBe(403);
    expect((await post(csrf)).status).toBe(303);
  });
});

describe('an open dashboard (no admin token)', () => {
  let s: ServedWorld;
  beforeAll(async () => {
    s = await serveWorld();
  });
  afterAll(() => s?.close());

  it('stores a session at a visitor\'s first form, not at its page views', async () => {
    const page = await fetch(`${s.server.url}/syncs/loyalty`);
    for (let i = 0; i < 20; i++) await (await fetch(`${s.server.url}/`)).arrayBuffer();
    expect(s.server.context.sessions.size).toBe(0);
    const run = await fetch(`${s.server.url}/syncs/loyalty/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: firstCookie(page), origin: s.server.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(csrfOf(await page.text()))}`,
    });
    expect(run.status).toBe(303);
    expect(s.server.context.sessions.size).toBe(1);
    const session = firstCookie(run);
    expect(session).toMatch(/^audience_sync_session=/);
    // The flash of the run started lands on the next page of that session.
    const back = await (await fetch(`${s.server.url}/syncs/loyalty`, { headers: { cookie: session } })).text();
    const runId = Number(/Run #(\d+) started/.exec(back)?.[1]);
    expect(runId).toBeGreaterThan(0);
    await s.waitForRun(runId);
  });
});

describe('wrong admin tokens', () => {
  let s: ServedWorld;
  let logged: Array<Record<string, unknown>>;
  beforeAll(async () => {
    const { logger, lines } = capturingLogger();
    logged = lines;
    s = await serveWorld({ env: { AUDIENCE_SYNC_ADMIN_TOKEN: ADMIN }, server: { logger } });
  });
  afterAll(() => s?.close());

  it('are logged, and past 10 from one address every token from it gets 429 for a while', async () => {
    const bearer = (token: string) => s.api('GET', '/api/syncs', { headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 9; i++) expect((await bearer(`wrong-token-${i}-wrong-token`)).status).toBe(401);
    expect((await login(s, 'still-not-the-admin-token')).status).toBe(401);

    const locked = await bearer(ADMIN);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(locked.body.error).toMatch(/too many wrong admin tokens from this address/);
    expect((await login(s, ADMIN)).status).toBe(429);
    expect((await s.api('GET', '/metrics', { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(429);

    // Another address is not locked out.
    expect((await login(s, ADMIN, { localAddress: '127.0.0.2' })).status).toBe(303);

    const rejected = logged.filter((l) => l.event === 'admin_token_rejected');
    expect(rejected).toHaveLength(10);
    expect(rejected.map((l) => l.via)).toEqual([...Array(9).fill('bearer'), 'login']);
    expect(rejected[0]).toMatchObject({ client: '127.0.0.1', failures: 1 });
    expect(logged.filter((l) => l.event === 'admin_token_throttled')).toEqual([expect.objectContaining({ client: '127.0.0.1' })]);
    const text = JSON.stringify(logged);
    expect(text).not.toContain(ADMIN);
    expect(text).not.toContain('wrong-token-0');
    expect(s.server.context.metrics.value('audience_sync_admin_token_failures_total', { via: 'bearer' })).toBe(9);
  });
});

describe('request bodies', () => {
  let s: ServedWorld;
  beforeAll(async () => {
    s = await serveWorld({ server: { bodyTimeoutMs: 400 } });
  });
  afterAll(() => s?.close());

  it('must arrive in time (30 s by default): a trickling body gets 408 and the connection closes', async () => {
    const { port } = new URL(s.server.url);
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /api/syncs/loyalty/runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"force":`);
      });
      let text = '';
      socket.setEncoding('utf8').on('data', (d: string) => (text += d));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(new Error(`no answer: ${text}`)), 10_000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('the request body did not arrive within 400 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
    // No run was started by the half-sent request.
    expect((await s.api('GET', '/api/syncs/loyalty/runs')).body.runs).toEqual([]);
  });
});

describe('"Connect with Facebook" without AUDIENCE_SYNC_SECRET_KEY', () => {
  it('serve warns at start', async () => {
    const meta = { appId: '4242', appSecret: 'app-secret' };
    const without = capturingLogger();
    const s = await serveWorld({ rows: 1, meta, env: { AUDIENCE_SYNC_SECRET_KEY: '' }, server: { logger: without.logger } });
    await s.close();
    const warning = without.lines.find((l) => l.event === 'connect_without_secret_key');
    expect(warning?.msg).toMatch(/"Connect with Facebook" is set up .* but cannot store the token it gets: AUDIENCE_SYNC_SECRET_KEY is not set.*openssl rand -hex 32/);

    const keyed = capturingLogger();
    const k = await serveWorld({ rows: 1, meta, server: { logger: keyed.logger } });
    await k.close();
    expect(keyed.lines.some((l) => l.event === 'connect_without_secret_key')).toBe(false);
  });
});
