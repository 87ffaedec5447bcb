import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Membership } from '../../src/emulator/store/membership.js';

const SCHEMA = ['EXTERN_ID', 'EMAIL', 'FN'] as const;
const email = (extern: number, version: number) => `e${extern}v${version}`.padEnd(64, '0');

type Op = { kind: 'add'; extern: number; version: number } | { kind: 'removeByExtern'; extern: number } | { kind: 'removeByEmail'; extern: number; version: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), extern: fc.integer({ min: 0, max: 9 }), version: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('removeByExtern' as const), extern: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ kind: fc.constant('removeByEmail' as const), extern: fc.integer({ min: 0, max: 9 }), version: fc.integer({ min: 0, max: 2 }) }),
);

describe('Membership', () => {
  it('matches a model of "one member per EXTERN_ID, latest email wins" for any sequence of adds and removes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const members = new Membership();
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'add') {
            members.upsert(SCHEMA, [String(o.extern), email(o.extern, o.version), '']);
            model.set(o.extern, o.version);
          } else if (o.kind === 'removeByExtern') {
            members.remove(['EXTERN_ID'], [String(o.extern)]);
            model.delete(o.extern);
          } else {
            members.remove(['EMAIL'], [email(o.extern, o.version)]);
            if (model.get(o.extern) === o.version) model.delete(o.extern);
          }
        }
        const actual = members
          .list()
          .map((m) => `${m.EXTERN_ID}:${m.EMAIL}`)
          .sort();
        const expected = [...model].map(([e, v]) => `${e}:${email(e, v)}`).sort();
        expect(actual).toEqual(expected);
        expect(members.size).toBe(model.size);
      }),
      { numRuns: 300 },
    );
  });

  it('adding the same row twice is unchanged; a row sharing ids with two members merges them', () => {
    const m = new Membership();
    expect(m.upsert(SCHEMA, ['a', email(1, 0), ''])).toBe('added');
    expect(m.upsert(SCHEMA, ['a', email(1, 0), ''])).toBe('unchanged');
    expect(m.upsert(SCHEMA, ['b', email(2, 0), ''])).toBe('added');
    expect(m.upsert(SCHEMA, ['a', email(2, 0), ''])).toBe('updated');
    expect(m.list()).toEqual([{ EXTERN_ID: 'a', EMAIL: email(2, 0) }]);
    expect(m.remove(['EXTERN_ID'], ['b'])).toBe(0);
  });

  it('rows without a person identifier are matched on their whole tuple, not on shared attributes', () => {
    const m = new Membership();
    const fnLn = ['FN', 'LN', 'ZIP'];
    m.upsert(fnLn, ['f1'.padEnd(64, '0'), 'l1'.padEnd(64, '0'), 'z'.padEnd(64, '0')]);
    m.upsert(fnLn, ['f1'.padEnd(64, '0'), 'l2'.padEnd(64, '0'), 'z'.padEnd(64, '0')]);
    m.upsert(['LN', 'FN', 'ZIP'], ['l1'.padEnd(64, '0'), 'f1'.padEnd(64, '0'), 'z'.padEnd(64, '0')]);
    expect(m.size).toBe(2);
    // Two people sharing a first name stay two people.
    m.upsert(SCHEMA, ['x', email(5, 0), 'f1'.padEnd(64, '0')]);
    m.upsert(SCHEMA, ['y', email(6, 0), 'f1'.padEnd(64, '0')]);
    expect(m.size).toBe(4);
  });
});
