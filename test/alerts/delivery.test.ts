// Sending one alert over real HTTP to a receiver on 127.0.0.1: retries with backoff on 5xx, a
// receiver that is down or never answers, a final 4xx, and the two body formats (JSON, Slack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliver, describeDestination, slackBody, webhookBody, type AlertMessage } from '../../src/alerts/index.js';
import { refusedUrl, startReceiver, type Receiver } from '../support/receiver.js';

const message: AlertMessage = {
  kind: 'firing',
  condition: 'failed',
  destination: 'ops',
  title: 'Sync loyalty failed (run #12)',
  reason: "Binder Error: Could not convert string '<redacted>' to INT32 & more",
  sync: 'loyalty',
  connection: null,
  run: { id: 12, status: 'failed', trigger: 'schedule', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:02.000Z', url: 'https://sync.example.com/runs/12' },
  counts: { extracted: 10, added: 0, deleted: 0, failed: 0 },
  dashboardUrl: 'https://sync.example.com/syncs/loyalty',
  at: '2026-01-01T00:00:03.000Z',
};

const fast = { attempts: 3, backoffMs: 150, timeoutMs: 1_000 };

let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

describe('alert delivery', () => {
  it('retries a 500 with backoff and delivers once on the 200 that follows', async () => {
    receiver.received.length = 0;
    receiver.respond([500]);
    const result = await deliver({ name: 'ops', type: 'webhook', url: `${receiver.url}/hooks/a` }, message, fast);
    expect(result).toEqual({ delivered: true, attempts: 2 });
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.at - receiver.received[0]!.at).toBeGreaterThanOrEqual(140);
    expect(receiver.received.map((r) => r.body)).toEqual([webhookBody(message), webhookBody(message)]);
    expect(receiver.received[0]!.headers['content-type']).toBe('application/json');
  });

  it('gives up after the last try when the receiver keeps failing, saying why without the secret path', async () => {
    receiver.received.length = 0;
    receiver.respond([503, 503, 503]);
    const result = await deliver({ name: 'ops', type: 'slack', url: `${receiver.url}/services/T0/B0/secret-key` }, message, fast);
    expect(result.delivered).toBe(false);
    expect(result.attempts).toBe(3);
    expect(result.error).toMatch(/^http:\/\/127\.0\.0\.1:\d+ answered HTTP 503: error 503 at \/<redacted> \(after 3 tries\)$/);
    expect(result.error).not.toContain('secret-key');
    expect(receiver.received).toHaveLength(3);
  });

  it('a receiver that is down: connection refused, tried with backoff, then reported', async () => {
    const url = await refusedUrl('/services/T0/B0/secret-key');
    const started = Date.now();
    const result = await deliver({ name: 'ops', type: 'slack', url }, message, fast);
    expect(result).toMatchObject({ delivered: false, attempts: 3 });
    expect(result.error).toMatch(/refused the connection \(ECONNREFUSED\).*\(after 3 tries\)/);
    expect(result.error).not.toContain('secret-key');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150 + 300 - 20);
    expect(describeDestination({ name: 'ops', type: 'slack', url })).toMatch(/^ops \(slack, http:\/\/127\.0\.0\.1:\d+\)$/);
  });

  it('a receiver that never answers is given up on after the timeout', async () => {
    receiver.received.length = 0;
    receiver.respond(['hang', 'hang']);
    const started = Date.now();
    const result = await deliver({ name: 'ops', type: 'webhook', url: `${receiver.url}/slow` }, message, { attempts: 2, backoffMs: 10, timeoutMs: 300 });
    expect(result).toMatchObject({ delivered: false, attempts: 2 });
    expect(result.error).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ within 0\.3 s \(after 2 tries\)/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('does not retry a 404: the webhook is gone, and the error says what to do', async () => {
    receiver.received.length = 0;
    receiver.respond([404]);
    const result = await deliver({ name: 'ops', type: 'slack', url: `${receiver.url}/services/x` }, message, fast);
    expect(result).toMatchObject({ delivered: false, attempts: 1 });
    expect(result.error).toMatch(/HTTP 404.*create a new one and update the config/);
    expect(receiver.received).toHaveLength(1);
  });

  it("sends Slack's incoming-webhook format: a fallback text and blocks, markup escaped", async () => {
    receiver.received.length = 0;
    receiver.respond([]);
    expect(await deliver({ name: 'ops', type: 'slack', url: `${receiver.url}/services/T0/B0/k` }, message, fast)).toEqual({ delivered: true, attempts: 1 });
    const body = receiver.received[0]!.body;
    expect(body).toEqual(slackBody(message));
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toBe(':rotating_light: Sync loyalty failed (run #12)');
    expect(body.blocks.map((b: { type: string }) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    expect(body.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Sync loyalty failed (run #12)', emoji: true } });
    expect(body.blocks[1].text).toEqual({ type: 'mrkdwn', text: "Binder Error: Could not convert string '&lt;redacted&gt;' to INT32 &amp; more" });
    expect(body.blocks[2].fields[0]).toEqual({ type: 'mrkdwn', text: '*extracted*\n10' });
    expect(body.blocks[3].elements[0].text).toBe('sync *loyalty* · <https://sync.example.com/runs/12|run #12> (failed) · failed');
  });
});
