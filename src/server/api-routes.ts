/** The JSON API. Every route here is described in openapi.ts (a test checks both lists match). */
import type { RequestContext } from './context.js';
import { HttpError, readJsonObject, sendJson, type Route } from './http.js';

type ApiRoute = Route<RequestContext>;

export const apiRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/api/syncs',
    kind: 'api',
    async handle({ res, url, app }) {
      const adAccountId = adAccountParam(url);
      sendJson(res, 200, { syncs: await app.service.listSyncs(adAccountId === undefined ? {} : { adAccountId }) });
    },
  },
  {
    method: 'GET',
    path: '/api/syncs/:name',
    kind: 'api',
    async handle({ res, app }, { name = '' }) {
      sendJson(res, 200, await app.service.syncView(name));
    },
  },
  {
    method: 'GET',
    path: '/api/syncs/:name/runs',
    kind: 'api',
    async handle({ res, url, app }, { name = '' }) {
      const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : 50;
      if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'limit must be a positive whole number');
      sendJson(res, 200, { runs: await app.service.runs(name, limit) });
    },
  },
  {
    method: 'POST',
    path: '/api/syncs/:name/runs',
    kind: 'api',
    async handle({ req, res, app }, { name = '' }) {
      const body = await readJsonObject(req, app.bodyTimeoutMs);
      if (body.force !== undefined && typeof body.force !== 'boolean') throw new HttpError(400, 'force must be true or false');
      const started = await app.service.trigger(name, { trigger: 'api', force: body.force === true });
      sendJson(res, 202, started, started.runId === null ? {} : { Location: `/api/runs/${started.runId}` });
    },
  },
  {
    method: 'POST',
    path: '/api/syncs/:name/retry',
    kind: 'api',
    async handle({ req, res, app }, { name = '' }) {
      await readJsonObject(req); // no fields; a body that is not a JSON object is still an error
      sendJson(res, 200, await app.service.retryGivenUp(name));
    },
  },
  {
    method: 'GET',
    path: '/api/syncs/:name/health',
    kind: 'api',
    async handle({ res, app }, { name = '' }) {
      const sync = app.service.requireSync(name);
      const [health, connection] = await Promise.all([app.service.audienceHealth(name, { fresh: true }), app.service.connection(sync.connection)]);
      sendJson(res, 200, { audience: health, token: connection });
    },
  },
  {
    method: 'POST',
    path: '/api/syncs/:name/test-record',
    kind: 'api',
    async handle({ req, res, app }, { name = '' }) {
      const body = await readJsonObject(req, app.bodyTimeoutMs);
      if (body.primaryKey !== undefined && typeof body.primaryKey !== 'string') throw new HttpError(400, 'primaryKey must be a string');
      sendJson(res, 200, await app.service.testRecord(name, body.primaryKey));
    },
  },
  {
    method: 'GET',
    path: '/api/runs/:id',
    kind: 'api',
    async handle({ res, app }, { id = '' }) {
      if (!/^\d+$/.test(id)) throw new HttpError(404, `no run with id ${id}`);
      sendJson(res, 200, await app.service.run(Number(id)));
    },
  },
  {
    method: 'GET',
    path: '/api/audiences',
    kind: 'api',
    async handle({ res, url, app }) {
      sendJson(res, 200, { audiences: await app.service.listAudiences(targetParams(url)) });
    },
  },
  {
    method: 'POST',
    path: '/api/audiences',
    kind: 'api',
    async handle({ req, res, app }) {
      const body = await readJsonObject(req, app.bodyTimeoutMs);
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      if (!name) throw new HttpError(400, 'name is required: the name of the audience to create');
      if (body.description !== undefined && typeof body.description !== 'string') throw new HttpError(400, 'description must be a string');
      if (body.valueBased !== undefined && typeof body.valueBased !== 'boolean') throw new HttpError(400, 'valueBased must be true or false');
      if (body.connection !== undefined && typeof body.connection !== 'string') throw new HttpError(400, 'connection must be the name of a connection');
      if (body.adAccountId !== undefined && (typeof body.adAccountId !== 'string' || !/^(act_)?\d+$/.test(body.adAccountId))) throw new HttpError(400, 'adAccountId must be an ad account id such as "act_1234567890"');
      const created = await app.service.createAudience(
        {
          name,
          ...(typeof body.description === 'string' ? { description: body.description } : {}),
          ...(body.valueBased === true ? { valueBased: true } : {}),
        },
        {
          ...(typeof body.connection === 'string' ? { connection: body.connection } : {}),
          ...(typeof body.adAccountId === 'string' ? { adAccountId: body.adAccountId.replace(/^act_/, '') } : {}),
        },
      );
      sendJson(res, 201, created);
    },
  },
  {
    method: 'GET',
    path: '/api/alerts',
    kind: 'api',
    async handle({ res, url, app }) {
      const status = url.searchParams.get('status') ?? 'all';
      if (status !== 'all' && status !== 'undelivered') throw new HttpError(400, 'status must be "all" or "undelivered"');
      const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : 50;
      if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'limit must be a positive whole number');
      sendJson(res, 200, { alerts: await app.service.alerts({ undelivered: status === 'undelivered', limit }) });
    },
  },
  {
    method: 'GET',
    path: '/api/connection',
    kind: 'api',
    async handle({ res, app }) {
      sendJson(res, 200, await app.service.connection());
    },
  },
  {
    method: 'GET',
    path: '/api/connections',
    kind: 'api',
    async handle({ res, app }) {
      sendJson(res, 200, { connections: await app.service.connectionReports() });
    },
  },
];

/** `?adAccount=act_123` (or 123) → the digits. */
function adAccountParam(url: URL): string | undefined {
  const raw = url.searchParams.get('adAccount')?.trim();
  if (!raw) return undefined;
  if (!/^(act_)?\d+$/.test(raw)) throw new HttpError(400, 'adAccount must be an ad account id such as act_1234567890');
  return raw.replace(/^act_/, '');
}

/** `?connection=…&adAccount=…`: which ad accounts a request is about (default: every one the config uses). */
function targetParams(url: URL): { connection?: string; adAccountId?: string } {
  const connection = url.searchParams.get('connection')?.trim() || undefined;
  const adAccountId = adAccountParam(url);
  return { ...(connection === undefined ? {} : { connection }), ...(adAccountId === undefined ? {} : { adAccountId }) };
}
