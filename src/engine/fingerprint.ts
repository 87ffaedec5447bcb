import { hash } from 'node:crypto';

/**
 * A change-detection fingerprint of one model row: a SHA-256 over the raw mapped values and the
 * encoder's signature (schema, options, rules version). It is computed for every row on every run, so
 * it costs one hash per row instead of a full normalize+hash of every key; rows whose fingerprint moved
 * are then encoded and compared cell by cell (a change of this format therefore re-encodes every row
 * once but re-sends none whose cells are the same). It is a one-way digest: no raw value can be read back.
 */
export function rawFingerprint(signature: string, values: readonly unknown[]): string {
  let text = part('S', signature);
  for (const v of values) text += fingerprintPart(v);
  return hash('sha256', text, 'base64');
}

/** Each value as a type tag, then its length and text: no two different rows give the same text. */
function fingerprintPart(v: unknown): string {
  if (v === null || v === undefined) return 'N';
  switch (typeof v) {
    case 'string':
      return part('S', v);
    case 'number':
      return part('n', String(v));
    case 'bigint':
      return part('b', String(v));
    case 'boolean':
      return v ? 'T' : 'F';
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'D!' : part('D', v.toISOString());
  try {
    return part('O', JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v));
  } catch {
    return 'O?';
  }
}

function part(tag: string, text: string): string {
  return `${tag}${text.length}:${text}`;
}
