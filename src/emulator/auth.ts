/** Access-token and appsecret_proof checks (docs/graph-api.md: "Transport", and the emulator's auth). */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from './errors.js';
import type { EmulatorStore, TokenRecord } from './store/store.js';

export interface Credentials {
  token: string | undefined;
  proof: string | undefined;
  proofTime: string | undefined;
}

/** The token from `Authorization: Bearer …` or the `access_token` param (query or body). */
export function credentialsOf(authorization: string | undefined, params: ReadonlyMap<string, unknown>): Credentials {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  const param = params.get('access_token');
  return {
    token: bearer ?? (typeof param === 'string' && param !== '' ? param : undefined),
    proof: stringParam(params.get('appsecret_proof')),
    proofTime: stringParam(params.get('appsecret_time')),
  };
}

const SUBCODE_BY_STATE = { expired: 463, password_changed: 460, logged_out: 467 } as const;

export function authenticate(store: EmulatorStore, creds: Credentials, appSecret: string | undefined, now: number): TokenRecord {
  if (creds.token === undefined) throw errors.tokenRequired();
  const record = store.tokens.get(creds.token);
  if (!record) throw errors.invalidToken();
  if (record.state !== 'valid') throw errors.invalidToken(SUBCODE_BY_STATE[record.state]);
  if (record.expiresAt !== undefined && now >= record.expiresAt) throw errors.invalidToken(463);
  // Each token belongs to an app: its own app's secret when it has one, else the emulator-wide one.
  const secret = record.appSecret ?? appSecret;
  if (secret !== undefined) checkProof(creds, secret);
  return record;
}

/** HMAC-SHA256 of the token (or of `token|time` with appsecret_time), keyed by the app secret, lowercase hex. */
export function appsecretProof(appSecret: string, token: string, time?: string): string {
  return createHmac('sha256', appSecret)
    .update(time === undefined ? token : `${token}|${time}`)
    .digest('hex');
}

function checkProof(creds: Credentials, appSecret: string): void {
  if (creds.proof === undefined) throw errors.appsecretProofMissing();
  const expected = Buffer.from(appsecretProof(appSecret, creds.token ?? '', creds.proofTime));
  const given = Buffer.from(creds.proof.toLowerCase());
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw errors.appsecretProofInvalid();
}

/** Whether the token's user has a role on the ad account (digits). */
export function canUseAccount(token: TokenRecord, accountId: string): boolean {
  return token.adAccounts === undefined || token.adAccounts.includes(accountId);
}

export function hasScope(token: TokenRecord, scope: string): boolean {
  return token.scopes.includes(scope);
}

/** Reads need ads_read or ads_management (else 294); writes need ads_management (else 200). */
export function requireScope(token: TokenRecord, access: 'read' | 'write', what: string): void {
  const manage = hasScope(token, 'ads_management');
  if (access === 'write') {
    if (manage) return;
    throw hasScope(token, 'ads_read') ? errors.permissionDenied(what) : errors.missingAdsManagement();
  }
  if (!manage && !hasScope(token, 'ads_read')) throw errors.missingAdsManagement();
}

function stringParam(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}
