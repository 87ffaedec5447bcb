/** What every route handler gets: the request, its session, and the service's parts. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Workspace } from '../app/workspace.js';
import type { Metrics } from './metrics.js';
import type { ConfigReloader } from './reload.js';
import type { Session, SessionStore, TokenThrottle } from './security.js';
import type { SyncService } from './service.js';

export interface ServerContext {
  ws: Workspace;
  service: SyncService;
  metrics: Metrics;
  sessions: SessionStore;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Set when logins are required (AUDIENCE_SYNC_ADMIN_TOKEN). */
  adminToken: string | undefined;
  /** Wrong admin tokens per client address. */
  throttle: TokenThrottle;
  /** /metrics is open even with an admin token (`server.publicMetrics`). */
  publicMetrics: boolean;
  /** How long a request body may take to arrive. */
  bodyTimeoutMs: number;
  /** The URL people reach us at, when behind a proxy. */
  publicUrl: string | undefined;
  /** Follows edits of the config; `error` says why the file in place cannot be used. */
  reloader: ConfigReloader;
  startedAt: Date;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Our own origin as the client sees it (public URL, else from the validated Host header). */
  origin: string;
  /** Dashboard routes always have one (a visitor's is not stored); API routes when the caller sent the cookie. */
  session: Session | undefined;
  /** The parsed form of a dashboard POST (its CSRF token already checked). */
  form: URLSearchParams | undefined;
  app: ServerContext;
}
