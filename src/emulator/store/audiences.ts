/** Customer-list audience records and how they read back through the Graph API (docs/graph-api.md, "Endpoints"). */
import type { DataSourceSubtype } from '../payload.js';
import { Membership } from './membership.js';

/** A replace run in progress (§6.14): batches land in `staging`, which is swapped in at the end. */
export interface ReplaceRun {
  sessionId: string;
  startedAt: number;
  staging: Membership;
}

export interface AudienceRecord {
  id: string;
  accountId: string;
  name: string;
  description: string;
  subtype: string;
  customerFileSource: string;
  isValueBased: boolean;
  retentionDays?: number;
  /** Unix seconds. */
  timeCreated: number;
  timeUpdated: number;
  timeContentUpdated: number;
  deleted: boolean;
  deleteTime?: number;
  operationStatus: number;
  dataSource?: DataSourceSubtype;
  fieldsViolatingIntegrityPolicy: string[];
  /** Test hook: lookalikes depend on it, so delete gives 2656. */
  hasLookalikes: boolean;
  /** Test hook: the next replace batch fails with 1870148 and leaves status 415. */
  failNextReplace: boolean;
  members: Membership;
  replace?: ReplaceRun;
}

export const OPERATION_STATUS: Readonly<Record<number, string>> = {
  0: 'No status',
  100: 'Expiring: this audience has not been used for a long time',
  200: 'Normal',
  400: 'Warning',
  410: 'No upload: this audience has no data yet',
  411: 'Low match rate',
  412: 'High invalid rate',
  414: 'replace_in_progress',
  415: 'replace_error',
  441: 'This audience is being populated or updated',
  442: 'Prefill failed',
  450: 'Outdated',
  470: 'The ad account that owns this audience is inactive',
  471: 'This audience was flagged for violating integrity policy',
  500: 'Error',
};

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
  'time_created',
  'time_updated',
  'time_content_updated',
  'delete_time',
  'is_value_based',
  'retention_days',
  'fields_violating_integrity_policy',
] as const;

export type AudienceField = (typeof AUDIENCE_FIELDS)[number];

export function isAudienceField(name: string): name is AudienceField {
  return (AUDIENCE_FIELDS as readonly string[]).includes(name);
}

export function newAudience(init: {
  id: string;
  accountId: string;
  name: string;
  description?: string;
  subtype?: string;
  customerFileSource?: string;
  isValueBased?: boolean;
  retentionDays?: number;
  nowSeconds: number;
}): AudienceRecord {
  return {
    id: init.id,
    accountId: init.accountId,
    name: init.name,
    description: init.description ?? '',
    subtype: init.subtype ?? 'CUSTOM',
    customerFileSource: init.customerFileSource ?? 'USER_PROVIDED_ONLY',
    isValueBased: init.isValueBased ?? false,
    ...(init.retentionDays === undefined ? {} : { retentionDays: init.retentionDays }),
    timeCreated: init.nowSeconds,
    timeUpdated: init.nowSeconds,
    timeContentUpdated: init.nowSeconds,
    deleted: false,
    operationStatus: 200,
    fieldsViolatingIntegrityPolicy: [],
    hasLookalikes: false,
    failNextReplace: false,
    members: new Membership(),
  };
}

/** One field as the Graph API returns it; `undefined` means the field is left out of the response. */
export function audienceField(a: AudienceRecord, field: AudienceField, deliveryThreshold: number): unknown {
  switch (field) {
    case 'id':
      return a.id;
    case 'account_id':
      return a.accountId;
    case 'name':
      return a.name;
    case 'description':
      return a.description;
    case 'subtype':
      return a.subtype;
    case 'customer_file_source':
      return a.customerFileSource;
    case 'approximate_count_lower_bound':
    case 'approximate_count_upper_bound':
      return a.members.size;
    case 'operation_status':
      return { code: a.operationStatus, description: OPERATION_STATUS[a.operationStatus] ?? 'Unknown status' };
    case 'delivery_status':
      return deliveryStatus(a, deliveryThreshold);
    case 'data_source':
      return a.dataSource === undefined
        ? { type: 'UNKNOWN', sub_type: 'ANYTHING', creation_params: '[]' }
        : { type: 'FILE_IMPORTED', sub_type: a.dataSource, creation_params: '[]' };
    case 'time_created':
      return a.timeCreated;
    case 'time_updated':
      return a.timeUpdated;
    case 'time_content_updated':
      return a.timeContentUpdated;
    case 'delete_time':
      return a.deleteTime;
    case 'is_value_based':
      return a.isValueBased;
    case 'retention_days':
      return a.retentionDays;
    case 'fields_violating_integrity_policy':
      return a.operationStatus === 471 ? a.fieldsViolatingIntegrityPolicy : undefined;
  }
}

function deliveryStatus(a: AudienceRecord, threshold: number): { code: number; description: string } {
  if (a.operationStatus === 471) return { code: 400, description: 'This audience is not available: it was flagged for integrity review.' };
  if (a.members.size < threshold) return { code: 300, description: 'Audience is too small' };
  return { code: 200, description: 'This audience is ready for use.' };
}
