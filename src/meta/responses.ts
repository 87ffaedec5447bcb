import { MetaApiError } from './errors.js';
import { idString, isRecord } from './json.js';
import type { AdAccount, AudienceInfo, AudienceStatus, InvalidEntry, Permission, UploadSessionReport } from './types.js';

/** Meta sends at most 100 invalid-entry samples; we keep the same cap when summing batches. */
export const MAX_INVALID_SAMPLES = 100;

/** Fields asked for when reading or listing audiences. */
export const AUDIENCE_FIELDS = [
  'id',
  'account_id',
  'name',
  'description',
  'subtype',
  'customer_file_source',
  'approximate_count_lower_bound',
  'approximate_count_upper_bound',
  'operation_status',
  'delivery_status',
  'data_source',
  'is_value_based',
  'time_created',
  'time_updated',
  'time_content_updated',
  'delete_time',
  'fields_violating_integrity_policy',
] as const;

/** Fields of an upload session on `{audience}/sessions`. */
export const SESSION_FIELDS = ['session_id', 'stage', 'progress', 'num_received', 'num_matched', 'num_invalid_entries', 'start_time', 'end_time'] as const;

export function unexpectedResponse(what: string): MetaApiError {
  return new MetaApiError(
    {
      kind: 'unknown',
      retryable: false,
      ambiguous: false,
      detail: `the response did not look like ${what}`,
      userAction: 'Check that graphUrl points at the Graph API; if it does, report this with the API version in use.',
    },
    'Unexpected Graph API response',
  );
}

export function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw unexpectedResponse(what);
  return value;
}

export function requireId(value: unknown, what: string): string {
  const id = idString(value);
  if (id === undefined) throw unexpectedResponse(what);
  return id;
}

export function toAudienceInfo(value: unknown): AudienceInfo {
  const r = asRecord(value, 'an audience');
  const info: AudienceInfo = { id: requireId(r.id, 'an audience with an id') };
  setIfDefined(info, 'accountId', idString(r.account_id));
  setIfDefined(info, 'name', str(r.name));
  setIfDefined(info, 'description', str(r.description));
  setIfDefined(info, 'subtype', str(r.subtype));
  setIfDefined(info, 'customerFileSource', str(r.customer_file_source));
  setIfDefined(info, 'approximateCountLowerBound', num(r.approximate_count_lower_bound));
  setIfDefined(info, 'approximateCountUpperBound', num(r.approximate_count_upper_bound));
  setIfDefined(info, 'operationStatus', status(r.operation_status));
  setIfDefined(info, 'deliveryStatus', status(r.delivery_status));
  if (isRecord(r.data_source)) {
    const ds = r.data_source;
    info.dataSource = {};
    setIfDefined(info.dataSource, 'type', str(ds.type));
    setIfDefined(info.dataSource, 'subType', str(ds.sub_type));
    setIfDefined(info.dataSource, 'creationParams', str(ds.creation_params));
  }
  if (typeof r.is_value_based === 'boolean') info.isValueBased = r.is_value_based;
  setIfDefined(info, 'timeCreated', num(r.time_created));
  setIfDefined(info, 'timeUpdated', num(r.time_updated));
  setIfDefined(info, 'timeContentUpdated', num(r.time_content_updated));
  setIfDefined(info, 'deleteTime', num(r.delete_time));
  if (Array.isArray(r.fields_violating_integrity_policy)) {
    info.fieldsViolatingIntegrityPolicy = r.fields_violating_integrity_policy.map(String);
  }
  return info;
}

export function toAdAccount(value: unknown): AdAccount {
  const r = asRecord(value, 'an ad account');
  const id = requireId(r.id, 'an ad account with an id');
  const account: AdAccount = {
    id: id.startsWith('act_') ? id : `act_${id}`,
    accountId: idString(r.account_id) ?? id.replace(/^act_/, ''),
  };
  setIfDefined(account, 'name', str(r.name));
  setIfDefined(account, 'accountStatus', num(r.account_status));
  return account;
}

export function toPermission(value: unknown): Permission {
  const r = asRecord(value, 'a permission');
  return { permission: str(r.permission) ?? '', status: str(r.status) ?? '' };
}

/** Reads a /users or /usersreplace response. */
export function toUploadResponse(value: unknown): {
  sessionId?: string;
  numReceived: number;
  numInvalidEntries: number;
  invalidEntrySamples: string[];
  invalidEntries: InvalidEntry[];
} {
  const r = asRecord(value, 'an upload result');
  return {
    sessionId: idString(r.session_id),
    numReceived: num(r.num_received) ?? 0,
    numInvalidEntries: num(r.num_invalid_entries) ?? 0,
    invalidEntrySamples: normalizeInvalidSamples(r.invalid_entry_samples),
    invalidEntries: invalidEntriesOf(r.invalid_entry_samples),
  };
}

/**
 * `invalid_entry_samples` arrives as an array of strings or as a map (its key/value meaning is not
 * documented), empty as `{}`. Both become a flat list of at most 100 strings.
 */
export function normalizeInvalidSamples(value: unknown): string[] {
  let samples: string[] = [];
  if (Array.isArray(value)) {
    samples = value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  } else if (isRecord(value)) {
    samples = Object.entries(value).map(([key, v]) =>
      v === null || v === undefined || v === '' ? key : `${key}: ${typeof v === 'string' ? v : JSON.stringify(v)}`,
    );
  }
  return samples.slice(0, MAX_INVALID_SAMPLES);
}

const ROW_KEY = /^row (\d+)$/;
const ROW_TEXT = /^row (\d+): ([\s\S]*)$/;

/**
 * The samples of `invalid_entry_samples` that name a row of the request, as (row, reason):
 * `{"row 3": "reason"}` or `["row 3: reason"]`. Samples in any other form are left out: what
 * their keys hold is not documented, and may be the refused cell itself.
 */
export function invalidEntriesOf(value: unknown): InvalidEntry[] {
  const entries: InvalidEntry[] = [];
  const push = (row: string | undefined, reason: unknown) => {
    const n = Number(row);
    if (row !== undefined && Number.isSafeInteger(n)) entries.push({ row: n, reason: typeof reason === 'string' && reason !== '' ? reason : 'no reason given' });
  };
  if (Array.isArray(value)) {
    for (const v of value) {
      const m = typeof v === 'string' ? ROW_TEXT.exec(v) : null;
      if (m) push(m[1], m[2]);
    }
  } else if (isRecord(value)) {
    for (const [key, v] of Object.entries(value)) push(ROW_KEY.exec(key)?.[1], v);
  }
  return entries.slice(0, MAX_INVALID_SAMPLES);
}

function status(value: unknown): AudienceStatus | undefined {
  if (!isRecord(value)) return undefined;
  const code = num(value.code);
  return code === undefined ? undefined : { code, description: str(value.description) ?? '' };
}

/** One row of `{audience}/sessions`; absent or unreadable numbers count as 0, as Meta leaves them out before processing. */
export function toSessionReport(value: unknown): UploadSessionReport {
  const r = asRecord(value, 'an upload session');
  const sessionId = idString(r.session_id);
  if (sessionId === undefined) throw unexpectedResponse('an upload session with a session_id');
  // Meta types `progress` as a plain string (not a numeric one): read a leading number, as in "100" or "100%".
  const progress = num(r.progress) ?? Number(/^\s*(\d+(?:\.\d+)?)/.exec(str(r.progress) ?? '')?.[1] ?? 0);
  return {
    sessionId,
    stage: str(r.stage) ?? '',
    progress,
    numReceived: num(r.num_received) ?? 0,
    numMatched: num(r.num_matched) ?? 0,
    numInvalidEntries: num(r.num_invalid_entries) ?? 0,
    startTime: num(r.start_time) ?? 0,
    endTime: num(r.end_time) ?? 0,
    processed: progress >= 100,
  };
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

function setIfDefined<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
