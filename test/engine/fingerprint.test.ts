import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { rawFingerprint } from '../../src/engine/fingerprint.js';
import { sha256Hex } from '../../src/identity/index.js';
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

  it('a rules change re-encodes every record once and sends only the records whose cells changed', async () => {
    // One in ten customers lives in København, which rules v1 hashed as "københavn" and v2 as "kobenhavn".
    const model = "select *, case when cast(substr(user_id, 2) as int) % 10 = 0 then 'København' else 'Paris' end as city from customers";
    world = await createWorld({ model, mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', CT: 'city' } });
    await world.setCustomers(customers(50));
    expect((await world.run()).counts).toMatchObject({ added: 50, delivered: 50 });

    // The state an older release left: fingerprints of the old rules version, and the old CT hash for København.
    const db = new Database(world.statePath);
    db.prepare(`update records set fingerprint = 'rules-v1:' || pk`).run();
    const changed = db
      .prepare(`update records set cells = json_set(cells, '$[2]', ?) where json_extract(cells, '$[2]') = ?`)
      .run(sha256Hex('københavn'), sha256Hex('kobenhavn')).changes;
    // u1 had run out of attempts (its cells are the ones in the audience): a rules change gives it a new round,
    // since changed rules may be what Meta refused.
    db.prepare(`update records set status = 'failed', attempts = 5, last_error = 'refused' where json_extract(cells, '$[0]') = 'u1'`).run();
    db.close();
    expect(changed).toBe(5);

    world.emulator.control.clearRequestLog();
    const rerun = await world.run();
    expect(rerun.status).toBe('success');
    expect(rerun.counts).toMatchObject({ encoded: 50, unchanged: 44, updated: 6, retried: 0, failed: 0 });
    // Mirror takes the old København cells out before adding the new ones: 5 removals and 5 adds, plus u1's add.
    const rows = (method: string) =>
      world!.emulator.control
        .requestLog()
        .filter((e) => e.method === method && e.path.endsWith('/users'))
        .reduce((n, e) => n + (e.rows ?? 0), 0);
    expect({ removed: rows('DELETE'), added: rows('POST') }).toEqual({ removed: 5, added: 6 });
    expect(rerun.counts.delivered).toBe(11);
    const copenhagen = world.emulator.control.members(world.audienceId).filter((m) => m.CT === sha256Hex('kobenhavn'));
    expect(copenhagen).toHaveLength(5);

    const next = await world.run();
    expect(next.counts).toMatchObject({ unchanged: 50, encoded: 0, delivered: 0 });
  });
});
