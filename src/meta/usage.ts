import { isRecord } from './json.js';

/** What Meta's usage headers say about how close we are to (or how long we stay in) a rate limit. */
export interface UsageInfo {
  /** Highest usage percentage (0-100+) across X-Business-Use-Case-Usage, X-App-Usage and X-Ad-Account-Usage. */
  maxUsagePct: number;
  /** Longest estimated_time_to_regain_access over all BUC entries (sent in minutes), in ms; null if none > 0. */
  regainAccessMs: number | null;
  /** Retry-After (seconds or an HTTP date) in ms; null if absent or unreadable. */
  retryAfterMs: number | null;
}

const MINUTE_MS = 60_000;

/**
 * Reads the usage headers. Each holds a JSON string; a missing or malformed header counts as no usage
 * (Meta omits them when usage is near zero), never as an error.
 */
export function parseUsageHeaders(headers: Headers, now: () => number = Date.now): UsageInfo {
  let maxUsagePct = 0;
  let regainMinutes = 0;

  const buc = readJsonHeader(headers, 'x-business-use-case-usage');
  if (isRecord(buc)) {
    // Keyed by business-object id, each holding an array of entries (one per BUC type).
    for (const entries of Object.values(buc)) {
      for (const entry of Array.isArray(entries) ? entries : [entries]) {
        if (!isRecord(entry)) continue;
        maxUsagePct = Math.max(maxUsagePct, pct(entry.call_count), pct(entry.total_cputime), pct(entry.total_time));
        regainMinutes = Math.max(regainMinutes, pct(entry.estimated_time_to_regain_access));
      }
    }
  }

  const app = readJsonHeader(headers, 'x-app-usage');
  if (isRecord(app)) {
    maxUsagePct = Math.max(maxUsagePct, pct(app.call_count), pct(app.total_cputime), pct(app.total_time));
  }

  const account = readJsonHeader(headers, 'x-ad-account-usage');
  if (isRecord(account)) maxUsagePct = Math.max(maxUsagePct, pct(account.acc_id_util_pct));

  return {
    maxUsagePct,
    regainAccessMs: regainMinutes > 0 ? regainMinutes * MINUTE_MS : null,
    retryAfterMs: parseRetryAfter(headers.get('retry-after'), now),
  };
}

function parseRetryAfter(value: string | null, now: () => number): number | null {
  if (value === null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now());
}

function readJsonHeader(headers: Headers, name: string): unknown {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function pct(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
}
