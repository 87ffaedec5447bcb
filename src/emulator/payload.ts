/**
 * Validation of the `payload` param of /users and /usersreplace (docs/graph-api.md: uploads, and the emulator's invalid rows).
 * Structural problems fail the request (code 100); badly formatted cells only make their row invalid:
 * the row is skipped, counted and sampled, and the request still succeeds.
 */
import { errors } from './errors.js';
import type { EmulatorFlags } from './options.js';
import { KNOWN_SCHEMA_KEYS, identityRole, keySpec, type CellRule } from './schema-keys.js';
import type { CellValue } from './store/membership.js';

/** data_source.sub_type families; the first upload locks an audience to one (§6.12). */
export type DataSourceSubtype = 'MULTI_HASHES' | 'HASHES_OR_USER_IDS' | 'EXTERNAL_IDS' | 'MOBILE_ADVERTISER_IDS';

export interface InvalidRow {
  /** 0-based position in this request's `data`. */
  index: number;
  reason: string;
}

export interface ValidatedPayload {
  schema: readonly string[];
  subtype: DataSourceSubtype;
  /** Rows in the request, valid or not. */
  received: number;
  rows: CellValue[][];
  invalid: InvalidRow[];
  hasLookalikeValue: boolean;
}

export interface PayloadContext {
  isValueBased: boolean;
  flags: Pick<EmulatorFlags, 'maxRows' | 'rowCapError' | 'invalidCells'>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const LOWER_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DIGITS = /^[0-9]+$/;

export function validatePayload(raw: unknown, ctx: PayloadContext): ValidatedPayload {
  const payload = parseJsonParam(raw, 'payload');
  if (payload === undefined) throw errors.invalidParameter('The parameter payload is required');
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw errors.invalidParameter('param payload must be a JSON object with schema and data');
  }
  const { schema: rawSchema, data, page_ids: pageIds } = payload as { schema?: unknown; data?: unknown; page_ids?: unknown };
  const multiKey = Array.isArray(rawSchema);
  const schema = multiKey ? (rawSchema as unknown[]) : [rawSchema];
  if (schema.length === 0 || !schema.every((k): k is string => typeof k === 'string')) {
    throw errors.invalidParameter('Data is missing or does not match schema: schema must be a key or an array of keys');
  }
  const unknownKey = schema.find((k) => keySpec(k) === undefined);
  if (unknownKey !== undefined) {
    throw errors.invalidParameter(`Raw PII type is invalid, it should be one of ${KNOWN_SCHEMA_KEYS.join(', ')}`);
  }
  if (new Set(schema).size !== schema.length) throw errors.invalidParameter('Data is missing or does not match schema: a key appears twice in schema');
  const hasLookalikeValue = schema.includes('LOOKALIKE_VALUE');
  if (hasLookalikeValue && !ctx.isValueBased) {
    throw errors.invalidParameter('LOOKALIKE_VALUE can only be uploaded to a value-based audience (created with is_value_based=true)');
  }
  if (schema.includes('PAGEUID') && !(Array.isArray(pageIds) && pageIds.length > 0)) {
    throw errors.invalidParameter('page_ids is required when the schema contains PAGEUID');
  }
  if (!Array.isArray(data)) throw errors.invalidParameter('Data is missing or does not match schema');
  if (data.length > ctx.flags.maxRows) {
    const message = `Too many rows: ${data.length} received, at most ${ctx.flags.maxRows} are allowed per request`;
    throw ctx.flags.rowCapError === 'unknown_99' ? errors.unknown(message, 99) : errors.invalidParameter(message);
  }

  const rules = schema.map((k) => keySpec(k)?.rule as CellRule);
  const refused = new Set(ctx.flags.invalidCells);
  const roles = schema.map((k) => identityRole(k));
  const rows: CellValue[][] = [];
  const invalid: InvalidRow[] = [];
  for (let index = 0; index < data.length; index++) {
    const cells = rowCells(data[index], schema.length, multiKey);
    if (cells === undefined) throw errors.invalidParameter('Data is missing or does not match schema');
    // Cells are normalized in place: the parsed request owns these arrays, and copying 10,000 rows costs time.
    const normalized = cells as CellValue[];
    let reason: string | undefined;
    let identifiers = 0;
    for (let c = 0; c < cells.length; c++) {
      const checked = checkCell(rules[c] as CellRule, cells[c]);
      if (typeof checked === 'object' || (refused.size > 0 && typeof checked === 'string' && refused.has(checked))) {
        reason = `${schema[c]}: ${typeof checked === 'object' ? checked.invalid : 'not a valid value'}`;
        break;
      }
      normalized[c] = checked;
      if (checked !== '' && roles[c] !== 'none') identifiers++;
    }
    if (reason === undefined && identifiers === 0) reason = 'row has no identifier';
    if (reason === undefined) rows.push(normalized);
    else invalid.push({ index, reason });
  }
  return { schema, subtype: subtypeOf(schema, multiKey), received: data.length, rows, invalid, hasLookalikeValue };
}

/** Object-valued params arrive as objects (JSON bodies) or JSON strings (form, multipart, query). */
export function parseJsonParam(raw: unknown, name: string): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw errors.invalidParameter(`param ${name} must be valid JSON`);
  }
}

/** Shape of invalid_entry_samples: Meta types it as a map but has documented an array too (§6.21). */
export function invalidSamples(invalid: readonly InvalidRow[], shape: 'object' | 'array'): Record<string, string> | string[] {
  const first = invalid.slice(0, 100);
  if (shape === 'array') return first.map((r) => `row ${r.index}: ${r.reason}`);
  return Object.fromEntries(first.map((r) => [`row ${r.index}`, r.reason]));
}

function rowCells(row: unknown, width: number, multiKey: boolean): unknown[] | undefined {
  if (Array.isArray(row)) return row.length === width ? row : undefined;
  // A single-key schema takes a flat array of values; nested one-cell rows are tolerated too.
  return multiKey ? undefined : [row];
}

/** Returns the stored form of a valid cell (never the raw value in a reason: no PII in samples). */
function checkCell(rule: CellRule, cell: unknown): CellValue | { invalid: string } {
  if (cell === '' || cell === null || cell === undefined) return '';
  switch (rule) {
    case 'sha256':
      return typeof cell === 'string' && SHA256_HEX.test(cell) ? cell : { invalid: 'not a lowercase SHA-256 hex digest' };
    case 'madid':
      return typeof cell === 'string' && LOWER_UUID.test(cell) ? cell : { invalid: 'not a lowercase advertiser id (UUID)' };
    case 'extern_id':
      if (typeof cell === 'number' && Number.isFinite(cell)) return String(cell);
      return typeof cell === 'string' ? cell : { invalid: 'not a string' };
    case 'page_uid':
      return typeof cell === 'string' && DIGITS.test(cell) ? cell : { invalid: 'not a numeric page-scoped id' };
    case 'lookalike_value':
      return typeof cell === 'number' && Number.isFinite(cell) && cell >= 0 ? cell : { invalid: 'not a number >= 0' };
    case 'dpo':
      return dataProcessingOptions(cell);
    case 'dpo_int':
      return typeof cell === 'number' && Number.isInteger(cell) ? cell : { invalid: 'not an integer' };
  }
}

function dataProcessingOptions(cell: unknown): CellValue | { invalid: string } {
  let value = cell;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return { invalid: 'not a list of options' };
    }
  }
  if (!Array.isArray(value) || !value.every((o) => o === 'LDU')) return { invalid: 'only [] or ["LDU"] are allowed' };
  return JSON.stringify(value);
}

function subtypeOf(schema: readonly string[], multiKey: boolean): DataSourceSubtype {
  if (multiKey) return 'MULTI_HASHES';
  const rule = keySpec(schema[0] as string)?.rule;
  if (rule === 'extern_id') return 'EXTERNAL_IDS';
  if (rule === 'madid') return 'MOBILE_ADVERTISER_IDS';
  return 'HASHES_OR_USER_IDS';
}
