import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { rawFingerprint } from '../../src/engine/fingerprint.js';
import { createWorld, customers, type World } from '../support/world.js';

describe('rawFingerprint', () => {
  const sig = '{"v":1}';

  it('tells apart rows whose values only look alike once joined', () => {
    expect(rawFingerprint(sig, [null])).not.toBe(rawFingerprint(sig, ['\u0000']));
    expect(rawFingerprint(sig, ['a\u001fb'])).not.toBe(rawFingerprint(sig, ['a', 'b']));
    expect(rawFingerprint(sig, ['ab', ''])).not.toBe(rawFingerprint(sig, ['a', 'b']));
    expect(rawFingerprint(sig, ['', null])).not.toBe(rawFingerprint(sig, [null, '']));
    expect(rawFingerprint(sig, [new Date(0)])).not.toBe(rawFingerprint(sig, [new Date(0).toISOString()]));
    expect(rawFingerprint(sig, [{ a: 1 }])).not.toBe(rawFingerprint(sig, ['{"a":1}']));
    expect(rawFingerprint('a', ['b'])).not.toBe(rawFingerprint('ab', []));
    // A missing value is a missing value, whichever way the warehouse says it.
    expect(rawFingerprint(sig, [undefined])).toBe(rawFingerprint(sig, [null]));
  });

  it('gives different rows different fingerprints', () => {
    // Small domains, so that near misses (joiners in values, a number and its text) come up often.
    const value = fc.oneof(
      fc.constant(null),
      fc.constantFrom('', '\u0000', '\u001f', 'a', 'a\u001f', '\u001fa', '1', 'true', 'S1:a'),
      fc.string({ unit: 'binary', maxLength: 3 }),
      fc.integer({ min: -2, max: 2 }),
      fc.boolean(),
      fc.bigInt({ min: -2n, max: 2n }),
    );
    // What a row is, as far as a fingerprint should care: each value's type and text.
    const identity = (row: unknown[]) => JSON.stringify(row.map((v) => (v === null ? null : [typeof v, String(v)])));
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), fc.array(value, { maxLength: 4 }), (a, b) => {
        expect(rawFingerprint(sig, a) === rawFingerprint(sig, b)).toBe(identity(a) === identity(b));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('a change of the fingerprint format', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('re-encodes every row once and finds it unchanged: nothing is re-sent', async () => {
    world = await createWorld();
    await world.setCustomers(customers(200));
    expect((await world.run()).status).toBe('success');
    // What an older release stored: fingerprints in another format, for the same cells.
    const db = new Database(world.statePath);
    db.prepare(`update records set fingerprint = 'old-format:' || pk`).run();
    db.close();

    world.emulator.control.clearRequestLog();
    const rerun = await world.run();
    expect(rerun.status).toBe('success');
    expect(rerun.counts).toMatchObject({ unchanged: 200, updated: 0, retried: 0, delivered: 0, encoded: 200 });
    expect(world.emulator.control.requestLog().filter((e) => e.path.endsWith('/users'))).toHaveLength(0);

    // The new fingerprints were stored: the next run encodes nothing.
    const next = await world.run();
    expect(next.counts).toMatchObject({ unchanged: 200, encoded: 0, delivered: 0 });
  });
});
