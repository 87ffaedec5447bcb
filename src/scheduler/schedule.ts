/** Cron arithmetic for the scheduler: pure functions over croner, no timers. */
import { Cron } from 'croner';

function cron(pattern: string): Cron {
  return new Cron(pattern, { paused: true });
}

/** The first tick strictly after `after`; null when the pattern never fires again. */
export function nextTick(pattern: string, after: Date): Date | null {
  return cron(pattern).nextRun(after);
}

/** The last tick at or before `at`; null when there is none. */
export function previousTick(pattern: string, at: Date): Date | null {
  // previousRuns looks strictly before its reference: step 1 ms past `at` so a tick at `at` counts.
  return cron(pattern).previousRuns(1, new Date(at.getTime() + 1))[0] ?? null;
}

/**
 * The tick that was due while nothing ran: the latest tick after the last run started and not after
 * `now`. A sync that never ran has no missed tick (it waits for its first one). Several missed ticks
 * collapse into one catch-up run.
 */
export function missedTick(pattern: string, lastRunStart: Date | null, now: Date): Date | null {
  if (!lastRunStart) return null;
  const due = previousTick(pattern, now);
  return due && due.getTime() > lastRunStart.getTime() ? due : null;
}
