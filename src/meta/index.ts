// Public surface of the Meta Graph API client.
export { GraphClient, DEFAULT_API_VERSION, DEFAULT_GRAPH_URL, type GraphClientOptions } from './client.js';
export {
  MetaApiError,
  classifyGraphError,
  TOS_URL,
  type ClassifiedError,
  type ErrorContext,
  type TokenOwner,
  type MetaErrorKind,
} from './errors.js';
export { BatchBuilder, planBatches, type BatchLimits } from './batches.js';
export { parseUsageHeaders, type UsageInfo } from './usage.js';
export { appSecretProof } from './proof.js';
export { backoffDelay, throttleDelay, type BackoffPolicy } from './backoff.js';
export { parseGraphJson } from './json.js';
export { normalizeAdAccountId } from './ids.js';
export type {
  AdAccount,
  AudienceInfo,
  AudienceStatus,
  Cell,
  CustomerFileSource,
  GraphClientEvent,
  InvalidEntry,
  NewAudience,
  NewLookalike,
  Permission,
  UploadBatchResult,
  UploadOp,
  UploadSession,
  UploadSessionReport,
  UploadSummary,
} from './types.js';
