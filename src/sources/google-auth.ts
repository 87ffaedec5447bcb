// Google credentials for the BigQuery source, without google-auth-library: that library posts
// service-account assertions to Google's fixed token URL whatever the key file's `token_uri` says.
// Supported: a service-account key file (an RS256 JWT exchanged at the key's own token_uri), an
// authorized-user file (`gcloud auth application-default login`: a refresh token), and the metadata
// server of a Google Cloud runtime. Found in the order of Application Default Credentials.
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describeNetworkError, TransientError, withBackoff } from './http.js';

export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Runs queries and cancels them; the read-only scopes do not allow jobs.cancel. */
export const BIGQUERY_SCOPE = 'https://www.googleapis.com/auth/bigquery';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google accepts assertions valid for at most one hour. */
const ASSERTION_LIFETIME_S = 3600;
/** A token is renewed this long before it expires, so a request never leaves with one about to lapse. */
const EXPIRY_MARGIN_MS = 60_000;
const TOKEN_REQUEST_TIMEOUT_MS = 30_000;
const METADATA_TIMEOUT_MS = 3_000;

/** Credentials that could not be found, read or exchanged; `fix` says what to do. */
export class GoogleAuthError extends Error {
  override readonly name = 'GoogleAuthError';
  constructor(
    message: string,
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface GoogleCredentials {
  readonly kind: 'service_account' | 'authorized_user' | 'metadata';
  /** Who the requests run as, for messages: a service account's email, or a description. */
  readonly principal: string;
  /** Where the credentials came from, for messages (a file path, never a secret). */
  readonly origin: string;
  /** A valid access token, renewed near its expiry or when `renew` is set (after a 401). */
  accessToken(renew?: boolean): Promise<string>;
}

export interface CredentialOptions {
  /** A key file named in the config; without it, Application Default Credentials are looked up. */
  readonly keyFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly scope?: string;
}

/**
 * The credentials to use: `keyFile`, else GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
 * application-default file, else the metadata server (GCE_METADATA_HOST overrides its address).
 * Files are read and checked now; nothing is sent until the first `accessToken()`.
 */
export function resolveGoogleCredentials(opts: CredentialOptions = {}): GoogleCredentials {
  const env = opts.env ?? process.env;
  const scope = opts.scope ?? BIGQUERY_SCOPE;
  if (opts.keyFile !== undefined) return credentialsFromFile(opts.keyFile, `keyFile ${opts.keyFile}`, scope);
  const fromEnv = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (fromEnv) return credentialsFromFile(fromEnv, `GOOGLE_APPLICATION_CREDENTIALS (${fromEnv})`, scope);
  const gcloudDir = env.CLOUDSDK_CONFIG ?? (process.platform === 'win32' ? join(env.APPDATA ?? homedir(), 'gcloud') : join(homedir(), '.config', 'gcloud'));
  const wellKnown = join(gcloudDir, 'application_default_credentials.json');
  if (existsSync(wellKnown)) return credentialsFromFile(wellKnown, `gcloud application-default credentials (${wellKnown})`, scope);
  return metadataCredentials(env.GCE_METADATA_HOST ?? env.GCE_METADATA_IP ?? 'metadata.google.internal');
}

interface ServiceAccountKey {
  type: 'service_account';
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

interface AuthorizedUser {
  type: 'authorized_user';
  client_id: string;
  client_secret: string;
  refresh_token: string;
  token_uri?: string;
}

function credentialsFromFile(path: string, origin: string, scope: string): GoogleCredentials {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new GoogleAuthError(
      missing ? `the credentials file of ${origin} does not exist` : `the credentials file of ${origin} is not readable JSON`,
      'point it at the JSON key file downloaded from Google Cloud (IAM → Service accounts → Keys), or run `gcloud auth application-default login`',
      { cause: err },
    );
  }
  const file = (json ?? {}) as Record<string, unknown>;
  const text = (field: string) => (typeof file[field] === 'string' && file[field] !== '' ? (file[field] as string) : undefined);
  const missing = (fields: string[]) => fields.filter((f) => text(f) === undefined);
  if (file.type === 'service_account') {
    const absent = missing(['client_email', 'private_key']);
    if (absent.length > 0) throw new GoogleAuthError(`the service-account key of ${origin} has no ${absent.join(' or ')}`, 'download a new JSON key for the service account');
    return serviceAccount(file as unknown as ServiceAccountKey, origin, scope);
  }
  if (file.type === 'authorized_user') {
    const absent = missing(['client_id', 'client_secret', 'refresh_token']);
    if (absent.length > 0) throw new GoogleAuthError(`the user credentials of ${origin} have no ${absent.join(' or ')}`, 'run `gcloud auth application-default login` again');
    return authorizedUser(file as unknown as AuthorizedUser, origin);
  }
  throw new GoogleAuthError(
    `${origin} holds credentials of type ${JSON.stringify(file.type ?? null)}, which audience-sync does not read`,
    'use a service-account key file (type service_account) or `gcloud auth application-default login` (type authorized_user)',
  );
}

function serviceAccount(key: ServiceAccountKey, origin: string, scope: string): GoogleCredentials {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.private_key);
  } catch (err) {
    throw new GoogleAuthError(`the private key in ${origin} cannot be read`, 'download a new JSON key for the service account', { cause: err });
  }
  const tokenUri = key.token_uri ?? GOOGLE_TOKEN_URL;
  const principal = key.client_email;
  return cachedToken('service_account', principal, origin, async () => {
    const assertion = signJwt({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) }, privateKey, {
      iss: principal,
      scope,
      aud: tokenUri,
    });
    return exchange(tokenUri, new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }), {
      who: `service account ${principal}`,
      refused: `create a new key for ${principal} (IAM → Service accounts → Keys), point the keyFile at it, and check that the account is enabled and this machine's clock is right`,
    });
  });
}

function authorizedUser(user: AuthorizedUser, origin: string): GoogleCredentials {
  const tokenUri = user.token_uri ?? GOOGLE_TOKEN_URL;
  return cachedToken('authorized_user', `the Google user of ${origin}`, origin, () =>
    exchange(
      tokenUri,
      new URLSearchParams({ grant_type: 'refresh_token', client_id: user.client_id, client_secret: user.client_secret, refresh_token: user.refresh_token }),
      { who: `the Google user of ${origin}`, refused: 'run `gcloud auth application-default login` again (its refresh token expired or was revoked), or use a service-account keyFile' },
    ),
  );
}

function metadataCredentials(host: string): GoogleCredentials {
  const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token`;
  return cachedToken('metadata', 'the service account of this Google Cloud runtime', `the metadata server (${host})`, async () => {
    let res: Response;
    try {
      res = await fetch(url, { headers: { 'Metadata-Flavor': 'Google' }, signal: AbortSignal.timeout(METADATA_TIMEOUT_MS) });
    } catch (err) {
      throw new GoogleAuthError(
        'no Google credentials found: no keyFile, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default credentials, and no metadata server (not running on Google Cloud)',
        'set the source\'s keyFile to a service-account JSON key, or export GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`',
        { cause: err },
      );
    }
    return tokenFrom(res, { who: 'the service account of this Google Cloud runtime', refused: 'attach a service account to the VM, Cloud Run service or GKE workload, or set the source\'s keyFile' });
  });
}

function cachedToken(kind: GoogleCredentials['kind'], principal: string, origin: string, fetchToken: () => Promise<IssuedToken>): GoogleCredentials {
  let current: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  return {
    kind,
    principal,
    origin,
    accessToken(renew = false) {
      if (!renew && current && Date.now() < current.renewAt) return Promise.resolve(current.token);
      // One exchange at a time: concurrent requests share it.
      pending ??= fetchToken()
        .then((t) => {
          current = { token: t.token, renewAt: Date.now() + t.expiresInS * 1000 - EXPIRY_MARGIN_MS };
          return t.token;
        })
        .finally(() => {
          pending = undefined;
        });
      return pending;
    },
  };
}

interface IssuedToken {
  token: string;
  expiresInS: number;
}

interface Refusal {
  /** Whose credentials, for the message. */
  who: string;
  /** What to do when the token endpoint refuses them. */
  refused: string;
}

/** An OAuth token request (RFC 6749 §4.1.3 / RFC 7523), retried on 5xx and network errors. */
async function exchange(tokenUri: string, form: URLSearchParams, refusal: Refusal): Promise<IssuedToken> {
  return withBackoff(
    async () => {
      let res: Response;
      try {
        res = await fetch(tokenUri, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
          signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        throw new TransientError(`cannot reach Google's token endpoint ${tokenUri} (${describeNetworkError(err)})`, { cause: err });
      }
      if (res.status >= 500 || res.status === 429) throw new TransientError(`Google's token endpoint ${tokenUri} answered HTTP ${res.status}`);
      return tokenFrom(res, refusal);
    },
    {},
  ).catch((err: unknown) => {
    if (err instanceof TransientError) throw new GoogleAuthError(err.message, 'check the network and try again', { cause: err });
    throw err;
  });
}

async function tokenFrom(res: Response, refusal: Refusal): Promise<IssuedToken> {
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // An HTML error page: reported by status below.
  }
  if (res.ok && typeof body.access_token === 'string') {
    const expiresIn = Number(body.expires_in);
    return { token: body.access_token, expiresInS: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600 };
  }
  const code = typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
  const detail = typeof body.error_description === 'string' ? `: ${body.error_description}` : '';
  throw new GoogleAuthError(`Google refused the credentials of ${refusal.who} (${code}${detail})`, refusal.refused);
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** A compact JWS (RFC 7515) signed with RS256, with `iat`/`exp` set from now. */
export function signJwt(header: Record<string, string>, key: KeyObject, claims: Record<string, string>, lifetimeS = ASSERTION_LIFETIME_S): string {
  const iat = Math.floor(Date.now() / 1000);
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify({ ...claims, iat, exp: iat + lifetimeS }))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key);
  return `${input}.${base64url(signature)}`;
}
