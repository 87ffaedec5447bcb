import type { ChangeSetReader, EngineGraph, EngineSource, EngineStore, EngineUploadSession } from './ports.js';
import type { RunTimings } from './types.js';

export type Phase = 'readModel' | 'plan' | 'remove' | 'add' | 'commit';

/**
 * Wall time per phase of a run, split so that the phases never overlap and add up to the time the
 * run spent in them: at any moment one phase has the clock, the one the run is waiting on.
 * - Phases nest, and the inner one pauses the outer one: a state write while sending counts as commit,
 *   a warehouse read while planning as readModel.
 * - While an upload request is in flight, the run waits on Meta: the time is the request's phase (add
 *   or remove), even when the state is written or the next batch read meanwhile. Commit is then only
 *   the state writes the run had to wait for (before the first request, after the last, or longer
 *   than a request).
 */
export class PhaseTimer {
  private readonly totals: Record<Phase, number> = { readModel: 0, plan: 0, remove: 0, add: 0, commit: 0 };
  /** Phases entered and not yet left, oldest first (work done concurrently may leave them in any order). */
  private readonly entered: Array<{ phase: Phase }> = [];
  /** Upload requests in flight, by the phase they send for. */
  private readonly requests: Array<{ phase: Phase }> = [];
  private since = 0;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  time<T>(phase: Phase, fn: () => Promise<T>): Promise<T> {
    return this.during(this.entered, phase, fn);
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

  /** `graph` with each upload request timed as its phase, whatever else runs meanwhile. */
  graph(graph: EngineGraph): EngineGraph {
    return Object.assign(Object.create(graph) as EngineGraph, {
      openUploadSession: (...args: Parameters<EngineGraph['openUploadSession']>) => {
        const session = graph.openUploadSession(...args);
        const phase: Phase = args[0] === 'remove' ? 'remove' : 'add';
        return Object.assign(Object.create(session) as EngineUploadSession, {
          send: (...sendArgs: Parameters<EngineUploadSession['send']>) => this.during(this.requests, phase, () => session.send(...sendArgs)),
        });
      },
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

  /** Runs `fn` with `phase` in `list` (entered phases, or requests in flight). */
  private async during<T>(list: Array<{ phase: Phase }>, phase: Phase, fn: () => Promise<T>): Promise<T> {
    const entry = { phase };
    this.change(() => list.push(entry));
    try {
      return await fn();
    } finally {
      this.change(() => list.splice(list.indexOf(entry), 1));
    }
  }

  /** Charges the time since the last change to the phase that had the clock, then applies `update`. */
  private change(update: () => void): void {
    const now = this.clock();
    const current = (this.requests.at(-1) ?? this.entered.at(-1))?.phase;
    if (current !== undefined) this.totals[current] += now - this.since;
    update();
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
