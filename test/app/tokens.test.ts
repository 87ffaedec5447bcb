// "Connect with Facebook" tokens per connection: the default connection keeps the state key tokens
// were always stored under, every other connection has its own, and a token one connection cannot
// open leaves the others working.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectionStatus } from '../../src/app/connections.js';
import { CONNECTED_TOKEN_KEY, connectedTokenKey, connectedTokens, saveConnectedToken, SecretKeyError } from '../../src/app/tokens.js';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { openStateStore } from '../../src/state/index.js';

const KEY_HEX = 'b'.repeat(64);
const key = Buffer.from(KEY_HEX, 'hex');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'as-conn-tokens-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(): string {
  const path = join(dir, 'audience-sync.yml');
  writeFileSync(
    path,
    [
      'version: 1',
      `state: { url: "sqlite://${join(dir, 'state.db')}" }`,
      'meta: { appId: "11", appSecret: s1, adAccountId: "1", graphUrl: "http://127.0.0.1:9" }',
      'connections:',
      '  eu: { appId: "22", appSecret: s2, adAccountId: "2", graphUrl: "http://127.0.0.1:9" }',
      '  us: { appId: "33", appSecret: s3, adAccountId: "3", graphUrl: "http://127.0.0.1:9" }',
      'sources: { w: { type: duckdb, path: ":memory:" } }',
      'syncs:',
      '  - { name: a, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }',
      '  - { name: b, connection: eu, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "2" }, mapping: { EXTERN_ID: id } }',
    ].join('\n'),
  );
  return path;
}

describe('connected tokens per connection', () => {
  it('keeps the default connection under the key tokens were always stored under, and each other connection under its own', async () => {
    expect(connectedTokenKey()).toBe(CONNECTED_TOKEN_KEY);
    expect(connectedTokenKey('default')).toBe('meta.connected_token');
    expect(connectedTokenKey('eu')).toBe('meta.connected_token:eu');

    const config = loadConfig(writeConfig(), {});
    const state = await openStateStore(config.state.url);
    // A token stored by an earlier version (no connection named): it is the default connection's.
    await saveConnectedToken(state, key, { accessToken: 'EAAdefault', expiresAt: null, userId: '1' });
    await saveConnectedToken(state, key, { accessToken: 'EAAeu', expiresAt: null, userId: '2', connection: 'eu' });
    await state.close();

    const env = { AUDIENCE_SYNC_SECRET_KEY: KEY_HEX };
    expect(Object.fromEntries(await connectedTokens(config, env))).toEqual({ default: 'EAAdefault', eu: 'EAAeu' });
    const ws = await Workspace.open(config.configPath, env);
    try {
      expect([ws.tokenSource('default'), ws.tokenSource('eu'), ws.tokenSource('us')]).toEqual(['connected', 'connected', 'none']);
    } finally {
      await ws.close();
    }
  });

  it('a stored token the key cannot open stops only its own connection, saying what to do', async () => {
    const config = loadConfig(writeConfig(), {});
    const state = await openStateStore(config.state.url);
    await saveConnectedToken(state, key, { accessToken: 'EAAeu', expiresAt: new Date(Date.UTC(2030, 0, 1)), userId: '2', connection: 'eu' });
    await state.close();

    const tokens = await connectedTokens(config, {});
    expect(tokens.get('eu')).toBeInstanceOf(SecretKeyError);
    const ws = await Workspace.open(config.configPath, {});
    try {
      expect(() => ws.graph('eu')).toThrow(/AUDIENCE_SYNC_SECRET_KEY is not set/);
      expect(() => ws.graph('us')).toThrow(/no Meta access token for connection "us": set connections\.us\.accessToken in the config, or open the dashboard and use "Connect with Facebook" for "us"/);
      const status = await connectionStatus(ws);
      expect(status.map((s) => [s.name, s.state, s.valid, s.adAccounts, s.syncs])).toEqual([
        ['default', 'missing', false, ['1'], ['a']],
        ['eu', 'missing', false, ['2'], ['b']],
        ['us', 'missing', false, ['3'], []],
      ]);
      expect(status[1]?.error).toMatch(/AUDIENCE_SYNC_SECRET_KEY/);
    } finally {
      await ws.close();
    }
  });
});
