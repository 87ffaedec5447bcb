/**
 * `audience-sync serve`: the scheduler, the JSON API, the dashboard, "Connect with Facebook", /metrics
 * and /healthz on one node:http server. Startup refuses a non-loopback bind without an admin token
 * before opening anything.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config/index.js';
import { Workspace } from '../app/workspace.js';
import { AlertCenter, workspaceTokenStatus, type DeliveryOptions } from '../alerts/index.js';
import type { RunCounts } from '../engine/index.js';
import { connectionInfo, loadConnectedToken, secretKeyFromEnv, SecretKeyError } from '../app/tokens.js';
import { Scheduler, SyncRunner, type SchedulerClock } from '../scheduler/index.js';
import { apiRoutes } from './api-routes.js';
import type { RequestContext, ServerContext } from './context.js';
import { BODY_TIMEOUT_MS, HttpError, readForm, redirect, Router, sendHtml, sendJson, type Route } from './http.js';
import { Metrics } from './metrics.js';
import { ConfigReloader } from './reload.js';
import { MatchWatcher } from './match-watcher.js';
import { frameOf, pageRoutes, storedSession } from './page-routes.js';
import { systemRoutes } from './system-routes.js';
import { adminTokenFor, assertCsrfToken, assertNotFormEncoded, assertSameOrigin, bearerToken, checkAdminToken, hostAllowed, SessionStore, TokenThrottle } from './security.js';
import { SyncService } from './service.js';
import { errorPage } from './views/pages.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;

export interface ServeOptions {
  /** A config file, or an already loaded config. */
  config: string | Config;
  env?: NodeJS.ProcessEnv;
  /** Overrides `server.host` from the config (default 127.0.0.1). */
  host?: string;
  /** Overrides `server.port` (default 8080; 0 picks a free port). */
  port?: number;
  /** pino level; `silent` in tests. Default `info`. */
  logLevel?: string;
  logger?: Logger;
  /** Scheduler time source (tests). */
  clock?: SchedulerClock;
  /** How long shutdown waits for running syncs. Default 10 minutes. */
  shutdownTimeoutMs?: number;
  /** How often the config and model files are read again for edits (they are before each run too). Default 2 s; 0: only before runs. */
  configCheckMs?: number;
  /** How long a request body may take to arrive. Default 30 s. */
  bodyTimeoutMs?: number;
  /** How often Meta's match counts of finished runs are looked for. Default 5 min; 0: never in the background. */
  matchCheckMs?: number;
  /** Alerts: how often schedules (default 1 min) and the token (default 1 h) are checked (0: never in the background), and delivery retries. */
  alerts?: { checkMs?: number; tokenCheckMs?: number; delivery?: DeliveryOptions };
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  context: ServerContext;
  scheduler: Scheduler;
  alerts: AlertCenter;
  /** Stops the scheduler and the listener, waits for running syncs (up to the timeout), closes the workspace. */
  close(): Promise<void>;
}

/** Every route, in match order. Exported for the OpenAPI test. */
export const routes: Array<Route<RequestContext>> = [...systemRoutes, ...apiRoutes, ...pageRoutes];

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const config = typeof options.config === 'string' ? await loadConfig(options.config, env) : options.config;
  const host = options.host ?? config.server?.host ?? DEFAULT_HOST;
  const port = options.port ?? config.server?.port ?? DEFAULT_PORT;
  const adminToken = adminTokenFor(host, env); // throws before anything is opened
  const log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'audience-sync' } });

  const metrics = new Metrics();
  const ws = new Workspace(config, { onGraphEvent: (e) => metrics.recordGraphEvent(e) });
  const state = await ws.state();
  await useConnectedTokens(ws, metrics, log, env);
  warnIfConnectCannotStore(config, log, env);

  // Re-read before each run (and every few seconds): a run uses the config and model as they are now.
  const reloader = new ConfigReloader({
    env,
    log,
    current: () => ws.config,
    apply(next) {
      ws.reconfigure(next);
      scheduler.update(next.syncs);
    },
  });
  // Alerts are checked after each run and on a timer, and sent in the background: never on a run's path.
  const bound: { url?: string } = {};
  const alerts = new AlertCenter({
    config: () => ws.config,
    state: () => ws.state(),
    log,
    ownUrl: () => bound.url,
    tokenStatus: () => workspaceTokenStatus(ws),
    ...(options.clock ? { now: () => options.clock!.now() } : {}),
    ...(options.alerts?.delivery ? { delivery: options.alerts.delivery } : {}),
  });
  const runner = new SyncRunner({
    run: (name, opts) => {
      reloader.check();
      return ws.run(name, opts);
    },
    latestRunId: async (name) => (await state.listRuns({ sync: name, limit: 1 }))[0]?.id,
    exclusiveKey: (name) => {
      const source = ws.sync(name).source;
      // DuckDB reads each stream on its own connection; the other sources read one model at a time.
      const type = ws.config.sources[source]?.type;
      return type === undefined || type === 'duckdb' ? undefined : `source:${source}`;
    },
    onFinished: (name, outcome) => {
      if ('summary' in outcome) {
        const s = outcome.summary;
        metrics.recordRun(s);
        log.info({ event: 'run_finished', sync: name, runId: s.runId, status: s.status, counts: pickCounts(s.counts), error: s.error }, `run of ${name} finished: ${s.status}`);
        alerts.afterRun(name);
      } else {
        metrics.inc('audience_sync_runs_total', { sync: name, status: 'error' });
        log.warn({ event: 'run_not_started', sync: name, reason: messageOf(outcome.error) }, `run of ${name} did not start`);
      }
    },
  });
  const scheduler = new Scheduler({
    syncs: config.syncs,
    runner,
    lastRunStart: async (name) => (await state.listRuns({ sync: name, limit: 1 }))[0]?.startedAt ?? null,
    ...(options.clock ? { clock: options.clock } : {}),
    onEvent: (e) => {
      if (e.type === 'tick') log.info({ event: 'schedule_tick', sync: e.sync, at: e.at.toISOString(), catchUp: e.catchUp }, `scheduled run of ${e.sync}${e.catchUp ? ' (missed while the service was down)' : ''}`);
      else if (e.type === 'skipped') log.info({ event: 'schedule_skip', sync: e.sync, at: e.at.toISOString() }, `skipped a tick of ${e.sync}: ${e.reason}`);
      else log.warn({ event: 'schedule_start_failed', sync: e.sync, reason: messageOf(e.error) }, `scheduled run of ${e.sync} did not start`);
    },
  });

  const matches = new MatchWatcher({
    syncs: () => ws.config.syncs.map((s) => s.name),
    isRunning: (name) => runner.isRunning(name),
    pickUp: (name) => ws.pickUpMatches(name),
    log,
    // Meta's match rate arrives after the run: a drop in it is news then.
    onRecorded: (name) => alerts.afterRun(name),
  });

  const publicUrl = config.server?.publicUrl;
  const context: ServerContext = {
    ws,
    service: new SyncService(ws, runner, scheduler, metrics, env),
    metrics,
    sessions: new SessionStore(),
    log,
    env,
    adminToken,
    throttle: new TokenThrottle(),
    publicMetrics: config.server?.publicMetrics === true,
    bodyTimeoutMs: options.bodyTimeoutMs ?? BODY_TIMEOUT_MS,
    publicUrl,
    reloader,
    startedAt: new Date(),
  };
  const router = new Router(routes);
  const httpServer = createServer((req, res) => {
    handle(router, context, req, res, { host, port: boundPort() }).catch((e: unknown) => {
      log.error({ event: 'request_failed', reason: messageOf(e) }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error: see the service log' });
      else res.destroy();
    });
  });
  const boundPort = () => (httpServer.address() as AddressInfo | null)?.port ?? port;

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await ws.close();
    throw e;
  }
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort()}`;
  bound.url = url;
  log.info({ event: 'listening', url, syncs: config.syncs.length, login: adminToken !== undefined }, `audience-sync serving on ${url}`);
  // Before the catch-up runs start: a schedule missed while the service was down is reported.
  await alerts.checkSchedules();
  void alerts.checkTokens();
  alerts.watch({ scheduleMs: options.alerts?.checkMs ?? 60_000, tokenMs: options.alerts?.tokenCheckMs ?? 3_600_000 });
  await scheduler.start();
  reloader.start(options.configCheckMs ?? 2_000);
  matches.start(options.matchCheckMs ?? 5 * 60_000);

  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    port: boundPort(),
    context,
    scheduler,
    alerts,
    close() {
      closing ??= (async () => {
        reloader.stop();
        const matchesStopped = matches.stop();
        scheduler.stop();
        const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeIdleConnections();
        const running = runner.running();
        if (running.length > 0) log.info({ event: 'shutdown_wait', syncs: running }, `waiting for running syncs to finish: ${running.join(', ')}`);
        const drained = await runner.drain(options.shutdownTimeoutMs ?? 10 * 60_000);
        if (!drained) log.warn({ event: 'shutdown_timeout' }, 'running syncs did not finish in time; their next run resumes from the last committed batch');
        httpServer.closeAllConnections();
        await stopped;
        await matchesStopped;
        // Alerts still being sent after this stay "pending" in the state: the dashboard shows them as not delivered.
        await alerts.close();
        await ws.close();
        log.info({ event: 'stopped' }, 'audience-sync stopped');
      })();
      return closing;
    },
  };
}

/** Uses each token stored by "Connect with Facebook" when the key opens it. */
async function useConnectedTokens(ws: Workspace, metrics: Metrics, log: Logger, env: NodeJS.ProcessEnv): Promise<void> {
  const state = await ws.state();
  for (const c of Object.values(ws.config.connections)) {
    const info = await connectionInfo(state, c.name);
    if (!info) continue;
    try {
      const stored = await loadConnectedToken(state, secretKeyFromEnv(env), c.name);
      if (stored) ws.useToken(c.name, stored.accessToken);
      if (info.expiresAt) metrics.recordTokenExpiry(c.name, info.expiresAt, Object.keys(ws.config.connections).length > 1);
    } catch (e) {
      if (!(e instanceof SecretKeyError)) throw e;
      log.warn({ event: 'connected_token_unusable', connection: c.name, reason: e.message }, `the connected Meta token of connection "${c.name}" cannot be used (${e.message}); using ${c.at}.accessToken from the config`);
    }
  }
}

/** "Connect with Facebook" set up without the key its token is stored with fails only when clicked: say so now. */
function warnIfConnectCannotStore(config: Config, log: Logger, env: NodeJS.ProcessEnv): void {
  const connectable = Object.values(config.connections).filter((c) => c.appId !== undefined && c.appSecret !== undefined);
  if (connectable.length === 0) return;
  try {
    secretKeyFromEnv(env);
  } catch (e) {
    if (!(e instanceof SecretKeyError)) throw e;
    const where = connectable.map((c) => `${c.at}.appId, ${c.at}.appSecret`).join('; ');
    log.warn({ event: 'connect_without_secret_key' }, `"Connect with Facebook" is set up (${where}) but cannot store the token it gets: ${e.message}`);
  }
}

async function handle(router: Router<RequestContext>, app: ServerContext, req: IncomingMessage, res: ServerResponse, bind: { host: string; port: number }): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  let kind = 'unknown';
  res.once('finish', () => app.metrics.inc('audience_sync_http_requests_total', { kind, status: String(res.statusCode) }));
  if (!hostAllowed(req.headers.host, bind.host, bind.port, app.publicUrl)) {
    req.resume();
    return sendJson(res, 421, { error: 'this service does not answer to that Host name; use the address it listens on (or set server.publicUrl)' });
  }
  const url = new URL(req.url ?? '/', 'http://service.local');
  const origin = app.publicUrl ? new URL(app.publicUrl).origin : `http://${(req.headers.host ?? '').toLowerCase()}`;
  const ctx: RequestContext = { req, res, url, origin, session: app.sessions.get(req), form: undefined, app };
  try {
    const match = router.match(method, url.pathname);
    if (!match) throw new HttpError(404, `nothing at ${url.pathname}`);
    if ('allowed' in match) {
      res.setHeader('Allow', match.allowed.join(', '));
      throw new HttpError(405, `${method} is not allowed here (allowed: ${match.allowed.join(', ')})`);
    }
    kind = match.route.kind;
    const changesState = method !== 'GET' && method !== 'HEAD';
    if (kind === 'api' || (kind === 'metrics' && !app.publicMetrics)) authorizeApi(ctx, changesState);
    else if (match.route.kind === 'page') {
      const wentToLogin = await preparePage(ctx, url.pathname, method, changesState);
      if (wentToLogin) return;
    }
    await match.route.handle(ctx, match.params);
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    // A body that did not arrive in time is not waited for any longer: the connection closes.
    if (e.status === 408) res.setHeader('Connection', 'close');
    else req.resume();
    if (kind === 'page') sendHtml(res, e.status, errorPage(frameOf(ctx), e.status, e.message));
    else sendJson(res, e.status, { error: e.message, ...e.extra });
  }
}

function authorizeApi(ctx: RequestContext, changesState: boolean): void {
  const { adminToken } = ctx.app;
  const bearer = bearerToken(ctx.req);
  if (adminToken !== undefined && bearer !== undefined) {
    if (!checkAdminToken(ctx, bearer, 'bearer')) throw new HttpError(401, 'the Bearer token is not the admin token (AUDIENCE_SYNC_ADMIN_TOKEN)');
    return; // A Bearer header is never sent by a browser on its own: no CSRF concern.
  }
  if (adminToken !== undefined && !ctx.session?.authenticated) {
    ctx.res.setHeader('WWW-Authenticate', 'Bearer realm="audience-sync"');
    throw new HttpError(401, 'send the admin token as "Authorization: Bearer <AUDIENCE_SYNC_ADMIN_TOKEN>"');
  }
  if (changesState) {
    assertSameOrigin(ctx.req, [ctx.origin]);
    assertNotFormEncoded(ctx.req);
  }
}

/** Sessions, login and CSRF for dashboard routes. Returns true when it answered (login redirect). */
async function preparePage(ctx: RequestContext, path: string, method: string, changesState: boolean): Promise<boolean> {
  const { adminToken, sessions } = ctx.app;
  // Nothing is stored for a visitor: sessions are created at login only.
  ctx.session ??= sessions.visitor(ctx.req, ctx.res, { authenticated: adminToken === undefined, secure: ctx.origin.startsWith('https:') });
  if (changesState) {
    assertSameOrigin(ctx.req, [ctx.origin]);
    ctx.form = await readForm(ctx.req, ctx.app.bodyTimeoutMs);
    assertCsrfToken(ctx.session, ctx.form.get('_csrf'));
    // Without an admin token the dashboard is open to whoever reaches it: a visitor's first form is its login.
    if (adminToken === undefined) storedSession(ctx);
  }
  const open = path === '/login';
  if (adminToken !== undefined && !ctx.session.authenticated && !open) {
    if (method === 'GET') {
      redirect(ctx.res, '/login');
      return true;
    }
    throw new HttpError(401, 'log in first: your session has expired');
  }
  return false;
}

function pickCounts(c: RunCounts): Partial<RunCounts> {
  const { extracted, added, updated, deleted, unchanged, rejected, delivered, failed, numInvalidEntries, planned } = c;
  return { extracted, added, updated, deleted, unchanged, rejected, delivered, failed, numInvalidEntries, ...(planned ? { planned } : {}) };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
