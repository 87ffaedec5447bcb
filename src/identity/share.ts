/**
 * How much of each batch the encoder pool's calling thread encodes itself, so that it finishes with the workers.
 * The split starts from a cost model and then follows what batches really take: cores don't all run at the
 * same speed (on shared VMs, not even from one minute to the next), and a fixed split waits for the slower side.
 */

/** Time per row, in any one unit: the caller encoding a row, the caller handing a row off, a worker encoding one. */
export interface RowCosts {
  caller: number;
  handoff: number;
  worker: number;
}

/**
 * The starting model, relative to the caller encoding a row (packing its record included), from timing each
 * step over 1M rows: packing a row into columns and cloning it for a worker costs the caller about 0.2; a
 * worker pays about 1.15 for a row, 0.15 of it to read the cloned columns back.
 */
export const MODEL_COSTS: RowCosts = { caller: 1, handoff: 0.2, worker: 1.15 };

/**
 * The share s where both sides take as long: s rows at `caller` and (1 - s) rows handed off at `handoff`,
 * against (1 - s) / workers rows at `worker` on each worker.
 */
export function balancedShare(costs: RowCosts, workers: number): number {
  if (workers <= 0) return 1;
  const perWorker = costs.worker / workers;
  const share = (perWorker - costs.handoff) / (costs.caller - costs.handoff + perWorker);
  return Number.isFinite(share) ? Math.min(1, Math.max(0, share)) : 0;
}

/**
 * The model's share: about 0.49 with one worker (on 2 cores, 0.5 beat 0.38, 0.45 and 0.55); from 6 workers on
 * the caller only hands off.
 */
export function callerShare(workers: number): number {
  return balancedShare(MODEL_COSTS, workers);
}

export interface ShareTuner {
  /** The share to use for the next batch. */
  readonly share: number;
  /** `ms` spent on `rows` rows of one kind of work. */
  observe(kind: keyof RowCosts, ms: number, rows: number): void;
}

/** Weight of each new measurement in the running averages. */
const SMOOTHING = 0.25;
/**
 * The caller never takes more than this: workers must keep getting rows, or a moment when they looked slow
 * would leave them idle (and unmeasured) for good.
 */
const MAX_LEARNED_SHARE = 0.9;

export function createShareTuner(workers: number): ShareTuner {
  const measured: Partial<RowCosts> = {};
  let share = callerShare(workers);
  return {
    get share() {
      return share;
    },
    observe(kind, ms, rows) {
      if (!(rows > 0) || !(ms >= 0)) return;
      const perRow = ms / rows;
      const before = measured[kind];
      measured[kind] = before === undefined ? perRow : before + SMOOTHING * (perRow - before);
      const { caller, handoff, worker } = measured;
      // Until every kind has been measured, the model's split stands.
      if (caller !== undefined && handoff !== undefined && worker !== undefined) {
        share = Math.min(MAX_LEARNED_SHARE, balancedShare({ caller, handoff, worker }, workers));
      }
    },
  };
}
