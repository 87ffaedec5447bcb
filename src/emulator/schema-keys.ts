/**
 * Meta's schema keys as the emulator judges them. Kept apart from src/identity on purpose: the emulator models
 * Meta's contract, not our client's choices, so a client bug cannot hide behind shared code.
 */

/** How a cell of the key must look. */
export type CellRule = 'sha256' | 'madid' | 'extern_id' | 'page_uid' | 'lookalike_value' | 'dpo' | 'dpo_int';

/**
 * 'person': the value identifies one person (two rows sharing it are the same member).
 * 'attribute': helps matching but many people share it (gender, city, first name...).
 * 'none': not an identifier at all (value weight, data processing options).
 */
export type IdentityRole = 'person' | 'attribute' | 'none';

interface KeySpec {
  rule: CellRule;
  role: IdentityRole;
}

const hashedAttribute: KeySpec = { rule: 'sha256', role: 'attribute' };

export const SCHEMA_KEYS: Readonly<Record<string, KeySpec>> = {
  EXTERN_ID: { rule: 'extern_id', role: 'person' },
  EMAIL: { rule: 'sha256', role: 'person' },
  EMAIL_SHA256: { rule: 'sha256', role: 'person' },
  PHONE: { rule: 'sha256', role: 'person' },
  PHONE_SHA256: { rule: 'sha256', role: 'person' },
  MADID: { rule: 'madid', role: 'person' },
  MOBILE_ADVERTISER_ID: { rule: 'madid', role: 'person' },
  PAGEUID: { rule: 'page_uid', role: 'person' },
  GEN: hashedAttribute,
  DOBY: hashedAttribute,
  DOBM: hashedAttribute,
  DOBD: hashedAttribute,
  LN: hashedAttribute,
  FN: hashedAttribute,
  FI: hashedAttribute,
  CT: hashedAttribute,
  ST: hashedAttribute,
  ZIP: hashedAttribute,
  COUNTRY: hashedAttribute,
  LOOKALIKE_VALUE: { rule: 'lookalike_value', role: 'none' },
  DATA_PROCESSING_OPTIONS: { rule: 'dpo', role: 'none' },
  DATA_PROCESSING_OPTIONS_COUNTRY: { rule: 'dpo_int', role: 'none' },
  DATA_PROCESSING_OPTIONS_STATE: { rule: 'dpo_int', role: 'none' },
};

export const KNOWN_SCHEMA_KEYS: readonly string[] = Object.keys(SCHEMA_KEYS);

export function keySpec(key: string): KeySpec | undefined {
  return Object.hasOwn(SCHEMA_KEYS, key) ? SCHEMA_KEYS[key] : undefined;
}

export function identityRole(key: string): IdentityRole {
  return keySpec(key)?.role ?? 'none';
}
