/**
 * Health check, Prometheus metrics and the OpenAPI document; nothing personal in them. With an admin
 * token, /metrics needs it too (it names the syncs and their activity) unless `server.publicMetrics`.
 */
import { readFileSync } from 'node:fs';
import type { RequestContext } from './context.js';
import { sendJson, sendText, type Route } from './http.js';
import { openApiDocument } from './openapi.js';

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export const systemRoutes: Array<Route<RequestContext>> = [
  {
    method: 'GET',
    path: '/healthz',
    kind: 'public',
    async handle({ res, app }) {
      try {
        await (await app.ws.state()).getValue('healthz');
        sendJson(res, 200, {
          status: 'ok',
          uptimeSeconds: Math.floor((Date.now() - app.startedAt.getTime()) / 1000),
          running: app.service.running(),
          // The service runs on its last good config while the file in place cannot be used.
          configError: app.reloader.error ?? null,
        });
      } catch {
        sendJson(res, 503, { status: 'unavailable', reason: 'the state store does not answer' });
      }
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    kind: 'metrics',
    async handle({ res, app }) {
      const { metrics, service } = app;
      for (const name of service.syncNames()) metrics.set('audience_sync_runs_in_progress', { sync: name }, service.running().includes(name) ? 1 : 0);
      // Read from the state at each scrape: counts arrive after the run, from a later run or the background pick-up.
      for (const [name, match] of await service.latestMatches()) metrics.recordMatch(name, match);
      sendText(res, 200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
    },
  },
  {
    method: 'GET',
    path: '/openapi.json',
    kind: 'public',
    handle({ res }) {
      sendJson(res, 200, openApiDocument(VERSION));
    },
  },
];
