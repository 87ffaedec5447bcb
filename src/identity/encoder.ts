/**
 * Record level: a mapping (Meta key → column) and a row in, the cells in Meta's fixed key order out, with the
 * dropped values and whether the record is usable at all.
 */
import type { CountryCode } from 'libphonenumber-js/core';
import { byteRuleFor, firstCharacter, MAX_OUTPUT_BYTES, MAX_TEXT_LENGTH, type ByteRule } from './byteRules.js';
import { DATE_FORMATS, type DateFormat, isDateFormat } from './dob.js';
import { HashScratch, sha256Hex } from './hash.js';
import { IDENTIFIER_KEYS, isHashedKey, isMatchKey, MATCH_KEYS, type MatchKey } from './keys.js';
import { AlreadyHashed, countryOf, type Hashing, normalizeValue, regionFor, type ValueContext } from './normalize.js';
import { phoneRegion } from './phone.js';
import { firstInitial } from './rules.js';
import { Dropped, EMPTY } from './value.js';

/** Meta key → source column name. */
export type Mapping = Partial<Record<MatchKey, string>>;

export interface IdentityOptions {
  /** Default 'auto': hash plain values, pass SHA-256 digests through. 'pre-hashed': refuse plain values. */
  hashing?: Hashing;
  /** Alpha-2 (e.g. 'US'): region for national phone numbers when the row has no (known) COUNTRY. */
  defaultPhoneCountry?: string;
  /** The audience is value-based: every record needs a LOOKALIKE_VALUE. */
  valueBased?: boolean;
  /** Used when a value-based record's LOOKALIKE_VALUE is missing or invalid. */
  defaultLookalikeValue?: number;
  /** How DOBY/DOBM/DOBD values written as text are read (default 'iso'); Dates are read as dates whatever it says. */
  dateFormat?: DateFormat;
  /** For the DOBY upper bound (the current year); default new Date(). */
  now?: Date;
}

export interface EncodedRecord {
  /** In encoder.schema order: hashes, EXTERN_ID / MADID strings, '' when unknown, LOOKALIKE_VALUE a number. */
  cells: Array<string | number>;
  dropped: Array<{ key: MatchKey; reason: string }>;
  /** No usable identifier (or value-based without a usable LOOKALIKE_VALUE). */
  rejected: boolean;
  /** Why it was rejected: every drop reason plus 'no usable identifier' etc. Empty when not rejected. */
  reasons: string[];
}

export interface RecordEncoder {
  readonly schema: readonly MatchKey[];
  encode(row: Record<string, unknown>): EncodedRecord;
}

/** A mapping or option that cannot work; the message names the key and says what to do. */
export class MappingError extends Error {
  override readonly name = 'MappingError';
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

export const NO_USABLE_IDENTIFIER = 'no usable identifier';
export const MISSING_LOOKALIKE_VALUE = 'LOOKALIKE_VALUE: no usable value, and the audience is value-based (map a column with numbers ≥ 0 or set defaultLookalikeValue)';

interface Column {
  readonly key: MatchKey;
  /** Source column; undefined for FI derived from FN and for a LOOKALIKE_VALUE that always uses the default. */
  readonly column: string | undefined;
  readonly hashed: boolean;
  readonly identifier: boolean;
  /** Hashes of this key's values seen so far, for keys whose values come from a small set (see BOUNDED_KEYS). */
  readonly hashMemo: Map<string, string> | undefined;
  /** The key's byte-level fast path (byteRules.ts), for plain values of a mapped column, and its bytes. */
  readonly byteRule: ByteRule | undefined;
  readonly scratch: HashScratch | undefined;
}

/**
 * Keys whose normalized values come from a small set (a letter, a country code, m/f, a year, month or day):
 * their hashes are remembered instead of computed for every row. Every other key (EMAIL, PHONE, names, ZIP…)
 * is hashed for every row. Held in memory only, per encoder, and capped.
 */
const BOUNDED_KEYS: ReadonlySet<MatchKey> = new Set(['FI', 'COUNTRY', 'GEN', 'DOBY', 'DOBM', 'DOBD']);
const HASH_MEMO_CAP = 4096;

function memoizedHash(memo: Map<string, string>, value: string): string {
  let digest = memo.get(value);
  if (digest === undefined) {
    digest = sha256Hex(value);
    if (memo.size < HASH_MEMO_CAP) memo.set(value, digest);
  }
  return digest;
}

interface EncoderPlan {
  readonly schema: readonly MatchKey[];
  readonly columns: readonly Column[];
  readonly countryColumn: string | undefined;
  readonly deriveFirstInitial: boolean;
  readonly hashing: Hashing;
  readonly defaultRegion: CountryCode | undefined;
  readonly valueBased: boolean;
  readonly defaultLookalikeValue: number | undefined;
  readonly currentYear: number;
  readonly dateFormat: DateFormat;
}

function validOptions(options: IdentityOptions): Omit<EncoderPlan, 'schema' | 'columns' | 'countryColumn' | 'deriveFirstInitial'> {
  if (options === null || typeof options !== 'object') throw new MappingError('Identity options must be an object.');
  const hashing = options.hashing ?? 'auto';
  if (hashing !== 'auto' && hashing !== 'pre-hashed') {
    throw new MappingError(`hashing must be "auto" or "pre-hashed", not ${JSON.stringify(hashing)}.`);
  }
  let defaultRegion: CountryCode | undefined;
  if (options.defaultPhoneCountry !== undefined) {
    defaultRegion = phoneRegion(countryOf(options.defaultPhoneCountry));
    if (!defaultRegion) {
      throw new MappingError(
        `defaultPhoneCountry ${JSON.stringify(options.defaultPhoneCountry)} is not a country with phone numbering data: use an ISO alpha-2 code such as "US".`,
        'PHONE',
      );
    }
  }
  const valueBased = options.valueBased === true;
  const fallback = options.defaultLookalikeValue;
  if (fallback !== undefined) {
    if (typeof fallback !== 'number' || !Number.isFinite(fallback) || fallback < 0) {
      throw new MappingError('defaultLookalikeValue must be a finite number ≥ 0.', 'LOOKALIKE_VALUE');
    }
    if (!valueBased) {
      throw new MappingError('defaultLookalikeValue only applies to value-based audiences: make the audience value-based or remove it.', 'LOOKALIKE_VALUE');
    }
  }
  const dateFormat = options.dateFormat ?? 'iso';
  if (!isDateFormat(dateFormat)) {
    throw new MappingError(`dateFormat must be one of ${DATE_FORMATS.join(', ')}, not ${JSON.stringify(dateFormat)}.`);
  }
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new MappingError('now must be a valid Date.');
  return { hashing, defaultRegion, valueBased, defaultLookalikeValue: fallback, currentYear: now.getUTCFullYear(), dateFormat };
}

function buildPlan(mapping: Mapping, options: IdentityOptions): EncoderPlan {
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) {
    throw new MappingError('The mapping must be an object of Meta match key → column name, e.g. { EMAIL: "email" }.');
  }
  const settings = validOptions(options);
  const mapped = new Map<MatchKey, string>();
  for (const [key, column] of Object.entries(mapping)) {
    if (!isMatchKey(key)) {
      throw new MappingError(`Unknown match key "${key}" in the mapping: use one of ${MATCH_KEYS.join(', ')}.`, key);
    }
    if (column === undefined) continue;
    if (typeof column !== 'string' || column.trim() === '') {
      throw new MappingError(`The mapping for ${key} must be a column name (a non-empty string).`, key);
    }
    mapped.set(key, column);
  }
  if (mapped.has('LOOKALIKE_VALUE') && !settings.valueBased) {
    throw new MappingError(
      'LOOKALIKE_VALUE is mapped but the audience is not value-based: remove it from the mapping or make the audience value-based.',
      'LOOKALIKE_VALUE',
    );
  }
  if (settings.valueBased && !mapped.has('LOOKALIKE_VALUE') && settings.defaultLookalikeValue === undefined) {
    throw new MappingError(
      'The audience is value-based, so every record needs a LOOKALIKE_VALUE: map it to a column or set defaultLookalikeValue.',
      'LOOKALIKE_VALUE',
    );
  }
  if (!IDENTIFIER_KEYS.some((k) => mapped.has(k))) {
    throw new MappingError(`The mapping has no identifier: map at least one of ${IDENTIFIER_KEYS.join(', ')}.`);
  }
  // FI cannot be derived from a hashed first name, so only plain-value syncs derive it.
  const deriveFirstInitial = !mapped.has('FI') && mapped.has('FN') && settings.hashing === 'auto';
  const schema = MATCH_KEYS.filter(
    (k) => mapped.has(k) || (k === 'FI' && deriveFirstInitial) || (k === 'LOOKALIKE_VALUE' && settings.valueBased),
  );
  const columns = schema.map((key): Column => {
    // 'pre-hashed' refuses plain values, which only the string path reports.
    const byteRule = mapped.has(key) && settings.hashing === 'auto' ? byteRuleFor(key) : undefined;
    return {
      key,
      column: mapped.get(key),
      hashed: isHashedKey(key),
      identifier: key !== 'LOOKALIKE_VALUE',
      hashMemo: BOUNDED_KEYS.has(key) ? new Map<string, string>() : undefined,
      byteRule,
      scratch: byteRule && new HashScratch(MAX_OUTPUT_BYTES),
    };
  });
  return { ...settings, schema, columns, countryColumn: mapped.get('COUNTRY'), deriveFirstInitial };
}

/** The source columns a mapping reads, in Meta's key order, each once. */
export function mappedColumns(mapping: Mapping): string[] {
  const columns = new Set<string>();
  for (const key of MATCH_KEYS) {
    const column = mapping[key];
    if (column !== undefined) columns.add(column);
  }
  return [...columns];
}

const NOT_A_ROW: Record<string, unknown> = {};

/** `byteLengths[i]`: how many bytes column i's fast path left in its scratch, to hash after the loop. */
function encodeWith(plan: EncoderPlan, ctx: ValueContext, byteLengths: Int32Array, row: Record<string, unknown>): EncodedRecord {
  const source = row !== null && typeof row === 'object' ? row : NOT_A_ROW;
  const columns = plan.columns;
  const cells = new Array<string | number>(columns.length);
  const dropped: EncodedRecord['dropped'] = [];
  let identifiers = 0;
  let lookalikeMissing = false;
  let firstNameInitial: string | undefined; // FI derived from FN's normalized value (plan.deriveFirstInitial)
  let plainToHash = 0; // bit i set: cells[i] holds a normalized value still to be hashed
  let bytesToHash = 0; // bit i set: column i's scratch holds normalized bytes still to be hashed

  // The row's country drives the phone region and the ZIP rule, so it goes first.
  const countryResult = plan.countryColumn === undefined ? EMPTY : normalizeValue('COUNTRY', source[plan.countryColumn], ctx);
  const country = typeof countryResult === 'string' ? countryResult : undefined;
  ctx.country = country;
  ctx.phoneRegion = regionFor(country, plan.defaultRegion);

  // Normalize every value first and hash afterwards, back to back: interleaving the two is measurably slower
  // (4–5% for the fast paths alone).
  for (let i = 0; i < columns.length; i++) {
    const col = columns[i]!;
    if (col.byteRule !== undefined) {
      // Fast path: normalized straight into bytes; when it is unsure, the string rule below decides.
      const value = source[col.column!];
      if (typeof value === 'string' && value.length < MAX_TEXT_LENGTH) {
        const bytes = col.scratch!.bytes;
        const length = col.byteRule(value, bytes, ctx);
        if (length > 0) {
          if (col.key === 'FN' && plan.deriveFirstInitial) firstNameInitial = firstCharacter(bytes);
          byteLengths[i] = length;
          bytesToHash |= 1 << i;
          cells[i] = '';
          identifiers++;
          continue;
        }
      }
    }
    let result;
    if (col.key === 'COUNTRY') result = countryResult;
    else if (col.column !== undefined) result = normalizeValue(col.key, source[col.column], ctx, col.hashed);
    else if (col.key === 'FI') result = firstNameInitial ?? EMPTY;
    else result = EMPTY; // LOOKALIKE_VALUE without a column: the default below

    let cell: string | number = '';
    if (typeof result === 'string') {
      // An empty string is never hashed (a derived FI can come out empty): it stays an unknown cell.
      cell = result;
      if (col.hashed && result !== '') plainToHash |= 1 << i;
      if (col.key === 'FN' && plan.deriveFirstInitial) firstNameInitial = firstInitial(result);
    } else if (typeof result === 'number') cell = result;
    else if (result instanceof AlreadyHashed) cell = result.hash;
    else if (result instanceof Dropped) dropped.push({ key: col.key, reason: result.reason });

    if (col.key === 'LOOKALIKE_VALUE' && cell === '') {
      if (plan.defaultLookalikeValue !== undefined) cell = plan.defaultLookalikeValue;
      else lookalikeMissing = true;
    }
    if (col.identifier && cell !== '') identifiers++;
    cells[i] = cell;
  }
  for (let i = 0; bytesToHash !== 0; i++, bytesToHash >>>= 1) {
    if (bytesToHash & 1) cells[i] = columns[i]!.scratch!.sha256Hex(byteLengths[i]!);
  }
  for (let i = 0; plainToHash !== 0; i++, plainToHash >>>= 1) {
    if (plainToHash & 1) {
      const memo = columns[i]!.hashMemo;
      cells[i] = memo === undefined ? sha256Hex(cells[i] as string) : memoizedHash(memo, cells[i] as string);
    }
  }

  const rejected = identifiers === 0 || lookalikeMissing;
  const reasons: string[] = [];
  if (rejected) {
    for (const d of dropped) reasons.push(d.reason);
    if (identifiers === 0) reasons.push(NO_USABLE_IDENTIFIER);
    if (lookalikeMissing) reasons.push(MISSING_LOOKALIKE_VALUE);
  }
  return { cells, dropped, rejected, reasons };
}

/**
 * Validates the mapping and options (throws MappingError naming the key on a bad one) and returns an encoder
 * whose encode() never throws on any row.
 */
export function createRecordEncoder(mapping: Mapping, options: IdentityOptions = {}): RecordEncoder {
  const plan = buildPlan(mapping, options);
  // One mutable context per encoder: encode() is synchronous, so rows never share it concurrently.
  const ctx: ValueContext = { country: undefined, phoneRegion: undefined, currentYear: plan.currentYear, hashing: plan.hashing, dateFormat: plan.dateFormat };
  const byteLengths = new Int32Array(plan.columns.length);
  return {
    schema: plan.schema,
    encode: (row) => encodeWith(plan, ctx, byteLengths, row),
  };
}
