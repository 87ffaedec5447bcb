// Alerts from `audience-sync serve`: sent after its runs, off their path. A receiver that is down or
// never answers slows no run; its undelivered alert is logged (without the URL's secret path), listed
// by the API and shown on the dashboard.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { refusedUrl, startReceiver, type Receiver } from '../support/receiver.js';
import { serveWorld, type ServedWorld } from '../server/helpers.js';
import { capturingLogger } from './helpers.js';

let receiver: Receiver;
let s: ServedWorld | undefined;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
afterEach(async () => {
  await s?.close();
  s = undefined;
  receiver.received.length = 0;
  receiver.respond([]);
});

async function untilAlerts(check: (alerts: Array<Record<string, unknown>>) => boolean): Promise<Array<Record<string, unknown>>> {
  for (let i = 0; i < 400; i++) {
    const alerts = (await s!.api('GET', '/api/alerts')).body.alerts as Array<Record<string, unknown>>;
    if (check(alerts)) return alerts;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the alerts did not reach the expected state');
}

describe('alerts from serve', () => {
  it('sends a failed run\'s alert and its recovery, linking to serve\'s own run pages', async () => {
    s = await serveWorld({
      rows: 5,
      alerts: { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true } } },
      server: { alerts: { delivery: { attempts: 2, backoffMs: 20, timeoutMs: 2_000 } } },
    });
    s.world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    const failed = await s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    expect(failed.status).toBe('failed');
    await receiver.waitFor(1);
    expect(receiver.received[0]!.body).toMatchObject({ kind: 'firing', condition: 'failed', run: { id: failed.id, url: `${s.server.url}/runs/${failed.id}` }, dashboardUrl: `${s.server.url}/syncs/loyalty` });

    s.world.emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
    const ok = await s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    expect(ok.status).toBe('success');
    await receiver.waitFor(2);
    expect(receiver.received[1]!.body).toMatchObject({ kind: 'resolved', title: `Sync loyalty recovered: run #${ok.id} succeeded` });
    const alerts = await untilAlerts((a) => a.length === 2 && a.every((x) => x.status === 'delivered'));
    expect(alerts.map((a) => [a.kind, a.runId, a.status, a.destination, a.sync])).toEqual([
      ['resolved', ok.id, 'delivered', 'ops', 'loyalty'],
      ['firing', failed.id, 'delivered', 'ops', 'loyalty'],
    ]);
  });

  it('a receiver that is down and one that never answers: the run is not slowed, the alerts are logged, listed and shown as not delivered', async () => {
    const down = await refusedUrl('/services/T0/B0/secret-key-down');
    receiver.respond(['hang', 'hang']);
    const log = capturingLogger();
    s = await serveWorld({
      rows: 5,
      alerts: {
        chat: { type: 'slack', url: down, when: { failed: true } },
        slow: { type: 'webhook', url: `${receiver.url}/hooks/secret-key-slow`, when: { failed: true } },
      },
      server: { logger: log.logger, alerts: { delivery: { attempts: 2, backoffMs: 100, timeoutMs: 1_500 } } },
    });
    s.world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    const started = Date.now();
    const run = await s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    const runTook = Date.now() - started;
    expect(run.status).toBe('failed');
    // Both tries of the silent receiver take 3 s: the run did not wait for them.
    expect(runTook).toBeLessThan(2_500);
    expect((await s.api('GET', '/api/alerts')).body.alerts.find((a: { destination: string }) => a.destination === 'slow').status).toBe('sending');

    const alerts = await untilAlerts((a) => a.length === 2 && a.every((x) => x.status === 'undelivered'));
    const reasons = Object.fromEntries(alerts.map((a) => [a.destination, a.error]));
    expect(reasons.chat).toMatch(/^http:\/\/127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\): is the receiver running\? \(after 2 tries\)$/);
    expect(reasons.slow).toMatch(/^no answer from http:\/\/127\.0\.0\.1:\d+ within 1\.5 s \(after 2 tries\)$/);
    expect((await s.api('GET', '/api/alerts?status=undelivered')).body.alerts).toHaveLength(2);
    expect((await s.api('GET', '/api/alerts?status=bogus')).status).toBe(400);

    const page = (await s.api('GET', '/')).body as string;
    expect(page).toContain('<strong>2 alerts were not delivered.</strong>');
    expect(page).toMatch(new RegExp(`<tr data-alert-id="\\d+"><td>[^<]+ UTC</td><td>chat</td><td><a href="/runs/${run.id}">Sync loyalty failed \\(run #${run.id}\\)</a></td><td>http://127\\.0\\.0\\.1:\\d+ refused the connection`));

    const undelivered = log.lines.filter((l) => l.event === 'alert_undelivered');
    expect(undelivered.map((l) => l.destination).sort()).toEqual([expect.stringMatching(/^chat \(slack, http:\/\/127\.0\.0\.1:\d+\)$/), expect.stringMatching(/^slow \(webhook, http:\/\/127\.0\.0\.1:\d+\)$/)]);
    for (const text of [log.text(), JSON.stringify(alerts), page]) expect(text).not.toContain('secret-key');
  });
});
