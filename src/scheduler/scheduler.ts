/**
 * Runs each scheduled sync on its cron ticks. A tick that finds the sync still running is skipped (the
 * run in progress already covers it); a tick missed while the service was down runs once at start.
 * Time and timers are injected so tests drive it with a fake clock.
 */
import { missedTick, nextTick } from './schedule.js';
import type { RunRequest, StartedRun } from './runner.js';

export interface SchedulerClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** What the scheduler needs from the runner. */
export interface RunStarter {
  isRunning(name: string): boolean;
  start(name: string, request: RunRequest): StartedRun;
}

export type SchedulerEvent =
  | { type: 'tick'; sync: string; at: Date; catchUp: boolean }
  | { type: 'skipped'; sync: string; at: Date; reason: string }
  | { type: 'failed_to_start'; sync: string; error: unknown };

export interface SchedulerOptions {
  syncs: ReadonlyArray<{ name: string; schedule?: string }>;
  runner: RunStarter;
  /** Start time of the sync's newest run, from the run history. */
  lastRunStart(name: string): Promise<Date | null>;
  clock?: SchedulerClock;
  onEvent?(e: SchedulerEvent): void;
}

/** Longest delay a Node timer accepts; longer waits re-arm when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  private readonly clock: SchedulerClock;
  private readonly timers = new Map<string, unknown>();
  private readonly next = new Map<string, Date | null>();
  /** The schedule each armed sync follows. */
  private readonly patterns = new Map<string, string>();
  private stopped = false;

  constructor(private readonly options: SchedulerOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** Runs missed ticks once, then arms a timer per scheduled sync. */
  async start(): Promise<void> {
    const now = new Date(this.clock.now());
    for (const sync of this.options.syncs) {
      if (!sync.schedule) continue;
      const missed = missedTick(sync.schedule, await this.options.lastRunStart(sync.name), now);
      if (missed && !this.stopped) this.fire(sync.name, missed, true);
      this.arm(sync.name, sync.schedule);
    }
  }

  /**
   * Follows a re-read config: a sync whose schedule changed or went away loses its timer, a new or
   * changed schedule is armed from now (no catch-up for it).
   */
  update(syncs: ReadonlyArray<{ name: string; schedule?: string }>): void {
    if (this.stopped) return;
    const wanted = new Map(syncs.flatMap((s) => (s.schedule ? [[s.name, s.schedule] as const] : [])));
    for (const [name, pattern] of this.patterns) {
      if (wanted.get(name) === pattern) continue;
      const handle = this.timers.get(name);
      if (handle !== undefined) this.clock.clearTimer(handle);
      this.timers.delete(name);
      this.next.delete(name);
      this.patterns.delete(name);
    }
    for (const [name, pattern] of wanted) if (!this.patterns.has(name)) this.arm(name, pattern);
  }

  /** When the sync runs next on its schedule; null without a schedule (or after stop). */
  nextRun(name: string): Date | null {
    return this.next.get(name) ?? null;
  }

  stop(): void {
    this.stopped = true;
    for (const handle of this.timers.values()) this.clock.clearTimer(handle);
    this.timers.clear();
    this.next.clear();
    this.patterns.clear();
  }

  private arm(name: string, pattern: string): void {
    if (this.stopped) return;
    this.patterns.set(name, pattern);
    const due = nextTick(pattern, new Date(this.clock.now()));
    this.next.set(name, due);
    if (!due) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, due.getTime() - this.clock.now()));
    this.timers.set(
      name,
      this.clock.setTimer(() => {
        this.timers.delete(name);
        if (this.stopped) return;
        if (this.clock.now() >= due.getTime()) this.fire(name, due, false);
        this.arm(name, pattern);
      }, wait),
    );
  }

  private fire(name: string, at: Date, catchUp: boolean): void {
    const emit = this.options.onEvent ?? (() => undefined);
    if (this.options.runner.isRunning(name)) {
      emit({ type: 'skipped', sync: name, at, reason: 'the previous run is still going' });
      return;
    }
    emit({ type: 'tick', sync: name, at, catchUp });
    try {
      this.options.runner.start(name, { trigger: catchUp ? 'schedule:catch-up' : 'schedule' });
    } catch (error) {
      emit({ type: 'failed_to_start', sync: name, error });
    }
  }
}
