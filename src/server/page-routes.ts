/** The dashboard: server-rendered pages and the forms behind its buttons, and "Connect with Facebook". */
import { randomBytes } from 'node:crypto';
import { graphClientFor } from '../app/connections.js';
import { saveConnectedToken, secretKeyFromEnv, SecretKeyError } from '../app/tokens.js';
import { DEFAULT_CONNECTION } from '../config/index.js';
import { ConnectError, dialogUrl, exchangeCode } from './connect.js';
import type { RequestContext } from './context.js';
import { HttpError, redirect, sendHtml, type Route } from './http.js';
import { checkAdminToken, tokensEqual, type Session } from './security.js';
import type { AudienceHealth } from './service.js';
import { errorPage, loginPage, overviewPage, runPage, syncPage, testRecordPage } from './views/pages.js';

type PageRoute = Route<RequestContext>;

const OAUTH_STATE_TTL_MS = 10 * 60_000;

export function frameOf(ctx: RequestContext) {
  return { session: ctx.session, loginRequired: ctx.app.adminToken !== undefined, configError: ctx.app.reloader.error };
}

/**
 * The request's stored session. An open dashboard (no admin token) stores a visitor's session on its
 * first form or "Connect with Facebook"; with an admin token only login stores one (and pages past
 * the login form are only reached with it).
 */
export function storedSession(ctx: RequestContext): Session {
  const { sessions } = ctx.app;
  if (ctx.session && sessions.isStored(ctx.session)) return ctx.session;
  const session = sessions.create(ctx.app.adminToken === undefined);
  ctx.res.appendHeader('Set-Cookie', sessions.cookie(session, ctx.origin.startsWith('https:')));
  ctx.session = session;
  return session;
}

function flash(ctx: RequestContext, kind: 'ok' | 'warn' | 'error', text: string): void {
  if (ctx.session) ctx.session.flash = { kind, text };
}

export const pageRoutes: PageRoute[] = [
  {
    method: 'GET',
    path: '/',
    kind: 'page',
    async handle(ctx) {
      const { service } = ctx.app;
      // ?adAccount=act_123 (or 123) shows the syncs of that ad account only.
      const adAccount = ctx.url.searchParams.get('adAccount')?.trim().replace(/^act_/, '') || undefined;
      const [syncs, connections, undelivered] = await Promise.all([
        service.listSyncs(adAccount === undefined ? {} : { adAccountId: adAccount }),
        service.connectionViews(),
        service.alerts({ undelivered: true, recent: true, limit: 20 }),
      ]);
      const sizes = new Map<string, AudienceHealth | null>();
      await Promise.all(syncs.map(async (s) => sizes.set(s.name, await service.audienceHealth(s.name))));
      sendHtml(ctx.res, 200, overviewPage(frameOf(ctx), { syncs, sizes, connections, adAccounts: service.adAccounts(), adAccount: adAccount ?? null, undelivered }));
    },
  },
  {
    method: 'GET',
    path: '/syncs/:name',
    kind: 'page',
    async handle(ctx, { name = '' }) {
      const { service } = ctx.app;
      const sync = service.requireSync(name);
      const [view, runs, health, connection] = await Promise.all([service.syncView(name), service.runs(name, 100), service.audienceHealth(name), service.connection(sync.connection)]);
      sendHtml(ctx.res, 200, syncPage(frameOf(ctx), { sync: view, runs, health, connection }));
    },
  },
  {
    method: 'GET',
    path: '/runs/:id',
    kind: 'page',
    async handle(ctx, { id = '' }) {
      if (!/^\d+$/.test(id)) throw new HttpError(404, `no run with id ${id}`);
      sendHtml(ctx.res, 200, runPage(frameOf(ctx), await ctx.app.service.run(Number(id))));
    },
  },
  {
    method: 'POST',
    path: '/syncs/:name/run',
    kind: 'page',
    async handle(ctx, { name = '' }) {
      const back = `/syncs/${encodeURIComponent(name)}`;
      try {
        const started = await ctx.app.service.trigger(name, { trigger: 'dashboard', force: ctx.form?.get('force') === '1' });
        flash(ctx, 'ok', started.runId === null ? 'The run is queued behind another run on the same warehouse.' : `Run #${started.runId} started.`);
      } catch (e) {
        if (!(e instanceof HttpError) || e.status === 404) throw e;
        flash(ctx, 'error', e.message);
      }
      redirect(ctx.res, back);
    },
  },
  {
    method: 'POST',
    path: '/syncs/:name/retry',
    kind: 'page',
    async handle(ctx, { name = '' }) {
      const { requeued } = await ctx.app.service.retryGivenUp(name);
      flash(
        ctx,
        'ok',
        requeued === 0
          ? 'No record is given up: nothing to retry.'
          : `${requeued.toLocaleString('en-US')} given-up record${requeued === 1 ? ' is' : 's are'} back in the queue: the next run sends ${requeued === 1 ? 'it' : 'them'}.`,
      );
      redirect(ctx.res, `/syncs/${encodeURIComponent(name)}`);
    },
  },
  {
    method: 'POST',
    path: '/syncs/:name/test-record',
    kind: 'page',
    async handle(ctx, { name = '' }) {
      const pk = ctx.form?.get('primaryKey')?.trim();
      try {
        const result = await ctx.app.service.testRecord(name, pk ? pk : undefined);
        sendHtml(ctx.res, 200, testRecordPage(frameOf(ctx), result));
      } catch (e) {
        if (!(e instanceof HttpError) || e.status === 404) throw e;
        flash(ctx, 'error', `Test record not sent: ${e.message}`);
        redirect(ctx.res, `/syncs/${encodeURIComponent(name)}`);
      }
    },
  },
  {
    method: 'GET',
    path: '/login',
    kind: 'page',
    handle(ctx) {
      if (!ctx.app.adminToken || ctx.session?.authenticated) return redirect(ctx.res, '/');
      sendHtml(ctx.res, 200, loginPage(frameOf(ctx)));
    },
  },
  {
    method: 'POST',
    path: '/login',
    kind: 'page',
    handle(ctx) {
      const { adminToken, sessions } = ctx.app;
      if (!adminToken) return redirect(ctx.res, '/');
      const given = ctx.form?.get('token') ?? '';
      if (!checkAdminToken(ctx, given, 'login')) return sendHtml(ctx.res, 401, loginPage(frameOf(ctx), 'That is not the admin token.'));
      // A fresh session on login, so a session id planted before it is worth nothing.
      if (ctx.session) sessions.destroy(ctx.session);
      const session = sessions.create(true);
      redirect(ctx.res, '/', { 'Set-Cookie': sessions.cookie(session, ctx.origin.startsWith('https:')) });
    },
  },
  {
    method: 'POST',
    path: '/logout',
    kind: 'page',
    handle(ctx) {
      if (ctx.session) ctx.app.sessions.destroy(ctx.session);
      redirect(ctx.res, ctx.app.adminToken ? '/login' : '/', { 'Set-Cookie': ctx.app.sessions.clearCookie() });
    },
  },
  {
    method: 'GET',
    path: '/connect',
    kind: 'page',
    handle(ctx) {
      // ?connection=name connects that connection; without it, the default one (the meta: block).
      const connection = ctx.app.service.requireConnection(ctx.url.searchParams.get('connection') ?? DEFAULT_CONNECTION);
      if (!connection.appId || !connection.appSecret) {
        throw new HttpError(400, `Connect with Facebook is not set up for connection "${connection.name}": add ${connection.at}.appId and ${connection.at}.appSecret (your Meta app) to the config and restart the service.`);
      }
      try {
        secretKeyFromEnv(ctx.app.env);
      } catch (e) {
        if (e instanceof SecretKeyError) throw new HttpError(400, `Refusing to connect: ${e.message}, then restart the service.`);
        throw e;
      }
      const state = randomBytes(24).toString('base64url');
      // The callback URL stays the same for every connection (Meta allows only listed ones): the session remembers which.
      storedSession(ctx).oauth = { state, expiresAt: Date.now() + OAUTH_STATE_TTL_MS, connection: connection.name };
      redirect(ctx.res, dialogUrl(connection, `${ctx.origin}/connect/callback`, state));
    },
  },
  {
    method: 'GET',
    path: '/connect/callback',
    kind: 'page',
    async handle(ctx) {
      const q = ctx.url.searchParams;
      const pending = ctx.session?.oauth;
      if (ctx.session) delete ctx.session.oauth;
      if (!pending || pending.expiresAt < Date.now() || !q.get('state') || !tokensEqual(q.get('state') ?? '', pending.state)) {
        throw new HttpError(400, 'This Facebook login answer does not belong to this browser session (or took longer than 10 minutes). Start again with "Connect with Facebook".');
      }
      if (q.get('error')) {
        flash(ctx, 'warn', 'Facebook login was cancelled: nothing changed.');
        return redirect(ctx.res, '/');
      }
      const code = q.get('code');
      if (!code) throw new HttpError(400, 'Facebook sent no login code back. Start again with "Connect with Facebook".');
      const { ws, log, metrics, env } = ctx.app;
      const connection = ctx.app.service.requireConnection(pending.connection);
      const label = Object.keys(ws.config.connections).length > 1 ? ` (connection ${connection.name})` : '';
      try {
        const key = secretKeyFromEnv(env);
        const token = await exchangeCode(connection, { code, redirectUri: `${ctx.origin}/connect/callback` });
        const me = await graphClientFor(ws.config, connection, { accessToken: token.accessToken, onEvent: (e) => metrics.recordGraphEvent(e) }).me();
        const info = await saveConnectedToken(await ws.state(), key, { accessToken: token.accessToken, expiresAt: token.expiresAt, userId: me.id, connection: connection.name });
        ws.useToken(connection.name, token.accessToken);
        if (info.expiresAt) metrics.recordTokenExpiry(connection.name, info.expiresAt, label !== '');
        log.info({ event: 'meta_connected', connection: connection.name, expiresAt: info.expiresAt }, 'Meta account connected');
        flash(ctx, 'ok', `Meta account connected${label}. The token expires ${info.expiresAt ? info.expiresAt.slice(0, 10) : 'never'}.`);
      } catch (e) {
        if (!(e instanceof ConnectError) && !(e instanceof SecretKeyError) && !(e instanceof Error && e.name === 'MetaApiError')) throw e;
        log.warn({ event: 'meta_connect_failed', connection: connection.name, reason: e.message }, 'connecting the Meta account failed');
        flash(ctx, 'error', `Connecting the Meta account${label} failed: ${e.message}`);
      }
      redirect(ctx.res, '/');
    },
  },
];

export { errorPage };
