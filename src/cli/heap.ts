/**
 * How far V8 lets the heap grow past the live data before its next full collection. By default that is up
 * to 4x, and for a sync, whose live data is small and constant (the model streams through), the slack was
 * most of the heap: a 1M-row first sync peaked at 483 MB RSS with a 169 MB heap, and at 403 MB with a 71 MB
 * heap under 10% growth, in the same time. Unlike a hard heap cap, a growth factor can never run a bigger job
 * out of memory. The flag is read at each collection, so setting it at startup takes effect.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 10;

/** The V8 flag to set, or undefined when the user already chose one (node flags or NODE_OPTIONS win). */
export function heapGrowthFlag(execArgv: readonly string[], nodeOptions: string | undefined): string | undefined {
  const chosen = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg));
  return chosen ? undefined : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

export function limitHeapGrowth(): void {
  const flag = heapGrowthFlag(process.execArgv, process.env.NODE_OPTIONS);
  if (flag) setFlagsFromString(flag);
}
