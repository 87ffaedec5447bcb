/** Meta's multi-key schema members that we support, in the fixed order every request uses. */
export const MATCH_KEYS = [
  'EXTERN_ID',
  'EMAIL',
  'PHONE',
  'GEN',
  'DOBY',
  'DOBM',
  'DOBD',
  'LN',
  'FN',
  'FI',
  'CT',
  'ST',
  'ZIP',
  'COUNTRY',
  'MADID',
  'LOOKALIKE_VALUE',
] as const;

export type MatchKey = (typeof MATCH_KEYS)[number];

/** Keys Meta takes unhashed; every other key is sent as a SHA-256 hex digest. */
export const UNHASHED_KEYS: ReadonlySet<MatchKey> = new Set(['EXTERN_ID', 'MADID', 'LOOKALIKE_VALUE']);

/** Keys that identify a person (LOOKALIKE_VALUE only weights one). */
export const IDENTIFIER_KEYS: readonly MatchKey[] = MATCH_KEYS.filter((k) => k !== 'LOOKALIKE_VALUE');

export function isMatchKey(value: unknown): value is MatchKey {
  return typeof value === 'string' && (MATCH_KEYS as readonly string[]).includes(value);
}

export function isHashedKey(key: MatchKey): boolean {
  return !UNHASHED_KEYS.has(key);
}
