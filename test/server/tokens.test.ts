import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONNECTED_TOKEN_KEY,
  connectionInfo,
  daysUntilExpiry,
  loadConnectedToken,
  openToken,
  resolveAccessToken,
  saveConnectedToken,
  sealToken,
  secretKeyFromEnv,
  SecretKeyError,
  withConnectedToken,
} from '../../src/app/tokens.js';
import { openStateStore, type StateStore } from '../../src/state/index.js';

const KEY_HEX = 'ab'.repeat(32);
const TOKEN = 'EAAtest-token-value-1234567890';
const PASSPHRASE = 'a long passphrase that is long enough!!';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** A token as versions before scrypt stored it: sealed with the passphrase's bare SHA-256. */
function legacySealed(token: string, passphrase: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sha256(passphrase), iv);
  const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join(':');
}

describe('token encryption (AES-256-GCM)', () => {
  it('round-trips, uses a fresh IV each time, and refuses another key or altered text', async () => {
    const key = Buffer.from(KEY_HEX, 'hex');
    const a = await sealToken(TOKEN, key);
    const b = await sealToken(TOKEN, key);
    expect(a).not.toBe(b);
    expect(a).not.toContain(TOKEN);
    expect(await openToken(a, key)).toBe(TOKEN);
    await expect(openToken(a, randomBytes(32))).rejects.toThrow(SecretKeyError);
    const parts = a.split(':');
    const tampered = [...parts.slice(0, 3), Buffer.from('x' + Buffer.from(parts[3] ?? '', 'base64').toString('latin1'), 'latin1').toString('base64')].join(':');
    await expect(openToken(tampered, key)).rejects.toThrow(/cannot be decrypted/);
  });

  it('stretches a passphrase with scrypt and a random salt kept with the token', async () => {
    const key = { passphrase: PASSPHRASE };
    const a = await sealToken(TOKEN, key);
    const b = await sealToken(TOKEN, key);
    const [format, salt] = a.split(':');
    expect(format).toBe('v2');
    expect(Buffer.from(salt ?? '', 'base64')).toHaveLength(16);
    expect(b.split(':')[1]).not.toBe(salt);
    expect(await openToken(a, key)).toBe(TOKEN);
    await expect(openToken(a, { passphrase: `${PASSPHRASE}?` })).rejects.toThrow(/cannot be decrypted/);
    // Not the passphrase's bare SHA-256, the key it was stretched to before.
    await expect(openToken(a, sha256(PASSPHRASE))).rejects.toThrow(/cannot be decrypted/);
  });

  it('reads the key from AUDIENCE_SYNC_SECRET_KEY and says how to make one', () => {
    expect((secretKeyFromEnv({ AUDIENCE_SYNC_SECRET_KEY: KEY_HEX }) as Buffer).toString('hex')).toBe(KEY_HEX);
    expect(secretKeyFromEnv({ AUDIENCE_SYNC_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') })).toEqual(Buffer.alloc(32, 7));
    expect(secretKeyFromEnv({ AUDIENCE_SYNC_SECRET_KEY: PASSPHRASE })).toEqual({ passphrase: PASSPHRASE });
    expect(() => secretKeyFromEnv({})).toThrow(/AUDIENCE_SYNC_SECRET_KEY is not set.*openssl rand -hex 32/);
    expect(() => secretKeyFromEnv({ AUDIENCE_SYNC_SECRET_KEY: 'short' })).toThrow(/too short/);
  });
});

describe('connected token in the state store', () => {
  let state: StateStore;
  beforeEach(async () => {
    state = await openStateStore('sqlite::memory:');
  });
  afterEach(() => state.close());

  it('is stored encrypted with its expiry, and preferred over the config token', async () => {
    const config = { meta: { accessToken: 'from-config', adAccountId: '1', apiVersion: 'v25.0', graphUrl: 'http://127.0.0.1:9' } };
    expect(await resolveAccessToken(config, state, {})).toEqual({ accessToken: 'from-config', source: 'config' });

    const expiresAt = new Date(Date.UTC(2026, 2, 1));
    await saveConnectedToken(state, Buffer.from(KEY_HEX, 'hex'), { accessToken: TOKEN, expiresAt, userId: '42' }, new Date(Date.UTC(2026, 0, 1)));
    const raw = (await state.getValue(CONNECTED_TOKEN_KEY)) ?? '';
    expect(raw).not.toContain(TOKEN);
    expect(await connectionInfo(state)).toEqual({ userId: '42', connectedAt: '2026-01-01T00:00:00.000Z', expiresAt: expiresAt.toISOString() });
    expect((await loadConnectedToken(state, Buffer.from(KEY_HEX, 'hex')))?.accessToken).toBe(TOKEN);

    const env = { AUDIENCE_SYNC_SECRET_KEY: KEY_HEX };
    expect(await resolveAccessToken(config, state, env)).toEqual({ accessToken: TOKEN, source: 'connected' });
    // Without the key the config token still works; with no config token the error says what to do.
    expect(await resolveAccessToken(config, state, {})).toEqual({ accessToken: 'from-config', source: 'config' });
    await expect(resolveAccessToken({ meta: { ...config.meta, accessToken: '' } }, state, {})).rejects.toThrow(/AUDIENCE_SYNC_SECRET_KEY/);
  });

  it('seals again, with scrypt, a token stored with the old SHA-256 passphrase key', async () => {
    const stored = { userId: '7', connectedAt: '2026-01-01T00:00:00.000Z', expiresAt: null, sealed: legacySealed(TOKEN, PASSPHRASE) };
    await state.setValue(CONNECTED_TOKEN_KEY, JSON.stringify(stored));
    const env = { AUDIENCE_SYNC_SECRET_KEY: PASSPHRASE };
    const config = { meta: { accessToken: '', adAccountId: '1', apiVersion: 'v25.0', graphUrl: 'http://127.0.0.1:9' } };

    expect(await resolveAccessToken(config, state, env)).toEqual({ accessToken: TOKEN, source: 'connected' });
    const migrated = JSON.parse((await state.getValue(CONNECTED_TOKEN_KEY)) ?? '{}') as typeof stored;
    expect(migrated).toMatchObject({ userId: '7', connectedAt: stored.connectedAt, expiresAt: null });
    expect(migrated.sealed.split(':')[0]).toBe('v2');
    expect(migrated.sealed).not.toContain(TOKEN);
    // The old key no longer opens it; the passphrase does, and a second read leaves it alone.
    await expect(openToken(migrated.sealed, sha256(PASSPHRASE))).rejects.toThrow(SecretKeyError);
    expect((await loadConnectedToken(state, { passphrase: PASSPHRASE }))?.accessToken).toBe(TOKEN);
    expect(JSON.parse((await state.getValue(CONNECTED_TOKEN_KEY)) ?? '{}')).toEqual(migrated);

    // A token stored with the old key is sealed again by the service's read too.
    await state.setValue(CONNECTED_TOKEN_KEY, JSON.stringify(stored));
    expect((await loadConnectedToken(state, secretKeyFromEnv(env)))?.accessToken).toBe(TOKEN);
    expect(((await state.getValue(CONNECTED_TOKEN_KEY)) ?? '').includes('"sealed":"v2:')).toBe(true);
  });

  it('counts the days left', () => {
    const now = new Date(Date.UTC(2026, 0, 1));
    expect(daysUntilExpiry({ expiresAt: '2026-01-08T00:00:00.000Z' }, now)).toBe(7);
    expect(daysUntilExpiry({ expiresAt: null }, now)).toBeUndefined();
  });
});

describe('withConnectedToken (the hook for Workspace.open)', () => {
  it('swaps in the connected token only when the config has an app id and a token is stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audience-sync-tokens-'));
    try {
      const url = `sqlite://${join(dir, 'state.db')}`;
      const base = { version: 1 as const, configPath: join(dir, 'c.yml'), baseDir: dir, state: { url }, sources: {}, syncs: [] };
      const meta = { accessToken: 'from-config', adAccountId: '1', apiVersion: 'v25.0', graphUrl: 'http://127.0.0.1:9' };
      const env = { AUDIENCE_SYNC_SECRET_KEY: KEY_HEX };
      const plain = { ...base, meta };
      expect(await withConnectedToken(plain, env)).toBe(plain);
      const withApp = { ...base, meta: { ...meta, appId: '12', appSecret: 's' } };
      expect((await withConnectedToken(withApp, env)).meta.accessToken).toBe('from-config');
      const state = await openStateStore(url);
      await saveConnectedToken(state, Buffer.from(KEY_HEX, 'hex'), { accessToken: TOKEN, expiresAt: null, userId: null });
      await state.close();
      expect((await withConnectedToken(withApp, env)).meta.accessToken).toBe(TOKEN);
      expect((await withConnectedToken(withApp, {})).meta.accessToken).toBe('from-config');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
