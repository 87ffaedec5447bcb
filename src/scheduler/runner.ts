/**
 * Starts sync runs in the background for the scheduler and the HTTP API: at most one run per sync in
 * this process (the engine's lock also guards across processes), runs that share an exclusive source
 * (one stream at a time, e.g. PostgreSQL) queued one after another, and a drain for shutdown.
 */
import { SyncBusyError, type EngineEvent, type RunSummary } from '../engine/index.js';

export interface RunRequest {
  /** What started the run: `schedule`, `api`, `dashboard`, ... (stored in the run history). */
  trigger: string;
  force?: boolean;
}

export interface SyncRunnerDeps {
  run(name: string, opts: RunRequest & { onEvent: (e: EngineEvent) => void }): Promise<RunSummary>;
  /** Id of the sync's newest run in the history; asked once the engine reports progress. */
  latestRunId(name: string): Promise<number | undefined>;
  /** A key shared by syncs that must not run at the same time (their source), or undefined. */
  exclusiveKey?(name: string): string | undefined;
  onFinished?(name: string, outcome: { summary: RunSummary } | { error: unknown }): void;
  onEvent?(name: string, e: EngineEvent): void;
}

export interface StartedRun {
  /** The run's id once the engine has recorded it; undefined when the run ended without one. */
  readonly runId: Promise<number | undefined>;
  readonly finished: Promise<RunSummary>;
}

export class SyncRunner {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly exclusive = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: SyncRunnerDeps) {}

  isRunning(name: string): boolean {
    return this.inFlight.has(name);
  }

  running(): string[] {
    return [...this.inFlight.keys()];
  }

  /**
   * Starts a run now (or once the exclusive source is free).
   * @throws SyncBusyError when this process already runs the sync.
   */
  start(name: string, request: RunRequest): StartedRun {
    if (this.inFlight.has(name)) throw new SyncBusyError(`sync "${name}" is already running; wait for it to finish`);
    let resolveId!: (id: number | undefined) => void;
    let rejectId!: (e: unknown) => void;
    const runId = new Promise<number | undefined>((resolve, reject) => {
      resolveId = resolve;
      rejectId = reject;
    });
    let idAsked = false;
    const onEvent = (e: EngineEvent) => {
      // The engine records the run before its first event: from then on the newest run is this one.
      if (!idAsked) {
        idAsked = true;
        this.deps.latestRunId(name).then(resolveId, rejectId);
      }
      this.deps.onEvent?.(name, e);
    };
    const key = this.deps.exclusiveKey?.(name);
    const previous = key === undefined ? Promise.resolve() : (this.exclusive.get(key) ?? Promise.resolve());
    const finished = previous
      .catch(() => undefined)
      .then(() => this.deps.run(name, { ...request, onEvent }));
    const settled = finished.then(
      (summary) => {
        resolveId(summary.runId);
        this.deps.onFinished?.(name, { summary });
      },
      (error: unknown) => {
        rejectId(error);
        this.deps.onFinished?.(name, { error });
      },
    );
    const done = settled.finally(() => {
      this.inFlight.delete(name);
      if (key !== undefined && this.exclusive.get(key) === done) this.exclusive.delete(key);
    });
    this.inFlight.set(name, done);
    if (key !== undefined) this.exclusive.set(key, done);
    // Callers that only want the id must not get an unhandled rejection from `finished`.
    finished.catch(() => undefined);
    runId.catch(() => undefined);
    return { runId, finished };
  }

  /** Waits for every run in flight; false when `timeoutMs` passed first. */
  async drain(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.allSettled([...this.inFlight.values()]).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
