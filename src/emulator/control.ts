/** In-process test hooks (also served over HTTP under /_emulator, see control-http.ts and README.md). */
import { stripActPrefix } from './ids.js';
import {
  DEFAULT_FLAGS,
  type AdAccountSeed,
  type EmulatorFlags,
  type FaultConfig,
  type RateLimitConfig,
  type TokenSeed,
  type TokenState,
} from './options.js';
import type { RateLimitUpdate } from './ratelimit.js';
import type { RequestLogEntry } from './request-log.js';
import type { EmulatorRuntime } from './runtime.js';
import { settleExpiredReplace } from './graph/guards.js';
import type { AudienceRecord } from './store/audiences.js';
import type { CellValue } from './store/membership.js';

export interface AudienceSummary {
  id: string;
  accountId: string;
  name: string;
  description: string;
  subtype: string;
  customerFileSource: string;
  isValueBased: boolean;
  deleted: boolean;
  operationStatus: number;
  dataSource: string | undefined;
  size: number;
  replaceInProgress: { sessionId: string; startedAt: number; staged: number } | undefined;
  hasLookalikes: boolean;
  timeCreated: number;
  timeUpdated: number;
}

export interface EmulatorControl {
  /** Each member as schema key -> cell (empty cells left out). Throws for an unknown audience. */
  members(audienceId: string): Array<Record<string, CellValue>>;
  /** The audience's record, or undefined when it never existed. */
  audience(audienceId: string): AudienceSummary | undefined;
  audiences(): AudienceSummary[];
  /** Any operation_status code (414, 415, 441, 471, ...); `fields` fills fields_violating_integrity_policy for 471. */
  setAudienceStatus(audienceId: string, code: number, fields?: string[]): void;
  /** Lookalikes depend on the audience, so deleting it gives 2656. */
  setLookalikeDependency(audienceId: string, dependent: boolean): void;
  /** The next /usersreplace batch for the audience fails with 2650/1870148 and leaves status 415. */
  failNextReplace(audienceId: string): void;
  addAdAccount(account: AdAccountSeed): void;
  setTos(adAccountId: string, accepted: boolean): void;
  addToken(token: TokenSeed): void;
  setTokenState(token: string, state: TokenState): void;
  setScopes(token: string, scopes: string[]): void;
  /** Turns "Require App Secret" on (a string) or off (undefined). */
  setAppSecret(secret: string | undefined): void;
  setFaults(faults: FaultConfig): void;
  faults(): FaultConfig;
  setRateLimit(update: RateLimitUpdate): void;
  rateLimit(): RateLimitConfig & { perAccount: Record<string, number> };
  setFlags(flags: Partial<EmulatorFlags>): void;
  flags(): EmulatorFlags;
  now(): number;
  /** Moves the built-in clock forward (throws when an injected clock is in use). */
  advanceClock(ms: number): void;
  requestLog(): RequestLogEntry[];
  clearRequestLog(): void;
  /** Most Graph requests in flight at once, for one ad account or overall. */
  peakConcurrency(adAccountId?: string): number;
  /** Back to the seeded state: seeded accounts and tokens, no audiences, no faults, empty log, fresh rate limits. */
  reset(): void;
  /** Writes the data file now (no-op without one). */
  save(): Promise<void>;
}

export interface ControlSeeds {
  tokens: readonly TokenSeed[];
  adAccounts: readonly AdAccountSeed[];
  flags: Partial<EmulatorFlags>;
  rateLimit: Partial<RateLimitConfig>;
  appSecret: string | undefined;
}

export function createControl(rt: EmulatorRuntime, seeds: ControlSeeds, save: () => Promise<void>): EmulatorControl {
  const audienceRecord = (id: string): AudienceRecord => {
    const audience = rt.store.audiences.get(id);
    if (!audience) throw new Error(`No audience with id ${id} in the emulator`);
    settleExpiredReplace(rt.store, audience, rt.clock.now(), rt.flags.sessionWindowMs);
    return audience;
  };
  const tokenRecord = (token: string) => {
    const record = rt.store.tokens.get(token);
    if (!record) throw new Error('No such token in the emulator; add it first with addToken');
    return record;
  };
  const accountRecord = (id: string) => {
    const record = rt.store.accounts.get(stripActPrefix(id));
    if (!record) throw new Error(`No ad account ${id} in the emulator; add it first with addAdAccount`);
    return record;
  };

  return {
    members: (id) => audienceRecord(id).members.list(),
    audience: (id) => (rt.store.audiences.has(id) ? summarize(audienceRecord(id)) : undefined),
    audiences: () => [...rt.store.audiences.keys()].map((id) => summarize(audienceRecord(id))),
    setAudienceStatus(id, code, fields) {
      if (!Number.isInteger(code) || code < 0) throw new Error(`Status code must be a non-negative integer, got ${code}`);
      const audience = audienceRecord(id);
      audience.operationStatus = code;
      audience.fieldsViolatingIntegrityPolicy = fields ?? (code === 471 ? ['EMAIL'] : []);
    },
    setLookalikeDependency(id, dependent) {
      audienceRecord(id).hasLookalikes = dependent;
    },
    failNextReplace(id) {
      audienceRecord(id).failNextReplace = true;
    },
    addAdAccount: (account) => void rt.store.putAccount(account),
    setTos(id, accepted) {
      accountRecord(id).tosAccepted = accepted;
    },
    addToken: (token) => void rt.store.putToken(token),
    setTokenState(token, state) {
      tokenRecord(token).state = state;
    },
    setScopes(token, scopes) {
      tokenRecord(token).scopes = [...scopes];
    },
    setAppSecret(secret) {
      rt.appSecret = secret;
    },
    setFaults: (faults) => rt.faults.configure(faults),
    faults: () => rt.faults.current(),
    setRateLimit: (update) => rt.limiter.configure(update),
    rateLimit: () => rt.limiter.settings(),
    setFlags(flags) {
      Object.assign(rt.flags, flags);
    },
    flags: () => ({ ...rt.flags }),
    now: () => rt.clock.now(),
    advanceClock: (ms) => rt.clock.advance(ms),
    requestLog: () => rt.log.list(),
    clearRequestLog: () => rt.log.clear(),
    peakConcurrency: (adAccountId) => rt.log.peakConcurrency(adAccountId),
    reset() {
      rt.store.clear();
      rt.store.seed(seeds);
      Object.assign(rt.flags, DEFAULT_FLAGS, seeds.flags);
      rt.limiter.reset(seeds.rateLimit);
      rt.faults.reset();
      rt.log.clear();
      rt.appSecret = seeds.appSecret;
    },
    save,
  };
}

function summarize(a: AudienceRecord): AudienceSummary {
  return {
    id: a.id,
    accountId: a.accountId,
    name: a.name,
    description: a.description,
    subtype: a.subtype,
    customerFileSource: a.customerFileSource,
    isValueBased: a.isValueBased,
    deleted: a.deleted,
    operationStatus: a.operationStatus,
    dataSource: a.dataSource,
    size: a.members.size,
    replaceInProgress: a.replace && { sessionId: a.replace.sessionId, startedAt: a.replace.startedAt, staged: a.replace.staging.size },
    hasLookalikes: a.hasLookalikes,
    timeCreated: a.timeCreated,
    timeUpdated: a.timeUpdated,
  };
}

