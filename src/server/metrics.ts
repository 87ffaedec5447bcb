/**
 * Prometheus counters and gauges in the text exposition format (0.0.4). Labels carry sync names,
 * statuses and Meta error codes only: never a token, an identifier or a URL with a query.
 */
import type { RunMatch, RunSummary } from '../engine/index.js';
import type { GraphClientEvent } from '../meta/index.js';

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  constructor() {
    this.define('audience_sync_runs_total', 'counter', 'Finished sync runs, by sync and status (success, partial, failed; error when the run could not start).');
    this.define('audience_sync_records_total', 'counter', 'Records handled by runs, by sync and outcome (added, updated, deleted, unchanged, rejected, delivered, failed).');
    this.define('audience_sync_runs_in_progress', 'gauge', 'Runs going on now, by sync.');
    this.define('audience_sync_last_run_timestamp_seconds', 'gauge', 'When the newest run of a sync finished (Unix seconds).');
    this.define('audience_sync_meta_requests_total', 'counter', 'Graph API requests, by HTTP status.');
    this.define('audience_sync_meta_errors_total', 'counter', 'Graph API errors, by Meta error code (0 when the response had none).');
    this.define('audience_sync_meta_throttle_waits_total', 'counter', 'Times the Graph client waited because Meta throttled it.');
    this.define('audience_sync_meta_throttle_wait_seconds_total', 'counter', 'Time spent waiting for Meta throttles to clear.');
    this.define('audience_sync_token_expiry_timestamp_seconds', 'gauge', 'When the connected Meta token expires (Unix seconds), by connection when there are several; absent when none is connected.');
    this.define('audience_sync_http_requests_total', 'counter', 'Requests to this service, by route kind and HTTP status.');
    this.define('audience_sync_meta_received_rows', 'gauge', "Rows Meta received from the sync's latest run whose match counts it has reported.");
    this.define('audience_sync_meta_matched_rows', 'gauge', 'Of those rows, how many Meta matched to people.');
    this.define('audience_sync_meta_match_rate', 'gauge', 'matched ÷ received of that run (0..1).');
    this.define('audience_sync_admin_token_failures_total', 'counter', 'Wrong admin tokens sent to this service, by how (bearer, login).');
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const entry = this.entry(name, labels);
    entry.value += by;
  }

  set(name: string, labels: Labels, value: number): void {
    this.entry(name, labels).value = value;
  }

  clear(name: string): void {
    this.families.get(name)?.values.clear();
  }

  value(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** When a connected token expires; labelled by connection when the config has several (`several`). */
  recordTokenExpiry(connection: string, expiresAt: string, several: boolean): void {
    this.set('audience_sync_token_expiry_timestamp_seconds', several ? { connection } : {}, Math.floor(Date.parse(expiresAt) / 1000));
  }

  /** Graph client events: request statuses, errors by code, throttle waits. */
  recordGraphEvent(e: GraphClientEvent): void {
    if (e.type === 'request') {
      this.inc('audience_sync_meta_requests_total', { status: String(e.status) });
    } else if (e.type === 'retry') {
      this.inc('audience_sync_meta_errors_total', { code: String(e.code ?? 0) });
    } else if (e.type === 'throttle') {
      this.inc('audience_sync_meta_errors_total', { code: String(e.code ?? 0) });
      this.inc('audience_sync_meta_throttle_waits_total');
      this.inc('audience_sync_meta_throttle_wait_seconds_total', {}, e.waitMs / 1000);
    }
  }

  recordMetaError(code: number | undefined): void {
    this.inc('audience_sync_meta_errors_total', { code: String(code ?? 0) });
  }

  recordRun(summary: RunSummary): void {
    const sync = summary.sync;
    this.inc('audience_sync_runs_total', { sync, status: summary.status });
    const c = summary.counts;
    const outcomes: Record<string, number> = {
      added: c.added,
      updated: c.updated,
      deleted: c.deleted,
      unchanged: c.unchanged,
      rejected: c.rejected,
      delivered: c.delivered,
      failed: c.failed,
    };
    for (const [outcome, n] of Object.entries(outcomes)) if (n > 0) this.inc('audience_sync_records_total', { sync, outcome }, n);
    this.set('audience_sync_last_run_timestamp_seconds', { sync }, Math.floor(Date.parse(summary.finishedAt) / 1000));
  }

  /** Meta's counts of the sync's latest processed run (nothing is set before Meta reported any). */
  recordMatch(sync: string, match: RunMatch | null): void {
    if (!match) return;
    this.set('audience_sync_meta_received_rows', { sync }, match.received);
    this.set('audience_sync_meta_matched_rows', { sync }, match.matched);
    this.set('audience_sync_meta_match_rate', { sync }, match.rate);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const l = Object.entries(labels);
        const text = l.length === 0 ? '' : `{${l.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
        lines.push(`${name}${text} ${formatValue(value)}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  private define(name: string, type: Family['type'], help: string): void {
    this.families.set(name, { help, type, values: new Map() });
  }

  private entry(name: string, labels: Labels): { labels: Labels; value: number } {
    const family = this.families.get(name);
    if (!family) throw new Error(`unknown metric ${name}`);
    const key = labelKey(labels);
    let entry = family.values.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, value: 0 };
      family.values.set(key, entry);
    }
    return entry;
  }
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}
