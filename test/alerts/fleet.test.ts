// Alerts from the worker fleet: two workers and the scheduler on one PostgreSQL state, running the
// same failing sync in turns. Each worker checks the sync after its runs; the receiver gets one
// alert for the incident, and one "recovered" when a run succeeds again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { startFleetScheduler, startWorker, type FleetScheduler, type FleetWorker, type WorkerEvent } from '../../src/fleet/index.js';
import { openStateStore } from '../../src/state/index.js';
import { createAudience, createDatabase, waitFor } from '../fleet/helpers.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { customers, writeCustomers } from '../support/world.js';
import { capturingLogger, FAST_DELIVERY } from './helpers.js';

let server: TestPostgres;
let emulator: RunningEmulator;
let receiver: Receiver;
let dir: string;

beforeAll(async () => {
  [server, emulator, receiver] = await Promise.all([startPostgres(), startEmulator({ port: 0 }), startReceiver()]);
  dir = mkdtempSync(join(tmpdir(), 'as-alert-fleet-'));
});
afterAll(async () => {
  await receiver?.close();
  await emulator?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('alerts from the worker fleet', () => {
  it('two workers on one PostgreSQL state, the same sync failing on both: one alert, then one "recovered"', async () => {
    const databaseUrl = await createDatabase(server.url, 'alerts_fleet');
    const audience = await createAudience(emulator.url, 'fleet alerts');
    await writeCustomers(join(dir, 'warehouse.duckdb'), customers(5));
    const configPath = join(dir, 'audience-sync.yml');
    writeFileSync(
      configPath,
      stringify({
        version: 1,
        state: { url: databaseUrl },
        meta: { accessToken: DEFAULT_TOKEN, adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
        fleet: { maxConcurrentPerAdAccount: 2, jobTimeoutSeconds: 30, pollIntervalSeconds: 0.5 },
        sources: { w: { type: 'duckdb', path: './warehouse.duckdb' } },
        syncs: [{ name: 'loyalty', source: 'w', model: 'select * from customers', primaryKey: 'user_id', audience: { id: audience }, mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' }, schedule: '* * * * * *' }],
        alerts: { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { failed: true } } },
      }),
    );
    const config = loadConfig(configPath, {});
    emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');

    const finished: Array<Array<Extract<WorkerEvent, { type: 'run_finished' }>>> = [[], []];
    const log = capturingLogger();
    const workers: FleetWorker[] = [];
    let scheduler: FleetScheduler | undefined;
    try {
      for (const i of [0, 1]) {
        workers.push(
          await startWorker(config, {
            concurrency: 1,
            alerts: { logger: log.logger, delivery: FAST_DELIVERY, checkMs: 0 },
            onEvent: (e) => {
              if (e.type === 'run_finished') finished[i]!.push(e);
            },
          }),
        );
      }
      scheduler = await startFleetScheduler(config, { alerts: { logger: log.logger, delivery: FAST_DELIVERY, checkMs: 0, tokenCheckMs: 0 } });

      // Both workers ran the failing sync, and checked it after their runs.
      await waitFor(() => finished.every((runs) => runs.filter((r) => r.status === 'failed').length >= 2), 60_000, () => `runs per worker: ${finished.map((r) => r.length).join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
      const firing = receiver.received.map((r) => r.body);
      expect(firing).toHaveLength(1);
      expect(firing[0]).toMatchObject({ kind: 'firing', condition: 'failed', sync: 'loyalty', run: { trigger: 'worker' } });

      emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
      await receiver.waitFor(2, 30_000);
      const failedRuns = finished.flat().filter((r) => r.status === 'failed').length;
      await waitFor(() => finished.flat().filter((r) => r.status === 'success').length >= 3, 30_000, () => 'three successful runs');
      expect(failedRuns).toBeGreaterThanOrEqual(4);
      expect(receiver.received).toHaveLength(2);
      expect(receiver.received[1]!.body).toMatchObject({ kind: 'resolved', condition: 'failed', title: expect.stringMatching(/^Sync loyalty recovered: run #\d+ succeeded$/) });
    } finally {
      await Promise.all(workers.map((w) => w.stop({ timeoutMs: 20_000 })));
      await scheduler?.stop();
    }
    const state = await openStateStore(databaseUrl);
    try {
      expect((await state.listAlerts()).map((a) => [a.kind, a.status])).toEqual([
        ['resolved', 'delivered'],
        ['firing', 'delivered'],
      ]);
    } finally {
      await state.close();
    }
  });
});
