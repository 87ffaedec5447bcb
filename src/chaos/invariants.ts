import { createHash } from 'node:crypto';
import type { ExpectedMember } from './population.js';

/** The properties checked after every chaos run. */
export type CheckName =
  /** After a successful mirror run the audience holds exactly the model, with the model's current identifiers. */
  | 'mirror'
  /** After a successful run every model key is in our state, synced: nothing lost, nothing left pending. */
  | 'state-complete'
  /** Every audience member that left the model is still tracked with its cells, so a later run removes it. */
  | 'tracked-members'
  /** A pending record has attempts left; a failed one has used them all. */
  | 'retry-budget'
  /** No raw email, phone or name in the state files, spools, run history or captured output. */
  | 'no-pii'
  /** A model failing on a raw value, run through `serve`: the value is in no API answer, dashboard page, run history or service log. */
  | 'no-pii-served'
  /** The sync process's peak RSS stayed under the limit. */
  | 'memory'
  /** The CLI's exit code matches the run status (0 only on success). */
  | 'exit-code'
  /** A run that was not killed ended with a summary. */
  | 'run-completed';

export const CHECK_NAMES: readonly CheckName[] = ['mirror', 'state-complete', 'tracked-members', 'retry-budget', 'no-pii', 'no-pii-served', 'memory', 'exit-code', 'run-completed'];

export type Member = Readonly<Record<string, string | number>>;

/** The slice of a state record the checks need. */
export interface RecordView {
  pk: string;
  status: 'synced' | 'pending' | 'failed';
  attempts: number;
  hasCells: boolean;
}

/** The state's primary-key hash: SHA-256 hex of the key's text, as the sources compute it. */
export function pkHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const sample = (items: readonly string[]) => items.slice(0, 3).join(', ') + (items.length > 3 ? `, … (${items.length} in all)` : '');

export function checkMirror(expected: ReadonlyMap<string, ExpectedMember>, members: readonly Member[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const extra: string[] = [];
  const stale: string[] = [];
  const duplicated: string[] = [];
  for (const m of members) {
    const id = String(m.EXTERN_ID ?? '');
    if (seen.has(id)) duplicated.push(id);
    seen.add(id);
    const want = expected.get(id);
    if (!want) extra.push(id || '(no EXTERN_ID)');
    else if (m.EMAIL !== want.emailHash || m.PHONE !== want.phoneHash) stale.push(id);
  }
  const missing = [...expected.keys()].filter((id) => !seen.has(id));
  if (missing.length) problems.push(`${missing.length} model rows missing from the audience: ${sample(missing)}`);
  if (extra.length) problems.push(`${extra.length} audience members not in the model: ${sample(extra)}`);
  if (stale.length) problems.push(`${stale.length} members carry outdated EMAIL/PHONE hashes: ${sample(stale)}`);
  if (duplicated.length) problems.push(`${duplicated.length} EXTERN_IDs held by several members: ${sample(duplicated)}`);
  return problems;
}

export function checkStateComplete(expectedKeys: Iterable<string>, records: readonly RecordView[]): string[] {
  const byPk = new Map(records.map((r) => [r.pk, r]));
  const missing: string[] = [];
  const unsynced: string[] = [];
  let expectedCount = 0;
  for (const key of expectedKeys) {
    expectedCount++;
    const r = byPk.get(pkHash(key));
    if (!r) missing.push(key);
    else if (r.status !== 'synced' || !r.hasCells) unsynced.push(`${key} (${r.status})`);
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`${missing.length} model keys have no state record: ${sample(missing)}`);
  if (unsynced.length) problems.push(`${unsynced.length} model keys are not synced: ${sample(unsynced)}`);
  const leftovers = records.length - (expectedCount - missing.length);
  if (leftovers > 0) problems.push(`${leftovers} state records for keys no longer in the model`);
  return problems;
}

export function checkRetryBudget(records: readonly RecordView[], maxAttempts: number): string[] {
  const over = records.filter((r) => r.status === 'pending' && r.attempts >= maxAttempts);
  const early = records.filter((r) => r.status === 'failed' && r.attempts < maxAttempts);
  const problems: string[] = [];
  if (over.length) problems.push(`${over.length} records still pending after ${maxAttempts}+ attempts (pk ${sample(over.map((r) => r.pk.slice(0, 12)))})`);
  if (early.length) problems.push(`${early.length} records marked failed before using their ${maxAttempts} attempts (pk ${sample(early.map((r) => r.pk.slice(0, 12)))})`);
  return problems;
}

/**
 * Members whose key left the model must be tracked (a state record with cells): otherwise no
 * later run knows to remove them and the audience keeps them for ever.
 */
export function checkTrackedMembers(members: readonly Member[], modelKeys: ReadonlySet<string>, records: readonly RecordView[]): string[] {
  const tracked = new Set(records.filter((r) => r.hasCells).map((r) => r.pk));
  const orphans = members
    .map((m) => String(m.EXTERN_ID ?? ''))
    .filter((id) => id !== '' && !modelKeys.has(id) && !tracked.has(pkHash(id)));
  return orphans.length ? [`${orphans.length} members left the model but are not tracked in state, so no run will remove them: ${sample(orphans)}`] : [];
}

export function checkMemory(maxRssMb: number, limitMb: number): string[] {
  return maxRssMb > limitMb ? [`peak RSS ${maxRssMb.toFixed(0)} MB is above the ${limitMb} MB limit`] : [];
}
