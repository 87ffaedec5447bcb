/**
 * Which uploaded rows Meta "matches" to people, decided by the data itself so that a test can predict it:
 * a cell matches when the first four bytes of its SHA-256 (the cell itself when it already is one), read as
 * a fraction of 2^32, fall below the key's match rate. A row matches when any of its identifiers does.
 */
import { createHash } from 'node:crypto';
import { identityRole, keySpec } from './schema-keys.js';
import type { CellValue } from './store/membership.js';
import type { EmulatorFlags } from './options.js';

export type MatchFlags = Pick<EmulatorFlags, 'matchRate' | 'matchRates'>;

/** Rows of `rows` (all valid) that match at least one person. */
export function countMatched(schema: readonly string[], rows: readonly CellValue[][], flags: MatchFlags): number {
  // EXTERN_ID names a row for the advertiser only, and attributes (names, city, ...) identify no one alone.
  const keys = schema.map((k, i) => ({ i, rate: rateOf(k, flags) })).filter(({ i }) => identityRole(schema[i]!) === 'person' && keySpec(schema[i]!)?.rule !== 'extern_id');
  let matched = 0;
  for (const row of rows) {
    if (keys.some(({ i, rate }) => cellMatches(row[i], rate))) matched++;
  }
  return matched;
}

function rateOf(key: string, flags: MatchFlags): number {
  const rate = flags.matchRates[key] ?? flags.matchRate;
  return Math.min(1, Math.max(0, rate));
}

function cellMatches(cell: CellValue | undefined, rate: number): boolean {
  if (cell === undefined || cell === '' || typeof cell !== 'string') return false;
  const hex = /^[0-9a-f]{64}$/.test(cell) ? cell : createHash('sha256').update(cell).digest('hex');
  return Number.parseInt(hex.slice(0, 8), 16) / 2 ** 32 < rate;
}
