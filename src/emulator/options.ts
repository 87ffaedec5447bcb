/** Configuration of the Graph API emulator: seeded state plus behaviour flags (all changeable at run time). */

export type TokenState = 'valid' | 'expired' | 'password_changed' | 'logged_out';

export interface TokenSeed {
  token: string;
  userId?: string;
  userName?: string;
  scopes?: string[];
  state?: TokenState;
  /** Clock time (ms) after which the token counts as expired (190/463). */
  expiresAt?: number;
  /**
   * Ad accounts (digits, or act_…) the token's user has a role on; others (and their audiences) answer
   * 100/33 as Meta does, and /me/adaccounts lists only these. Default: every account.
   */
  adAccounts?: string[];
  /** The secret of the app this token belongs to, when that app requires appsecret_proof (overrides the emulator-wide appSecret). */
  appSecret?: string;
}

export interface AdAccountSeed {
  /** Digits only, without `act_` (a leading `act_` is stripped). */
  id: string;
  name?: string;
  tosAccepted?: boolean;
  /** Meta's account_status: 1 active, 2 disabled, 3 unsettled, 101 closed. */
  status?: number;
}

/** Which limit a throttled call reports: 80003 custom_audience BUC, 17/2446079 and 613/1487742 ad-account, 4 app. */
export type RateLimitKind = 80003 | 17 | 613 | 4;

export interface RateLimitConfig {
  /** Calls per rolling hour per ad account (for kind 4: per app). */
  budgetPerHour: number;
  kind: RateLimitKind;
}

export type FaultKind = 'transient' | 'unknown' | 'throttle' | 'html5xx' | 'drop' | 'latency' | 'token_expiry';

export interface FaultConfig {
  /** Probability 0..1 that one Graph request gets a fault. */
  rate: number;
  kinds: FaultKind[];
  latencyMs?: number;
  seed?: number;
  /** Only requests whose path matches this regular expression are faulted. */
  paths?: string;
  /**
   * 'before' (default): the fault replaces the work, nothing is applied.
   * 'after': the work is applied, then the fault is returned (an ambiguous failure).
   * 'either': chosen by the seeded RNG per fault.
   */
  phase?: 'before' | 'after' | 'either';
}

/** Behaviour switches of the emulator (docs/graph-api.md, "The emulator"). */
export interface EmulatorFlags {
  /** delivery_status is 300 (too small) below this many members, 200 at or above. */
  deliveryThreshold: number;
  /** Customer-file audiences per ad account. */
  audienceCap: number;
  /** Rows per /users or /usersreplace request. */
  maxRows: number;
  /** Error for too many rows: 100 (default) or 1/99 (as once observed). */
  rowCapError: 'invalid_parameter' | 'unknown_99';
  /** Request bodies above this many bytes are refused. */
  maxBodyBytes: number;
  /** How an oversized body is refused: a JSON code-1 error, or an HTML 500 page like Meta's front end. */
  oversizeBody: 'json' | 'html';
  /** Request URLs (path + query) above this many characters get an HTML 414 page. */
  maxUrlLength: number;
  /** Default page size of list edges. */
  defaultPageSize: number;
  /** A list `limit` above this gives code 1 "Please reduce the amount of data…". */
  listLimitCeiling: number;
  /** When on, the first page of every list comes back empty but carries `next`. */
  emptyFirstPage: boolean;
  /** Shape of invalid_entry_samples. */
  invalidSamplesShape: 'object' | 'array';
  /**
   * Well-formed cells counted as invalid entries anyway, as Meta may find values wrong that pass
   * every documented check: lets a test choose which rows of an upload come back in the samples.
   */
  invalidCells: string[];
  /** /users calls while a replace runs give 2650/1870145. */
  rejectUsersDuringReplace: boolean;
  /** Lifetime of an upload or replace session from its first batch. */
  sessionWindowMs: number;
  /** A replace is refused (1870144) at or above this many members. */
  replaceMaxMembers: number;
  /** API versions answered with 2635 (deprecated), e.g. ['v22.0']. */
  rejectedVersions: string[];
  /** Share (0..1) of hashed identifiers that match a person; decided by each cell's hash, so it is repeatable. */
  matchRate: number;
  /** Per schema key (EMAIL, PHONE, ...): overrides matchRate for that key. */
  matchRates: Record<string, number>;
  /** How long Meta takes to process a session after its last batch; until then `num_matched` reads 0. */
  sessionProcessingMs: number;
  /**
   * Least time an upload request (/users, /usersreplace) takes, as Meta's answer one in about 1-3 s: its
   * answer waits until this many ms after it arrived. The emulator's own work counts toward it. 0: no wait.
   */
  uploadLatencyMs: number;
}

export interface EmulatorOptions {
  /** 0 = random (default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** JSON file the store is loaded from at start (if present) and saved to on close. */
  dataFile?: string;
  /** ms since epoch; default: the built-in clock (real time plus whatever advanceClock added). */
  clock?: { now(): number };
  /** With the built-in clock: freeze it at this time, so only advanceClock moves it. */
  startTime?: number;
  /** Replaces the default token when given. */
  tokens?: TokenSeed[];
  /** Replaces the default ad account when given. */
  adAccounts?: AdAccountSeed[];
  /** When set, appsecret_proof is required ("Require App Secret" on). */
  appSecret?: string;
  flags?: Partial<EmulatorFlags>;
  rateLimit?: Partial<RateLimitConfig>;
  faults?: FaultConfig;
}

export const DEFAULT_TOKEN = 'emulator-token';
export const DEFAULT_AD_ACCOUNT = '1000000000000001';

export const DEFAULT_FLAGS: Readonly<EmulatorFlags> = Object.freeze({
  deliveryThreshold: 1000,
  audienceCap: 500,
  maxRows: 10_000,
  rowCapError: 'invalid_parameter',
  maxBodyBytes: 50 * 1024 * 1024,
  oversizeBody: 'json',
  maxUrlLength: 64 * 1024,
  defaultPageSize: 25,
  listLimitCeiling: 500,
  emptyFirstPage: false,
  invalidSamplesShape: 'object',
  invalidCells: [],
  rejectUsersDuringReplace: true,
  sessionWindowMs: 90 * 60 * 1000,
  replaceMaxMembers: 100_000_000,
  rejectedVersions: [],
  matchRate: 0.7,
  matchRates: {},
  sessionProcessingMs: 0,
  uploadLatencyMs: 0,
});

export const DEFAULT_RATE_LIMIT: Readonly<RateLimitConfig> = Object.freeze({ budgetPerHour: 190_000, kind: 80003 });

export const DEFAULT_TOKENS: readonly TokenSeed[] = [
  { token: DEFAULT_TOKEN, userId: '100000000000001', userName: 'Emulator User', scopes: ['ads_management', 'ads_read', 'business_management'] },
];

export const DEFAULT_AD_ACCOUNTS: readonly AdAccountSeed[] = [
  { id: DEFAULT_AD_ACCOUNT, name: 'Emulator Ad Account', tosAccepted: true, status: 1 },
];
