/**
 * What each alert condition looks like now, from the run history, the records given up, the
 * schedule and the token: pure functions, no I/O. A finding says whether its incident is going on
 * and, in words, what it is and what ended it; the incident logic decides whether that is news.
 */
import { runMatch } from '../engine/match.js';
import { nextTick } from '../scheduler/schedule.js';
import type { RunRecord } from '../state/index.js';
import type { AlertCondition, TokenStatus } from './types.js';

export interface Finding {
  readonly condition: AlertCondition;
  /** The sync's name, or `connection:<name>` for a token. */
  readonly subject: string;
  readonly active: boolean;
  /** Says what is going on (sent when the incident starts). */
  readonly firing: string;
  /** Says that it is over (sent when it ends). */
  readonly resolved: string;
  /** The detail behind `firing`, e.g. the run's error. Already free of personal data; secrets are scrubbed later. */
  readonly reason: string | null;
  /** The run the finding is about, if any. */
  readonly run: RunRecord | null;
  /**
   * The newest run the finding was made from: an incident never moves on a finding older than the
   * one that moved it last (a worker that read the history before another worker's newer run).
   */
  readonly asOf: number | null;
  readonly extraCounts?: Readonly<Record<string, number>>;
}

const CONNECTION_PREFIX = 'connection:';

/** What an incident's subject names: a sync, or (for a token) a connection. */
export function subjectOf(subject: string): { sync: string | null; connection: string | null } {
  return subject.startsWith(CONNECTION_PREFIX) ? { sync: null, connection: subject.slice(CONNECTION_PREFIX.length) } : { sync: subject, connection: null };
}

/** A run refused by a safeguard is failed and carries what it had planned. */
export function isRefused(run: Pick<RunRecord, 'status' | 'counts'>): boolean {
  return run.status === 'failed' && typeof run.counts.planned === 'object' && run.counts.planned !== null;
}

const num = (run: RunRecord, key: string) => (typeof run.counts[key] === 'number' ? (run.counts[key] as number) : 0);

function outcome(run: RunRecord): string {
  if (isRefused(run)) return 'was refused by a safeguard';
  return run.status === 'success' ? 'succeeded' : run.status === 'partial' ? 'was partial' : run.status === 'failed' ? 'failed' : 'is running';
}

/** `failed`, `refused` and `partial` as the sync's newest finished run shows them. */
export function runFindings(sync: string, latest: RunRecord): Finding[] {
  const id = latest.id;
  const refused = isRefused(latest);
  const firstSample = latest.errorSamples[0]?.reason ?? null;
  return [
    {
      condition: 'failed',
      subject: sync,
      active: latest.status === 'failed' && !refused,
      firing: `Sync ${sync} failed (run #${id})`,
      resolved: latest.status === 'success' ? `Sync ${sync} recovered: run #${id} succeeded` : `Sync ${sync} is no longer failing: run #${id} ${outcome(latest)}`,
      reason: latest.error,
      run: latest,
      asOf: id,
    },
    {
      condition: 'refused',
      subject: sync,
      active: refused,
      firing: `Sync ${sync}: a safeguard refused run #${id}, nothing was sent`,
      resolved: `Sync ${sync}: no safeguard refused run #${id}; it ${outcome(latest)}`,
      reason: latest.error,
      run: latest,
      asOf: id,
    },
    {
      condition: 'partial',
      subject: sync,
      active: latest.status === 'partial',
      firing: `Sync ${sync} partly failed: run #${id} could not deliver ${num(latest, 'failed')} record${num(latest, 'failed') === 1 ? '' : 's'}`,
      resolved: `Sync ${sync}: run #${id} ${outcome(latest)}`,
      reason: latest.error ?? firstSample,
      run: latest,
      asOf: id,
    },
  ];
}

/** Records given up (more than 0). */
export function givenUpFinding(sync: string, givenUp: { count: number; byReason: ReadonlyArray<{ reason: string; count: number }> }, latest: RunRecord | null): Finding {
  const top = givenUp.byReason[0];
  const n = givenUp.count;
  return {
    condition: 'givenUp',
    subject: sync,
    active: n > 0,
    firing: `Sync ${sync}: ${n} record${n === 1 ? ' is' : 's are'} given up and no longer sent`,
    resolved: `Sync ${sync}: no record is given up any more`,
    reason: top ? `most common reason (${top.count} of ${n}): ${top.reason}. Fix the cause, then run \`audience-sync retry ${sync}\`.` : null,
    run: latest,
    asOf: latest?.id ?? null,
    extraCounts: { givenUp: n },
  };
}

/** A measure that fell: a key's identifier coverage or Meta's match rate, in percent. */
export interface MeasureDrop {
  /** `EMAIL coverage`, `Meta match rate`. */
  readonly measure: string;
  readonly now: number;
  readonly usual: number;
  /** usual − now, in percentage points. */
  readonly points: number;
  readonly runId: number;
}

/** Earlier runs a measure's usual value is the median of, and how many it needs. */
const USUAL_RUNS = 10;
const MIN_HISTORY = 2;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Coverage {
  rows: number;
  usable: Record<string, number>;
}

function coverageOf(run: RunRecord): Coverage | undefined {
  const c = run.counts.modelCoverage as Partial<Coverage> | undefined;
  return c && typeof c.rows === 'number' && c.rows > 0 && c.usable && typeof c.usable === 'object' ? (c as Coverage) : undefined;
}

/**
 * Measures whose latest value is more than `points` percentage points below their median over up
 * to 10 earlier runs (at least 2): each mapped key's coverage (rows with a usable value, of the
 * model's rows) and Meta's match rate. `runs`: newest first.
 */
export function measureDrops(runs: readonly RunRecord[], points: number): MeasureDrop[] {
  const drops: MeasureDrop[] = [];
  const check = (measure: string, series: Array<{ run: RunRecord; value: number }>) => {
    const [latest, ...earlier] = series;
    const history = earlier.slice(0, USUAL_RUNS).map((p) => p.value);
    if (!latest || history.length < MIN_HISTORY) return;
    const usual = median(history);
    if (usual - latest.value > points) drops.push({ measure, now: latest.value, usual, points: usual - latest.value, runId: latest.run.id });
  };
  const covered = runs.flatMap((run) => {
    const c = coverageOf(run);
    return c ? [{ run, c }] : [];
  });
  const keys = new Set(covered.flatMap(({ c }) => Object.keys(c.usable)));
  for (const key of keys) {
    check(`${key} coverage`, covered.flatMap(({ run, c }) => (typeof c.usable[key] === 'number' ? [{ run, value: (100 * c.usable[key]) / c.rows }] : [])));
  }
  check(
    'Meta match rate',
    runs.flatMap((run) => {
      const m = runMatch(run);
      return m && m.received > 0 ? [{ run, value: 100 * m.rate }] : [];
    }),
  );
  return drops;
}

const pct = (x: number) => `${x.toFixed(1)}%`;

export function matchCoverageFinding(sync: string, runs: readonly RunRecord[], points: number): Finding {
  const drops = measureDrops(runs, points);
  const worst = [...drops].sort((a, b) => b.points - a.points)[0];
  const run = (worst && runs.find((r) => r.id === worst.runId)) ?? runs[0] ?? null;
  return {
    condition: 'matchCoverageDrop',
    subject: sync,
    active: drops.length > 0,
    firing: worst
      ? `Sync ${sync}: ${worst.measure} fell ${worst.points.toFixed(1)} points, to ${pct(worst.now)} (usually ${pct(worst.usual)})`
      : `Sync ${sync}: coverage or match rate fell`,
    resolved: `Sync ${sync}: identifier coverage and Meta's match rate are back within ${points} points of usual`,
    reason:
      drops.length > 0
        ? `${drops.map((d) => `${d.measure} ${pct(d.now)}, usually ${pct(d.usual)} (run #${d.runId})`).join('; ')}. Check the columns the sync maps: a column that became empty or changed format lowers coverage and Meta's matches.`
        : null,
    run,
    asOf: runs[0]?.id ?? null,
  };
}

/** When the schedule wanted a run, and by when one must have started before it counts as missed. */
export interface ScheduleCheck {
  readonly missed: boolean;
  /** The first tick after `since`; null when the schedule never fires again. */
  readonly due: Date | null;
  readonly deadline: Date | null;
}

/** The shortest grace after a due tick, for schedules of every few seconds. */
export const MIN_SCHEDULE_GRACE_MS = 60_000;

/**
 * A scheduled sync missed its schedule when no run started within twice its interval (the gap
 * between the due tick and the next one; at least a minute) after a due tick, the first tick after
 * `since` (its newest run's start). A run that is still going counts as started, so a run holding
 * the lock past that deadline is reported too: the sync is not keeping its schedule.
 */
export function checkSchedule(schedule: string, since: Date, now: Date): ScheduleCheck {
  const due = nextTick(schedule, since);
  if (!due) return { missed: false, due: null, deadline: null };
  const after = nextTick(schedule, due);
  const grace = Math.max(MIN_SCHEDULE_GRACE_MS, after ? 2 * (after.getTime() - due.getTime()) : 0);
  const deadline = new Date(due.getTime() + grace);
  return { missed: now.getTime() >= deadline.getTime(), due, deadline };
}

export function scheduleFinding(sync: string, schedule: string, check: ScheduleCheck, newest: RunRecord | null): Finding {
  const due = check.due?.toISOString() ?? '';
  return {
    condition: 'missedSchedule',
    subject: sync,
    active: check.missed,
    firing: `Sync ${sync} missed its schedule: no run started since the tick due at ${due}`,
    resolved: `Sync ${sync} runs on schedule again${newest ? ` (run #${newest.id} started ${newest.startedAt.toISOString()})` : ''}`,
    reason:
      newest?.status === 'running'
        ? `run #${newest.id}, started ${newest.startedAt.toISOString()}, is still going: it holds the sync's lock past ${check.deadline?.toISOString() ?? ''}, twice the interval of the schedule "${schedule}".`
        : `the schedule "${schedule}" wanted a run by ${check.deadline?.toISOString() ?? ''} (twice its interval after the due tick). Check that \`audience-sync serve\` (or the fleet's scheduler and workers) is running, and its log for runs that could not start (run_not_started, job_failed: e.g. a model that no longer fits its mapping).`,
    run: newest,
    asOf: newest?.id ?? null,
  };
}

const DAY_MS = 86_400_000;

/** The connection's token expires within `days`, or Meta no longer accepts it. */
export function tokenFinding(status: TokenStatus, days: number, now: Date): Finding {
  const left = status.expiresAt ? (status.expiresAt.getTime() - now.getTime()) / DAY_MS : undefined;
  const expiring = left !== undefined && left <= days;
  const who = `The Meta token of connection "${status.connection}"`;
  const when = status.expiresAt ? status.expiresAt.toISOString() : '';
  const firing = !status.valid
    ? `${who} is no longer accepted by Meta`
    : left !== undefined && left <= 0
      ? `${who} expired at ${when}`
      : `${who} expires in ${Math.max(0, Math.floor(left ?? 0))} day${Math.floor(left ?? 0) === 1 ? '' : 's'} (${when})`;
  return {
    condition: 'tokenExpiry',
    subject: `${CONNECTION_PREFIX}${status.connection}`,
    active: !status.valid || expiring,
    firing,
    resolved: status.expiresAt ? `${who} is valid until ${when}: more than ${days} days left` : `${who} is valid again`,
    reason: !status.valid
      ? `${status.reason ?? 'Meta rejected the token'}. Create a new token with ads_management (or use "Connect with Facebook" again) before runs fail.`
      : 'Renew it before it expires: use "Connect with Facebook" again in the dashboard, or set a new token (a system user token does not expire).',
    run: null,
    asOf: null,
  };
}
