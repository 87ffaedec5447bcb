// Alerts from real runs (DuckDB warehouse, Graph API emulator, SQLite state) to a receiver on
// 127.0.0.1: one alert per incident, "recovered" when it is over, and each condition.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tokenStatusOf } from '../../src/alerts/index.js';
import { connectionInfo, saveConnectedToken } from '../../src/app/tokens.js';
import { DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { GraphClient } from '../../src/meta/index.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { createWorld, customer, customers, type World, type WorldOptions } from '../support/world.js';
import { addToConfig, centerOn, type TestCenter } from './helpers.js';

let receiver: Receiver;
let world: World | undefined;
let t: TestCenter | undefined;

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
afterEach(async () => {
  await t?.close();
  await world?.close();
  t = undefined;
  world = undefined;
  receiver.received.length = 0;
  receiver.respond([]);
});

/** A world with `alerts:` set, its first run done with `rows` customers, and an AlertCenter on it. */
async function setup(alerts: Record<string, unknown>, opts: { world?: WorldOptions; rows?: number; center?: Parameters<typeof centerOn>[2] } = {}) {
  world = await createWorld(opts.world);
  addToConfig(world.configPath, { alerts, server: { publicUrl: 'https://sync.example.com' } });
  await world.setCustomers(customers(opts.rows ?? 10));
  t = await centerOn(world.configPath, world.env, opts.center);
  return { w: world, c: t };
}

/** Runs the sync, then lets the center check it and send what it must. */
async function runAndCheck() {
  const summary = await world!.run();
  t!.center.afterRun('loyalty');
  await t!.center.idle();
  return summary;
}

const bodies = () => receiver.received.map((r) => r.body);

describe('one alert per incident', () => {
  it('three failed runs send one alert per destination; the success after them sends "recovered"', async () => {
    const { w, c } = await setup({
      ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true } },
      chat: { type: 'slack', url: `${receiver.url}/services/T0/B0/secret-key`, when: { failed: true } },
    });
    expect((await runAndCheck()).status).toBe('success');
    expect(receiver.received).toHaveLength(0);

    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    const failed = [await runAndCheck(), await runAndCheck(), await runAndCheck()];
    expect(failed.map((s) => s.status)).toEqual(['failed', 'failed', 'failed']);
    expect(receiver.received.map((r) => r.path).sort()).toEqual(['/hooks/ops', '/services/T0/B0/secret-key']);
    const firing = receiver.received.find((r) => r.path === '/hooks/ops')!.body;
    expect(firing).toMatchObject({
      source: 'audience-sync',
      kind: 'firing',
      condition: 'failed',
      destination: 'ops',
      title: `Sync loyalty failed (run #${failed[0]!.runId})`,
      sync: 'loyalty',
      run: { id: failed[0]!.runId, status: 'failed', trigger: 'cli', url: `https://sync.example.com/runs/${failed[0]!.runId}` },
      counts: { extracted: 0, added: 0, failed: 0 },
      dashboardUrl: 'https://sync.example.com/syncs/loyalty',
    });
    expect(firing.reason).toMatch(/access token rejected/);
    const slack = receiver.received.find((r) => r.path.startsWith('/services'))!.body;
    expect(slack.text).toBe(`:rotating_light: Sync loyalty failed (run #${failed[0]!.runId})`);

    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
    const ok = await runAndCheck();
    expect(ok.status).toBe('success');
    expect(receiver.received).toHaveLength(4);
    const recovered = bodies().slice(2).find((b) => b.source === 'audience-sync');
    expect(recovered).toMatchObject({ kind: 'resolved', condition: 'failed', title: `Sync loyalty recovered: run #${ok.runId} succeeded`, reason: null, run: { id: ok.runId, status: 'success' } });
    expect((await c.state.listAlerts()).map((a) => [a.destination, a.kind, a.status]).sort()).toEqual([
      ['chat', 'firing', 'delivered'],
      ['chat', 'resolved', 'delivered'],
      ['ops', 'firing', 'delivered'],
      ['ops', 'resolved', 'delivered'],
    ]);

    // Nothing more to say while it keeps succeeding.
    await runAndCheck();
    expect(receiver.received).toHaveLength(4);
  });

  it('a destination hears only about the syncs and conditions it asked for', async () => {
    const { w } = await setup({
      other: { type: 'webhook', url: `${receiver.url}/hooks/other`, syncs: ['loyalty'], when: { partial: true } },
    });
    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    expect((await runAndCheck()).status).toBe('failed');
    expect(receiver.received).toHaveLength(0);
  });
});

describe('conditions', () => {
  it('refused: a safeguard refusing a run alerts as refused (not failed), and a run it lets through ends it', async () => {
    const { w } = await setup({ ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true, refused: true } } });
    await runAndCheck();
    await w.setCustomers([]);
    const refused = await runAndCheck();
    expect(refused.error).toMatch(/^refused: the model returned no rows/);
    expect(bodies()).toHaveLength(1);
    expect(bodies()[0]).toMatchObject({
      kind: 'firing',
      condition: 'refused',
      title: `Sync loyalty: a safeguard refused run #${refused.runId}, nothing was sent`,
      counts: { plannedDeleted: 10, added: 0, deleted: 0 },
    });
    expect(bodies()[0].reason).toMatch(/^refused: the model returned no rows/);

    await w.setCustomers(customers(10));
    const ok = await runAndCheck();
    expect(bodies()).toHaveLength(2);
    expect(bodies()[1]).toMatchObject({ kind: 'resolved', condition: 'refused', title: `Sync loyalty: no safeguard refused run #${ok.runId}; it succeeded` });
  });

  it('partial and records given up: both start with the run that had invalid rows, and end once they are sent', async () => {
    const { w, c } = await setup(
      { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { partial: true, givenUp: true } } },
      { world: { sync: { maxAttempts: 1, batchRows: 5 } }, rows: 0 },
    );
    await w.setCustomers(customers(10));
    w.emulator.control.setFlags({ invalidCells: ['u0', 'u1'] });
    const partial = await runAndCheck();
    expect(partial.status).toBe('partial');
    const byCondition = Object.fromEntries(bodies().map((b) => [b.condition, b]));
    expect(Object.keys(byCondition).sort()).toEqual(['givenUp', 'partial']);
    expect(byCondition.partial).toMatchObject({ kind: 'firing', title: expect.stringMatching(/^Sync loyalty partly failed: run #\d+ could not deliver \d+ records?$/) });
    expect(byCondition.givenUp).toMatchObject({ kind: 'firing', title: 'Sync loyalty: 2 records are given up and no longer sent', counts: { givenUp: 2 } });
    expect(byCondition.givenUp.reason).toMatch(/most common reason \(2 of 2\).*audience-sync retry loyalty/);

    w.emulator.control.setFlags({ invalidCells: [] });
    await c.state.requeueGivenUp('loyalty', { maxAttempts: 1 });
    expect((await runAndCheck()).status).toBe('success');
    expect(bodies().slice(2).map((b) => [b.condition, b.kind]).sort()).toEqual([
      ['givenUp', 'resolved'],
      ['partial', 'resolved'],
    ]);
  });

  it("matchCoverageDrop: a key's coverage falling more than X points below its usual share", async () => {
    const { w } = await setup({ ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { matchCoverageDrop: 20 } } }, { rows: 20 });
    await runAndCheck();
    await runAndCheck();
    await runAndCheck();
    expect(bodies()).toHaveLength(0);
    // 8 of 20 customers lose their email: EMAIL coverage 100% → 60%, 40 points (above the refusal's half).
    await w.setCustomers(customers(20).map((c, i) => (i < 8 ? { ...c, email: null } : c)));
    const dropped = await runAndCheck();
    expect(dropped.status).toBe('success');
    expect(bodies()).toHaveLength(1);
    expect(bodies()[0]).toMatchObject({ kind: 'firing', condition: 'matchCoverageDrop', title: 'Sync loyalty: EMAIL coverage fell 40.0 points, to 60.0% (usually 100.0%)', run: { id: dropped.runId } });
    expect(bodies()[0].reason).toMatch(/EMAIL coverage 60\.0%, usually 100\.0%/);
  });

  it('tokenExpiresWithinDays: a connected token close to its expiry, then one Meta rejects, then a renewed one', async () => {
    let now = Date.parse('2026-05-01T00:00:00Z');
    // Today's single token as serve reads it: /me for validity, the connected token's expiry.
    const { w, c } = await setup(
      { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { tokenExpiresWithinDays: 7 } } },
      { center: { now: () => now, tokenStatus: () => connectedTokenStatus() } },
    );
    const graph = new GraphClient({ accessToken: DEFAULT_TOKEN, graphUrl: w.emulator.url, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
    // What connectionStatus reports for a connected default connection: /me for validity, the stored expiry.
    const connectedTokenStatus = async () => {
      const info = await connectionInfo(t!.state);
      const expiresAt = info?.expiresAt ?? null;
      try {
        await graph.me();
        return tokenStatusOf([{ name: 'default', tokenSource: 'connected', state: 'ok', valid: true, expiresAt, adAccounts: [], syncs: [] }]);
      } catch (e) {
        return tokenStatusOf([{ name: 'default', tokenSource: 'connected', state: 'expired', valid: false, expiresAt, error: (e as Error).message, adAccounts: [], syncs: [] }]);
      }
    };
    const key = randomBytes(32);
    const check = async () => {
      await c.center.checkTokens();
      await c.center.idle();
    };

    await saveConnectedToken(c.state, key, { accessToken: DEFAULT_TOKEN, expiresAt: new Date(now + 30 * 86_400_000), userId: '1' });
    await check();
    expect(bodies()).toHaveLength(0);

    now += 26 * 86_400_000; // 4 days left
    await check();
    expect(bodies()).toHaveLength(1);
    expect(bodies()[0]).toMatchObject({ kind: 'firing', condition: 'tokenExpiry', connection: 'default', sync: null, title: 'The Meta token of connection "default" expires in 4 days (2026-05-31T00:00:00.000Z)' });

    // Still the same incident when Meta then rejects it.
    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    await check();
    expect(bodies()).toHaveLength(1);

    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
    await saveConnectedToken(c.state, key, { accessToken: DEFAULT_TOKEN, expiresAt: new Date(now + 60 * 86_400_000), userId: '1' });
    await check();
    expect(bodies()).toHaveLength(2);
    expect(bodies()[1]).toMatchObject({ kind: 'resolved', condition: 'tokenExpiry', title: 'The Meta token of connection "default" is valid until 2026-07-26T00:00:00.000Z: more than 7 days left' });

    // A token Meta rejects outright is an incident of its own.
    w.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    await check();
    expect(bodies()[2]).toMatchObject({ kind: 'firing', title: 'The Meta token of connection "default" is no longer accepted by Meta' });
    expect(bodies()[2].reason).toMatch(/access token rejected/);
  });
});

describe('nothing personal, no secrets', () => {
  it("a model error that would quote an e-mail, and an error holding the token: neither reaches the receiver", async () => {
    const { c } = await setup(
      { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true } }, chat: { type: 'slack', url: `${receiver.url}/services/T0/B0/k`, when: { failed: true } } },
      // DuckDB fails converting the first e-mail and quotes it in its error.
      { world: { model: 'select user_id, cast(email as integer) as email, phone from customers', mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' } } },
    );
    await world!.setCustomers([customer(0)]);
    const failed = await runAndCheck();
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/<redacted>/);
    expect(receiver.received).toHaveLength(2);

    // A run whose error holds the token and an address (as a state written elsewhere might).
    const id = await c.state.startRun('loyalty', 'worker');
    await c.state.finishRun(id, { status: 'success', counts: {} });
    c.center.afterRun('loyalty');
    await c.center.idle();
    const leaked = await c.state.startRun('loyalty', 'worker');
    await c.state.finishRun(leaked, { status: 'failed', counts: {}, error: `GET /me?access_token=${DEFAULT_TOKEN} failed for user0@example.com` });
    c.center.afterRun('loyalty');
    await c.center.idle();

    expect(receiver.received).toHaveLength(6);
    const all = receiver.received.map((r) => r.text).join('\n');
    expect(all).toContain('<redacted>');
    expect(all).not.toMatch(/user0@example\.com/i);
    expect(all).not.toContain(DEFAULT_TOKEN);
    expect(all).not.toContain('secret');
  });
});
