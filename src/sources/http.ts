// What the warehouses read over an HTTP API (Snowflake, Databricks) share: retrying only what the
// vendor documents as transient, waits an abort can cut short, cancelling running statements on
// SIGTERM, column-name matching, and the row stream that fetches a page only when it is consumed.
import { readFileSync } from 'node:fs';
import { errorText } from './sql.js';
import { PK_FIELD, SourceError, type Row, type StreamOptions } from './types.js';
import { dateFromMillis, decimalValue, integerValue } from './values.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/** About 6 s of retrying before a transient failure becomes the run's failure. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, firstDelayMs: 400, maxDelayMs: 4_000 };

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

/** The request got no HTTP answer (refused, reset, timed out) even after the retries allowed. */
export class NetworkError extends Error {
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

/** Full-jitter exponential backoff (what both vendors recommend), or the server's Retry-After. */
function backoff(attempt: number, policy: RetryPolicy, retryAfter: string | null): number {
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, policy.maxDelayMs * 4);
  const cap = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** attempt);
  return cap / 2 + Math.random() * (cap / 2);
}

/**
 * One HTTP exchange. Statuses listed as transient and (for idempotent requests) network failures are
 * retried with backoff; any other answer is returned for the caller to read the vendor's envelope.
 * @throws NetworkError when no answer came, StoppedError when the signal fired.
 */
export async function exchange(url: string, init: RequestInit, opts: ExchangeOptions): Promise<Response> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  for (let attempt = 0; ; attempt++) {
    throwIfStopped(opts.signal);
    let response: Response;
    try {
      response = await fetch(attempt > 0 && opts.retryUrl !== undefined ? opts.retryUrl : url, { ...init, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (err) {
      if (opts.signal?.aborted) throw new StoppedError('the read was stopped');
      if (!opts.retryNetworkErrors || attempt + 1 >= policy.attempts) throw new NetworkError(networkReason(err), { cause: err });
      await sleep(backoff(attempt, policy, null), opts.signal);
      continue;
    }
    if (!opts.retryStatuses.has(response.status) || attempt + 1 >= policy.attempts) return response;
    await response.body?.cancel().catch(() => {});
    await sleep(backoff(attempt, policy, response.headers.get('retry-after')), opts.signal);
  }
}

/** undici reports "fetch failed" with the socket error as the cause. */
function networkReason(err: unknown): string {
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
    throw new NetworkError(`the answer broke off: ${networkReason(err)}`, { cause: err });
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

// ---- cancelling running statements on SIGTERM / SIGINT ------------------------------------------

const running = new Set<() => Promise<void>>();
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
/** How long a signal waits for the cancel requests before the process goes down anyway. */
const CANCEL_ON_SIGNAL_MS = 5_000;

function onSignal(signal: NodeJS.Signals): void {
  // A process with its own handler (serve, worker) shuts down itself; closing the source cancels.
  if (process.listenerCount(signal) > 1) return;
  const cancels = [...running].map((cancel) => cancel().catch(() => {}));
  const deadline = new Promise((resolve) => setTimeout(resolve, CANCEL_ON_SIGNAL_MS).unref());
  void Promise.race([Promise.all(cancels), deadline]).finally(() => {
    for (const s of SIGNALS) process.off(s, onSignal);
    // Without our listener the signal's default action (exit) applies again.
    process.kill(process.pid, signal);
  });
}

/**
 * Registers a statement that runs in the warehouse: on SIGTERM or SIGINT in a process that does
 * not handle them itself, it is cancelled before the process exits (an abandoned statement would
 * run, and bill, on). Returns the function that unregisters it.
 */
export function cancelOnSignal(cancel: () => Promise<void>): () => void {
  if (running.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  running.add(cancel);
  return () => {
    if (!running.delete(cancel) || running.size > 0) return;
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}

// ---- column names -------------------------------------------------------------------------------

/** A name Snowflake and most SQL dialects read as an unquoted identifier. */
const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Exact, else (for a plain identifier) its upper-case form: how Snowflake resolves `user_id` to USER_ID. */
export function findColumnFoldingUpper(name: string, columns: readonly string[]): string | undefined {
  if (columns.includes(name)) return name;
  return PLAIN_IDENTIFIER.test(name) ? columns.find((c) => c === name.toUpperCase()) : undefined;
}

/** Exact, else the one column equal ignoring case (Databricks SQL names are case-insensitive); none when ambiguous. */
export function findColumnIgnoringCase(name: string, columns: readonly string[]): string | undefined {
  if (columns.includes(name)) return name;
  const lower = name.toLowerCase();
  const matches = columns.filter((c) => c.toLowerCase() === lower);
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * A projected or keyed read with its configured names (`user_id`) resolved to the model's columns
 * (USER_ID), and the names its rows are keyed by: those the config used, then `__pk`. A name not
 * found is kept as is, so the warehouse's SQL error names it.
 */
export function resolveRead(opts: StreamOptions, available: readonly string[], find: (name: string, columns: readonly string[]) => string | undefined): { opts: StreamOptions; keys?: string[] } {
  const resolve = (name: string) => find(name, available) ?? name;
  return {
    opts: { ...opts, ...(opts.columns ? { columns: opts.columns.map(resolve) } : {}), ...(opts.orderByKey === undefined ? {} : { orderByKey: resolve(opts.orderByKey) }) },
    ...(opts.columns ? { keys: [...opts.columns, ...(opts.orderByKey === undefined ? [] : [PK_FIELD])] } : {}),
  };
}

// ---- rows ---------------------------------------------------------------------------------------

export type Convert = (text: string) => unknown;
export const asText: Convert = (t) => t;

/** Digits in a number's text (sign and point left out). */
const digitCount = (t: string) => t.length - (t.charCodeAt(0) === 45 ? 1 : 0) - (t.includes('.') ? 1 : 0);

/** An integer's text: a number while exact, else the decimal text (ids never lose digits). */
export const integerText: Convert = (text) => {
  if (digitCount(text) <= 15) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  try {
    return integerValue(BigInt(text));
  } catch {
    return text;
  }
};

/** A decimal's text: a number when a double holds it exactly, else the text. */
export const decimalText: Convert = (text) => {
  if (digitCount(text) <= 15) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return decimalValue(text);
};

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

/** Nested values (VARIANT, OBJECT, ARRAY, STRUCT, MAP) as JS values, so identity drops them with a reason. */
export const parseNested: Convert = (text) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

const ISO_TIMESTAMP = /^(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/;

/** `2024-01-15T12:34:56.789Z` (or without zone: read as UTC) to a Date; anything else stays text. */
export const isoTimestamp: Convert = (text) => {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return text;
  const ms = Math.floor(Number(`0${m[7] ?? ''}`) * 1000);
  let t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z') {
    const digits = zone.replace(':', '');
    const minutes = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5));
    t -= (digits.startsWith('-') ? -1 : 1) * minutes * 60_000;
  }
  return dateFromMillis(t) ?? text;
};

/** `YYYY-MM-DD` at UTC midnight; anything else stays text. */
export const isoDate: Convert = (text) => {
  const m = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return text;
  return dateFromMillis(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) ?? text;
};

/** The read's failure as a SourceError: stopped, connection lost, or the vendor's own error. */
export function readFailure(label: string, vendor: string, where: string, err: unknown, what: string): SourceError {
  if (err instanceof SourceError) return err;
  if (err instanceof StoppedError) return new SourceError(`${label}: the read was stopped before the model was read to the end`, { cause: err });
  if (err instanceof NetworkError) return new SourceError(`${label}: lost the connection to ${vendor} at ${where} (${err.message}); check the network and the source's settings, then run again`, { cause: err });
  return new SourceError(`${label}: ${vendor} ${what}: ${errorText(err)}`, { cause: err });
}

// ---- messages -----------------------------------------------------------------------------------

/** Words after which a quoted name is an object's name, kept in messages; any other quoted text may be a row's value. */
const NAME_BEFORE_QUOTE = /(object|identifier|table|view|schema|database|catalog|warehouse|role|column|function|user|stage|integration)\s*$/i;
const MAX_VENDOR_MESSAGE = 400;

/**
 * A vendor's error text fit for run history: quoted values other than object names are blanked (a
 * conversion error quotes the row's value, which may be an email) and the text is kept short.
 */
export function redactVendorMessage(message: string): string {
  const redacted = message.replace(/'(?:[^'\\]|\\.|'')*'/g, (quoted, offset: number, all: string) =>
    NAME_BEFORE_QUOTE.test(all.slice(Math.max(0, offset - 24), offset)) ? quoted : "'…'",
  );
  const oneLine = redacted.replace(/\s*\n\s*/g, ' ').trim();
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
