// `audience-sync alerts test` (the built CLI): a sample alert to every destination, the outcome of
// each, exit 1 when one did not get it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../cli/run-cli.js';
import { refusedUrl, startReceiver, type Receiver } from '../support/receiver.js';

let receiver: Receiver;
let dir: string;
beforeAll(async () => {
  receiver = await startReceiver();
  dir = mkdtempSync(join(tmpdir(), 'as-alerts-cli-'));
});
afterAll(async () => {
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(alerts: Record<string, unknown> | undefined, name: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    stringify({
      version: 1,
      meta: { accessToken: 't', adAccountId: 'act_1', graphUrl: 'http://127.0.0.1:9' },
      sources: { w: { type: 'duckdb', path: ':memory:' } },
      syncs: [{ name: 'loyalty', source: 'w', model: 'select 1 as id', primaryKey: 'id', audience: { id: '1' }, mapping: { EXTERN_ID: 'id' } }],
      server: { publicUrl: 'https://sync.example.com' },
      ...(alerts ? { alerts } : {}),
    }),
  );
  return path;
}

describe('audience-sync alerts test', () => {
  it('sends a sample to every destination and says which got it; exit 1 when one did not', async () => {
    const down = await refusedUrl('/services/T0/B0/secret-key');
    const path = config(
      {
        ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true } },
        chat: { type: 'slack', url: '${SLACK_WEBHOOK_URL}', when: { failed: true } },
      },
      'mixed.yml',
    );
    const env = { ...process.env, SLACK_WEBHOOK_URL: down };
    const text = await runCli(['alerts', 'test', '-c', path], { env });
    expect(text.code).toBe(1);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ops \(webhook, http:\/\/127\.0\.0\.1:\d+\): delivered$/);
    expect(lines[1]).toMatch(/^chat \(slack, http:\/\/127\.0\.0\.1:\d+\): failed: http:\/\/127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\): is the receiver running\? \(after 2 tries\)$/);
    expect(lines[2]).toBe('1 of 2 destinations did not get the sample alert');
    expect(text.stdout + text.stderr).not.toContain('secret-key');
    const sample = receiver.received[0]!.body;
    expect(sample).toMatchObject({ source: 'audience-sync', kind: 'test', condition: 'test', destination: 'ops', sync: 'example-sync', dashboardUrl: 'https://sync.example.com/' });

    const json = await runCli(['alerts', 'test', '-c', path, '--json'], { env });
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(false);
    expect(report.destinations.map((d: { name: string; delivered: boolean; origin: string }) => [d.name, d.delivered, d.origin])).toEqual([
      ['ops', true, receiver.url],
      ['chat', false, new URL(down).origin],
    ]);
  });

  it('exits 0 when every destination got it, and 2 without any destination', async () => {
    const ok = await runCli(['alerts', 'test', '-c', config({ ops: { type: 'slack', url: `${receiver.url}/services/x`, when: { failed: true } } }, 'ok.yml')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ops \(slack, http:\/\/127\.0\.0\.1:\d+\): delivered\n$/);
    expect(receiver.received.at(-1)!.body.text).toBe(':bell: Test alert from audience-sync to "ops": alerts reach this destination');

    const none = await runCli(['alerts', 'test', '-c', config(undefined, 'none.yml')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/has no alert destination: add an alerts: section \(see docs\/alerts\.md\)/);
  });
});
