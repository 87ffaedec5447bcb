import { describe, expect, it } from 'vitest';
import { SyncBusyError, type RunSummary } from '../../src/engine/index.js';
import { missedTick, nextTick, Scheduler, SyncRunner, type RunRequest, type RunStarter, type SchedulerClock, type SchedulerEvent, type StartedRun } from '../../src/scheduler/index.js';

/** Timers fire only when the test moves time forward: no real waiting. */
class FakeClock implements SchedulerClock {
  private timers: Array<{ id: number; at: number; fn: () => void }> = [];
  private seq = 0;
  constructor(public t: number) {}
  now() {
    return this.t;
  }
  setTimer(fn: () => void, ms: number) {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  }
  clearTimer(handle: unknown) {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  get pending() {
    return this.timers.length;
  }
  /** Moves to `to`, firing every timer due on the way, in order. */
  advanceTo(to: number) {
    for (;;) {
      const due = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = to;
  }
}

/** Records starts; a run stays "running" until the test finishes it. */
class FakeRunner implements RunStarter {
  starts: Array<{ name: string; trigger: string; at: number }> = [];
  readonly runningNow = new Set<string>();
  /** Runs end as soon as they start. */
  instant = false;
  constructor(private readonly clock: FakeClock) {}
  isRunning(name: string) {
    return this.runningNow.has(name);
  }
  start(name: string, request: RunRequest): StartedRun {
    this.starts.push({ name, trigger: request.trigger, at: this.clock.now() });
    if (!this.instant) this.runningNow.add(name);
    return { runId: Promise.resolve(this.starts.length), finished: new Promise<RunSummary>(() => undefined) };
  }
  finish(name: string) {
    this.runningNow.delete(name);
  }
}

const at = (hhmm: string) => Date.parse(`2026-03-02T${hhmm}:00`); // local time, as croner reads patterns

function setup(syncs: Array<{ name: string; schedule?: string }>, opts: { now: string; lastRun?: Record<string, string> }) {
  const clock = new FakeClock(at(opts.now));
  const runner = new FakeRunner(clock);
  const events: SchedulerEvent[] = [];
  const scheduler = new Scheduler({
    syncs,
    runner,
    clock,
    lastRunStart: async (name) => (opts.lastRun?.[name] ? new Date(at(opts.lastRun[name])) : null),
    onEvent: (e) => events.push(e),
  });
  return { clock, runner, events, scheduler };
}

describe('scheduler (fake clock)', () => {
  it('follows a re-read config: a changed schedule is re-armed, a removed one stops, a new one starts', async () => {
    const { clock, runner, scheduler } = setup([{ name: 'a', schedule: '0 * * * *' }, { name: 'b', schedule: '0 * * * *' }], { now: '10:05' });
    runner.instant = true;
    await scheduler.start();
    scheduler.update([{ name: 'a', schedule: '*/20 * * * *' }, { name: 'b' }, { name: 'c', schedule: '30 * * * *' }]);
    expect(scheduler.nextRun('a')?.getTime()).toBe(at('10:20'));
    expect(scheduler.nextRun('b')).toBeNull();
    expect(scheduler.nextRun('c')?.getTime()).toBe(at('10:30'));
    expect(clock.pending).toBe(2);
    clock.advanceTo(at('11:00'));
    expect(runner.starts.map((s) => `${s.name}@${new Date(s.at).getHours()}:${String(new Date(s.at).getMinutes()).padStart(2, '0')}`)).toEqual(['a@10:20', 'c@10:30', 'a@10:40', 'a@11:00']);
    scheduler.update([{ name: 'a', schedule: '*/20 * * * *' }]);
    expect(clock.pending).toBe(1);
  });

  it('runs a sync on each tick of its cron schedule, and only syncs that have one', async () => {
    const { clock, runner, scheduler } = setup([{ name: 'a', schedule: '*/30 * * * *' }, { name: 'manual' }], { now: '10:05' });
    await scheduler.start();
    expect(runner.starts).toEqual([]);
    expect(scheduler.nextRun('a')?.getTime()).toBe(at('10:30'));
    expect(scheduler.nextRun('manual')).toBeNull();

    clock.advanceTo(at('10:29'));
    expect(runner.starts).toEqual([]);
    clock.advanceTo(at('10:30'));
    expect(runner.starts).toEqual([{ name: 'a', trigger: 'schedule', at: at('10:30') }]);
    expect(scheduler.nextRun('a')?.getTime()).toBe(at('11:00'));
    runner.finish('a');
    runner.instant = true;
    clock.advanceTo(at('12:00'));
    expect(runner.starts.map((s) => s.at)).toEqual([at('10:30'), at('11:00'), at('11:30'), at('12:00')]);
    scheduler.stop();
    expect(clock.pending).toBe(0);
  });

  it('never starts a second run of a sync that is still running: the tick is skipped', async () => {
    const { clock, runner, events, scheduler } = setup([{ name: 'a', schedule: '*/30 * * * *' }], { now: '10:05' });
    await scheduler.start();
    clock.advanceTo(at('10:30'));
    clock.advanceTo(at('11:00')); // still running
    expect(runner.starts).toHaveLength(1);
    expect(events.filter((e) => e.type === 'skipped').map((e) => e.at.getTime())).toEqual([at('11:00')]);
    runner.finish('a');
    clock.advanceTo(at('11:30'));
    expect(runner.starts).toHaveLength(2);
    scheduler.stop();
  });

  it('runs ticks missed while the service was down once at start', async () => {
    // Last run at 08:00; ticks at 08:30 … 10:00 were missed: one catch-up run, not five.
    const { clock, runner, scheduler } = setup([{ name: 'a', schedule: '*/30 * * * *' }, { name: 'b', schedule: '*/30 * * * *' }, { name: 'c', schedule: '*/30 * * * *' }], {
      now: '10:05',
      lastRun: { a: '08:00', b: '10:00' }, // b ran at its last tick; c never ran
    });
    await scheduler.start();
    expect(runner.starts).toEqual([{ name: 'a', trigger: 'schedule:catch-up', at: at('10:05') }]);
    runner.finish('a');
    clock.advanceTo(at('10:30'));
    expect(runner.starts.slice(1).map((s) => s.name).sort()).toEqual(['a', 'b', 'c']);
    scheduler.stop();
  });

  it('stop() disarms every timer', async () => {
    const { clock, runner, scheduler } = setup([{ name: 'a', schedule: '* * * * *' }], { now: '10:05' });
    await scheduler.start();
    scheduler.stop();
    clock.advanceTo(at('11:05'));
    expect(runner.starts).toEqual([]);
    expect(scheduler.nextRun('a')).toBeNull();
  });
});

describe('cron helpers', () => {
  it('nextTick is strictly after; missedTick needs a tick after the last run start', () => {
    expect(nextTick('0 * * * *', new Date(at('10:00')))?.getTime()).toBe(at('11:00'));
    expect(missedTick('0 * * * *', null, new Date(at('10:05')))).toBeNull();
    expect(missedTick('0 * * * *', new Date(at('10:00')), new Date(at('10:05')))).toBeNull();
    expect(missedTick('0 * * * *', new Date(at('09:59')), new Date(at('10:05')))?.getTime()).toBe(at('10:00'));
    expect(missedTick('0 * * * *', new Date(at('07:10')), new Date(at('10:00')))?.getTime()).toBe(at('10:00'));
  });
});

describe('SyncRunner', () => {
  function summary(name: string, runId: number): RunSummary {
    return { runId, sync: name, mode: 'mirror', status: 'success', startedAt: '', finishedAt: '', counts: {} as RunSummary['counts'], errorSamples: [], warnings: [], timings: { readModelMs: 0, planMs: 0, removeMs: 0, addMs: 0, commitMs: 0 } };
  }

  it('refuses a second run of a running sync, and frees it once finished', async () => {
    let release!: () => void;
    const runner = new SyncRunner({
      run: async (name, opts) => {
        opts.onEvent({ type: 'phase', phase: 'extract' });
        await new Promise<void>((resolve) => (release = resolve));
        return summary(name, 7);
      },
      latestRunId: async () => 7,
    });
    const first = runner.start('a', { trigger: 'api' });
    expect(await first.runId).toBe(7);
    expect(() => runner.start('a', { trigger: 'api' })).toThrow(SyncBusyError);
    expect(runner.running()).toEqual(['a']);
    release();
    await first.finished;
    expect(await runner.drain(1000)).toBe(true);
    expect(runner.isRunning('a')).toBe(false);
  });

  it('runs syncs that share an exclusive source one after the other', async () => {
    const log: string[] = [];
    const runner = new SyncRunner({
      run: async (name) => {
        log.push(`start ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        log.push(`end ${name}`);
        return summary(name, 1);
      },
      latestRunId: async () => 1,
      exclusiveKey: (name) => (name === 'c' ? undefined : 'pg'),
    });
    const runs = ['a', 'b', 'c'].map((n) => runner.start(n, { trigger: 'schedule' }).finished);
    await Promise.all(runs);
    expect(log.indexOf('end a')).toBeLessThan(log.indexOf('start b'));
    expect(log.indexOf('start c')).toBeLessThan(log.indexOf('end a'));
  });

  it('drain gives up after its timeout', async () => {
    const runner = new SyncRunner({ run: () => new Promise<RunSummary>(() => undefined), latestRunId: async () => undefined });
    runner.start('slow', { trigger: 'api' });
    expect(await runner.drain(30)).toBe(false);
  });
});
