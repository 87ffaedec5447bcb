import { IDENTIFIER_KEYS, type Mapping, type MatchKey } from '../identity/index.js';
import type { Cell } from './types.js';

/**
 * Identifier coverage over the whole model: of the rows with a usable primary key, how many carry a
 * usable value per match key. Unlike `RunCounts.coverage` it counts every row, not only those encoded
 * this run (unchanged rows count by the cells the state holds for them).
 */
export interface ModelCoverage {
  rows: number;
  usable: Partial<Record<MatchKey, number>>;
}

/** The model's coverage at a sync's last successful run, with the mapping it was measured under. */
export interface CoverageBaseline extends ModelCoverage {
  mapping: Mapping;
}

/** Bit i set when cell i holds a value. */
export function filledMask(cells: readonly Cell[]): number {
  let mask = 0;
  for (let i = 0; i < cells.length; i++) if (cells[i] !== '') mask |= 1 << i;
  return mask;
}

/** Counts usable cells per schema position, one model row (as a `filledMask`) at a time. */
export class CoverageTally {
  private rows = 0;
  private readonly usable: number[];

  constructor(private readonly schema: readonly MatchKey[]) {
    this.usable = schema.map(() => 0);
  }

  add(mask: number): void {
    this.addMany(mask, 1);
  }

  /** `rows` rows with the same filled cells. */
  addMany(mask: number, rows: number): void {
    this.rows += rows;
    for (let i = 0; i < this.usable.length; i++) if (mask & (1 << i)) this.usable[i]! += rows;
  }

  result(): ModelCoverage {
    const usable: ModelCoverage['usable'] = {};
    this.schema.forEach((key, i) => (usable[key] = this.usable[i]!));
    return { rows: this.rows, usable };
  }
}

export interface CoverageDrop {
  key: MatchKey;
  usable: number;
  rows: number;
  /** The key's share at the last successful run. */
  before: number;
}

/**
 * Mapped identifier keys whose share of usable rows fell below `minRatio` of their share at the last
 * successful run. Keys mapped to another column since then, or new ones, have nothing to compare with.
 */
export function coverageDrops(current: ModelCoverage, baseline: CoverageBaseline | undefined, mapping: Mapping, minRatio: number): CoverageDrop[] {
  if (!baseline || baseline.rows === 0 || current.rows === 0 || minRatio <= 0) return [];
  const drops: CoverageDrop[] = [];
  for (const key of IDENTIFIER_KEYS) {
    if (mapping[key] === undefined || mapping[key] !== baseline.mapping[key]) continue;
    const before = (baseline.usable[key] ?? 0) / baseline.rows;
    const usable = current.usable[key] ?? 0;
    if (before > 0 && usable / current.rows < minRatio * before) drops.push({ key, usable, rows: current.rows, before });
  }
  return drops;
}

/** The refusal's text for coverage drops: which keys, from what share to what. */
export function describeDrops(drops: readonly CoverageDrop[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return drops.map((d) => `${d.key} is usable in ${pct(d.usable / d.rows)} of the model's rows (${d.usable} of ${d.rows}), down from ${pct(d.before)}`).join('; ');
}
