/** Checks shared by handlers: object lookup, ToS, flagged audiences, pending replace timeouts. */
import { errors } from '../errors.js';
import type { EmulatorFlags } from '../options.js';
import type { AudienceRecord } from '../store/audiences.js';
import { isExpired } from '../store/sessions.js';
import type { AccountRecord, EmulatorStore } from '../store/store.js';

export function accountOrThrow(store: EmulatorStore, accountId: string, method: string): AccountRecord {
  const account = store.accounts.get(accountId);
  if (!account) throw errors.unsupported(method, `act_${accountId}`);
  return account;
}

/** A live audience, with any replace that ran past its window settled first. */
export function audienceOrThrow(store: EmulatorStore, id: string, method: string, now: number, flags: EmulatorFlags): AudienceRecord {
  const audience = store.audiences.get(id);
  if (!audience || audience.deleted) throw errors.unsupported(method, id);
  settleExpiredReplace(store, audience, now, flags.sessionWindowMs);
  return audience;
}

export function requireTos(account: AccountRecord): void {
  if (!account.tosAccepted) throw errors.tosNotAccepted(account.id);
}

export function requireNotFlagged(audience: AudienceRecord): void {
  if (audience.operationStatus === 471) throw errors.audienceFlagged();
}

/** §1.6.4: when a replace outlives its window the audience gets whatever arrived in time. */
export function settleExpiredReplace(store: EmulatorStore, audience: AudienceRecord, now: number, windowMs: number): void {
  const run = audience.replace;
  if (!run) return;
  const session = store.sessions.get(audience.accountId, run.sessionId);
  if (session && !isExpired(session, now, windowMs)) return;
  audience.members = run.staging;
  delete audience.replace;
  audience.operationStatus = 200;
  const seconds = Math.floor((run.startedAt + windowMs) / 1000);
  audience.timeUpdated = seconds;
  audience.timeContentUpdated = seconds;
  if (session) session.stage = 'timed_out';
}
