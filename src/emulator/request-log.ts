/**
 * A record of every Graph request, with real start and end times, so tests can prove e.g. that a per-account
 * concurrency cap held. Times are wall-clock ms (fractional), not the emulator clock, which tests may freeze.
 * Never holds tokens, query strings or row data.
 */
export interface RequestLogEntry {
  id: number;
  /** Effective method (a POST with method=DELETE is logged as DELETE). */
  method: string;
  /** Path only, no query string. */
  path: string;
  adAccountId?: string;
  audienceId?: string;
  startedAt: number;
  endedAt: number;
  status: number;
  rows?: number;
  errorCode?: number;
  errorSubcode?: number;
  /** Injected fault, if any. */
  fault?: string;
}

const MAX_ENTRIES = 100_000;

export class RequestLog {
  private entries: RequestLogEntry[] = [];
  private nextId = 1;

  /** Starts an entry; the caller fills it in and calls `finish` when the response is done. */
  begin(method: string, path: string): RequestLogEntry {
    const entry: RequestLogEntry = { id: this.nextId++, method, path, startedAt: wallClock(), endedAt: 0, status: 0 };
    this.entries.push(entry);
    if (this.entries.length > MAX_ENTRIES) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
    return entry;
  }

  finish(entry: RequestLogEntry, status: number): void {
    entry.status = status;
    entry.endedAt = wallClock();
  }

  list(): RequestLogEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  clear(): void {
    this.entries = [];
  }

  /** Most requests that were in flight at once (for one ad account, or overall). */
  peakConcurrency(adAccountId?: string): number {
    const events: Array<[number, number]> = [];
    for (const e of this.entries) {
      if (adAccountId !== undefined && e.adAccountId !== adAccountId) continue;
      events.push([e.startedAt, 1], [e.endedAt === 0 ? Infinity : e.endedAt, -1]);
    }
    // At equal times, ends come before starts: back-to-back requests do not overlap.
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let current = 0;
    let peak = 0;
    for (const [, delta] of events) {
      current += delta;
      peak = Math.max(peak, current);
    }
    return peak;
  }
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
