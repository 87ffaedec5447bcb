/**
 * Identity: how a warehouse value becomes a Meta match key (normalized, then SHA-256 hashed).
 * The rules, with examples and drop reasons, are in docs/identity.md.
 */
export * from './keys.js';
export { sha256Hex } from './hash.js';
export {
  createDateFormatCounter,
  DATE_FORMAT_EXAMPLES,
  DATE_FORMATS,
  formatsAccepting,
  isDateFormat,
  type DateFormat,
  type DateFormatCount,
} from './dob.js';
export { normalizeKey, type Hashing, type KeyContextInput, type KeyOutcome } from './normalize.js';
export {
  createRecordEncoder,
  mappedColumns,
  MappingError,
  MISSING_LOOKALIKE_VALUE,
  NO_USABLE_IDENTIFIER,
  type EncodedRecord,
  type IdentityOptions,
  type Mapping,
  type RecordEncoder,
} from './encoder.js';
