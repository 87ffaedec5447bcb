import type { ChurnPlan } from './population.js';
import type { Rng } from './random.js';

/** Every fault kind the emulator can inject (src/emulator/options.ts). */
export const FAULT_KINDS = ['transient', 'unknown', 'throttle', 'html5xx', 'drop', 'latency', 'token_expiry'] as const;
export type ChaosFaultKind = (typeof FAULT_KINDS)[number];

export interface FaultPlan {
  rate: number;
  kinds: ChaosFaultKind[];
  phase: 'before' | 'after' | 'either';
  latencyMs: number;
  seed: number;
}

/**
 * When to SIGKILL the sync process: after a delay, or once the emulator has seen its n-th
 * `/users` request of the run (so the kill lands inside delivery).
 */
export type KillPlan = { kind: 'none' } | { kind: 'timer'; afterMs: number } | { kind: 'users-request'; n: number };

/**
 * `runner`: the sync through the chaos runner (same Workspace.run as the CLI, with short retry delays
 * whose waits move the emulator's clock). `cli`: the real `audience-sync sync --json` binary with its
 * default client, so only faults that resolve in seconds are injected.
 */
export type Via = 'runner' | 'cli';

export interface StepPlan {
  index: number;
  sync: string;
  churn: ChurnPlan;
  faults: FaultPlan | undefined;
  kill: KillPlan;
  via: Via;
}

/** Kinds whose retries wait for minutes with the real client's default delays. */
const SLOW_WITH_REAL_CLIENT: ReadonlySet<ChaosFaultKind> = new Set(['throttle']);

/** The next step of the schedule: a pure function of the generator's state. */
export function planStep(rng: Rng, index: number, syncs: readonly string[]): StepPlan {
  const sync = rng.pick(syncs);
  const burst = rng.chance(0.1);
  const churn: ChurnPlan = {
    adds: burst ? rng.int(400, 1200) : rng.int(0, 60),
    readds: rng.int(0, 5),
    updates: rng.int(0, 80),
    cosmetic: rng.int(0, 30),
    removes: rng.int(0, 40),
    nullKeys: rng.chance(0.2) ? rng.int(1, 2) : 0,
  };
  const via: Via = rng.chance(0.25) ? 'cli' : 'runner';
  let faults: FaultPlan | undefined;
  if (rng.chance(0.8)) {
    const allowed = FAULT_KINDS.filter((k) => via === 'runner' || !SLOW_WITH_REAL_CLIENT.has(k));
    faults = {
      rate: via === 'cli' ? rng.pick([0.02, 0.05, 0.1]) : rng.pick([0.1, 0.2, 0.3, 0.4]),
      kinds: rng.subset(allowed, 3),
      phase: rng.pick(['before', 'after', 'either'] as const),
      latencyMs: rng.int(5, 80),
      seed: rng.seed(),
    };
  }
  const killRoll = rng.next();
  const kill: KillPlan =
    killRoll < 0.2 ? { kind: 'users-request', n: rng.int(1, 12) } : killRoll < 0.35 ? { kind: 'timer', afterMs: rng.int(50, 2500) } : { kind: 'none' };
  return { index, sync, churn, faults, kill, via };
}
