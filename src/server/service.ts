/**
 * What the API and the dashboard show and do, over the Workspace, the runner and the scheduler.
 * Returns plain view objects (ids, counts, statuses, hashes): never a token or raw personal data.
 */
import { subjectOf } from '../alerts/index.js';
import type { GivenUpReport } from '../app/given-up.js';
import { accountTargets, adAccountsOf, connectionOf, connectionStatus, describeTargets, syncsOf, UnknownConnectionError, type AccountTarget, type ConnectionStatus } from '../app/connections.js';
import { ModelCheckError, type Workspace } from '../app/workspace.js';
import { DEFAULT_CONNECTION } from '../config/index.js';
import { sendTestRecord, TestRecordError, type TestRecordResult } from '../app/test-record.js';
import { connectionInfo, daysUntilExpiry, EXPIRY_WARNING_DAYS } from '../app/tokens.js';
import { lowMatchSentence, matchHealth, runMatch, SyncBusyError, type MatchHealth, type PlannedChanges, type RunMatch } from '../engine/index.js';
import { MetaApiError, type AudienceInfo } from '../meta/index.js';
import type { AlertRecord, RunRecord } from '../state/index.js';
import type { Scheduler, SyncRunner } from '../scheduler/index.js';
import { HttpError } from './http.js';
import type { Metrics } from './metrics.js';

export interface RunView {
  id: number;
  sync: string;
  trigger: string;
  status: RunRecord['status'];
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  /** The engine's counters (extracted, added, updated, deleted, unchanged, rejected, delivered, failed, ...). */
  counts: Record<string, unknown>;
  error: string | null;
  /** Hashed primary keys and reasons only. */
  errorSamples: Array<{ pkHash: string; reason: string; externId?: string }>;
  /** Meta's counts for the rows the run sent, once Meta has processed them; null before (or when nothing was sent). */
  match: RunMatch | null;
}

export interface SyncView {
  name: string;
  mode: string;
  source: string;
  /** The Meta connection whose token the sync uses. */
  connection: string;
  /** Digits. */
  adAccountId: string;
  schedule: string | null;
  audienceId: string | null;
  /** `running` while a run is going, else the newest run's status, `never` before the first run. */
  status: 'running' | 'success' | 'partial' | 'failed' | 'never';
  lastRun: RunView | null;
  nextRunAt: string | null;
  records: { synced: number; pending: number; failed: number; total: number };
  /** Records that used up their attempts: runs no longer send them until they are retried or their data changes. */
  givenUp: GivenUpReport;
  /** Meta's match rate: the latest processed run against the usual one; `warning` says when it is well below. */
  match: MatchHealth & { warning: string | null };
}

export interface AudienceHealth {
  audienceId: string;
  name: string | null;
  sizeLower: number | null;
  sizeUpper: number | null;
  operationStatus: { code: number; description: string } | null;
  deliveryStatus: { code: number; description: string } | null;
  updatedAt: string | null;
  /** Why Meta could not be asked (the message says what to do). */
  error?: string;
}

export interface ConnectionView {
  name: string;
  /** Where Graph calls get their token: a connected account, the config, or nowhere yet. */
  tokenSource: 'connected' | 'config' | 'none';
  connectEnabled: boolean;
  connectedAt: string | null;
  expiresAt: string | null;
  daysLeft: number | null;
  /** Expires within the warning window (or has expired). */
  expiringSoon: boolean;
  /** Ad accounts (digits) and syncs that use the connection. */
  adAccounts: string[];
  syncs: string[];
}

/** An alert sent (or not) to a destination. Titles hold names, ids and counts only. */
export interface AlertView {
  id: number;
  destination: string;
  /** The sync it is about; null for a connection's token. */
  sync: string | null;
  connection: string | null;
  condition: string;
  kind: 'firing' | 'resolved';
  title: string;
  runId: number | null;
  createdAt: string;
  /** `undelivered`: every try failed, or the process sending it stopped before it was delivered. */
  status: 'delivered' | 'sending' | 'undelivered';
  attempts: number;
  /** Why it was not delivered (the destination's URL is never quoted). */
  error: string | null;
  finishedAt: string | null;
}
/** A connection with its token checked against Meta now. */
export type ConnectionReport = ConnectionView & Pick<ConnectionStatus, 'state' | 'valid' | 'error' | 'userId'>;

/** An audience of an ad account, with the account and the connection it was read through. */
export type AudienceListing = AudienceInfo & AccountTarget;

export interface TriggerResult {
  sync: string;
  /** Null when the run is queued behind another run on the same warehouse. */
  runId: number | null;
  state: 'running' | 'queued' | 'finished';
}

const HEALTH_TTL_MS = 30_000;
/** Runs read for a sync's usual match rate: the latest processed one and up to 10 before it, with room for runs that sent nothing. */
const MATCH_HISTORY = 30;
const RUN_ID_WAIT_MS = 3_000;
/** Longer than every try of a delivery with its backoff: an alert still pending by then was left by a process that stopped. */
const ALERT_STALLED_MS = 5 * 60_000;
/** How far back the dashboard lists alerts that were not delivered. */
const UNDELIVERED_SHOWN_MS = 7 * 86_400_000;

export class SyncService {
  private readonly health = new Map<string, { at: number; value: AudienceHealth }>();

  constructor(
    readonly ws: Workspace,
    private readonly runner: SyncRunner,
    private readonly scheduler: Scheduler,
    private readonly metrics: Metrics,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  syncNames(): string[] {
    return this.ws.config.syncs.map((s) => s.name);
  }

  /** @throws HttpError 404 for an unknown sync. */
  requireSync(name: string) {
    const sync = this.ws.config.syncs.find((s) => s.name === name);
    if (!sync) throw new HttpError(404, `no sync named "${name}" (syncs: ${this.syncNames().join(', ') || 'none'})`);
    return sync;
  }

  /** Every sync, or those of one ad account (digits). */
  async listSyncs(filter: { adAccountId?: string } = {}): Promise<SyncView[]> {
    const names = this.ws.config.syncs.filter((s) => filter.adAccountId === undefined || s.adAccountId === filter.adAccountId).map((s) => s.name);
    return Promise.all(names.map((n) => this.syncView(n)));
  }

  /** The ad accounts the syncs use (digits), in config order, for the dashboard's filter. */
  adAccounts(): string[] {
    return [...new Set(this.ws.config.syncs.map((s) => s.adAccountId))];
  }

  async syncView(name: string): Promise<SyncView> {
    const sync = this.requireSync(name);
    const state = await this.ws.state();
    const [recent, info, { records, givenUp }] = await Promise.all([state.listRuns({ sync: name, limit: MATCH_HISTORY }), state.getSync(name), this.ws.recordSummary(name)]);
    const last = recent[0];
    const lastRun = last ? runView(last) : null;
    const match = matchHealth(recent);
    return {
      name,
      mode: sync.mode,
      source: sync.source,
      connection: sync.connection,
      adAccountId: sync.adAccountId,
      schedule: sync.schedule ?? null,
      audienceId: 'id' in sync.audience ? sync.audience.id : (info?.audienceId ?? null),
      status: this.runner.isRunning(name) || lastRun?.status === 'running' ? 'running' : (lastRun?.status ?? 'never'),
      lastRun,
      nextRunAt: this.scheduler.nextRun(name)?.toISOString() ?? null,
      records: { synced: records.synced, pending: records.pending, failed: records.failed, total: records.total },
      givenUp,
      match: { ...match, warning: lowMatchSentence(match) ?? null },
    };
  }

  /** Each sync's latest run with Meta's match counts (null before Meta reported any). */
  async latestMatches(): Promise<Array<[string, RunMatch | null]>> {
    const state = await this.ws.state();
    return Promise.all(this.syncNames().map(async (name): Promise<[string, RunMatch | null]> => [name, matchHealth(await state.listRuns({ sync: name, limit: MATCH_HISTORY })).latest]));
  }

  /** Puts the sync's given-up records back in the queue; the next run sends them. */
  async retryGivenUp(name: string): Promise<{ sync: string; requeued: number }> {
    this.requireSync(name);
    return { sync: name, requeued: await this.ws.retryGivenUp(name) };
  }

  async runs(name: string, limit = 50): Promise<RunView[]> {
    this.requireSync(name);
    const state = await this.ws.state();
    return (await state.listRuns({ sync: name, limit: Math.min(Math.max(1, limit), 500) })).map(runView);
  }

  /** @throws HttpError 404 when there is no such run. */
  async run(id: number): Promise<RunView> {
    const state = await this.ws.state();
    const run = Number.isSafeInteger(id) ? await state.getRun(id) : undefined;
    if (!run) throw new HttpError(404, `no run with id ${id}`);
    return runView(run);
  }

  /**
   * Starts a run in the background and answers once it has an id.
   * @throws HttpError 409 when the sync is already running, 422 when its model does not fit the mapping.
   */
  async trigger(name: string, opts: { force?: boolean; trigger: string }): Promise<TriggerResult> {
    this.requireSync(name);
    let started;
    try {
      started = this.runner.start(name, { trigger: opts.trigger, ...(opts.force ? { force: true } : {}) });
    } catch (e) {
      throw asHttpError(e);
    }
    let finished = false;
    started.finished.then(
      () => (finished = true),
      () => (finished = true),
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), RUN_ID_WAIT_MS);
    });
    try {
      const id = await Promise.race([started.runId, waited]);
      if (id === 'timeout') return { sync: name, runId: null, state: 'queued' };
      return { sync: name, runId: id ?? null, state: finished ? 'finished' : 'running' };
    } catch (e) {
      throw asHttpError(e);
    } finally {
      clearTimeout(timer);
    }
  }

  /** @throws HttpError 422 when the row cannot be sent, 502 when Meta refused it. */
  async testRecord(name: string, primaryKey?: string): Promise<TestRecordResult> {
    this.requireSync(name);
    try {
      return await sendTestRecord(this.ws, name, primaryKey === undefined ? {} : { primaryKey });
    } catch (e) {
      throw asHttpError(e, this.metrics);
    }
  }

  async audienceHealth(name: string, opts: { fresh?: boolean } = {}): Promise<AudienceHealth | null> {
    const sync = this.requireSync(name);
    const view = await this.syncView(name);
    if (!view.audienceId) return null;
    const id = view.audienceId;
    const cached = this.health.get(id);
    // A run that finished after the cached read changed the audience: read it again.
    const changedSince = view.lastRun?.finishedAt ? Date.parse(view.lastRun.finishedAt) : 0;
    if (cached && !opts.fresh && Date.now() - cached.at < HEALTH_TTL_MS && cached.at >= changedSince) return cached.value;
    let value: AudienceHealth;
    try {
      const a = await this.ws
        .graph(sync.connection)
        .getAudience(id, ['id', 'name', 'approximate_count_lower_bound', 'approximate_count_upper_bound', 'operation_status', 'delivery_status', 'time_updated']);
      value = healthOf(a);
    } catch (e) {
      if (e instanceof MetaApiError) this.metrics.recordMetaError(e.code);
      value = { ...emptyHealth(id), error: e instanceof Error ? e.message : String(e) };
    }
    this.health.set(id, { at: Date.now(), value });
    return value;
  }

  /**
   * The audiences of the ad account given, or of every ad account the config uses.
   * @throws HttpError 400 for an unknown connection, 502 when Meta refused.
   */
  async listAudiences(given: { connection?: string; adAccountId?: string } = {}): Promise<AudienceListing[]> {
    const targets = this.targets(given);
    try {
      const lists = await Promise.all(targets.map(async (t) => (await this.ws.graph(t.connection).listAudiences(t.adAccountId)).map((a) => ({ ...a, ...t }))));
      return lists.flat();
    } catch (e) {
      throw asHttpError(e, this.metrics);
    }
  }

  /** @throws HttpError 400 when the config uses several ad accounts and none was named. */
  async createAudience(input: { name: string; description?: string; valueBased?: boolean }, given: { connection?: string; adAccountId?: string } = {}): Promise<{ id: string } & AccountTarget> {
    const targets = this.targets(given);
    const [target, ...others] = targets;
    if (!target || others.length > 0) throw new HttpError(400, `the config uses several ad accounts: name one with adAccountId (and connection when two connections reach it): ${describeTargets(targets)}`);
    try {
      return { ...(await this.ws.graph(target.connection).createCustomAudience(target.adAccountId, input)), ...target };
    } catch (e) {
      throw asHttpError(e, this.metrics);
    }
  }

  private targets(given: { connection?: string; adAccountId?: string }): AccountTarget[] {
    try {
      return accountTargets(this.ws.config, given);
    } catch (e) {
      if (e instanceof UnknownConnectionError) throw new HttpError(400, e.message);
      throw e;
    }
  }

  /** A connection's token source and expiry (never the token); by default the one syncs naming none use, else the first. */
  async connection(name?: string, now: Date = new Date()): Promise<ConnectionView> {
    const { config } = this.ws;
    const c = name !== undefined ? this.requireConnection(name) : (config.connections[DEFAULT_CONNECTION] ?? Object.values(config.connections)[0]);
    if (!c) throw new HttpError(404, 'the config has no Meta connection');
    const info = c.appId !== undefined ? await connectionInfo(await this.ws.state(), c.name) : undefined;
    const tokenSource = this.ws.tokenSource(c.name);
    const days = info ? daysUntilExpiry(info, now) : undefined;
    return {
      name: c.name,
      tokenSource,
      connectEnabled: c.appId !== undefined && c.appSecret !== undefined,
      connectedAt: info?.connectedAt ?? null,
      expiresAt: info?.expiresAt ?? null,
      daysLeft: days === undefined ? null : Math.round(days),
      expiringSoon: days !== undefined && days <= EXPIRY_WARNING_DAYS,
      adAccounts: adAccountsOf(config, c.name),
      syncs: syncsOf(config, c.name),
    };
  }

  /** Alerts, newest first; `undelivered` only those that did not reach their destination (within the last week for `recent`). */
  async alerts(opts: { undelivered?: boolean; recent?: boolean; limit?: number } = {}, now: Date = new Date()): Promise<AlertView[]> {
    const state = await this.ws.state();
    const limit = Math.min(Math.max(1, opts.limit ?? 50), 500);
    const records = await state.listAlerts(opts.undelivered ? { status: ['failed', 'pending'], limit: limit * 2 } : { limit });
    return records
      .map((r) => alertView(r, now))
      .filter((a) => !opts.undelivered || a.status === 'undelivered')
      .filter((a) => !opts.recent || now.getTime() - Date.parse(a.createdAt) <= UNDELIVERED_SHOWN_MS)
      .slice(0, limit);
  }

  /** Every connection's view, in config order. */
  async connectionViews(now: Date = new Date()): Promise<ConnectionView[]> {
    return Promise.all(Object.keys(this.ws.config.connections).map((n) => this.connection(n, now)));
  }

  /** Every connection, with its token checked against Meta now (one call per connection). */
  async connectionReports(now: Date = new Date()): Promise<ConnectionReport[]> {
    const [views, statuses] = await Promise.all([this.connectionViews(now), connectionStatus(this.ws)]);
    return views.map((v) => {
      const s = statuses.find((x) => x.name === v.name);
      return { ...v, state: s?.state ?? 'unknown', valid: s?.valid ?? false, ...(s?.error ? { error: s.error } : {}), ...(s?.userId ? { userId: s.userId } : {}) };
    });
  }

  /** @throws HttpError 404 for a connection the config does not have. */
  requireConnection(name: string) {
    try {
      return connectionOf(this.ws.config, name);
    } catch (e) {
      if (e instanceof UnknownConnectionError) throw new HttpError(404, e.message);
      throw e;
    }
  }

  /** Sync names in flight, for shutdown and /healthz. */
  running(): string[] {
    return this.runner.running();
  }

  get environment(): NodeJS.ProcessEnv {
    return this.env;
  }
}

export function runView(r: RunRecord): RunView {
  return {
    id: r.id,
    sync: r.sync,
    trigger: r.trigger,
    status: r.status,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
    durationMs: r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null,
    counts: { ...r.counts },
    error: r.error,
    errorSamples: r.errorSamples.map((s) => ({
      pkHash: s.pk,
      reason: s.reason,
      ...(s.identifiers?.EXTERN_ID !== undefined ? { externId: s.identifiers.EXTERN_ID } : {}),
    })),
    match: runMatch(r),
  };
}

function alertView(r: AlertRecord, now: Date): AlertView {
  const stalled = r.status === 'pending' && now.getTime() - r.createdAt.getTime() > ALERT_STALLED_MS;
  return {
    id: r.id,
    destination: r.destination,
    ...subjectOf(r.subject),
    condition: r.condition,
    kind: r.kind,
    title: r.title,
    runId: r.runId,
    createdAt: r.createdAt.toISOString(),
    status: r.status === 'delivered' ? 'delivered' : r.status === 'failed' || stalled ? 'undelivered' : 'sending',
    attempts: r.attempts,
    error: stalled ? 'the process sending it stopped before it was delivered' : r.error,
    finishedAt: r.finishedAt?.toISOString() ?? null,
  };
}

/** What a run refused by a safeguard had planned (it sent nothing), or null for any other run. */
export function plannedOf(run: Pick<RunView, 'counts'>): PlannedChanges | null {
  const p = run.counts.planned;
  if (typeof p !== 'object' || p === null) return null;
  const planned = { counts: p as Record<string, unknown> };
  const at = (key: keyof PlannedChanges) => count(planned, key);
  return { added: at('added'), updated: at('updated'), deleted: at('deleted'), retried: at('retried'), toRemove: at('toRemove'), toSend: at('toSend') };
}

/** A numeric counter of a run, 0 when absent. */
export function count(run: Pick<RunView, 'counts'>, key: string): number {
  const v = run.counts[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function emptyHealth(id: string): AudienceHealth {
  return { audienceId: id, name: null, sizeLower: null, sizeUpper: null, operationStatus: null, deliveryStatus: null, updatedAt: null };
}

function healthOf(a: AudienceInfo): AudienceHealth {
  const size = (n: number | undefined) => (n === undefined || n < 0 ? null : n);
  return {
    audienceId: a.id,
    name: a.name ?? null,
    sizeLower: size(a.approximateCountLowerBound),
    sizeUpper: size(a.approximateCountUpperBound),
    operationStatus: a.operationStatus ?? null,
    deliveryStatus: a.deliveryStatus ?? null,
    updatedAt: a.timeUpdated ? new Date(a.timeUpdated * 1000).toISOString() : null,
  };
}

function asHttpError(e: unknown, metrics?: Metrics): unknown {
  if (e instanceof HttpError) return e;
  if (e instanceof SyncBusyError) return new HttpError(409, e.message);
  if (e instanceof ModelCheckError) return new HttpError(422, `the sync's model does not fit its mapping: ${e.message}`, { issues: e.issues });
  if (e instanceof TestRecordError) return new HttpError(422, e.message);
  if (e instanceof MetaApiError) {
    metrics?.recordMetaError(e.code);
    return new HttpError(502, `Meta refused the request: ${e.message}`, { metaError: { kind: e.kind, code: e.code ?? null, subcode: e.subcode ?? null } });
  }
  return e;
}
