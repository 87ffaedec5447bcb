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
