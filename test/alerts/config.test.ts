// The `alerts:` section of the config: what it accepts, its defaults, and errors that name the path
// at fault without quoting the (secret) webhook URL.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/config/index.js';

const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/very-secret-key';
const env = { META_ACCESS_TOKEN: 't', SLACK_WEBHOOK_URL: SLACK_URL };

function configText(alerts: string): string {
  return `
version: 1
meta: { accessToken: "\${META_ACCESS_TOKEN}", adAccountId: "act_123" }
sources: { w: { type: duckdb, path: ":memory:" } }
syncs:
  - { name: loyalty, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }
  - { name: buyers, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "2" }, mapping: { EXTERN_ID: id } }
${alerts}`;
}

const parse = (alerts: string, e: Record<string, string> = env) => parseConfig(configText(alerts), join('/tmp', 'audience-sync.yml'), e);

function issues(alerts: string, e: Record<string, string> = env): ConfigIssue[] {
  try {
    parse(alerts, e);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('very-secret-key');
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

describe('alerts config', () => {
  it('reads destinations by name, with their conditions and sync filter; unset conditions are off', () => {
    const config = parse(`
alerts:
  ops-slack:
    type: slack
    url: "\${SLACK_WEBHOOK_URL}"
    when: { failed: true, refused: true, tokenExpiresWithinDays: 7 }
  data-team:
    type: webhook
    url: http://127.0.0.1:9000/hooks/audience-sync
    syncs: [buyers]
    when: { partial: true, givenUp: true, missedSchedule: true, matchCoverageDrop: 20 }
`);
    expect(config.alerts).toEqual([
      { name: 'ops-slack', type: 'slack', url: SLACK_URL, when: { failed: true, partial: false, refused: true, givenUp: false, missedSchedule: false, tokenExpiresWithinDays: 7 } },
      {
        name: 'data-team',
        type: 'webhook',
        url: 'http://127.0.0.1:9000/hooks/audience-sync',
        syncs: ['buyers'],
        when: { failed: false, partial: true, refused: false, givenUp: true, missedSchedule: true, matchCoverageDrop: 20 },
      },
    ]);
    expect(parse('').alerts).toBeUndefined();
  });

  it('names the path of each problem: type, url, unknown sync, no condition, thresholds, names', () => {
    const found = issues(`
alerts:
  a:
    type: email
    url: "not a url"
    when: { failed: true }
  b:
    type: slack
    url: "\${SLACK_WEBHOOK_URL}"
    syncs: [loyalty, nope]
    when: {}
  c:
    type: webhook
    url: ftp://example.com/x
    when: { tokenExpiresWithinDays: -1, matchCoverageDrop: 0, failed: "yes" }
  Bad Name:
    type: webhook
    url: https://example.com/x
    when: { failed: true, onFire: true }
`);
    const byPath = new Map(found.map((i) => [i.path, i.message]));
    expect(byPath.get('alerts.a.type')).toMatch(/"webhook".*"slack"/);
    expect(byPath.get('alerts.a.url')).toMatch(/must be an http\(s\) URL/);
    expect(byPath.get('alerts.b.syncs[1]')).toMatch(/unknown sync "nope".*loyalty, buyers/);
    expect(byPath.get('alerts.b.when')).toMatch(/turn on at least one condition/);
    expect(byPath.get('alerts.c.url')).toMatch(/must be an http\(s\) URL/);
    expect(byPath.get('alerts.c.when.tokenExpiresWithinDays')).toMatch(/≥ 0/);
    expect(byPath.get('alerts.c.when.matchCoverageDrop')).toMatch(/above 0/);
    expect(byPath.get('alerts.c.when.failed')).toMatch(/boolean/);
    expect(byPath.get('alerts.Bad Name')).toMatch(/slug/);
    expect(byPath.get('alerts.Bad Name.when.onFire')).toMatch(/unknown setting/);
    for (const issue of found) expect(issue.line).toBeGreaterThan(0);
  });

  it('a URL from an unset variable is reported by its path, not its value', () => {
    const found = issues(`
alerts:
  ops:
    type: slack
    url: "\${SLACK_WEBHOOK_URL}"
    when: { failed: true }
`, { META_ACCESS_TOKEN: 't' });
    expect(found.find((i) => i.path === 'alerts.ops.url')?.message).toMatch(/SLACK_WEBHOOK_URL is not set/);
  });
});
