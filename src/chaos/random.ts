/**
 * A small seeded PRNG (mulberry32): the chaos schedule is a pure function of the seed, so a seed
 * printed with a failure replays the same sequence of churn, faults and kill decisions.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max], both ends included. */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A random non-empty subset of at most `max` items, in the items' order. */
  subset<T>(items: readonly T[], max: number): T[];
  /** A 32-bit seed for a derived generator (e.g. the emulator's fault RNG). */
  seed(): number;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    subset<T>(items: readonly T[], max: number): T[] {
      const want = int(1, Math.max(1, Math.min(max, items.length)));
      const chosen = new Set<number>();
      while (chosen.size < want) chosen.add(int(0, items.length - 1));
      return [...chosen].sort((a, b) => a - b).map((i) => items[i] as T);
    },
    seed: () => int(1, 0x7fffffff),
  };
}
