/**
 * Alerts for one process (`serve`, a fleet worker, the fleet's scheduler): after each run, and on a
 * timer for schedules and tokens, it works out each destination's conditions, and sends an alert
 * only when an incident starts or ends. The incident's change is claimed in the state store first,
 * so processes sharing the state never send it twice. All of it happens off the run's path: a run
 * only queues the check, and a receiver that is slow or down delays nothing but its own alert.
 */
import type { Logger } from 'pino';
import type { AlertDestination, Config, SyncConfig } from '../config/index.js';
import type { IncidentKey, RunRecord, StateStore } from '../state/index.js';
import {
  checkSchedule,
  givenUpFinding,
  matchCoverageFinding,
  runFindings,
  scheduleFinding,
  tokenFinding,
  type Finding,
} from './conditions.js';
import { deliver, describeDestination, type DeliveryOptions, type DeliveryResult } from './deliver.js';
import { alertMessage } from './message.js';
import type { AlertMessage, TokenStatus } from './types.js';

export interface AlertCenterOptions {
  /** The config now (`serve` follows edits). */
  config(): Config;
  state(): Promise<StateStore>;
  log: Logger;
  /** The address this process serves the dashboard at (serve), for links when `server.publicUrl` is not set. */
  ownUrl?(): string | undefined;
  /** Each connection's token; without it this process does not check token expiry. */
  tokenStatus?(): Promise<TokenStatus[]>;
  /** The connection a sync uses (today every sync uses the `meta:` block's). */
  connectionOf?(sync: SyncConfig): string;
  /** Clock in epoch ms (tests move it). */
  now?(): number;
  delivery?: DeliveryOptions;
}

/** How long the run history is read back for a sync's usual coverage and match rate. */
const HISTORY_RUNS = 30;

export class AlertCenter {
  private chain: Promise<void> = Promise.resolve();
  private readonly sending = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Schedules as this process first saw them, and when one changed: a new schedule is not "missed" before its own first tick. */
  private readonly schedules = new Map<string, { pattern: string; since: number | undefined }>();
  private closed = false;

  constructor(private readonly opts: AlertCenterOptions) {
    for (const s of opts.config().syncs) if (s.schedule) this.schedules.set(s.name, { pattern: s.schedule, since: undefined });
  }

  /** Where alert links point: `server.publicUrl`, else serve's own address; none from a worker without publicUrl. */
  private dashboardUrl(): string | undefined {
    return this.opts.config().server?.publicUrl ?? this.opts.ownUrl?.();
  }

  private now(): Date {
    return new Date(this.opts.now?.() ?? Date.now());
  }

  /** Whether the config has any destination at all (nothing is read from the state without one). */
  get enabled(): boolean {
    return (this.opts.config().alerts?.length ?? 0) > 0;
  }

  /** Checks the sync's conditions once its run has finished; returns at once. */
  afterRun(sync: string): void {
    void this.queue(() => this.checkSync(sync));
  }

  /** Checks every scheduled sync for a missed schedule. */
  checkSchedules(): Promise<void> {
    return this.queue(async () => {
      for (const sync of this.opts.config().syncs) if (sync.schedule) await this.checkSync(sync.name, { runs: false });
    });
  }

  /** Checks the tokens of the connections the destinations' syncs use. */
  checkTokens(): Promise<void> {
    return this.queue(() => this.checkTokenExpiry());
  }

  /** Checks schedules every `scheduleMs` and tokens every `tokenMs` from now on (0: never). */
  watch({ scheduleMs, tokenMs = 0 }: { scheduleMs: number; tokenMs?: number }): void {
    const every = (ms: number, fn: () => Promise<void>) => {
      if (ms <= 0) return;
      const t = setInterval(() => void fn(), ms);
      t.unref();
      this.timers.push(t);
    };
    every(scheduleMs, () => this.checkSchedules());
    if (this.opts.tokenStatus) every(tokenMs, () => this.checkTokens());
  }

  /** Resolves once every queued check and every alert being sent has finished. */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [this.chain, ...this.sending];
      await Promise.allSettled(pending);
      if (this.sending.size === 0 && pending[0] === this.chain) return;
    }
  }

  /**
   * Stops the timers and waits up to `timeoutMs` for checks and alerts under way. An alert still
   * being sent after that stays `pending` in the state store, where the dashboard shows it as not delivered.
   */
  async close(timeoutMs = 15_000): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Checks run one after another; a failing check is logged and never stops the next. */
  private queue(task: () => Promise<void>): Promise<void> {
    if (this.closed || !this.enabled) return Promise.resolve();
    const run = this.chain.then(task).catch((e: unknown) => {
      this.opts.log.warn({ event: 'alert_check_failed', reason: messageOf(e) }, `could not check alert conditions: ${messageOf(e)}`);
    });
    this.chain = run;
    return run;
  }

  private destinationsFor(sync: string): AlertDestination[] {
    return (this.opts.config().alerts ?? []).filter((d) => d.syncs === undefined || d.syncs.includes(sync));
  }

  private async checkSync(name: string, what: { runs: boolean } = { runs: true }): Promise<void> {
    const sync = this.opts.config().syncs.find((s) => s.name === name);
    const scheduled = sync?.schedule !== undefined;
    const destinations = this.destinationsFor(name).filter((d) => (what.runs && wantsRunConditions(d)) || (d.when.missedSchedule && scheduled));
    if (!sync || destinations.length === 0) return;
    const state = await this.opts.state();
    const runs = await state.listRuns({ sync: name, limit: HISTORY_RUNS });
    const finished = runs.filter((r) => r.status !== 'running');
    const latest = finished[0] ?? null;
    let givenUp: Promise<Finding> | undefined;
    for (const d of destinations) {
      const findings: Finding[] = [];
      if (what.runs && latest) {
        findings.push(...runFindings(name, latest).filter((f) => d.when[f.condition as 'failed' | 'partial' | 'refused']));
        if (d.when.givenUp) {
          givenUp ??= state.givenUp(name, { maxAttempts: sync.maxAttempts, sampleSize: 0 }).then((g) => givenUpFinding(name, g, latest));
          findings.push(await givenUp);
        }
        if (d.when.matchCoverageDrop !== undefined) findings.push(matchCoverageFinding(name, finished, d.when.matchCoverageDrop));
      }
      for (const f of findings) await this.apply(d, f);
      if (d.when.missedSchedule && sync.schedule) await this.checkMissed(d, sync.name, sync.schedule, runs[0] ?? null);
    }
  }

  private async checkMissed(d: AlertDestination, sync: string, pattern: string, newest: RunRecord | null): Promise<void> {
    const now = this.now();
    const seen = this.schedules.get(sync);
    if (seen?.pattern !== pattern) this.schedules.set(sync, { pattern, since: now.getTime() });
    const changedAt = this.schedules.get(sync)?.since;
    let since = newest?.startedAt.getTime();
    if (since === undefined) {
      // A sync that never ran is watched from the first time it was checked (recorded for every process).
      const state = await this.opts.state();
      const key = { destination: d.name, subject: sync, condition: 'missedSchedule' };
      const incident = await state.getIncident(key);
      if (!incident) {
        await state.claimIncident(key, undefined, { state: 'ok' });
        return;
      }
      // Missed and still never run: nothing changed.
      if (incident.state === 'active') return;
      since = incident.since.getTime();
    }
    if (changedAt !== undefined) since = Math.max(since, changedAt);
    const check = checkSchedule(pattern, new Date(since), now);
    await this.apply(d, scheduleFinding(sync, pattern, check, newest));
  }

  private async checkTokenExpiry(): Promise<void> {
    const config = this.opts.config();
    const wanting = (config.alerts ?? []).filter((d) => d.when.tokenExpiresWithinDays !== undefined);
    if (wanting.length === 0 || !this.opts.tokenStatus) return;
    let statuses: TokenStatus[];
    try {
      statuses = await this.opts.tokenStatus();
    } catch (e) {
      // Meta unreachable says nothing about the token: the next check tries again.
      this.opts.log.info({ event: 'alert_token_unknown', reason: messageOf(e) }, `could not check the Meta token for alerts: ${messageOf(e)}`);
      return;
    }
    const connectionOf = this.opts.connectionOf ?? ((s: SyncConfig) => s.connection);
    for (const d of wanting) {
      const used = new Set(config.syncs.filter((s) => d.syncs === undefined || d.syncs.includes(s.name)).map(connectionOf));
      for (const status of statuses) if (used.has(status.connection)) await this.apply(d, tokenFinding(status, d.when.tokenExpiresWithinDays!, this.now()));
    }
  }

  /** Claims the incident's change, if it changed, and sends its alert in the background. */
  private async apply(d: AlertDestination, finding: Finding): Promise<void> {
    const state = await this.opts.state();
    const key: IncidentKey = { destination: d.name, subject: finding.subject, condition: finding.condition };
    const current = (await state.getIncident(key))?.state;
    const wanted = finding.active ? 'active' : 'ok';
    // Nothing to say about an incident that never started.
    if (current === wanted || (current === undefined && wanted === 'ok')) return;
    const kind = wanted === 'active' ? 'firing' : 'resolved';
    const message = alertMessage(finding, kind, { destination: d.name, dashboardUrl: this.dashboardUrl(), secrets: this.secrets(), now: this.now() });
    const { claimed, alertId } = await state.claimIncident(key, current, { state: wanted, runId: finding.asOf }, { kind, title: message.title, runId: message.run?.id ?? null });
    if (!claimed || alertId === undefined) return;
    this.opts.log.info({ event: 'alert', destination: d.name, sync: message.sync, condition: finding.condition, kind, runId: message.run?.id }, message.title);
    const sent = this.deliverLogged(d, message).then(async (result) => {
      await state.finishAlert(alertId, { status: result.delivered ? 'delivered' : 'failed', attempts: result.attempts, error: result.error ?? null });
    });
    const tracked: Promise<void> = sent
      .catch((e: unknown) => this.opts.log.warn({ event: 'alert_record_failed', reason: messageOf(e) }, `could not record an alert's delivery: ${messageOf(e)}`))
      .finally(() => this.sending.delete(tracked));
    this.sending.add(tracked);
  }

  private async deliverLogged(d: AlertDestination, message: AlertMessage): Promise<DeliveryResult> {
    const result = await deliver(d, message, this.opts.delivery);
    const fields = { destination: describeDestination(d), sync: message.sync, condition: message.condition, kind: message.kind, attempts: result.attempts };
    if (result.delivered) this.opts.log.info({ event: 'alert_delivered', ...fields }, `alert delivered to ${describeDestination(d)}`);
    else this.opts.log.warn({ event: 'alert_undelivered', ...fields, reason: result.error }, `alert "${message.title}" could not be delivered to ${describeDestination(d)}: ${result.error}`);
    return result;
  }

  /** Strings no alert may carry: the Meta token and app secret, and the destinations' URLs. */
  private secrets(): string[] {
    const config = this.opts.config();
    const urls = (config.alerts ?? []).flatMap((d) => {
      try {
        const u = new URL(d.url);
        return [d.url, `${u.pathname}${u.search}`];
      } catch {
        return [d.url];
      }
    });
    const meta = Object.values(config.connections).flatMap((c) => [c.accessToken ?? '', c.appSecret ?? '']);
    return [...meta, ...urls].filter((s) => s.length > 1);
  }
}

function wantsRunConditions(d: AlertDestination): boolean {
  return d.when.failed || d.when.partial || d.when.refused || d.when.givenUp || d.when.matchCoverageDrop !== undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
