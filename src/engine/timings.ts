import type { ChangeSetReader, EngineSource, EngineStore } from './ports.js';
import type { RunTimings } from './types.js';

export type Phase = 'readModel' | 'plan' | 'remove' | 'add' | 'commit';

/**
 * Wall time per phase of a run. Phases nest (a state write while sending counts as commit, a
 * warehouse read while planning as readModel) and the inner one pauses the outer one, so the
 * phases never overlap and add up to the time the run spent in them. A run is one sequence of
 * awaits, so at most one phase is running at a time.
 */
export class PhaseTimer {
  private readonly totals: Record<Phase, number> = { readModel: 0, plan: 0, remove: 0, add: 0, commit: 0 };
  private readonly stack: Phase[] = [];
  private since = 0;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  async time<T>(phase: Phase, fn: () => Promise<T>): Promise<T> {
    this.switch(phase);
    try {
      return await fn();
    } finally {
      this.switch(undefined);
    }
  }

  /** `store` with its state writes timed as commit. */
  store(store: EngineStore): EngineStore {
    return Object.assign(Object.create(store) as EngineStore, {
      applyRecordWrites: (sync: string, writes: Parameters<EngineStore['applyRecordWrites']>[1]) => this.time('commit', () => store.applyRecordWrites(sync, writes)),
    });
  }

  /** `source` with the wait for each chunk of the model (or of the warehouse's change set) timed as readModel. */
  source(source: EngineSource): EngineSource {
    const { changes } = source;
    return Object.assign(Object.create(source) as EngineSource, {
      streamByKeyHash: (sql: string, opts: Parameters<EngineSource['streamByKeyHash']>[1]) => this.iterable('readModel', source.streamByKeyHash(sql, opts)),
      ...(changes ? { changes: { read: (sql: string, opts: Parameters<ChangeSetReader['read']>[1]) => this.iterable('readModel', changes.read(sql, opts)) } } : {}),
    });
  }

  timings(): RunTimings {
    const ms = (p: Phase) => Math.round(this.totals[p]);
    return { readModelMs: ms('readModel'), planMs: ms('plan'), removeMs: ms('remove'), addMs: ms('add'), commitMs: ms('commit') };
  }

  private iterable<T>(phase: Phase, inner: AsyncIterable<T>): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        const it = inner[Symbol.asyncIterator]();
        return {
          next: () => this.time(phase, () => it.next()),
          return: async (value?: unknown) => (it.return ? it.return(value) : { done: true as const, value: undefined }),
        };
      },
    };
  }

  /** Enters `phase` (pausing the current one), or leaves the current phase when undefined. */
  private switch(phase: Phase | undefined): void {
    const now = this.clock();
    const current = this.stack.at(-1);
    if (current !== undefined) this.totals[current] += now - this.since;
    if (phase === undefined) this.stack.pop();
    else this.stack.push(phase);
    this.since = now;
  }
}

/** The phases in the order a run goes through them, with the words the CLI and the dashboard show. */
export const TIMING_LABELS: ReadonlyArray<readonly [keyof RunTimings, string]> = [
  ['readModelMs', 'read model'],
  ['planMs', 'plan'],
  ['removeMs', 'remove'],
  ['addMs', 'add'],
  ['commitMs', 'commit'],
];

/** The timings of a stored run (kept with its counts), or undefined for a run that has none (older or unfinished). */
export function readTimings(counts: Readonly<Record<string, unknown>>): RunTimings | undefined {
  const t = counts.timings;
  if (typeof t !== 'object' || t === null) return undefined;
  const values = t as Record<string, unknown>;
  return TIMING_LABELS.every(([k]) => typeof values[k] === 'number') ? (t as RunTimings) : undefined;
}
