/**
 * "Connect with Facebook": the OAuth login dialog URL, and the two token exchanges (the dialog's code
 * for a short-lived user token, then that for a long-lived ~60-day token). Tokens are never logged and
 * never put in an error message.
 */
import type { ConnectionConfig } from '../config/index.js';

/** What "Connect with Facebook" needs of a connection; `at` names it in messages (`meta`, `connections.eu`). */
export type ConnectSettings = Pick<ConnectionConfig, 'appId' | 'appSecret' | 'graphUrl' | 'apiVersion' | 'at'>;

export const CONNECT_SCOPE = 'ads_management';

export class ConnectError extends Error {
  override readonly name = 'ConnectError';
}

/** On facebook.com the login dialog lives on www.facebook.com; anywhere else (the emulator) on the Graph URL's host. */
export function dialogBaseUrl(graphUrl: string): string {
  const url = new URL(graphUrl);
  return url.hostname === 'graph.facebook.com' ? 'https://www.facebook.com' : url.origin;
}

export function dialogUrl(c: ConnectSettings, redirectUri: string, state: string): string {
  if (!c.appId) throw new ConnectError(`${c.at}.appId is not set in the config: "Connect with Facebook" needs a Meta app id and its app secret`);
  const url = new URL(`${dialogBaseUrl(c.graphUrl)}/${c.apiVersion}/dialog/oauth`);
  url.searchParams.set('client_id', c.appId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('state', state);
  url.searchParams.set('scope', CONNECT_SCOPE);
  url.searchParams.set('response_type', 'code');
  return url.toString();
}

export interface ConnectedToken {
  accessToken: string;
  /** Null when Meta gave no expires_in (a token that does not expire). */
  expiresAt: Date | null;
}

/** Exchanges the dialog's code and then upgrades the token to a long-lived one. */
export async function exchangeCode(c: ConnectSettings, input: { code: string; redirectUri: string }, now: () => number = Date.now): Promise<ConnectedToken> {
  if (!c.appId || !c.appSecret) throw new ConnectError(`${c.at}.appId and ${c.at}.appSecret must both be set to connect with Facebook`);
  const base = `${c.graphUrl}/${c.apiVersion}/oauth/access_token`;
  const short = await tokenRequest(base, { client_id: c.appId, client_secret: c.appSecret, redirect_uri: input.redirectUri, code: input.code }, 'exchange the login code', c.at);
  const long = await tokenRequest(
    base,
    { grant_type: 'fb_exchange_token', client_id: c.appId, client_secret: c.appSecret, fb_exchange_token: short.accessToken },
    'get a long-lived token',
    c.at,
  );
  return { accessToken: long.accessToken, expiresAt: long.expiresIn === null ? null : new Date(now() + long.expiresIn * 1000) };
}

async function tokenRequest(base: string, params: Record<string, string>, what: string, at: string): Promise<{ accessToken: string; expiresIn: number | null }> {
  let res: Response;
  try {
    // POST keeps the app secret and codes out of URLs (and any proxy's access log).
    res = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new ConnectError(`could not reach Meta to ${what} (${e instanceof Error ? e.message : String(e)}); check the network and try connecting again`);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new ConnectError(`Meta answered the request to ${what} with HTTP ${res.status} and no JSON; try connecting again`);
  }
  const b = (body ?? {}) as { access_token?: unknown; expires_in?: unknown; error?: { message?: unknown; code?: unknown } };
  if (!res.ok || typeof b.access_token !== 'string') {
    const detail = typeof b.error?.message === 'string' ? b.error.message : `HTTP ${res.status}`;
    throw new ConnectError(`Meta refused to ${what}: ${detail}. Check ${at}.appId and ${at}.appSecret and that the redirect URL is allowed in the app's Facebook Login settings, then connect again`);
  }
  const expiresIn = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : null;
  return { accessToken: b.access_token, expiresIn };
}
