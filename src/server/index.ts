/** The always-on service: scheduler, JSON API, dashboard, "Connect with Facebook", metrics. */
export { startServer, routes, DEFAULT_HOST, DEFAULT_PORT, type RunningServer, type ServeOptions } from './server.js';
export { ServeRefusedError, ADMIN_TOKEN_ENV, isLoopbackHost } from './security.js';
export { openApiDocument } from './openapi.js';
export { Metrics } from './metrics.js';
export type { AlertView, AudienceHealth, ConnectionView, RunView, SyncView, TriggerResult } from './service.js';
