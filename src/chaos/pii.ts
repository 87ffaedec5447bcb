/**
 * Finds raw personal data in bytes the project wrote (state database, spools, run history, logs,
 * API answers, dashboard pages). Candidate
 * tokens are pulled out with a few patterns and looked up in the set of every raw value the chaos
 * model ever held, so scanning costs one pass over the text whatever the number of needles.
 */
export interface PiiHit {
  kind: 'email' | 'phone' | 'name';
  /** Enough to find the value again in the model, not the value itself. */
  redacted: string;
}

const EMAIL = /[^\s"'`<>()[\]{},;:@\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const PHONE = /\+?\d[\d ().-]{8,}\d/g;
const WORD = /\p{L}{6,}/gu;
/** JSON string escapes (`\n` before an address in a log line) and HTML entities (`&#39;`) end a token. */
const ESCAPES = /\\(?:u[0-9a-fA-F]{4}|.)|&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);/g;
/** National phone numbers in the needles are 10 digits. */
const PHONE_DIGITS = 10;

/**
 * @param needles normalized raw values: lower-case emails, 10-digit national phone numbers, lower-case names.
 * @returns one hit per distinct value found.
 */
export function findPii(raw: string, needles: ReadonlySet<string>): PiiHit[] {
  const hits = new Map<string, PiiHit>();
  // As written (binary files) and with escapes undone (JSON, HTML): an escape may hide a token's start.
  for (const text of [raw, raw.replace(ESCAPES, ' ')]) {
    for (const m of text.matchAll(EMAIL)) {
      const value = m[0].trim().toLowerCase();
      if (needles.has(value)) hits.set(value, { kind: 'email', redacted: redact(value) });
    }
    for (const m of text.matchAll(PHONE)) {
      const digits = m[0].replace(/\D/g, '');
      for (let i = 0; i + PHONE_DIGITS <= digits.length; i++) {
        const window = digits.slice(i, i + PHONE_DIGITS);
        if (needles.has(window)) hits.set(window, { kind: 'phone', redacted: redact(window) });
      }
    }
    for (const m of text.matchAll(WORD)) {
      const value = m[0].toLowerCase();
      if (needles.has(value)) hits.set(value, { kind: 'name', redacted: redact(value) });
    }
  }
  return [...hits.values()];
}

function redact(value: string): string {
  return `${value.slice(0, 2)}…(${value.length} chars)`;
}
