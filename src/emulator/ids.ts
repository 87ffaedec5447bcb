import { randomBytes } from 'node:crypto';

/** Audience IDs start above 2^53 (17 digits), like Meta's, so a client that parses them as numbers breaks. */
const AUDIENCE_ID_BASE = 23_850_000_000_000_000n;
const AUDIENCE_ID_STEP = 7_919n;

export function audienceIdFor(sequence: number): string {
  return (AUDIENCE_ID_BASE + BigInt(sequence) * AUDIENCE_ID_STEP).toString();
}

/** A server-generated upload session id: a numeric string that still fits a JS number exactly. */
export function generatedSessionId(): string {
  return String(1_000_000_000_000 + (randomBytes(6).readUIntBE(0, 6) % 8_000_000_000_000_000));
}

export function fbtraceId(): string {
  return randomBytes(8).toString('base64url').slice(0, 11);
}

export function stripActPrefix(id: string): string {
  return id.startsWith('act_') ? id.slice(4) : id;
}
