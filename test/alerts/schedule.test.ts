// Missed schedules, with a clock the test moves: a sync whose due tick passed with no run started
// within twice its interval, a run holding the sync past that, a sync that never ran, and a schedule
// added while the service runs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkSchedule } from '../../src/alerts/index.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { centerOn } from './helpers.js';

const utc = (hhmmss: string) => Date.parse(`2026-03-02T${hhmmss}Z`);

describe('checkSchedule', () => {
  it('is missed once no run started within twice the interval after the first tick after the last start', () => {
    const since = new Date(utc('10:00:30'));
    expect(checkSchedule('*/5 * * * *', since, new Date(utc('10:14:59')))).toEqual({ missed: false, due: new Date(utc('10:05:00')), deadline: new Date(utc('10:15:00')) });
    expect(checkSchedule('*/5 * * * *', since, new Date(utc('10:15:00'))).missed).toBe(true);
  });

  it('gives a schedule of seconds at least a minute, and one that never fires again is never missed', () => {
    const since = new Date(utc('10:00:00'));
    expect(checkSchedule('* * * * * *', since, new Date(utc('10:00:59'))).missed).toBe(false);
    expect(checkSchedule('* * * * * *', since, new Date(utc('10:01:01'))).missed).toBe(true);
    expect(checkSchedule('0 0 0 1 1 * 2020', since, new Date(utc('23:00:00')))).toEqual({ missed: false, due: null, deadline: null });
  });
});

describe('missedSchedule alerts, with a clock the test moves', () => {
  let receiver: Receiver;
  let dir: string;
  beforeAll(async () => {
    receiver = await startReceiver();
    dir = mkdtempSync(join(tmpdir(), 'as-alert-schedule-'));
  });
  afterAll(async () => {
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(lateSchedule?: string): string {
    const sync = (name: string, schedule?: string) => ({ name, source: 'w', model: 'select 1 as id', primaryKey: 'id', audience: { id: '1' }, mapping: { EXTERN_ID: 'id' }, ...(schedule ? { schedule } : {}) });
    const path = join(dir, 'audience-sync.yml');
    writeFileSync(
      path,
      stringify({
        version: 1,
        state: { url: `sqlite://${join(dir, 'state.db')}` },
        meta: { accessToken: 't', adAccountId: 'act_1', graphUrl: 'http://127.0.0.1:9' },
        sources: { w: { type: 'duckdb', path: ':memory:' } },
        syncs: [sync('loyalty', '*/5 * * * *'), sync('fresh', '*/5 * * * *'), sync('late', lateSchedule)],
        alerts: { ops: { type: 'webhook', url: `${receiver.url}/hooks/ops`, when: { missedSchedule: true } } },
      }),
    );
    return path;
  }

  it('fires after the deadline, ends when a run starts, fires again for a run held too long; never-run and newly scheduled syncs get their own first tick', async () => {
    const clock = { t: utc('10:00:30') };
    const configPath = writeConfig();
    const t = await centerOn(configPath, {}, { now: () => clock.t });
    const { center, state } = t;
    const check = async (at: string) => {
      clock.t = utc(at);
      await center.checkSchedules();
      await center.idle();
      return receiver.received.map((r) => r.body);
    };
    try {
      await state.finishRun(await state.startRun('loyalty', 'schedule'), { status: 'success', counts: {} });
      const late = await state.startRun('late', 'cli');
      await state.finishRun(late, { status: 'success', counts: {} });

      expect(await check('10:00:30')).toEqual([]); // "fresh" never ran: watched from now on
      expect(await check('10:14:59')).toEqual([]);

      const missed = await check('10:15:00');
      expect(missed.map((b) => b.sync).sort()).toEqual(['fresh', 'loyalty']);
      const loyalty = missed.find((b) => b.sync === 'loyalty');
      expect(loyalty).toMatchObject({ kind: 'firing', condition: 'missedSchedule', title: 'Sync loyalty missed its schedule: no run started since the tick due at 2026-03-02T10:05:00.000Z', run: { id: 1 } });
      expect(loyalty.reason).toMatch(/wanted a run by 2026-03-02T10:15:00\.000Z .*Check that `audience-sync serve`/);
      expect(await check('10:20:00')).toHaveLength(2); // one alert per incident

      // A run starts: the incident is over, even while the run is still going.
      const running = await state.startRun('loyalty', 'schedule');
      const back = (await check('10:21:00')).slice(2);
      expect(back).toMatchObject([{ kind: 'resolved', sync: 'loyalty', title: `Sync loyalty runs on schedule again (run #${running} started 2026-03-02T10:20:00.000Z)` }]);

      // Still going 15 minutes later: it holds the sync past its next deadline.
      const held = (await check('10:35:00')).slice(3);
      expect(held).toHaveLength(1);
      expect(held[0]).toMatchObject({ kind: 'firing', sync: 'loyalty' });
      expect(held[0].reason).toMatch(new RegExp(`run #${running}, started 2026-03-02T10:20:00.000Z, is still going: it holds the sync's lock`));

      // A schedule added to the config while the process runs waits for its own first tick.
      writeConfig('*/5 * * * *');
      expect(await check('10:36:00')).toHaveLength(4);
      const added = (await check('10:51:00')).slice(4);
      expect(added).toMatchObject([{ kind: 'firing', sync: 'late', title: 'Sync late missed its schedule: no run started since the tick due at 2026-03-02T10:40:00.000Z' }]);
    } finally {
      await t.close();
    }
  });
});
