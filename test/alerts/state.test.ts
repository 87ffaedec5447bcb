// Alert incidents in the state store, on SQLite and PostgreSQL: a change of state is claimed by
// exactly one of several stores (processes) racing for it, and its alert is recorded with it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateStore, type StateStore } from '../../src/state/index.js';
import { createDatabase } from '../fleet/helpers.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let dir: string;
let server: TestPostgres;
let databases = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-alert-state-'));
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const backends: Array<[string, () => Promise<string>]> = [
  ['SQLite', async () => `sqlite://${join(dir, `s${++databases}.db`)}`],
  ['PostgreSQL', () => createDatabase(server.url, `alerts_${++databases}`)],
];

const key = { destination: 'ops', subject: 'loyalty', condition: 'failed' };

describe.each(backends)('alert incidents on %s', (kind, freshUrl) => {
  it('moves an incident only from the state it is in, and records the alert of the move', async () => {
    const clock = { now: 1_000 };
    const store = await openStateStore(await freshUrl(), { now: () => clock.now });
    try {
      expect(await store.getIncident(key)).toBeUndefined();
      const opened = await store.claimIncident(key, undefined, { state: 'active', runId: 7 }, { kind: 'firing', title: 'loyalty failed', runId: 7 });
      expect(opened.claimed).toBe(true);
      expect(opened.alertId).toBeGreaterThan(0);
      expect(await store.getIncident(key)).toEqual({ ...key, state: 'active', since: new Date(1_000), runId: 7 });

      // Another process that saw the same "no incident yet" loses; so does one that thinks it is over.
      expect(await store.claimIncident(key, undefined, { state: 'active', runId: 7 }, { kind: 'firing', title: 'loyalty failed', runId: 7 })).toEqual({ claimed: false });
      expect(await store.claimIncident(key, 'ok', { state: 'active' }, { kind: 'firing', title: 'x', runId: null })).toEqual({ claimed: false });

      clock.now = 2_000;
      const resolved = await store.claimIncident(key, 'active', { state: 'ok', runId: 9 }, { kind: 'resolved', title: 'loyalty recovered', runId: 9 });
      expect(resolved.claimed).toBe(true);
      expect(await store.getIncident(key)).toMatchObject({ state: 'ok', since: new Date(2_000), runId: 9 });
      // A process that read the history before run 9 (its newest run is 8) is too late to reopen it.
      expect(await store.claimIncident(key, 'ok', { state: 'active', runId: 8 }, { kind: 'firing', title: 'stale', runId: 8 })).toEqual({ claimed: false });

      // A move without an alert records the incident only.
      const other = { ...key, condition: 'missedSchedule' };
      expect(await store.claimIncident(other, undefined, { state: 'ok' })).toEqual({ claimed: true });

      clock.now = 3_000;
      await store.finishAlert(opened.alertId!, { status: 'failed', attempts: 4, error: 'connection refused (ECONNREFUSED)' });
      await store.finishAlert(resolved.alertId!, { status: 'delivered', attempts: 1 });
      const all = await store.listAlerts();
      expect(all.map((a) => [a.id, a.kind, a.status])).toEqual([
        [resolved.alertId, 'resolved', 'delivered'],
        [opened.alertId, 'firing', 'failed'],
      ]);
      expect(await store.listAlerts({ status: 'failed' })).toEqual([
        { id: opened.alertId, ...key, kind: 'firing', title: 'loyalty failed', runId: 7, createdAt: new Date(1_000), status: 'failed', attempts: 4, error: 'connection refused (ECONNREFUSED)', finishedAt: new Date(3_000) },
      ]);
    } finally {
      await store.close();
    }
  });

  // On PostgreSQL each store is a process of the fleet with its own connections. A SQLite state is
  // one process's (workers need PostgreSQL), whose concurrent evaluations share one store.
  it('of several stores (or evaluations) racing for the same change, exactly one claims it', async () => {
    const url = await freshUrl();
    const stores: StateStore[] = [];
    const one = await openStateStore(url);
    for (let i = 0; i < 6; i++) stores.push(kind === 'PostgreSQL' && i > 0 ? await openStateStore(url) : one);
    try {
      const draft = { kind: 'firing', title: 'loyalty failed', runId: 1 } as const;
      const opened = await Promise.all(stores.map((s) => s.claimIncident(key, undefined, { state: 'active', runId: 1 }, draft)));
      expect(opened.filter((r) => r.claimed)).toHaveLength(1);
      const closed = await Promise.all(stores.map((s) => s.claimIncident(key, 'active', { state: 'ok', runId: 2 }, { kind: 'resolved', title: 'recovered', runId: 2 })));
      expect(closed.filter((r) => r.claimed)).toHaveLength(1);
      expect((await stores[0]!.listAlerts()).map((a) => a.kind)).toEqual(['resolved', 'firing']);
    } finally {
      await Promise.all([...new Set(stores)].map((s) => s.close()));
    }
  });
});
