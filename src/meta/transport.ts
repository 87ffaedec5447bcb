import { backoffDelay, throttleDelay, type BackoffPolicy } from './backoff.js';
import {
  classifyGraphError,
  classifyTransportFailure,
  MetaApiError,
  type ClassifiedError,
  type ErrorContext,
  type TokenOwner,
} from './errors.js';
import { parseGraphJson } from './json.js';
import { appSecretProof } from './proof.js';
import type { GraphClientEvent } from './types.js';
import { parseUsageHeaders } from './usage.js';

export interface TransportOptions {
  accessToken: string;
  graphUrl: string;
  apiVersion: string;
  appSecret?: string;
  /** Named in re-authorize messages. */
  connection?: TokenOwner;
  retry: BackoffPolicy & { maxAttempts: number; maxThrottleWaits: number };
  maxThrottleWaitMs: number;
  requestTimeoutMs: number;
  sleep: (ms: number) => Promise<void>;
  onEvent: (e: GraphClientEvent) => void;
  random: () => number;
}

export interface GraphRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Below the version, e.g. `act_123/customaudiences`. */
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Sent as a JSON body: a value to serialize, or an already serialized string (uploads serialize once). */
  body?: Record<string, unknown> | string;
  /** Used to make error messages concrete (the ToS link needs the ad account). */
  context?: ErrorContext;
}

/**
 * One HTTP exchange with the Graph API plus the retry loop around it. The token travels only in the
 * Authorization header (never in a URL, where proxies log it), appsecret_proof in the query string.
 */
export class GraphTransport {
  private readonly proof: string | undefined;

  constructor(private readonly o: TransportOptions) {
    this.proof = o.appSecret ? appSecretProof(o.accessToken, o.appSecret) : undefined;
  }

  /** The request with transient failures retried and throttles waited out; returns the parsed body. */
  request(req: GraphRequest): Promise<unknown> {
    return this.withRetries(req, () => this.attempt(req));
  }

  /** Sends once. Resolves with the parsed JSON body of a 2xx response; throws a classified MetaApiError. */
  async attempt(req: GraphRequest): Promise<unknown> {
    const url = this.url(req);
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.accessToken}`, accept: 'application/json' };
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      // A Buffer body skips fetch's own string encoding pass, which shows up on 10 MB upload bodies.
      payload = Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
    }
    const started = performance.now();
    let status: number;
    let text: string;
    let responseHeaders: Headers;
    try {
      const res = await fetch(url, {
        method: req.method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      status = res.status;
      responseHeaders = res.headers;
      text = await res.text();
    } catch (err) {
      throw this.error(classifyTransportFailure(describeFetchFailure(err, this.o.requestTimeoutMs)), req);
    }
    const usage = parseUsageHeaders(responseHeaders);
    this.o.onEvent({
      type: 'request',
      method: req.method,
      path: req.path,
      status,
      durationMs: Math.round(performance.now() - started),
      maxUsagePct: usage.maxUsagePct,
    });
    let body: unknown;
    try {
      body = text === '' ? undefined : parseGraphJson(text);
    } catch {
      body = undefined; // an HTML error page or a truncated body: classified by status below
    }
    if (status >= 200 && status < 300 && body !== undefined) return body;
    if (status >= 200 && status < 300) {
      throw this.error(classifyTransportFailure(`HTTP ${status} with a body that is not JSON`), req);
    }
    throw this.error(classifyGraphError(status, body, responseHeaders, this.o.connection ? { connection: this.o.connection, ...req.context } : req.context), req);
  }

  /**
   * Runs `op` until it succeeds: transient failures back off exponentially with full jitter up to
   * retry.maxAttempts attempts; throttles wait as long as Meta's usage headers say, bounded by
   * maxThrottleWaitMs. Anything else is thrown at once.
   */
  async withRetries<T>(req: Pick<GraphRequest, 'method' | 'path'>, op: () => Promise<T>): Promise<T> {
    let transientFailures = 0;
    let throttles = 0;
    for (;;) {
      try {
        return await op();
      } catch (err) {
        if (!(err instanceof MetaApiError)) throw err;
        let delayMs: number;
        if (err.kind === 'transient') {
          transientFailures++;
          if (transientFailures >= this.o.retry.maxAttempts) {
            throw new MetaApiError(
              { ...err.toClassified(), detail: `${err.detail} (gave up after ${transientFailures} attempts)` },
              `${req.method} ${req.path} failed`,
            );
          }
          delayMs = backoffDelay(transientFailures, this.o.retry, this.o.random);
          this.o.onEvent({ type: 'retry', method: req.method, path: req.path, attempt: transientFailures, delayMs, code: err.code, subcode: err.subcode, reason: err.detail });
        } else if (err.kind === 'throttled') {
          throttles++;
          delayMs = throttleDelay(
            { regainAccessMs: err.regainAccessMs ?? null, retryAfterMs: err.retryAfterMs ?? null },
            throttles,
            this.o.retry,
            this.o.random,
          );
          if (delayMs > this.o.maxThrottleWaitMs || throttles > this.o.retry.maxThrottleWaits) {
            throw throttledTooLong(err, req, delayMs, throttles > this.o.retry.maxThrottleWaits);
          }
          this.o.onEvent({ type: 'throttle', method: req.method, path: req.path, waitMs: delayMs, code: err.code, subcode: err.subcode });
        } else {
          throw err;
        }
        await this.o.sleep(delayMs);
      }
    }
  }

  private url(req: GraphRequest): string {
    const url = new URL(`${this.o.graphUrl.replace(/\/+$/, '')}/${this.o.apiVersion}/${req.path}`);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    if (this.proof) url.searchParams.set('appsecret_proof', this.proof);
    return url.toString();
  }

  /** Builds the thrown error, making sure the token can never leak through Meta's message. */
  private error(c: ClassifiedError, req: GraphRequest): MetaApiError {
    const detail = c.detail.split(this.o.accessToken).join('[token]');
    return new MetaApiError({ ...c, detail }, `${req.method} ${req.path} failed`);
  }
}

function throttledTooLong(err: MetaApiError, req: Pick<GraphRequest, 'method' | 'path'>, waitMs: number, tooMany: boolean): MetaApiError {
  const retryAt = new Date(Date.now() + waitMs).toISOString();
  const why = tooMany ? 'Meta kept throttling after repeated waits' : `Meta asks for a ${formatDuration(waitMs)} wait, longer than maxThrottleWaitMs allows`;
  return new MetaApiError(
    {
      ...err.toClassified(),
      detail: `${err.detail} (${why})`,
      userAction: `Meta rate limit reached; run the sync again after ${retryAt}, or raise maxThrottleWaitMs to wait it out.`,
    },
    `${req.method} ${req.path} rate limited`,
  );
}

function formatDuration(ms: number): string {
  if (ms >= 60_000) return `${Math.ceil(ms / 60_000)} min`;
  return `${Math.ceil(ms / 1000)} s`;
}

function describeFetchFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no response within ${timeoutMs} ms`;
  }
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const what = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  return `connection failed before a response arrived (${what})`;
}
