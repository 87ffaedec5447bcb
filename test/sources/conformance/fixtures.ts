// The tables every backend of the conformance suite loads, and the rows every source must return.
import type { FixtureTable } from './harness.js';

export const USER_ROWS = 12_345;
export const WIDE_COLUMNS = 150;
export const WIDE_ROWS = 20;

/** Keys in an order that is not byte order: case, accents, emoji, U+FFFD, digits, a trailing space, a duplicate and a null. */
export const KEY_VALUES: ReadonlyArray<string | null> = ['b', 'B', 'a', 'a ', 'é', 'z', '😀', '\uFFFD', '10', '9', '', 'b', null];

const wideName = (c: number) => `c${String(c).padStart(3, '0')}`;
export const wideValue = (row: number, column: number) => `r${row}c${column}`;

export const FIXTURE_TABLES: readonly FixtureTable[] = [
  {
    name: 'typed',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'big', type: 'bigint' },
      { name: 'small_big', type: 'bigint' },
      { name: 'huge', type: 'decimal' },
      { name: 'amount', type: 'money' },
      { name: 'name', type: 'text' },
      { name: 'birth', type: 'date' },
      { name: 'seen', type: 'timestamp' },
      { name: 'seen_tz', type: 'timestamptz' },
      { name: 'active', type: 'boolean' },
      { name: 'doc', type: 'json' },
      { name: 'tags', type: 'intArray' },
    ],
    rows: [
      [1, '9007199254740993', 42, '12345678901234567890123', '1234.50', 'Ann', '1985-03-07', '2024-01-15 12:34:56.789', '2024-01-15 12:34:56.500+02:00', true, { a: 1, b: ['x', 'y'] }, [1, 2]],
      [2, '-5', null, '-1', '0.10', 'Zoë', '2000-02-29', '1999-12-31 23:59:59.000', '2000-01-01 00:00:00.000+00:00', false, [1, 'two'], []],
      [3, null, null, null, null, null, null, null, null, null, null, null],
    ],
  },
  {
    name: 'users',
    columns: [
      { name: 'user_id', type: 'int' },
      { name: 'email', type: 'text' },
    ],
    rows: Array.from({ length: USER_ROWS }, (_, i) => [i, `user${i}@example.com`]),
  },
  { name: 'key_values', columns: [{ name: 'k', type: 'text' }], rows: KEY_VALUES.map((k) => [k]) },
  {
    name: 'wide',
    columns: Array.from({ length: WIDE_COLUMNS }, (_, c) => ({ name: wideName(c), type: 'text' as const })),
    rows: Array.from({ length: WIDE_ROWS }, (_, r) => Array.from({ length: WIDE_COLUMNS }, (_, c) => wideValue(r, c))),
  },
  {
    name: 'secret',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'email', type: 'text' },
    ],
    rows: [[1, 'hidden@example.com']],
  },
];

export const WIDE_COLUMN_NAMES = Array.from({ length: WIDE_COLUMNS }, (_, c) => wideName(c));

/** The `typed` rows every source returns (ordered by id). */
export const TYPED_ROWS = [
  {
    id: 1,
    big: '9007199254740993', // beyond 2^53: digits kept as text
    small_big: 42,
    huge: '12345678901234567890123',
    amount: 1234.5,
    name: 'Ann',
    birth: new Date('1985-03-07T00:00:00Z'),
    seen: new Date('2024-01-15T12:34:56.789Z'), // without zone: read as UTC
    seen_tz: new Date('2024-01-15T10:34:56.500Z'),
    active: true,
    doc: { a: 1, b: ['x', 'y'] }, // nested values stay nested, so identity can drop them with a reason
    tags: [1, 2],
  },
  {
    id: 2,
    big: -5,
    small_big: null,
    huge: -1,
    amount: 0.1,
    name: 'Zoë',
    birth: new Date('2000-02-29T00:00:00Z'),
    seen: new Date('1999-12-31T23:59:59.000Z'),
    seen_tz: new Date('2000-01-01T00:00:00.000Z'),
    active: false,
    doc: [1, 'two'],
    tags: [],
  },
  { id: 3, big: null, small_big: null, huge: null, amount: null, name: null, birth: null, seen: null, seen_tz: null, active: null, doc: null, tags: null },
];
