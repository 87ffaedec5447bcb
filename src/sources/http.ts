// What the warehouses read over an HTTP API (BigQuery, Snowflake, Databricks) share: retrying only
// what the vendor documents as transient (one backoff), waits an abort can cut short,
// and the row stream that fetches a page only when it is consumed.
import { readFileSync } from 'node:fs';
import { errorText } from './sql.js';
import { SourceError, type Row } from './types.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/** About 6 s of retrying before a transient failure becomes the run's failure. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, firstDelayMs: 400, maxDelayMs: 4_000 };

/** A failure worth trying again (the vendor documents it as transient); `retryAfterMs` is the server's Retry-After. */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The request got no HTTP answer (refused, reset, timed out) even after the retries allowed. */
export class NetworkError extends TransientError {
  override readonly name = 'NetworkError';
}

/** The read was stopped through its AbortSignal. */
export class StoppedError extends Error {
  override readonly name = 'StoppedError';
}

export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StoppedError('the read was stopped');
}

/** Resolves after `ms`, or rejects with StoppedError when the signal fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new StoppedError('the read was stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new StoppedError('the read was stopped'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface BackoffOptions {
  readonly retry?: RetryPolicy | undefined;
  readonly signal?: AbortSignal | undefined;
  /** What may be tried again (default: TransientError). */
  readonly transient?: (err: unknown) => boolean;
}

/**
 * Calls `fn` until it succeeds, throws what is not transient, or has used the policy's attempts:
 * full-jitter exponential backoff in between (what Google, Snowflake and Databricks recommend), or
 * the server's Retry-After. The last attempt's error is thrown as it is.
 */
export async function withBackoff<T>(fn: (attempt: number) => Promise<T>, opts: BackoffOptions = {}): Promise<T> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  const transient = opts.transient ?? ((err: unknown) => err instanceof TransientError);
  for (let attempt = 0; ; attempt++) {
    throwIfStopped(opts.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= policy.attempts || !transient(err) || opts.signal?.aborted) throw err;
      const after = err instanceof TransientError ? err.retryAfterMs : undefined;
      const cap = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** attempt);
      await sleep(after !== undefined ? Math.min(after, policy.maxDelayMs * 4) : cap / 2 + Math.random() * (cap / 2), opts.signal);
    }
  }
}

export interface ExchangeOptions {
  /** HTTP statuses the vendor documents as transient (retried with backoff). */
  readonly retryStatuses: ReadonlySet<number>;
  /** Whether a request that got no answer may be sent again (idempotent requests only). */
  readonly retryNetworkErrors: boolean;
  readonly signal?: AbortSignal | undefined;
  readonly retry?: RetryPolicy;
  /** Where a retry goes, when it differs (Snowflake marks a resubmission with retry=true). */
  readonly retryUrl?: string;
}

/** A transient answer, retried; the last one is returned to the caller instead. */
class RetriedAnswer extends TransientError {}

/**
 * One HTTP exchange. Statuses listed as transient and (for idempotent requests) network failures are
 * retried with backoff; any other answer (and the last transient one) is returned for the caller to
 * read the vendor's envelope.
 * @throws NetworkError when no answer came, StoppedError when the signal fired.
 */
export async function exchange(url: string, init: RequestInit, opts: ExchangeOptions): Promise<Response> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  return withBackoff(
    async (attempt) => {
      let response: Response;
      try {
        response = await fetch(attempt > 0 && opts.retryUrl !== undefined ? opts.retryUrl : url, { ...init, ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (err) {
        if (opts.signal?.aborted) throw new StoppedError('the read was stopped');
        throw new NetworkError(describeNetworkError(err), { cause: err });
      }
      if (!opts.retryStatuses.has(response.status) || attempt + 1 >= policy.attempts) return response;
      await response.body?.cancel().catch(() => {});
      const seconds = Number(response.headers.get('retry-after') ?? NaN);
      throw new RetriedAnswer(`HTTP ${response.status}`, Number.isFinite(seconds) && seconds >= 0 ? { retryAfterMs: seconds * 1000 } : {});
    },
    { retry: policy, signal: opts.signal, transient: (err) => err instanceof RetriedAnswer || (err instanceof NetworkError && opts.retryNetworkErrors) },
  );
}

/** undici reports "fetch failed" with the socket error as the cause. */
export function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const code = (cause as { code?: unknown } | null)?.code;
  const text = cause instanceof Error ? cause.message : errorText(err);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

/** The body as JSON, or undefined when it is not JSON (an HTML error page, an empty body). */
export async function readJson(response: Response, signal?: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    if (signal?.aborted) throw new StoppedError('the read was stopped');
    throw new NetworkError(`the answer broke off: ${describeNetworkError(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `host[:port]` of a URL for messages. */
export function describeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured URL';
  }
}

// ---- rows ---------------------------------------------------------------------------------------

export type Convert = (text: string) => unknown;
export const asText: Convert = (t) => t;

/** A float's text; NaN and infinities as numbers, anything unreadable stays text. */
export const realText: Convert = (text) => {
  const n = Number(text);
  return Number.isNaN(n) && text !== 'NaN' ? text : n;
};

/** Builds row objects from the warehouse's arrays of (text or null) cells, keyed by `names`. */
export function rowBuilder(names: readonly string[], converters: readonly Convert[]): (cells: ReadonlyArray<string | null>) => Row {
  const width = names.length;
  return (cells) => {
    const row: Row = {};
    for (let c = 0; c < width; c++) {
      const cell = cells[c];
      row[names[c]!] = cell === null || cell === undefined ? null : converters[c]!(cell);
    }
    return row;
  };
}

/**
 * Re-chunks pages of rows into chunks of `chunkRows`. A page is fetched only when the rows before it
 * were consumed, so at most one page (plus one chunk) is in memory.
 */
export async function* chunked(pages: AsyncIterable<Row[]>, chunkRows: number): AsyncGenerator<Row[]> {
  let pending: Row[] = [];
  for await (const page of pages) {
    let start = 0;
    if (pending.length > 0) {
      start = Math.min(page.length, chunkRows - pending.length);
      for (let i = 0; i < start; i++) pending.push(page[i]!);
      if (pending.length < chunkRows) continue;
      yield pending;
      pending = [];
    }
    for (; start + chunkRows <= page.length; start += chunkRows) yield page.slice(start, start + chunkRows);
    if (start < page.length) pending = page.slice(start);
  }
  if (pending.length > 0) yield pending;
}

/** The read's failure as a SourceError: stopped, connection lost, or the vendor's own error. */
export function readFailure(label: string, vendor: string, where: string, err: unknown, what: string): SourceError {
  if (err instanceof SourceError) return err;
  if (err instanceof StoppedError) return new SourceError(`${label}: the read was stopped before the model was read to the end`, { cause: err });
  if (err instanceof NetworkError) return new SourceError(`${label}: lost the connection to ${vendor} at ${where} (${err.message}); check the network and the source's settings, then run again`, { cause: err });
  return new SourceError(`${label}: ${vendor} ${what}: ${errorText(err)}`, { cause: err });
}

// ---- messages -----------------------------------------------------------------------------------

const MAX_VENDOR_MESSAGE = 400;

/**
 * A vendor's error text on one line and kept short (some echo the whole statement). Quoted values in
 * it are redacted where every source's errors are (openSource in index.ts), not here.
 */
export function vendorMessage(message: string): string {
  const oneLine = message.replace(/\s*\n\s*/g, ' ').trim();
  return oneLine.length > MAX_VENDOR_MESSAGE ? `${oneLine.slice(0, MAX_VENDOR_MESSAGE - 1)}…` : oneLine;
}

/** `audience-sync/<version>`: both vendors ask for a User-Agent naming the application. */
export const USER_AGENT = (() => {
  try {
    return `audience-sync/${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;
  } catch {
    return 'audience-sync';
  }
})();
