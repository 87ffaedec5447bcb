import type { EngineGraph, EngineStore, RunAwaitingMatch, SessionReportLike } from './ports.js';
import type { MetaMatch } from './types.js';

/**
 * Reads Meta's match counts for earlier runs whose upload sessions Meta has finished processing, and
 * records them on those runs. Asks Meta only when such a run exists (one paged read per audience);
 * a run whose sessions are still being processed stays waiting for the next pick-up. Never waits.
 * Returns the ids of the runs it recorded counts on.
 */
export async function pickUpMatches(sync: string, graph: Pick<EngineGraph, 'uploadSessions'>, store: Pick<EngineStore, 'runsAwaitingMatch' | 'recordMatch'>, now: Date = new Date()): Promise<number[]> {
  const waiting = await store.runsAwaitingMatch(sync);
  if (waiting.length === 0) return [];
  const byAudience = new Map<string, RunAwaitingMatch[]>();
  for (const run of waiting) byAudience.set(run.audienceId, [...(byAudience.get(run.audienceId) ?? []), run]);
  const recorded: number[] = [];
  for (const [audienceId, runs] of byAudience) {
    const reports = new Map((await graph.uploadSessions(audienceId)).map((s) => [s.sessionId, s]));
    for (const run of runs) {
      const match = matchOf(run.sessionIds, reports, now);
      if (!match) continue;
      await store.recordMatch(run.runId, match);
      recorded.push(run.runId);
    }
  }
  return recorded;
}

/** The run's counts summed over its sessions, or undefined while any of them is missing or still being processed. */
export function matchOf(sessionIds: readonly string[], reports: ReadonlyMap<string, SessionReportLike>, now: Date): MetaMatch | undefined {
  let received = 0;
  let matched = 0;
  let invalid = 0;
  for (const id of sessionIds) {
    const s = reports.get(id);
    if (!s?.processed) return undefined;
    received += s.numReceived;
    matched += s.numMatched;
    invalid += s.numInvalidEntries;
  }
  return { received, matched, invalid, rate: received > 0 ? matched / received : 0, at: now.toISOString() };
}

/** A run's Meta counts as the views show them. */
export interface RunMatch extends Omit<MetaMatch, 'at'> {
  runId: number;
}

/** How the sync's latest processed run matched, against its usual rate. */
export interface MatchHealth {
  latest: RunMatch | null;
  /** Median match rate of up to USUAL_RUNS processed runs before the latest; null without enough history. */
  usualRate: number | null;
  /** The latest rate is below LOW_SHARE of the usual one. */
  low: boolean;
  /** When low: likely causes, in plain words, the likeliest first. */
  causes: string[];
}

const USUAL_RUNS = 10;
const MIN_HISTORY = 2;
const LOW_SHARE = 0.7;
/** A key's share of usable rows falling below this part of what it was counts as a drop worth naming. */
const KEY_DROP_SHARE = 0.8;

interface RunLike {
  id: number;
  counts: Readonly<Record<string, unknown>>;
}

/** Meta's counts recorded on a run, if any. */
export function runMatch(run: RunLike): RunMatch | null {
  const m = run.counts.metaMatch as Partial<MetaMatch> | undefined;
  if (typeof m !== 'object' || m === null || typeof m.received !== 'number' || typeof m.matched !== 'number') return null;
  const invalid = typeof m.invalid === 'number' ? m.invalid : 0;
  return { runId: run.id, received: m.received, matched: m.matched, invalid, rate: m.received > 0 ? m.matched / m.received : 0 };
}

/** `runs`: the sync's runs, newest first. */
export function matchHealth(runs: readonly RunLike[]): MatchHealth {
  const processed = runs.flatMap((run) => {
    const match = runMatch(run);
    return match && match.received > 0 ? [{ run, match }] : [];
  });
  const [latest, ...earlier] = processed;
  if (!latest) return { latest: null, usualRate: null, low: false, causes: [] };
  const history = earlier.slice(0, USUAL_RUNS).map((p) => p.match.rate);
  const usualRate = history.length >= MIN_HISTORY ? median(history) : null;
  const low = usualRate !== null && latest.match.rate < LOW_SHARE * usualRate;
  return { latest: latest.match, usualRate, low, causes: low ? likelyCauses(latest.run, earlier[0]!.run) : [] };
}

function likelyCauses(latest: RunLike, before: RunLike): string[] {
  const causes: string[] = [];
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const now = latest.counts.modelCoverage as { rows: number; usable: Record<string, number> } | undefined;
  const then = before.counts.modelCoverage as { rows: number; usable: Record<string, number> } | undefined;
  if (now && then && now.rows > 0 && then.rows > 0) {
    for (const [key, usable] of Object.entries(then.usable)) {
      const was = usable / then.rows;
      const is = (now.usable[key] ?? 0) / now.rows;
      if (was > 0 && is < KEY_DROP_SHARE * was) causes.push(`${key} is filled in for ${pct(is)} of the model's rows, down from ${pct(was)}: check the column it is mapped from`);
    }
  }
  const coverage = latest.counts.coverage as Record<string, { dropReasons?: Record<string, number> }> | undefined;
  const noCountry = Object.entries(coverage?.PHONE?.dropReasons ?? {}).filter(([reason]) => /no country/.test(reason)).reduce((n, [, c]) => n + c, 0);
  if (noCountry > 0) causes.push(`${noCountry} phone number${noCountry === 1 ? '' : 's'} had no country and could not be sent: map COUNTRY or set defaultPhoneCountry`);
  const usable = now?.usable ?? {};
  if ((usable.EMAIL ?? 0) > 0) causes.push('the new people may have work emails only: Meta matches the personal emails people sign up with far more often, so map a personal email or a phone too');
  return causes;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The warning for a low match rate, or undefined when the rate is as usual. */
export function lowMatchSentence(h: MatchHealth): string | undefined {
  if (!h.low || !h.latest || h.usualRate === null) return undefined;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return `Meta matched ${pct(h.latest.rate)} of the rows run #${h.latest.runId} sent (${h.latest.matched} of ${h.latest.received}), well below the sync's usual ${pct(h.usualRate)}`;
}
