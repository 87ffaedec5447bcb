import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyTally } from '../../src/engine/key-tally.js';

const hash = (n: number) => createHash('sha256').update(`key ${n}`).digest('hex');

describe('KeyTally: a key hash seen twice among millions, in bounded memory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'as-key-tally-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds no repeat among distinct keys, and the one repeat among many, in any order', () => {
    const distinct = new KeyTally(dir);
    for (let n = 0; n < 50_000; n++) distinct.add(hash(n));
    expect(distinct.hasRepeats()).toBe(false);

    const repeated = new KeyTally(dir);
    for (let n = 0; n < 50_000; n++) repeated.add(hash(n));
    repeated.add(hash(31_337));
    expect(repeated.hasRepeats()).toBe(true);
  });

  it('keeps the prefixes in files beyond its memory share, and removes them', () => {
    const tally = new KeyTally(dir, 4096);
    for (let n = 0; n < 120_000; n++) tally.add(hash(n));
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    expect(tally.hasRepeats()).toBe(false);
    tally.add(hash(3));
    expect(tally.hasRepeats()).toBe(true);
    tally.dispose();
    expect(readdirSync(dir)).toEqual([]);
  });
});
