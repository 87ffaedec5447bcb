// Several Meta connections in one config: the `connections:` map, each sync's connection and ad
// account, and the `meta:` block that stays the connection named "default".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ConfigIssue } from '../../src/config/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'as-connections-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const env = { META_ACCESS_TOKEN: 'tok-default', TOKEN_EU: 'tok-eu', TOKEN_US: 'tok-us' };

function load(text: string) {
  const path = join(dir, 'audience-sync.yml');
  writeFileSync(path, text);
  return loadConfig(path, env);
}

function issuesOf(text: string): ConfigIssue[] {
  try {
    load(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

const sync = (name: string, extra = '') => `  - { name: ${name}, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id }${extra} }`;
const head = ['version: 1', 'sources:', '  w: { type: duckdb, path: ":memory:" }'];

describe('connections in the config', () => {
  it('reads a config written before connections existed: the meta: block is the connection "default"', () => {
    const config = load([...head, 'meta: { accessToken: "${META_ACCESS_TOKEN}", adAccountId: "act_111", appSecret: s }', 'syncs:', sync('a')].join('\n'));
    expect(config.meta).toEqual({ accessToken: 'tok-default', adAccountId: '111', apiVersion: 'v25.0', graphUrl: 'https://graph.facebook.com', appSecret: 's' });
    expect(config.connections).toEqual({
      default: { name: 'default', at: 'meta', accessToken: 'tok-default', adAccountId: '111', apiVersion: 'v25.0', graphUrl: 'https://graph.facebook.com', appSecret: 's' },
    });
    expect(config.syncs[0]).toMatchObject({ name: 'a', connection: 'default', adAccountId: '111' });
  });

  it('gives each sync its named connection and ad account (its own, else the connection\'s)', () => {
    const config = load(
      [
        ...head,
        'connections:',
        '  eu: { accessToken: "${TOKEN_EU}", adAccountId: "act_222", appSecret: eu-secret, graphUrl: "http://127.0.0.1:9/" }',
        '  us: { accessToken: "${TOKEN_US}", apiVersion: v24.0 }',
        'syncs:',
        sync('a', ', connection: eu'),
        sync('b', ', connection: eu, adAccountId: "act_333"'),
        sync('c', ', connection: us, adAccountId: "444"'),
      ].join('\n'),
    );
    expect(config.meta).toBeUndefined();
    expect(config.connections.eu).toEqual({ name: 'eu', at: 'connections.eu', accessToken: 'tok-eu', adAccountId: '222', apiVersion: 'v25.0', graphUrl: 'http://127.0.0.1:9', appSecret: 'eu-secret' });
    expect(config.connections.us).toMatchObject({ name: 'us', at: 'connections.us', accessToken: 'tok-us', apiVersion: 'v24.0' });
    expect(config.connections.us?.adAccountId).toBeUndefined();
    expect(config.syncs.map((s) => [s.name, s.connection, s.adAccountId])).toEqual([
      ['a', 'eu', '222'],
      ['b', 'eu', '333'],
      ['c', 'us', '444'],
    ]);
  });

  it('lets the meta: block and named connections live side by side', () => {
    const config = load([...head, 'meta: { accessToken: "${META_ACCESS_TOKEN}", adAccountId: "111" }', 'connections:', '  eu: { accessToken: "${TOKEN_EU}" }', 'syncs:', sync('a'), sync('b', ', connection: eu, adAccountId: "222"')].join('\n'));
    expect(Object.keys(config.connections)).toEqual(['default', 'eu']);
    expect(config.syncs.map((s) => [s.connection, s.adAccountId])).toEqual([
      ['default', '111'],
      ['eu', '222'],
    ]);
  });

  it('names an unknown connection with the known ones, at the sync\'s connection path', () => {
    const issues = issuesOf([...head, 'meta: { accessToken: t, adAccountId: "111" }', 'connections:', '  eu: { accessToken: t2, adAccountId: "2" }', 'syncs:', sync('a'), sync('b', ', connection: asia')].join('\n'));
    expect(issues).toEqual([expect.objectContaining({ path: 'syncs[1].connection', message: 'unknown connection "asia": define it under connections (defined: default (the meta: block), eu)', line: 9 })]);
  });

  it('refuses a sync with no ad account anywhere, saying where to put one', () => {
    const issues = issuesOf([...head, 'connections:', '  us: { accessToken: t }', 'syncs:', sync('a', ', connection: us')].join('\n'));
    expect(issues).toEqual([expect.objectContaining({ path: 'syncs[0].adAccountId', message: expect.stringMatching(/is required: .*connection "us" has none \(connections\.us\.adAccountId\); set adAccountId: "act_\.\.\." on the sync or on the connection/) })]);
  });

  it('refuses both a meta: block and connections.default', () => {
    const issues = issuesOf([...head, 'meta: { accessToken: t, adAccountId: "1" }', 'connections:', '  default: { accessToken: t2, adAccountId: "2" }', 'syncs:', sync('a')].join('\n'));
    expect(issues).toEqual([expect.objectContaining({ path: 'connections.default', message: expect.stringContaining('clashes with the meta: block, which is the connection named "default"') })]);
  });

  it('refuses a sync that names no connection when there is no default one, and a config with no connection at all', () => {
    const noDefault = issuesOf([...head, 'connections:', '  eu: { accessToken: t, adAccountId: "2" }', 'syncs:', sync('a')].join('\n'));
    expect(noDefault).toEqual([expect.objectContaining({ path: 'syncs[0].connection', message: 'is required: there is no default connection (no meta: block or connections.default); name one of: eu' })]);
    const none = issuesOf([...head, 'syncs:', sync('a')].join('\n'));
    expect(none).toEqual([expect.objectContaining({ path: 'meta', message: expect.stringMatching(/^is required: set meta\.accessToken and meta\.adAccountId \(or name several connections under connections:\)/) })]);
  });

  it('checks each connection like the meta: block: a token or an app, an app secret with an app id, slug names', () => {
    const issues = issuesOf([...head, 'connections:', '  eu: { adAccountId: "2" }', '  us: { appId: "12", adAccountId: "3" }', '  "Bad Name": { accessToken: t }', 'syncs:', sync('a', ', connection: eu')].join('\n'));
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(['connections.eu.accessToken', 'connections.us.appSecret']));
    expect(issues.some((i) => i.path.startsWith('connections') && /slug/.test(i.message))).toBe(true);
  });
});
