/**
 * Rolling-hour call budgets per ad account (and one for the app), with Meta's usage headers (docs/graph-api.md, "Rate limits").
 * Calls are counted in one-minute buckets, so a throttled account regains access as its oldest minutes age out.
 */
import { errors } from './errors.js';
import { DEFAULT_RATE_LIMIT, type RateLimitConfig } from './options.js';

const MINUTE = 60_000;
const WINDOW_MINUTES = 60;
/** The app-wide budget is this many times the per-account one, except when the app bucket (code 4) is the limit. */
const APP_BUDGET_FACTOR = 10;
const ACCESS_TIER = 'standard_access';

export interface RateLimitUpdate extends Partial<RateLimitConfig> {
  /** Sets the budget of this ad account only. */
  adAccountId?: string;
}

export class RateLimiter {
  private config: RateLimitConfig;
  private readonly accountBudgets = new Map<string, number>();
  /** counter key -> minute index -> calls */
  private readonly counters = new Map<string, Map<number, number>>();

  constructor(config: Partial<RateLimitConfig> = {}) {
    this.config = { ...DEFAULT_RATE_LIMIT, ...config };
  }

  configure(update: RateLimitUpdate): void {
    const { adAccountId, ...rest } = update;
    if (adAccountId !== undefined && rest.budgetPerHour !== undefined) this.accountBudgets.set(adAccountId, rest.budgetPerHour);
    else if (rest.budgetPerHour !== undefined) this.config.budgetPerHour = rest.budgetPerHour;
    if (rest.kind !== undefined) this.config.kind = rest.kind;
  }

  settings(): RateLimitConfig & { perAccount: Record<string, number> } {
    return { ...this.config, perAccount: Object.fromEntries(this.accountBudgets) };
  }

  reset(config: Partial<RateLimitConfig> = {}): void {
    this.config = { ...DEFAULT_RATE_LIMIT, ...config };
    this.accountBudgets.clear();
    this.counters.clear();
  }

  /** Counts one call, or throws the configured throttling error when the limiting bucket is at 100%. */
  admit(accountId: string | undefined, now: number): void {
    const limiting = this.config.kind === 4 ? 'app' : accountId === undefined ? undefined : `act:${accountId}`;
    if (limiting !== undefined) {
      const budget = this.budgetOf(limiting);
      if (this.used(limiting, now) >= budget) {
        const minutes = this.minutesToRegain(limiting, budget, now);
        throw errors.throttled(this.config.kind, minutes, this.headers(accountId, now, minutes));
      }
    }
    this.count('app', now);
    if (accountId !== undefined) this.count(`act:${accountId}`, now);
  }

  /** Usage headers; `forcedRegainMinutes` reports the account as throttled (100%) for that long. */
  headers(accountId: string | undefined, now: number, forcedRegainMinutes?: number): Record<string, string> {
    const forced = forcedRegainMinutes !== undefined;
    const appPct = forced && this.config.kind === 4 ? 100 : this.percent('app', now);
    const headers: Record<string, string> = {
      'X-App-Usage': JSON.stringify({ call_count: appPct, total_cputime: half(appPct), total_time: half(appPct) }),
    };
    if (accountId === undefined) return headers;
    const key = `act:${accountId}`;
    const pct = forced ? 100 : this.percent(key, now);
    const regain = forcedRegainMinutes ?? (pct >= 100 ? this.minutesToRegain(key, this.budgetOf(key), now) : 0);
    headers['X-Ad-Account-Usage'] = JSON.stringify({
      acc_id_util_pct: pct,
      reset_time_duration: regain * 60,
      ads_api_access_tier: ACCESS_TIER,
    });
    headers['X-Business-Use-Case-Usage'] = JSON.stringify({
      [accountId]: [
        {
          type: 'custom_audience',
          call_count: pct,
          total_cputime: half(pct),
          total_time: half(pct),
          estimated_time_to_regain_access: regain,
          ads_api_access_tier: ACCESS_TIER,
        },
      ],
    });
    return headers;
  }

  private budgetOf(key: string): number {
    if (key === 'app') return this.config.kind === 4 ? this.config.budgetPerHour : this.config.budgetPerHour * APP_BUDGET_FACTOR;
    return this.accountBudgets.get(key.slice(4)) ?? this.config.budgetPerHour;
  }

  private percent(key: string, now: number): number {
    const budget = this.budgetOf(key);
    return budget <= 0 ? 100 : Math.min(100, Math.floor((this.used(key, now) / budget) * 100));
  }

  private buckets(key: string, now: number): Map<number, number> {
    let buckets = this.counters.get(key);
    if (!buckets) {
      buckets = new Map();
      this.counters.set(key, buckets);
    }
    const oldest = minuteOf(now) - WINDOW_MINUTES + 1;
    for (const minute of buckets.keys()) if (minute < oldest) buckets.delete(minute);
    return buckets;
  }

  private used(key: string, now: number): number {
    let sum = 0;
    for (const n of this.buckets(key, now).values()) sum += n;
    return sum;
  }

  private count(key: string, now: number): void {
    const buckets = this.buckets(key, now);
    const minute = minuteOf(now);
    buckets.set(minute, (buckets.get(minute) ?? 0) + 1);
  }

  /** Whole minutes until enough old buckets age out to fall below the budget (at least 1). */
  private minutesToRegain(key: string, budget: number, now: number): number {
    const buckets = [...this.buckets(key, now).entries()].sort((a, b) => a[0] - b[0]);
    let used = buckets.reduce((s, [, n]) => s + n, 0);
    const current = minuteOf(now);
    for (const [minute, n] of buckets) {
      used -= n;
      if (used < budget) return Math.max(1, minute + WINDOW_MINUTES - current);
    }
    return WINDOW_MINUTES;
  }
}

function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE);
}

function half(pct: number): number {
  return Math.floor(pct / 2);
}
