/**
 * Sending one alert to one destination: a JSON POST, each try bounded by a timeout, tried again
 * with exponential backoff on a network error, a timeout, HTTP 429 or 5xx. Any other answer is
 * final. What it reports never holds the destination's URL beyond its scheme and host: a Slack
 * webhook's path is its key.
 */
import { slackBody, testMessage, webhookBody } from './message.js';
import type { AlertMessage } from './types.js';
import type { AlertDestination, Config } from '../config/index.js';

export interface DeliveryOptions {
  /** Tries in all (default 4). */
  readonly attempts?: number;
  /** Wait before the second try, doubled before each next one (default 2 s: 2, 4, 8 s). */
  readonly backoffMs?: number;
  /** Longest wait for one answer (default 10 s). */
  readonly timeoutMs?: number;
  /** Longest wait a receiver's Retry-After may ask for (default 60 s). */
  readonly maxRetryAfterMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_DELIVERY = { attempts: 4, backoffMs: 2_000, timeoutMs: 10_000, maxRetryAfterMs: 60_000 } as const;

export interface DeliveryResult {
  readonly delivered: boolean;
  readonly attempts: number;
  /** Why the last try failed; never the URL's path or query. */
  readonly error?: string;
}

type Destination = Pick<AlertDestination, 'name' | 'type' | 'url'>;

/** `ops (slack, https://hooks.slack.com)`: how logs and pages name a destination. */
export function describeDestination(d: Destination): string {
  return `${d.name} (${d.type}, ${originOf(d.url)})`;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}

/** The body a destination gets for a message. */
export function bodyFor(type: Destination['type'], message: AlertMessage): unknown {
  return type === 'slack' ? slackBody(message) : webhookBody(message);
}

interface Attempt {
  ok: boolean;
  retry: boolean;
  error?: string;
  retryAfterMs?: number;
}

export async function deliver(destination: Destination, message: AlertMessage, options: DeliveryOptions = {}): Promise<DeliveryResult> {
  const attempts = Math.max(1, options.attempts ?? DEFAULT_DELIVERY.attempts);
  const backoff = options.backoffMs ?? DEFAULT_DELIVERY.backoffMs;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const body = JSON.stringify(bodyFor(destination.type, message));
  let last: Attempt = { ok: false, retry: false };
  for (let i = 1; i <= attempts; i++) {
    last = await attempt(destination, body, options.timeoutMs ?? DEFAULT_DELIVERY.timeoutMs);
    if (last.ok) return { delivered: true, attempts: i };
    if (!last.retry || i === attempts) return { delivered: false, attempts: i, error: `${last.error ?? 'not delivered'}${last.retry ? ` (after ${i} tries)` : ''}` };
    const wait = backoff * 2 ** (i - 1);
    await sleep(last.retryAfterMs !== undefined ? Math.min(options.maxRetryAfterMs ?? DEFAULT_DELIVERY.maxRetryAfterMs, Math.max(wait, last.retryAfterMs)) : wait);
  }
  return { delivered: false, attempts, error: last.error ?? 'not delivered' };
}

async function attempt(destination: Destination, body: string, timeoutMs: number): Promise<Attempt> {
  const origin = originOf(destination.url);
  let res: Response;
  try {
    res = await fetch(destination.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'audience-sync' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    return { ok: false, retry: true, error: networkError(e, origin, timeoutMs) };
  }
  // Read the answer (it frees the connection); a receiver's error text helps, cut short and cleaned.
  const text = await res.text().catch(() => '');
  if (res.ok) return { ok: true, retry: false };
  const detail = cleanAnswer(text, destination.url);
  const error = `${origin} answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`;
  if (res.status === 429 || res.status >= 500) {
    const after = Number(res.headers.get('retry-after'));
    return { ok: false, retry: true, error, ...(Number.isFinite(after) && after >= 0 ? { retryAfterMs: after * 1000 } : {}) };
  }
  const hint =
    res.status === 404 || res.status === 403 || res.status === 410
      ? ' (the webhook URL is wrong, revoked or its channel is gone: create a new one and update the config)'
      : res.status === 400
        ? ' (the receiver refused the message)'
        : '';
  return { ok: false, retry: false, error: `${error}${hint}` };
}

function networkError(e: unknown, origin: string, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer from ${origin} within ${timeoutMs / 1000} s`;
  const code = err.cause?.code;
  if (code === 'ECONNREFUSED') return `${origin} refused the connection (ECONNREFUSED): is the receiver running?`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the host of ${origin} (${code})`;
  return `cannot reach ${origin}${code ? ` (${code})` : ''}`;
}

/** At most 200 characters of the receiver's answer, on one line, without the URL's secret path. */
function cleanAnswer(text: string, url: string): string {
  let path = '';
  try {
    const u = new URL(url);
    path = `${u.pathname}${u.search}`;
  } catch {
    // Never a URL the config accepted.
  }
  let out = text.replace(/\s+/g, ' ').trim();
  if (path.length > 1) out = out.split(path).join('/<redacted>');
  return out.length > 200 ? `${out.slice(0, 199)}…` : out;
}

/**
 * `audience-sync alerts test`: a sample alert (a made-up sync, no data of any run) to every
 * destination of the config at once, with each outcome.
 */
export function sendTestAlerts(
  config: Pick<Config, 'alerts' | 'server'>,
  options: DeliveryOptions & { now?: Date } = {},
): Promise<Array<{ destination: AlertDestination; result: DeliveryResult }>> {
  const now = options.now ?? new Date();
  return Promise.all(
    (config.alerts ?? []).map(async (destination) => ({ destination, result: await deliver(destination, testMessage(destination.name, config.server?.publicUrl, now), options) })),
  );
}
