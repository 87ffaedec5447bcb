/**
 * Who may use the service and how state-changing requests are protected:
 *
 * - A bind address other than loopback needs an admin token (`AUDIENCE_SYNC_ADMIN_TOKEN`).
 * - With a token, API calls (and /metrics, unless `server.publicMetrics`) carry `Authorization: Bearer
 *   <token>` (or a logged-in dashboard session), and the dashboard asks for the token once on a login
 *   form, then uses an HttpOnly session cookie. Wrong tokens are logged and, past a few, throttled.
 * - Sessions are stored only at login (with no token: at a visitor's first form); an anonymous
 *   visitor's CSRF token is derived from a random cookie, so visitors cannot crowd out sessions.
 * - Forms carry a per-session CSRF token; every state-changing request from a browser must come from
 *   our own origin (Origin / Sec-Fetch-Site), and JSON API calls without a Bearer token must not use
 *   the content types a cross-site form can send.
 * - The Host header must be one we serve (against DNS rebinding onto a loopback port).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from './context.js';
import { HttpError, parseCookies } from './http.js';

export const ADMIN_TOKEN_ENV = 'AUDIENCE_SYNC_ADMIN_TOKEN';
export const SESSION_COOKIE = 'audience_sync_session';
/** A visitor's random value its CSRF token is derived from, before it has a session. */
export const VISITOR_COOKIE = 'audience_sync_visitor';
const SESSION_TTL_MS = 12 * 3600_000;
const MAX_SESSIONS = 10_000;

export class ServeRefusedError extends Error {
  override readonly name = 'ServeRefusedError';
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The admin token to require, or undefined on a loopback bind without one.
 * @throws ServeRefusedError for a non-loopback bind without a token (or a token too short to be one).
 */
export function adminTokenFor(host: string, env: NodeJS.ProcessEnv): string | undefined {
  const token = env[ADMIN_TOKEN_ENV]?.trim() || undefined;
  if (token !== undefined && token.length < 16) {
    throw new ServeRefusedError(`${ADMIN_TOKEN_ENV} is too short: use at least 16 random characters, e.g. the output of \`openssl rand -hex 24\``);
  }
  if (token === undefined && !isLoopbackHost(host)) {
    throw new ServeRefusedError(
      `refusing to listen on ${host} without an admin token: anyone who can reach it could run syncs. ` +
        `Set ${ADMIN_TOKEN_ENV} (e.g. \`export ${ADMIN_TOKEN_ENV}=$(openssl rand -hex 24)\`), or bind to 127.0.0.1`,
    );
  }
  return token;
}

export function tokensEqual(given: string, expected: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export interface Session {
  readonly id: string;
  readonly csrf: string;
  authenticated: boolean;
  expiresAt: number;
  /** Pending "Connect with Facebook" state: the OAuth `state` we sent, and until when it is valid. */
  /** A "Connect with Facebook" under way: its state, and the connection the token is for. */
  oauth?: { state: string; expiresAt: number; connection: string };
  /** One-shot message for the next page. */
  flash?: { kind: 'ok' | 'warn' | 'error'; text: string };
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Signs visitors' CSRF tokens; a restart invalidates forms open before it, as it does sessions. */
  private readonly secret = randomBytes(32);

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.sessions.size;
  }

  /**
   * A visitor without a stored session: an unsaved Session whose CSRF token is derived from a random
   * cookie (set now when missing). Nothing is stored, so anonymous requests cannot fill the store.
   */
  visitor(req: IncomingMessage, res: ServerResponse, opts: { authenticated: boolean; secure: boolean }): Session {
    let nonce = parseCookies(req.headers.cookie).get(VISITOR_COOKIE);
    if (nonce === undefined || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = randomBytes(32).toString('base64url');
      res.appendHeader('Set-Cookie', `${VISITOR_COOKIE}=${nonce}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(SESSION_TTL_MS / 1000)}${opts.secure ? '; Secure' : ''}`);
    }
    const csrf = createHmac('sha256', this.secret).update(nonce).digest('base64url');
    return { id: '', csrf, authenticated: opts.authenticated, expiresAt: this.now() + SESSION_TTL_MS };
  }

  isStored(s: Session): boolean {
    return s.id !== '' && this.sessions.get(s.id) === s;
  }

  get(req: IncomingMessage): Session | undefined {
    const id = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  create(authenticated: boolean): Session {
    if (this.sessions.size >= MAX_SESSIONS) this.prune();
    const s: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), authenticated, expiresAt: this.now() + SESSION_TTL_MS };
    this.sessions.set(s.id, s);
    return s;
  }

  destroy(s: Session): void {
    this.sessions.delete(s.id);
  }

  cookie(s: Session, secure: boolean): string {
    return `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(SESSION_TTL_MS / 1000)}${secure ? '; Secure' : ''}`;
  }

  clearCookie(): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
    // Still full: drop the oldest (Map keeps insertion order).
    for (const id of this.sessions.keys()) {
      if (this.sessions.size < MAX_SESSIONS) break;
      this.sessions.delete(id);
    }
  }
}

/**
 * Counts wrong admin tokens per client address: past `limit` within `windowMs`, the address gets 429
 * (every token, right or wrong) until the window ends. A right token clears the count.
 */
export class TokenThrottle {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    readonly limit = 10,
    private readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds before the client may try a token again; 0 when it may now. */
  retryAfter(client: string): number {
    const f = this.current(client);
    return f && f.count >= this.limit ? Math.max(1, Math.ceil((f.since + this.windowMs - this.now()) / 1000)) : 0;
  }

  /** Records a wrong token; returns the client's failures in the window. */
  fail(client: string): number {
    const f = this.current(client) ?? { count: 0, since: this.now() };
    f.count++;
    this.failures.delete(client);
    this.failures.set(client, f);
    // Bounded: forget the oldest clients first (Map keeps insertion order).
    for (const key of this.failures.keys()) {
      if (this.failures.size <= 10_000) break;
      this.failures.delete(key);
    }
    return f.count;
  }

  succeed(client: string): void {
    this.failures.delete(client);
  }

  private current(client: string): { count: number; since: number } | undefined {
    const f = this.failures.get(client);
    if (f && this.now() - f.since >= this.windowMs) {
      this.failures.delete(client);
      return undefined;
    }
    return f;
  }
}

/**
 * Whether `given` is the admin token; a wrong one is logged and counted.
 * @throws HttpError 429 while the client's address is throttled.
 */
export function checkAdminToken(ctx: RequestContext, given: string, via: 'bearer' | 'login'): boolean {
  const { adminToken, throttle, log, metrics } = ctx.app;
  const client = ctx.req.socket.remoteAddress ?? 'unknown';
  const wait = throttle.retryAfter(client);
  if (wait > 0) {
    ctx.res.setHeader('Retry-After', String(wait));
    throw new HttpError(429, `too many wrong admin tokens from this address: try again in ${wait} s`);
  }
  if (adminToken !== undefined && tokensEqual(given, adminToken)) {
    throttle.succeed(client);
    return true;
  }
  const failures = throttle.fail(client);
  metrics.inc('audience_sync_admin_token_failures_total', { via });
  log.warn({ event: 'admin_token_rejected', via, client, failures }, `refused a wrong admin token (${via}) from ${client}`);
  if (failures === throttle.limit) {
    log.warn({ event: 'admin_token_throttled', client, retryAfterSeconds: throttle.retryAfter(client) }, `${client} sent ${failures} wrong admin tokens: refusing its tokens for a while`);
  }
  return false;
}

export function bearerToken(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** The hosts a request may name in its Host header: loopback names on our port, and the public URL's host. */
export function hostAllowed(hostHeader: string | undefined, bindHost: string, port: number, publicUrl: string | undefined): boolean {
  if (!hostHeader) return false;
  const wanted = hostHeader.toLowerCase();
  if (publicUrl !== undefined && new URL(publicUrl).host.toLowerCase() === wanted) return true;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(wanted);
  if (!m) return false;
  const [, name = '', p] = m;
  if (p !== undefined && Number(p) !== port) return false;
  if (isLoopbackHost(name)) return true;
  // A non-loopback bind (admin token required) is reached by whatever name points at it.
  return !isLoopbackHost(bindHost);
}

/**
 * Refuses a state-changing request a browser sent from another site: a foreign Origin, or
 * Sec-Fetch-Site cross-site. Requests without either (curl, scripts) pass; they carry no cookies
 * unless someone gave them one.
 */
export function assertSameOrigin(req: IncomingMessage, ownOrigins: readonly string[]): void {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && !ownOrigins.includes(origin.toLowerCase())) {
    throw new HttpError(403, 'cross-site request refused: this request came from another site (Origin does not match)');
  }
  if (origin === 'null') throw new HttpError(403, 'cross-site request refused: the request has an opaque origin');
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') {
    throw new HttpError(403, 'cross-site request refused: the browser reports this request came from another site');
  }
}

/** A cross-site HTML form can only send these content types; a JSON API call never needs them. */
export function assertNotFormEncoded(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data' || type === 'text/plain') {
    throw new HttpError(415, 'send API requests as application/json (or with no body); form-encoded requests are refused to protect against cross-site requests');
  }
}

export function assertCsrfToken(session: Session | undefined, given: string | null): void {
  if (!session || !given || !tokensEqual(given, session.csrf)) {
    throw new HttpError(403, 'the form is missing its security token or it has expired: reload the page and try again');
  }
}
