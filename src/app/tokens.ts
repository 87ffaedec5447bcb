/**
 * A Meta access token obtained through "Connect with Facebook", kept encrypted (AES-256-GCM) in the
 * state store's key/value table. The key comes from the environment (`AUDIENCE_SYNC_SECRET_KEY`), never
 * from the state itself, so a copy of the state database does not hand out the token. A passphrase
 * (rather than 32 random bytes) is stretched with scrypt and a random salt kept with the token.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt as scryptCallback, type ScryptOptions } from 'node:crypto';
import { promisify } from 'node:util';
import { DEFAULT_CONNECTION, type Config, type ConnectionConfig } from '../config/index.js';
import { openStateStore, type StateStore } from '../state/index.js';

export const SECRET_KEY_ENV = 'AUDIENCE_SYNC_SECRET_KEY';
/** State kv key of the encrypted token record of the default connection (the `meta:` block). */
export const CONNECTED_TOKEN_KEY = 'meta.connected_token';

/** State kv key of a connection's token; the default connection keeps the key it always had. */
export function connectedTokenKey(connection: string = DEFAULT_CONNECTION): string {
  return connection === DEFAULT_CONNECTION ? CONNECTED_TOKEN_KEY : `${CONNECTED_TOKEN_KEY}:${connection}`;
}

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
/** `v1:<iv>:<tag>:<ciphertext>`: sealed with a 32-byte key as given (or, before v2, a passphrase's SHA-256). */
const RAW_FORMAT = 'v1';
/** `v2:<salt>:<iv>:<tag>:<ciphertext>`: sealed with a passphrase stretched by scrypt with that salt. */
const PASSPHRASE_FORMAT = 'v2';
const SALT_BYTES = 16;
/** scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s per derivation, once per process start. */
const SCRYPT: ScryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: ScryptOptions) => Promise<Buffer>;

/** 32 random bytes (hex or base64 in the environment), or a passphrase to stretch. */
export type SecretKey = Buffer | { passphrase: string };

/** What the dashboard may show about a connected token: never the token itself. */
export interface ConnectionInfo {
  /** Meta user id the token belongs to (not personal data in itself, but we only keep the id). */
  userId: string | null;
  connectedAt: string;
  /** ISO time; null when Meta gave no expiry. */
  expiresAt: string | null;
}

interface StoredToken extends ConnectionInfo {
  /** `v1:…` or `v2:…` (see RAW_FORMAT and PASSPHRASE_FORMAT), base64 parts. */
  sealed: string;
}

export class SecretKeyError extends Error {
  override readonly name = 'SecretKeyError';
}

/**
 * Reads the key from the environment. Accepted: 64 hex digits or base64 of 32 bytes (used as they
 * are); any other text of at least 32 characters is a passphrase, stretched with scrypt when used.
 * @throws SecretKeyError when it is missing or too short, saying how to make one.
 */
export function secretKeyFromEnv(env: NodeJS.ProcessEnv = process.env): SecretKey {
  const raw = env[SECRET_KEY_ENV]?.trim();
  const howTo = `set ${SECRET_KEY_ENV} to 32 random bytes, e.g. the output of \`openssl rand -hex 32\``;
  if (!raw) throw new SecretKeyError(`${SECRET_KEY_ENV} is not set: it encrypts the Meta token stored by "Connect with Facebook"; ${howTo}`);
  if (/^[0-9a-f]{64}$/i.test(raw)) return Buffer.from(raw, 'hex');
  const b64 = Buffer.from(raw, 'base64');
  if (b64.length === 32 && /^[A-Za-z0-9+/]{43}=?$/.test(raw)) return b64;
  if (raw.length >= 32) return { passphrase: raw };
  throw new SecretKeyError(`${SECRET_KEY_ENV} is too short to be a key; ${howTo}`);
}

/** Encrypts a token; a passphrase gets a fresh salt each time. */
export async function sealToken(token: string, key: SecretKey): Promise<string> {
  if (Buffer.isBuffer(key)) return [RAW_FORMAT, ...encrypt(token, key)].join(':');
  const salt = randomBytes(SALT_BYTES);
  return [PASSPHRASE_FORMAT, salt.toString('base64'), ...encrypt(token, await scrypt(key.passphrase, salt, 32, SCRYPT))].join(':');
}

/** @throws SecretKeyError when the key is not the one the token was sealed with (or the text was altered). */
export async function openToken(sealed: string, key: SecretKey): Promise<string> {
  return (await unseal(sealed, key)).token;
}

/** The token, and whether it was sealed the old way (a passphrase's bare SHA-256) and should be sealed again. */
async function unseal(sealed: string, key: SecretKey): Promise<{ token: string; legacy: boolean }> {
  const [format, ...parts] = sealed.split(':');
  if (format === RAW_FORMAT && parts.length === 3) {
    if (Buffer.isBuffer(key)) return { token: decrypt(parts, key), legacy: false };
    return { token: decrypt(parts, createHash('sha256').update(key.passphrase, 'utf8').digest()), legacy: true };
  }
  if (format === PASSPHRASE_FORMAT && parts.length === 4) {
    if (Buffer.isBuffer(key)) throw cannotDecrypt();
    const [salt = '', ...rest] = parts;
    return { token: decrypt(rest, await scrypt(key.passphrase, Buffer.from(salt, 'base64'), 32, SCRYPT)), legacy: false };
  }
  throw new SecretKeyError('the stored Meta token is in an unknown format: connect the Meta account again');
}

/** `[iv, tag, ciphertext]`, base64. */
function encrypt(token: string, key: Buffer): string[] {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv);
  const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return [iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')];
}

function decrypt([iv = '', tag = '', ciphertext = '']: string[], key: Buffer): string {
  try {
    const decipher = createDecipheriv(ALGORITHM, key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw cannotDecrypt();
  }
}

function cannotDecrypt(): SecretKeyError {
  return new SecretKeyError(`the stored Meta token cannot be decrypted with this ${SECRET_KEY_ENV}: restore the key it was stored with, or connect the Meta account again`);
}

/** Stores the token "Connect with Facebook" got for a connection (`connection` defaults to the `meta:` block's). */
export async function saveConnectedToken(
  state: StateStore,
  key: SecretKey,
  token: { accessToken: string; expiresAt: Date | null; userId: string | null; connection?: string },
  now: Date = new Date(),
): Promise<ConnectionInfo> {
  const info: ConnectionInfo = { userId: token.userId, connectedAt: now.toISOString(), expiresAt: token.expiresAt?.toISOString() ?? null };
  await writeStored(state, token.connection, { ...info, sealed: await sealToken(token.accessToken, key) });
  return info;
}

async function writeStored(state: StateStore, connection: string | undefined, stored: StoredToken): Promise<void> {
  await state.setValue(connectedTokenKey(connection), JSON.stringify(stored));
}

/** Opens the stored token; one sealed the old way is sealed again (scrypt, random salt) and saved. */
async function openStored(state: StateStore, connection: string | undefined, stored: StoredToken, key: SecretKey): Promise<string> {
  const { token, legacy } = await unseal(stored.sealed, key);
  if (legacy) await writeStored(state, connection, { ...stored, sealed: await sealToken(token, key) });
  return token;
}

async function readStored(state: StateStore, connection?: string): Promise<StoredToken | undefined> {
  const text = await state.getValue(connectedTokenKey(connection));
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<StoredToken>;
    if (typeof parsed.sealed !== 'string' || typeof parsed.connectedAt !== 'string') return undefined;
    return { sealed: parsed.sealed, connectedAt: parsed.connectedAt, expiresAt: parsed.expiresAt ?? null, userId: parsed.userId ?? null };
  } catch {
    return undefined;
  }
}

/** The connected token's metadata, readable without the key. */
export async function connectionInfo(state: StateStore, connection?: string): Promise<ConnectionInfo | undefined> {
  const stored = await readStored(state, connection);
  return stored && { userId: stored.userId, connectedAt: stored.connectedAt, expiresAt: stored.expiresAt };
}

export async function loadConnectedToken(state: StateStore, key: SecretKey, connection?: string): Promise<{ accessToken: string; info: ConnectionInfo } | undefined> {
  const stored = await readStored(state, connection);
  if (!stored) return undefined;
  return { accessToken: await openStored(state, connection, stored, key), info: { userId: stored.userId, connectedAt: stored.connectedAt, expiresAt: stored.expiresAt } };
}

export async function forgetConnectedToken(state: StateStore, connection?: string): Promise<void> {
  await state.deleteValue(connectedTokenKey(connection));
}

/**
 * The token Graph calls should use: the connected one when there is one (and the key to open it),
 * else `meta.accessToken` from the config. This is the hook the Workspace reads the token through.
 * @throws SecretKeyError when a token is stored but the key is missing or wrong and the config has no token.
 */
export async function resolveAccessToken(
  config: { meta?: Pick<ConnectionConfig, 'accessToken'> },
  state: StateStore,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ accessToken: string; source: 'connected' | 'config' }> {
  return resolveConnectionToken({ name: DEFAULT_CONNECTION, accessToken: config.meta?.accessToken ?? '' }, state, env);
}

/** Like `resolveAccessToken`, for any connection: its connected token, else its config token. */
export async function resolveConnectionToken(
  connection: Pick<ConnectionConfig, 'name' | 'accessToken'>,
  state: StateStore,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ accessToken: string; source: 'connected' | 'config' }> {
  const configToken = connection.accessToken;
  const stored = await readStored(state, connection.name);
  if (stored) {
    try {
      return { accessToken: await openStored(state, connection.name, stored, secretKeyFromEnv(env)), source: 'connected' };
    } catch (e) {
      if (!configToken) throw e;
    }
  }
  return { accessToken: configToken, source: 'config' };
}

type TokenConfig = Pick<Config, 'state'> & { meta?: Config['meta']; connections?: Config['connections'] };

/**
 * The tokens "Connect with Facebook" stored, by connection, that stand in for the config's. Only
 * connections with an `appId` are looked up, so other setups never open the state store here. A
 * stored token that cannot be opened (no key) leaves the config token in place; with no config token
 * either, the connection maps to the SecretKeyError that says what to do (other connections still work).
 */
export async function connectedTokens(config: TokenConfig, env: NodeJS.ProcessEnv = process.env): Promise<Map<string, string | SecretKeyError>> {
  const connections = config.connections ?? (config.meta ? { [DEFAULT_CONNECTION]: { name: DEFAULT_CONNECTION, ...config.meta } } : {});
  const connectable = Object.values(connections).filter((c) => c.appId !== undefined);
  const connected = new Map<string, string | SecretKeyError>();
  if (connectable.length === 0) return connected;
  const state = await openStateStore(config.state.url);
  try {
    for (const c of connectable) {
      try {
        const { accessToken, source } = await resolveConnectionToken(c, state, env);
        if (source === 'connected') connected.set(c.name, accessToken);
      } catch (e) {
        if (!(e instanceof SecretKeyError)) throw e;
        connected.set(c.name, e);
      }
    }
  } finally {
    await state.close();
  }
  return connected;
}

/**
 * The config with each connected token (see `connectedTokens`) in place of its connection's config token.
 * @throws SecretKeyError when a stored token cannot be opened and its connection has no config token.
 */
export async function withConnectedToken<C extends TokenConfig>(config: C, env: NodeJS.ProcessEnv = process.env): Promise<C> {
  const connected = new Map<string, string>();
  for (const [name, token] of await connectedTokens(config, env)) {
    if (token instanceof SecretKeyError) throw token;
    connected.set(name, token);
  }
  if (connected.size === 0) return config;
  const swapped = (c: ConnectionConfig) => ({ ...c, accessToken: connected.get(c.name) ?? c.accessToken });
  const defaultToken = connected.get(DEFAULT_CONNECTION);
  const metaIsDefault = (config.connections?.[DEFAULT_CONNECTION]?.at ?? 'meta') === 'meta';
  return {
    ...config,
    ...(config.connections ? { connections: Object.fromEntries(Object.entries(config.connections).map(([n, c]) => [n, swapped(c)])) } : {}),
    ...(config.meta && defaultToken !== undefined && metaIsDefault ? { meta: { ...config.meta, accessToken: defaultToken } } : {}),
  };
}

/** Days left before the token expires (negative once expired); undefined when it does not expire. */
export function daysUntilExpiry(info: Pick<ConnectionInfo, 'expiresAt'>, now: Date = new Date()): number | undefined {
  if (!info.expiresAt) return undefined;
  return (Date.parse(info.expiresAt) - now.getTime()) / 86_400_000;
}

/** The dashboard warns this many days before a connected token expires. */
export const EXPIRY_WARNING_DAYS = 7;
