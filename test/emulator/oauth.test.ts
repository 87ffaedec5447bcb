import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

const APP_ID = '4242';
const SECRET = 'app-secret-for-tests';
const REDIRECT = 'http://127.0.0.1:9/connect/callback';
const START = Date.UTC(2026, 0, 1);

let emu: RunningEmulator;

beforeAll(async () => {
  emu = await startEmulator({ startTime: START });
});
afterAll(() => emu.close());

/** Submits the dialog's form as the Allow / Cancel button would, and returns the redirect target. */
async function decide(decision: 'allow' | 'cancel', state = 'st-1', redirect = REDIRECT): Promise<URL> {
  const res = await fetch(`${emu.url}/v25.0/dialog/oauth`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: APP_ID, redirect_uri: redirect, state, scope: 'ads_management', decision }),
  });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location') ?? '');
}

async function exchange(params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: number; error_subcode?: number } } }> {
  const res = await fetch(`${emu.url}/v25.0/oauth/access_token?${new URLSearchParams(params)}`);
  return { status: res.status, body: (await res.json()) as never };
}

describe('OAuth dialog', () => {
  it('shows a consent page with an Allow button that posts the request back', async () => {
    const res = await fetch(`${emu.url}/v25.0/dialog/oauth?${new URLSearchParams({ client_id: APP_ID, redirect_uri: REDIRECT, state: '<x>', scope: 'ads_management' })}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('value="allow"');
    expect(html).toContain('ads_management');
    expect(html).toContain('&#60;x&#62;'); // the state is escaped, not injected
    expect(html).not.toContain('<x>');
  });

  it('refuses a request without an app id or redirect URL', async () => {
    const res = await fetch(`${emu.url}/v25.0/dialog/oauth?redirect_uri=javascript:alert(1)&client_id=1`);
    expect(res.status).toBe(400);
  });

  it('Allow redirects back with a code and the state; Cancel with access_denied', async () => {
    const allowed = await decide('allow', 'abc');
    expect(allowed.origin + allowed.pathname).toBe(REDIRECT);
    expect(allowed.searchParams.get('state')).toBe('abc');
    expect(allowed.searchParams.get('code')).toMatch(/^emu-code-/);
    const cancelled = await decide('cancel', 'def');
    expect(cancelled.searchParams.get('error')).toBe('access_denied');
    expect(cancelled.searchParams.get('state')).toBe('def');
    expect(cancelled.searchParams.get('code')).toBeNull();
  });
});

describe('token exchange', () => {
  it('code → short-lived token → long-lived token that works on the Graph API until it expires', async () => {
    const code = (await decide('allow')).searchParams.get('code') ?? '';
    const short = await exchange({ client_id: APP_ID, client_secret: SECRET, redirect_uri: REDIRECT, code });
    expect(short.status).toBe(200);
    expect(short.body).toMatchObject({ token_type: 'bearer', expires_in: 7200 });

    const long = await exchange({ grant_type: 'fb_exchange_token', client_id: APP_ID, client_secret: SECRET, fb_exchange_token: String(short.body.access_token) });
    expect(long.status).toBe(200);
    expect(long.body.expires_in).toBe(60 * 86_400);
    const token = String(long.body.access_token);

    const me = await fetch(`${emu.url}/v25.0/me/permissions`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const perms = (await me.json()) as { data: Array<{ permission: string }> };
    expect(perms.data.map((p) => p.permission)).toContain('ads_management');

    emu.control.advanceClock(61 * 86_400_000);
    const expired = await fetch(`${emu.url}/v25.0/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await expired.json()) as { error: { code: number; error_subcode: number } }).error).toMatchObject({ code: 190, error_subcode: 463 });
  });

  it('a code works once, only with its redirect_uri', async () => {
    const code = (await decide('allow')).searchParams.get('code') ?? '';
    const wrongRedirect = await exchange({ client_id: APP_ID, client_secret: SECRET, redirect_uri: 'http://127.0.0.1:9/other', code });
    expect(wrongRedirect.body.error).toMatchObject({ code: 100, error_subcode: 36008 });
    const reused = await exchange({ client_id: APP_ID, client_secret: SECRET, redirect_uri: REDIRECT, code });
    expect(reused.body.error).toMatchObject({ code: 100, error_subcode: 36007 });
    const garbage = await exchange({ client_id: APP_ID, client_secret: SECRET, redirect_uri: REDIRECT, code: 'nope' });
    expect(garbage.status).toBe(400);
  });

  it('needs a client secret, and only exchanges tokens it issued through the dialog', async () => {
    const code = (await decide('allow')).searchParams.get('code') ?? '';
    expect((await exchange({ client_id: APP_ID, redirect_uri: REDIRECT, code })).body.error).toMatchObject({ code: 1 });
    const notIssued = await exchange({ grant_type: 'fb_exchange_token', client_id: APP_ID, client_secret: SECRET, fb_exchange_token: 'emulator-token' });
    expect(notIssued.body.error).toMatchObject({ code: 190 });
  });
});
