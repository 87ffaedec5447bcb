import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, heapGrowthFlag } from '../../src/cli/heap.js';

describe('heap growth limit', () => {
  it('limits V8 heap growth by default', () => {
    expect(heapGrowthFlag([], undefined)).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--enable-source-maps'], '--max-old-space-size=4096')).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  });

  it('leaves a growth factor the user chose on the node command line or in NODE_OPTIONS', () => {
    expect(heapGrowthFlag(['--heap-growing-percent=50'], undefined)).toBeUndefined();
    expect(heapGrowthFlag([], '--trace-gc --heap_growing_percent=30')).toBeUndefined();
  });
});
