import { randomInt } from 'node:crypto';
import { MetaApiError } from './errors.js';

/** Digits of an ad account id given with or without `act_`; throws a user-facing error otherwise. */
export function normalizeAdAccountId(id: string): string {
  const digits = id.trim().replace(/^act_/, '');
  if (!/^\d{1,20}$/.test(digits)) {
    throw invalidId(`Ad account id "${id}" is not valid`, 'Use the numeric ad account id, with or without the act_ prefix (e.g. act_1234567890).');
  }
  return digits;
}

/** Audience ids are numeric strings that can exceed 2^53; they are checked, never converted to numbers. */
export function assertAudienceId(id: string): string {
  if (!/^\d{1,25}$/.test(id)) {
    throw invalidId(`Audience id "${id}" is not valid`, 'Use the numeric audience id Meta returned when the audience was created.');
  }
  return id;
}

function invalidId(detail: string, userAction: string): MetaApiError {
  return new MetaApiError({ kind: 'invalid_request', retryable: false, ambiguous: false, detail, userAction }, 'Invalid id');
}

const MAX_SESSION_ID = Number.MAX_SAFE_INTEGER;
let lastSessionId = 0;

/**
 * A new upload session id: unix seconds * 10^6 plus 6 random digits (about 1.8e15 today, so it stays a
 * safe JSON number until the year 2255). The time part keeps ids unique across days and runs; the random
 * part separates processes starting in the same second; within a process ids strictly increase.
 */
export function newSessionId(now: number = Date.now()): string {
  const candidate = Math.floor(now / 1000) * 1_000_000 + randomInt(1_000_000);
  const id = Math.min(MAX_SESSION_ID, Math.max(candidate, lastSessionId + 1));
  lastSessionId = id;
  return String(id);
}
