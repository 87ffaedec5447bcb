/** A small router and response helpers over node:http; routes are data, so the OpenAPI test can list them. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SafeHtml } from './html.js';

export type Method = 'GET' | 'POST' | 'DELETE';

/**
 * `api`: JSON, admin token or session when one is required; `page`: HTML dashboard, session login;
 * `metrics`: like `api` unless `server.publicMetrics` opens it; `public`: health check, OpenAPI document.
 */
export type RouteKind = 'api' | 'page' | 'metrics' | 'public';

export interface Route<C> {
  method: Method;
  /** `/api/syncs/:name/runs`: `:param` segments match one path segment. */
  path: string;
  kind: RouteKind;
  handle(ctx: C, params: Record<string, string>): Promise<void> | void;
}

/** A failure to report to the client with this status; the message must be safe to show. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

interface Compiled<C> {
  route: Route<C>;
  pattern: RegExp;
  names: string[];
}

export type RouteMatch<C> = { route: Route<C>; params: Record<string, string> } | { allowed: Method[] } | undefined;

export class Router<C> {
  private readonly compiled: Compiled<C>[] = [];

  constructor(routes: ReadonlyArray<Route<C>>) {
    for (const route of routes) {
      const names: string[] = [];
      const source = route.path
        .split('/')
        .map((seg) => {
          if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(seg.slice(1));
          return '([^/]+)';
        })
        .join('/');
      this.compiled.push({ route, pattern: new RegExp(`^${source}/?$`), names });
    }
  }

  get routes(): Array<Route<C>> {
    return this.compiled.map((c) => c.route);
  }

  match(method: string, pathname: string): RouteMatch<C> {
    const allowed: Method[] = [];
    for (const c of this.compiled) {
      const m = c.pattern.exec(pathname);
      if (!m) continue;
      if (c.route.method !== method && !(method === 'HEAD' && c.route.method === 'GET')) {
        allowed.push(c.route.method);
        continue;
      }
      const params: Record<string, string> = {};
      try {
        c.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? '')));
      } catch {
        throw new HttpError(400, 'the URL is not valid: a path segment is badly percent-encoded');
      }
      return { route: c.route, params };
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Pages carry no script at all; the policy keeps it that way. */
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendHtml(res: ServerResponse, status: number, page: SafeHtml, headers: Record<string, string> = {}): void {
  const text = `<!DOCTYPE html>\n${page.text}`;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Security-Policy': PAGE_CSP,
    'X-Frame-Options': 'DENY',
    ...headers,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, ...headers, Location: location, 'Content-Length': 0 });
  res.end();
}

const MAX_BODY_BYTES = 64 * 1024;
/** A body still arriving after this is refused (408), so a slow client cannot hold a request open. */
export const BODY_TIMEOUT_MS = 30_000;

export async function readBody(req: IncomingMessage, timeoutMs = BODY_TIMEOUT_MS): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  const reading = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([reading.next(), late]);
      if (next === 'late') throw new HttpError(408, `the request body did not arrive within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`);
      if (next.done) break;
      size += next.value.length;
      if (size > MAX_BODY_BYTES) throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`);
      chunks.push(next.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The JSON object body of an API request; an empty body is `{}`. */
export async function readJsonObject(req: IncomingMessage, timeoutMs = BODY_TIMEOUT_MS): Promise<Record<string, unknown>> {
  const text = await readBody(req, timeoutMs);
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

export async function readForm(req: IncomingMessage, timeoutMs = BODY_TIMEOUT_MS): Promise<URLSearchParams> {
  return new URLSearchParams(await readBody(req, timeoutMs));
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    try {
      cookies.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // A cookie we did not set; ignore it.
    }
  }
  return cookies;
}
