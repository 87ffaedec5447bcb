/**
 * `serve` picks up Meta's match counts in the background: Meta processes an upload session minutes to
 * hours after a run ends, and a run is never held open for it. Each tick asks only about syncs that are
 * not running and whose earlier runs still wait for counts; a slow or failing Meta delays no sync.
 */
import type { Logger } from 'pino';

export interface MatchWatcherDeps {
  syncs: () => string[];
  isRunning: (sync: string) => boolean;
  pickUp: (sync: string) => Promise<number[]>;
  log: Logger;
  /** After counts were recorded (metrics refresh). */
  onRecorded?: (sync: string, runIds: number[]) => void;
}

export class MatchWatcher {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly deps: MatchWatcherDeps) {}

  /** One pass over the syncs; a pass still under way is joined rather than doubled. */
  check(): Promise<void> {
    this.checking ??= this.pass().finally(() => (this.checking = undefined));
    return this.checking;
  }

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer; resolves once a pass under way has finished (before the workspace closes). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
  }

  private async pass(): Promise<void> {
    for (const sync of this.deps.syncs()) {
      if (this.deps.isRunning(sync)) continue;
      try {
        const runIds = await this.deps.pickUp(sync);
        if (runIds.length === 0) continue;
        this.deps.log.info({ event: 'match_counts_recorded', sync, runIds }, `recorded Meta's match counts for ${runIds.length} run(s) of ${sync}`);
        this.deps.onRecorded?.(sync, runIds);
      } catch (e) {
        this.deps.log.warn({ event: 'match_counts_failed', sync, reason: e instanceof Error ? e.message : String(e) }, `could not read Meta's match counts for ${sync}; trying again later`);
      }
    }
  }
}
