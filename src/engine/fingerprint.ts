import { hash } from 'node:crypto';

/**
 * A change-detection fingerprint of one model row: a SHA-256 over the raw mapped values and the
 * encoder's signature (schema, options, rules version). It is computed for every row on every run, so
 * it costs one hash per row instead of a full normalize+hash of every key; rows whose fingerprint moved
 * are then encoded and compared cell by cell. It is a one-way digest: no raw value can be read back.
 */
export function rawFingerprint(signature: string, values: readonly unknown[]): string {
  let text = signature;
  for (const v of values) text += '\u001f' + fingerprintPart(v);
  return hash('sha256', text, 'base64');
}

function fingerprintPart(v: unknown): string {
  if (v === null || v === undefined) return '\u0000';
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'D!' : 'D' + v.toISOString();
  if (typeof v === 'object') {
    try {
      return 'O' + JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
    } catch {
      return 'O?';
    }
  }
  return String(v);
}
