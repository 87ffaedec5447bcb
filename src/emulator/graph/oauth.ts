/**
 * The Facebook Login pieces "Connect with Facebook" needs, for tests and demos:
 *
 * - `GET  /{v}/dialog/oauth?client_id&redirect_uri&state&scope`: a small consent page with Allow / Cancel.
 * - `POST /{v}/dialog/oauth` (the page's form): redirects to `redirect_uri` with `code` and `state`
 *   (or `error=access_denied`). Codes are single-use and live 10 minutes.
 * - `GET  /{v}/oauth/access_token?client_id&client_secret&redirect_uri&code`: a short-lived user token.
 * - `GET  /{v}/oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`:
 *   a long-lived (60-day) token.
 *
 * On facebook.com the dialog lives on www.facebook.com and the exchange on graph.facebook.com; the
 * emulator serves both. Issued tokens are real emulator tokens (with the granted scopes and expiry).
 * When the emulator has an app secret, `client_secret` must equal it.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphError } from '../errors.js';
import type { EmulatorRuntime } from '../runtime.js';
import type { EmulatorStore } from '../store/store.js';
import { readBody } from '../http/body.js';
import { sendHtml, sendJson } from '../http/respond.js';

const DIALOG = /^(?:\/v\d+\.\d+)?\/dialog\/oauth\/?$/;
const EXCHANGE = /^(?:\/v\d+\.\d+)?\/oauth\/access_token\/?$/;
const CODE_TTL_MS = 10 * 60_000;
export const SHORT_LIVED_SECONDS = 2 * 3600;
export const LONG_LIVED_SECONDS = 60 * 86_400;
const KNOWN_SCOPES = new Set(['ads_management', 'ads_read', 'business_management', 'public_profile', 'email']);

interface PendingCode {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  expiresAt: number;
}

interface OAuthState {
  codes: Map<string, PendingCode>;
  /** Tokens issued by the code exchange, with their app: only they may be exchanged for long-lived ones. */
  issued: Map<string, { clientId: string; scopes: string[] }>;
}

const states = new WeakMap<EmulatorStore, OAuthState>();

function oauthState(store: EmulatorStore): OAuthState {
  let s = states.get(store);
  if (!s) {
    s = { codes: new Map(), issued: new Map() };
    states.set(store, s);
  }
  return s;
}

/** Serves the OAuth routes; false when the path is not one of them. */
export async function handleOAuth(rt: EmulatorRuntime, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (DIALOG.test(url.pathname)) {
    if (method === 'POST') {
      const read = await readBody(req, 64 * 1024);
      decide(rt, res, new URLSearchParams(read.ok ? read.body.toString('utf8') : ''));
    } else {
      req.resume();
      dialog(res, url.searchParams);
    }
    return true;
  }
  if (EXCHANGE.test(url.pathname)) {
    const read = await readBody(req, 64 * 1024);
    const params = new URLSearchParams(url.search);
    if (method === 'POST' && read.ok) for (const [k, v] of new URLSearchParams(read.body.toString('utf8'))) params.set(k, v);
    const entry = rt.log.begin(method, url.pathname);
    let status = 200;
    try {
      sendJson(res, 200, exchange(rt, params));
    } catch (e) {
      const error = e instanceof GraphError ? e : oauthError(1, 'An unknown error has occurred.');
      status = error.httpStatus;
      entry.errorCode = error.code;
      if (error.subcode !== undefined) entry.errorSubcode = error.subcode;
      sendJson(res, status, error.envelope());
    }
    rt.log.finish(entry, status);
    return true;
  }
  return false;
}

function dialog(res: ServerResponse, q: URLSearchParams): void {
  const clientId = q.get('client_id') ?? '';
  const redirectUri = q.get('redirect_uri') ?? '';
  if (!/^\d+$/.test(clientId) || !isHttpUrl(redirectUri)) {
    sendHtml(res, 400, page('Invalid request', '<p>The app sent an invalid login request: client_id must be an app id and redirect_uri an http(s) URL.</p>'));
    return;
  }
  const scopes = parseScopes(q.get('scope'));
  const hidden = { client_id: clientId, redirect_uri: redirectUri, state: q.get('state') ?? '', scope: scopes.join(',') };
  const fields = Object.entries(hidden)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`)
    .join('');
  sendHtml(
    res,
    200,
    page(
      'Log in with Facebook',
      `<p>App <strong>${escapeHtml(clientId)}</strong> would like to access:</p><ul>${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>` +
        `<form method="post">${fields}<button type="submit" name="decision" value="allow">Allow</button> ` +
        `<button type="submit" name="decision" value="cancel">Cancel</button></form><p class="note">Graph API emulator: no real account is involved.</p>`,
    ),
  );
}

function decide(rt: EmulatorRuntime, res: ServerResponse, form: URLSearchParams): void {
  const clientId = form.get('client_id') ?? '';
  const redirectUri = form.get('redirect_uri') ?? '';
  if (!/^\d+$/.test(clientId) || !isHttpUrl(redirectUri)) {
    sendHtml(res, 400, page('Invalid request', '<p>The login form was incomplete.</p>'));
    return;
  }
  const target = new URL(redirectUri);
  if (form.get('decision') === 'allow') {
    const code = `emu-code-${randomBytes(16).toString('hex')}`;
    oauthState(rt.store).codes.set(code, { clientId, redirectUri, scopes: parseScopes(form.get('scope')), expiresAt: rt.clock.now() + CODE_TTL_MS });
    target.searchParams.set('code', code);
  } else {
    target.searchParams.set('error', 'access_denied');
    target.searchParams.set('error_code', '200');
    target.searchParams.set('error_description', 'Permissions error');
    target.searchParams.set('error_reason', 'user_denied');
  }
  const state = form.get('state');
  if (state) target.searchParams.set('state', state);
  res.writeHead(302, { Location: target.toString(), 'Content-Length': 0, 'Cache-Control': 'no-store' });
  res.end();
}

function exchange(rt: EmulatorRuntime, p: URLSearchParams): { access_token: string; token_type: 'bearer'; expires_in: number } {
  const clientId = p.get('client_id') ?? '';
  if (!/^\d+$/.test(clientId)) throw oauthError(101, 'Error validating application. Invalid application ID.');
  const secret = p.get('client_secret');
  if (!secret || (rt.appSecret !== undefined && secret !== rt.appSecret)) throw oauthError(1, 'Error validating client secret.');
  const state = oauthState(rt.store);
  const now = rt.clock.now();

  if (p.get('grant_type') === 'fb_exchange_token') {
    const short = p.get('fb_exchange_token') ?? '';
    const grant = state.issued.get(short);
    const record = rt.store.tokens.get(short);
    if (!grant || grant.clientId !== clientId || !record || record.state !== 'valid' || (record.expiresAt !== undefined && now >= record.expiresAt)) {
      throw oauthError(190, 'Error validating access token: the token is invalid, expired or belongs to another app.');
    }
    return issue(rt, clientId, grant.scopes, LONG_LIVED_SECONDS, false);
  }

  const code = p.get('code') ?? '';
  const pending = state.codes.get(code);
  if (!pending) throw oauthError(100, 'Invalid verification code format.', 36007);
  state.codes.delete(code); // single use, also when the rest of the request is wrong
  if (now >= pending.expiresAt) throw oauthError(100, 'This authorization code has expired.', 36007);
  if (pending.clientId !== clientId) throw oauthError(100, 'This authorization code was issued to another app.', 36007);
  if (pending.redirectUri !== (p.get('redirect_uri') ?? '')) {
    throw oauthError(100, 'Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request', 36008);
  }
  return issue(rt, clientId, pending.scopes, SHORT_LIVED_SECONDS, true);
}

function issue(rt: EmulatorRuntime, clientId: string, scopes: string[], seconds: number, exchangeable: boolean) {
  const token = `EAAemu${randomBytes(24).toString('hex')}`;
  rt.store.putToken({ token, scopes, expiresAt: rt.clock.now() + seconds * 1000 });
  if (exchangeable) oauthState(rt.store).issued.set(token, { clientId, scopes });
  return { access_token: token, token_type: 'bearer' as const, expires_in: seconds };
}

function parseScopes(scope: string | null): string[] {
  const asked = (scope ?? '')
    .split(/[\s,]+/)
    .filter((s) => KNOWN_SCOPES.has(s));
  return asked.length > 0 ? [...new Set(asked)] : ['public_profile'];
}

function oauthError(code: number, message: string, subcode?: number): GraphError {
  return new GraphError(code, message, { type: 'OAuthException', ...(subcode !== undefined ? { subcode } : {}), httpStatus: 400 });
}

function isHttpUrl(s: string): boolean {
  try {
    return /^https?:$/.test(new URL(s).protocol);
  } catch {
    return false;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>body{font:15px system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:1.5rem;border:1px solid #dadde1;border-radius:8px}h1{font-size:1.2rem;color:#1877f2}button{font:inherit;padding:.4rem 1.2rem;margin-right:.5rem}button[value=allow]{background:#1877f2;color:#fff;border:0;border-radius:4px}.note{color:#65676b;font-size:.85rem}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}
