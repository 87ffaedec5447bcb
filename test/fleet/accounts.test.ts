// The per-ad-account cap with two ad accounts: a worker with four lanes and a cap of one run per
// account runs a sync of each account at the same time, but never two syncs of one account (the
// second goes back to the queue until the first is done). Real PostgreSQL, emulator, DuckDB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { fleetSettings, openRunQueue, startWorker, type FleetWorker, type WorkerEvent } from '../../src/fleet/index.js';
import { openStateStore, type RunRecord } from '../../src/state/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { ACME, GLOBEX, twoBusinesses, type TwoBusinesses } from '../support/two-businesses.js';
import { customers } from '../support/world.js';
import { createDatabase, waitFor } from './helpers.js';

let server: TestPostgres;
let databaseUrl: string;
let b: TwoBusinesses;
let worker: FleetWorker | undefined;

beforeAll(async () => {
  server = await startPostgres();
  databaseUrl = await createDatabase(server.url, 'accounts');
  b = await twoBusinesses({
    top: { state: { url: databaseUrl }, fleet: { maxConcurrentPerAdAccount: 1, jobTimeoutSeconds: 60, pollIntervalSeconds: 0.5 } },
    sync: { batchRows: 10 },
  });
  await b.setCustomers(customers(60));
  // Every upload takes a while, so runs last long enough to overlap.
  b.emulator.control.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 120, paths: '/users$' });
}, 120_000);

afterAll(async () => {
  await worker?.stop({ timeoutMs: 10_000 });
  await b?.close();
  await server?.stop();
});

const overlap = (a: RunRecord, c: RunRecord) => a.startedAt.getTime() < c.finishedAt!.getTime() && c.startedAt.getTime() < a.finishedAt!.getTime();

describe("the cap applies per sync's own ad account", () => {
  it('runs syncs of different accounts at once, and syncs of one account one at a time', async () => {
    const config = loadConfig(b.configPath, b.env);
    expect(fleetSettings(config).adAccounts).toEqual({ 'acme-loyal': ACME.account, 'acme-recent': ACME.account, 'globex-loyal': GLOBEX.account, 'globex-recent': GLOBEX.account });
    const queue = await openRunQueue(fleetSettings(config));
    try {
      for (const sync of [...b.syncs.acme, ...b.syncs.globex]) expect(await queue.enqueue(sync, 'test')).toBe(true);
    } finally {
      await queue.stop();
    }
    const events: WorkerEvent[] = [];
    worker = await startWorker(config, { concurrency: 4, onEvent: (e) => events.push(e) });
    const finished = () => events.filter((e) => e.type === 'run_finished');
    await waitFor(() => finished().length === 4, 60_000, () => JSON.stringify(events.filter((e) => e.type !== 'run_deferred')));
    expect(finished().map((e) => (e.type === 'run_finished' ? e.status : '')).sort()).toEqual(['success', 'success', 'success', 'success']);
    // Four lanes took the four jobs; the second sync of each account went back to the queue.
    expect(events.some((e) => e.type === 'run_deferred' && e.adAccountId === ACME.account)).toBe(true);
    expect(events.some((e) => e.type === 'run_deferred' && e.adAccountId === GLOBEX.account)).toBe(true);

    const state = await openStateStore(databaseUrl);
    try {
      const runs = async (names: string[]) => (await Promise.all(names.map((n) => state.listRuns({ sync: n, limit: 10 })))).flat();
      const [acme, globex] = [await runs(b.syncs.acme), await runs(b.syncs.globex)];
      expect([acme.length, globex.length]).toEqual([2, 2]);
      expect(overlap(acme[0]!, acme[1]!), 'two runs of acme at once').toBe(false);
      expect(overlap(globex[0]!, globex[1]!), 'two runs of globex at once').toBe(false);
      expect(acme.some((a) => globex.some((g) => overlap(a, g))), 'a run of acme and one of globex at the same time').toBe(true);
    } finally {
      await state.close();
    }
    // The Graph requests agree: at most one of each account at once, both accounts at once overall.
    expect(b.emulator.control.peakConcurrency(ACME.account)).toBe(1);
    expect(b.emulator.control.peakConcurrency(GLOBEX.account)).toBe(1);
    expect(b.emulator.control.peakConcurrency()).toBe(2);
    for (const sync of [...b.syncs.acme, ...b.syncs.globex]) expect(b.members(sync)).toHaveLength(60);
  }, 120_000);
});
