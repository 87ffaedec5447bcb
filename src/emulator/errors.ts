/** Graph API errors as Meta returns them: the {"error":{...}} envelope and the HTTP status per code (docs/graph-api.md, "Errors"). */
import { fbtraceId } from './ids.js';

export type GraphErrorType = 'OAuthException' | 'GraphMethodException' | 'FacebookApiException';

export interface GraphErrorInit {
  subcode?: number;
  type?: GraphErrorType;
  isTransient?: boolean;
  userTitle?: string;
  userMsg?: string;
  /** Overrides the status derived from the code. */
  httpStatus?: number;
  headers?: Record<string, string>;
}

export class GraphError extends Error {
  readonly code: number;
  readonly subcode: number | undefined;
  readonly type: GraphErrorType;
  readonly isTransient: boolean;
  readonly userTitle: string | undefined;
  readonly userMsg: string | undefined;
  readonly httpStatus: number;
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, init: GraphErrorInit = {}) {
    super(message);
    this.name = 'GraphError';
    this.code = code;
    this.subcode = init.subcode;
    this.type = init.type ?? 'OAuthException';
    this.isTransient = init.isTransient ?? false;
    this.userTitle = init.userTitle;
    this.userMsg = init.userMsg;
    this.httpStatus = init.httpStatus ?? httpStatusFor(code);
    this.headers = init.headers ?? {};
  }

  envelope(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = {
      message: `(#${this.code}) ${this.message}`,
      type: this.type,
      code: this.code,
    };
    if (this.subcode !== undefined) error.error_subcode = this.subcode;
    error.is_transient = this.isTransient;
    if (this.userTitle !== undefined) error.error_user_title = this.userTitle;
    if (this.userMsg !== undefined) error.error_user_msg = this.userMsg;
    error.fbtrace_id = fbtraceId();
    return { error };
  }
}

/** §4: 400 by default, 403 for app limits / permissions / ToS, 5xx for server-side codes. */
export function httpStatusFor(code: number): number {
  if (code === 1) return 500;
  if (code === 2) return 503;
  if (code === 4 || code === 10 || code === 2655 || (code >= 200 && code <= 299)) return 403;
  return 400;
}

const FAILED_UPDATE = 'Failed to update the custom audience';

/** Every error the emulator produces, by name, so handlers never hand-build codes. */
export const errors = {
  unsupported(method: string, objectId: string): GraphError {
    return new GraphError(
      100,
      `Unsupported ${method.toLowerCase()} request. Object with ID '${objectId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
      { subcode: 33, type: 'GraphMethodException' },
    );
  },
  invalidParameter(message: string): GraphError {
    return new GraphError(100, message);
  },
  nonexistingField(field: string, nodeType: string): GraphError {
    return new GraphError(100, `Tried accessing nonexisting field (${field}) on node type (${nodeType})`);
  },
  unknown(message = 'An unknown error has occurred.', subcode?: number): GraphError {
    return new GraphError(1, message, { isTransient: false, ...(subcode === undefined ? {} : { subcode }) });
  },
  reduceData(): GraphError {
    return new GraphError(1, "Please reduce the amount of data you're asking for, then retry your request");
  },
  transient(): GraphError {
    return new GraphError(2, 'Service temporarily unavailable', { isTransient: true });
  },
  deprecatedVersion(version: string): GraphError {
    return new GraphError(2635, `You are calling a deprecated version of the Ads API (${version}). Please update to the latest version.`);
  },
  tokenRequired(): GraphError {
    return new GraphError(104, 'An access token is required to request this resource.', { headers: wwwAuthenticate('invalid_request', 'An access token is required') });
  },
  invalidToken(subcode?: number): GraphError {
    const message = tokenMessages[subcode ?? 0] ?? 'Invalid OAuth access token - Cannot parse access token';
    return new GraphError(190, message, {
      ...(subcode === undefined ? {} : { subcode }),
      headers: wwwAuthenticate('invalid_token', message),
      ...(subcode === 463 ? { userTitle: 'Session expired', userMsg: 'Your session has expired. Please log in again.' } : {}),
    });
  },
  appsecretProofMissing(): GraphError {
    return new GraphError(100, 'API calls from the server require an appsecret_proof argument', { type: 'GraphMethodException' });
  },
  appsecretProofInvalid(): GraphError {
    return new GraphError(100, 'Invalid appsecret_proof provided in the API argument', { type: 'GraphMethodException' });
  },
  missingAdsManagement(): GraphError {
    return new GraphError(294, 'Managing advertisements requires an access token with the extended permission ads_management');
  },
  permissionDenied(what: string): GraphError {
    return new GraphError(200, `Requires ads_management permission to ${what}`);
  },
  tosNotAccepted(adAccountId: string): GraphError {
    return new GraphError(200, 'Custom Audience Terms of Service have not been accepted for this ad account', {
      subcode: 1870090,
      userTitle: 'Accept the Custom Audience Terms',
      userMsg: `Accept the Custom Audience Terms of Service at https://business.facebook.com/ads/manage/customaudiences/tos/?act=${adAccountId} and try again.`,
    });
  },
  audienceFlagged(): GraphError {
    return new GraphError(100, 'This audience was flagged for violating integrity policy; uploads to it are blocked', {
      subcode: 1713230,
      userTitle: 'Audience upload blocked',
      userMsg: 'This audience can no longer be updated because it may contain information that violates our policies.',
    });
  },
  throttled(kind: number, minutes: number, headers: Record<string, string>): GraphError {
    const h = { ...headers, 'Retry-After': String(minutes * 60) };
    switch (kind) {
      case 17:
        return new GraphError(17, 'User request limit reached', { subcode: 2446079, isTransient: true, headers: h });
      case 613:
        return new GraphError(613, 'Calls to this api have exceeded the rate limit.', { subcode: 1487742, isTransient: true, headers: h });
      case 4:
        return new GraphError(4, 'Application request limit reached', { isTransient: true, headers: h });
      default:
        return new GraphError(80003, 'There have been too many calls to this ad-account. Wait a bit and try again.', {
          isTransient: true,
          headers: h,
        });
    }
  },
  failedUpdate(detail: string, subcode?: number, userTitle?: string): GraphError {
    return new GraphError(2650, `${FAILED_UPDATE}: ${detail}`, {
      ...(subcode === undefined ? {} : { subcode }),
      ...(userTitle === undefined ? {} : { userTitle, userMsg: detail }),
    });
  },
  cannotDeleteWithLookalikes(): GraphError {
    return new GraphError(2656, 'This audience cannot be deleted because lookalike audiences depend on it.');
  },
};

const tokenMessages: Record<number, string> = {
  460: 'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.',
  463: 'Error validating access token: Session has expired.',
  467: 'Error validating access token: The user has not authorized application or the session was invalidated because the user logged out.',
};

function wwwAuthenticate(kind: string, message: string): Record<string, string> {
  return { 'WWW-Authenticate': `OAuth "Facebook Platform" "${kind}" "${message.replace(/"/g, "'")}"` };
}

/** The kind of HTML page Meta's front end serves instead of JSON when something breaks upstream. */
export function htmlErrorPage(status: number, title: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${status} ${title}</h1><p>Sorry, something went wrong. We're working on getting this fixed as soon as we can.</p></body></html>`;
}
