/** Seeded fault injection (docs/graph-api.md, "The emulator"): which Graph request fails, how, and whether before or after its work. */
import type { FaultConfig, FaultKind } from './options.js';
import { seededRandom, type Random } from './random.js';

export interface FaultDecision {
  kind: FaultKind;
  /** 'after': the request's work is applied before the fault is returned (an ambiguous failure). */
  phase: 'before' | 'after';
  latencyMs: number;
}

const FAULT_KINDS: readonly FaultKind[] = ['transient', 'unknown', 'throttle', 'html5xx', 'drop', 'latency', 'token_expiry'];
/** Kinds where "after" makes sense: the work happened, the answer got lost or garbled. */
const AMBIGUOUS_KINDS: ReadonlySet<FaultKind> = new Set(['transient', 'unknown', 'html5xx', 'drop']);
const NO_FAULTS: FaultConfig = { rate: 0, kinds: [] };

export class FaultInjector {
  private config: FaultConfig = NO_FAULTS;
  private pathPattern: RegExp | undefined;
  private random: Random = seededRandom(1);

  constructor(config?: FaultConfig) {
    if (config) this.configure(config);
  }

  configure(config: FaultConfig): void {
    if (!(config.rate >= 0 && config.rate <= 1)) throw new Error(`Fault rate must be between 0 and 1, got ${config.rate}`);
    const unknownKind = config.kinds.find((k) => !FAULT_KINDS.includes(k));
    if (unknownKind !== undefined) throw new Error(`Unknown fault kind '${unknownKind}'; use one of ${FAULT_KINDS.join(', ')}`);
    this.config = { ...config, kinds: [...config.kinds] };
    this.pathPattern = config.paths === undefined ? undefined : new RegExp(config.paths);
    this.random = seededRandom(config.seed ?? 1);
  }

  current(): FaultConfig {
    return { ...this.config, kinds: [...this.config.kinds] };
  }

  reset(): void {
    this.configure(NO_FAULTS);
  }

  decide(path: string): FaultDecision | undefined {
    const { rate, kinds } = this.config;
    if (rate <= 0 || kinds.length === 0) return undefined;
    if (this.pathPattern && !this.pathPattern.test(path)) return undefined;
    if (this.random() >= rate) return undefined;
    const kind = kinds[Math.floor(this.random() * kinds.length)] as FaultKind;
    const phaseSetting = this.config.phase ?? 'before';
    const after = AMBIGUOUS_KINDS.has(kind) && (phaseSetting === 'after' || (phaseSetting === 'either' && this.random() < 0.5));
    return { kind, phase: after ? 'after' : 'before', latencyMs: this.config.latencyMs ?? 250 };
  }
}
