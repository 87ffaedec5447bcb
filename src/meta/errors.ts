import { isRecord } from './json.js';
import { parseUsageHeaders } from './usage.js';

export type MetaErrorKind =
  | 'auth'
  | 'permission'
  | 'tos'
  | 'flagged'
  | 'not_found'
  | 'invalid_request'
  | 'replace_in_progress'
  | 'replace_failed'
  | 'throttled'
  | 'transient'
  | 'deprecated_version'
  | 'abusive'
  | 'unknown';

/** The outcome of classifying one failed Graph API response (or a failure to get one). */
export interface ClassifiedError {
  kind: MetaErrorKind;
  /** Worth trying again: transient and throttled by this client, replace_* later by the caller. */
  retryable: boolean;
  /**
   * Meta may have applied the request before it failed (dropped connection, timeout, 5xx, HTML page).
   * Matters for the first batch of a replace, which must never be sent twice.
   */
  ambiguous: boolean;
  httpStatus?: number;
  code?: number;
  subcode?: number;
  fbtraceId?: string;
  /** Meta's own message (or a description of the transport failure). */
  detail: string;
  /** What the user should do about it. */
  userAction: string;
  /** For throttles: Meta's estimate of when access comes back. */
  regainAccessMs?: number | null;
  retryAfterMs?: number | null;
}

export interface ErrorContext {
  /** The ad account involved, used to build the ToS link. Digits, with or without act_. */
  adAccountId?: string;
  /** The connection whose token was used, named in re-authorize messages when a config has several. */
  connection?: TokenOwner;
}

/** A named connection and the config setting its token is read from (e.g. `connections.eu.accessToken`). */
export interface TokenOwner {
  readonly name: string;
  readonly tokenSetting: string;
}

/** A fatal (or retries-exhausted) Graph API failure. The message says what happened and what to do. */
export class MetaApiError extends Error {
  readonly kind: MetaErrorKind;
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  readonly code?: number;
  readonly subcode?: number;
  readonly fbtraceId?: string;
  readonly httpStatus?: number;
  readonly userAction: string;
  readonly detail: string;
  readonly regainAccessMs?: number | null;
  readonly retryAfterMs?: number | null;

  private readonly what: string | undefined;

  constructor(c: ClassifiedError, what?: string) {
    super(formatMessage(c, what));
    this.what = what;
    this.name = 'MetaApiError';
    this.kind = c.kind;
    this.retryable = c.retryable;
    this.ambiguous = c.ambiguous;
    this.code = c.code;
    this.subcode = c.subcode;
    this.fbtraceId = c.fbtraceId;
    this.httpStatus = c.httpStatus;
    this.userAction = c.userAction;
    this.detail = c.detail;
    this.regainAccessMs = c.regainAccessMs;
    this.retryAfterMs = c.retryAfterMs;
  }

  /** The same failure with a more specific instruction (e.g. the ToS link once the ad account is known). */
  withUserAction(userAction: string): MetaApiError {
    return new MetaApiError({ ...this.toClassified(), userAction }, this.what);
  }

  toClassified(): ClassifiedError {
    return {
      kind: this.kind,
      retryable: this.retryable,
      ambiguous: this.ambiguous,
      httpStatus: this.httpStatus,
      code: this.code,
      subcode: this.subcode,
      fbtraceId: this.fbtraceId,
      detail: this.detail,
      userAction: this.userAction,
      regainAccessMs: this.regainAccessMs,
      retryAfterMs: this.retryAfterMs,
    };
  }
}

function formatMessage(c: ClassifiedError, what?: string): string {
  const ids = [
    c.code !== undefined ? `code ${c.code}` : undefined,
    c.subcode !== undefined ? `subcode ${c.subcode}` : undefined,
    c.httpStatus !== undefined ? `HTTP ${c.httpStatus}` : undefined,
    c.fbtraceId !== undefined ? `fbtrace_id ${c.fbtraceId}` : undefined,
  ].filter((s) => s !== undefined);
  const head = `${what ?? 'Meta Graph API request failed'} (${KIND_LABEL[c.kind]}): ${c.detail}`;
  return `${head}${ids.length > 0 ? ` [${ids.join(', ')}]` : ''}. ${c.userAction}`;
}

const KIND_LABEL: Record<MetaErrorKind, string> = {
  auth: 'access token rejected',
  permission: 'permission denied',
  tos: 'custom audience terms not accepted',
  flagged: 'audience flagged',
  not_found: 'object not found',
  invalid_request: 'invalid request',
  replace_in_progress: 'audience busy',
  replace_failed: 'replace failed',
  throttled: 'rate limited',
  transient: 'temporary Meta failure',
  deprecated_version: 'API version retired',
  abusive: 'blocked as abusive',
  unknown: 'unexpected error',
};

const THROTTLE_CODES = new Set([4, 17, 32, 341, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009, 80014]);

export const TOS_URL = 'https://business.facebook.com/ads/manage/customaudiences/tos/?act=';

/**
 * Classifies a Graph API failure by Meta's `code` / `error_subcode` / `is_transient` (docs/graph-api.md, "Errors"), not by
 * HTTP status, which Meta uses loosely (throttles arrive as 400). HTTP status only decides for bodies that
 * are not a Graph error envelope, such as an HTML error page from a proxy.
 */
export function classifyGraphError(
  httpStatus: number,
  body: unknown,
  headers?: Headers,
  context: ErrorContext = {},
): ClassifiedError {
  const envelope = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  const serverSide = httpStatus >= 500;
  if (envelope === undefined) return classifyNonGraphResponse(httpStatus, headers);

  const code = intOrUndefined(envelope.code);
  const subcode = intOrUndefined(envelope.error_subcode);
  const detail = typeof envelope.message === 'string' && envelope.message !== '' ? envelope.message : 'no message';
  const base = {
    httpStatus,
    code,
    subcode,
    fbtraceId: typeof envelope.fbtrace_id === 'string' ? envelope.fbtrace_id : undefined,
    detail,
    ambiguous: serverSide,
  };
  const type = typeof envelope.type === 'string' ? envelope.type : '';
  const make = (kind: MetaErrorKind, retryable: boolean, userAction: string): ClassifiedError => ({
    ...base,
    kind,
    retryable,
    userAction,
  });

  if (code !== undefined && THROTTLE_CODES.has(code)) {
    const usage = headers ? parseUsageHeaders(headers) : { regainAccessMs: null, retryAfterMs: null };
    const abuse = code === 613 && subcode === undefined;
    return {
      ...make(
        'throttled',
        true,
        abuse
          ? 'Meta is throttling this ad account for unusual call volume; if it persists, ask a human to review how often syncs run.'
          : 'Meta rate limit reached; wait until the limit resets and run the sync again (or run it less often).',
      ),
      regainAccessMs: usage.regainAccessMs,
      retryAfterMs: usage.retryAfterMs,
    };
  }
  switch (code) {
    case 1:
    case 2:
      return make('transient', true, 'Meta had a temporary problem; retry later.');
    case 190:
    case 102:
      return make('auth', false, authAction(subcode, context.connection));
    case 294:
      return make(
        'permission',
        false,
        'The token lacks the ads_management permission or the app has no Ads API access: re-authorize with ads_management granted.',
      );
    case 2655:
      return make('tos', false, tosAction(context.adAccountId));
    case 2635:
      return make(
        'deprecated_version',
        false,
        'This Marketing API version has been retired: set a newer apiVersion (for example v25.0) in the configuration.',
      );
    case 368:
      return make('abusive', false, 'Meta temporarily blocked this action as abusive; stop syncing and review the account in Business Manager.');
    case 105:
      return make('invalid_request', false, 'The request had too many parameters; this is a bug in audience-sync, please report it.');
    case 2656:
      return make('invalid_request', false, 'Lookalike audiences depend on this audience; delete them first, then retry.');
    case 2650:
      return classifyAudienceUpdate(subcode, make);
    case 100:
      return classifyInvalidParameter(subcode, detail, type, make);
  }
  if (code === 10 || (code !== undefined && code >= 200 && code <= 299)) {
    if (subcode === 1870090) return make('tos', false, tosAction(context.adAccountId));
    if (subcode === 1870050) {
      return make('permission', false, 'The ad account is not linked to the business that owns this token: add it to the business in Business Manager.');
    }
    return make(
      'permission',
      false,
      'Permission denied: make sure the token has ads_management and the user or system user has an advertiser role on the ad account.',
    );
  }
  if (envelope.is_transient === true || serverSide) return make('transient', true, 'Meta had a temporary problem; retry later.');
  return make('unknown', false, 'Unexpected Meta error; if it persists, report it with the fbtrace_id.');
}

type Make = (kind: MetaErrorKind, retryable: boolean, userAction: string) => ClassifiedError;

function classifyAudienceUpdate(subcode: number | undefined, make: Make): ClassifiedError {
  switch (subcode) {
    case 1870145:
      return make('replace_in_progress', true, 'Another update or replace of this audience is running; wait for it to finish (operation status 200) and retry.');
    case 1870148:
      return make('replace_failed', true, 'The replace failed part-way; run the whole replace again (a new session is used).');
    case 1870158:
      return make('replace_failed', false, 'The replace session passed its 90-minute window and the audience got what arrived in time; send the rest as additions once the replace has finished.');
    case 1870159:
      return make('replace_failed', false, 'The replace session had already finished; send further changes as additions or removals.');
    case 1870144:
      return make('replace_failed', false, 'The audience is too large (100M+) to replace; sync it with additions and removals instead.');
    case 1870147:
      return make('invalid_request', false, 'A replace session must start with batch 1; this is a bug in audience-sync, please report it.');
  }
  return make('invalid_request', false, 'Meta refused to update the audience; check the message (a changed match-key schema needs a new audience).');
}

function classifyInvalidParameter(subcode: number | undefined, detail: string, type: string, make: Make): ClassifiedError {
  if (subcode === 33) {
    return make('not_found', false, 'The object does not exist or this token cannot see it: re-create the audience or share it with this ad account.');
  }
  if (subcode === 1713230) {
    return make('flagged', false, 'Meta flagged this audience for integrity review and blocks uploads; a human must review it in Ads Manager.');
  }
  if (/appsecret_proof/i.test(detail) || type === 'GraphMethodException' && /app ?secret/i.test(detail)) {
    return make('auth', false, 'The app requires a valid appsecret_proof: set the correct app secret in the configuration.');
  }
  return make('invalid_request', false, 'Meta rejected the request as invalid; check the audience schema and configuration.');
}

function authAction(subcode: number | undefined, connection: TokenOwner | undefined): string {
  const reason: Record<number, string> = {
    458: 'the app is not installed for this user',
    459: 'the user is checkpointed and must log in to Facebook',
    460: 'the password changed',
    463: 'the token expired',
    464: 'the user is unconfirmed',
    467: 'the user logged out or the token was revoked',
    492: 'the session is invalid',
  };
  const why = subcode !== undefined ? reason[subcode] : undefined;
  if (connection) {
    return `Re-authorize connection "${connection.name}": ${why ? `${why}; ` : ''}create a new access token with ads_management (a system user token does not expire) and put it where ${connection.tokenSetting} reads it, or connect "${connection.name}" again with "Connect with Facebook" in the dashboard.`;
  }
  return `Re-authorize: ${why ? `${why}; ` : ''}create a new access token with ads_management (a system user token does not expire) and put it where meta.accessToken reads it (e.g. META_ACCESS_TOKEN), or connect again with "Connect with Facebook" in the dashboard.`;
}

export function tosAction(adAccountId: string | undefined): string {
  const account = adAccountId?.replace(/^act_/, '');
  const link = account ? `${TOS_URL}${account}` : `${TOS_URL}<AD_ACCOUNT_ID>`;
  return `Accept Meta's Custom Audience Terms of Service at ${link} as a real user of the business, then retry.`;
}

function classifyNonGraphResponse(httpStatus: number, headers?: Headers): ClassifiedError {
  const base = { httpStatus, ambiguous: httpStatus >= 500 || httpStatus === 0 };
  if (httpStatus === 429) {
    const usage = headers ? parseUsageHeaders(headers) : { regainAccessMs: null, retryAfterMs: null };
    return {
      ...base,
      kind: 'throttled',
      retryable: true,
      detail: 'HTTP 429 without a Graph error body',
      userAction: 'Rate limited; wait and retry.',
      regainAccessMs: usage.regainAccessMs,
      retryAfterMs: usage.retryAfterMs,
    };
  }
  if (httpStatus >= 500 || httpStatus === 408) {
    return { ...base, kind: 'transient', retryable: true, detail: `HTTP ${httpStatus} without a Graph error body (an error page)`, userAction: 'Meta had a temporary problem; retry later.' };
  }
  return {
    ...base,
    kind: 'unknown',
    retryable: false,
    detail: `HTTP ${httpStatus} without a Graph error body`,
    userAction: 'Check graphUrl in the configuration points at the Graph API.',
  };
}

/** A request that never got a response: dropped connection, reset, DNS failure or our own timeout. */
export function classifyTransportFailure(reason: string): ClassifiedError {
  return {
    kind: 'transient',
    retryable: true,
    ambiguous: true,
    detail: reason,
    userAction: 'The connection to Meta failed; check connectivity and retry.',
  };
}

function intOrUndefined(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
}
