/**
 * Warehouses quote the row value that failed in their errors (DuckDB: `Could not convert string
 * 'ana@example.com' to INT32`; PostgreSQL: `invalid input syntax for type integer: "Ana"`), and a
 * source's error reaches the run history, the CLI, the JSON API, the dashboard and the service log.
 * `openSource` passes every error of every source through `redactSourceMessage`, so a new warehouse
 * needs no redaction of its own; code that reports a warehouse's text by another path calls it too.
 *
 * The rule is safe by default: every quoted literal is replaced, except one whose text is a name the
 * caller knows (the model's identifiers, the columns read, the source's name and path). Values are
 * never kept for looking like names (a first name looks like a column name), nor for holding only
 * punctuation (`"[" Ana "]"` would then show Ana).
 */
export const REDACTED = '<redacted>';

type Segment = { text: string; kept: true } | { text: string; kept: false; shown: string };

const WORD_CHAR = /[\p{L}\p{N}_]/u;
const isWordChar = (ch: string | undefined) => ch !== undefined && WORD_CHAR.test(ch);
/** E-mail addresses anywhere in a message (DuckDB's `error(email)` prints the value bare). */
const EMAIL = /[^\s"'`<>()[\]{},;:@\\]+@[\p{L}\p{N}.-]+\.\p{L}{2,}/gu;
/**
 * Values printed without quotes: PostgreSQL's `Key (email)=(ana@x.com)` and `Failing row contains
 * (1, ana@x.com)`; BigQuery's `Bad int64 value: Ana Smith` (to the end of the line).
 */
const UNQUOTED_VALUES = [/(Key \([^\n]*?\)=\(|Failing row contains \()([^\n]*)(\))/g, /(\b(?:value|literal):[ \t]*)([^\s'"][^\n]*)()/gi];
/** Shorter text left over from a redacted literal is not searched for elsewhere in the message. */
const MIN_ECHO_LENGTH = 2;

/**
 * `text` with every quoted literal (`'...'`, `"..."`) replaced by `'<redacted>'`, unless its text is
 * one of `identifiers` (compared case-insensitively; `a.b` when both parts are). Also redacted: the
 * literal's text where the message repeats it unquoted, unquoted values (PostgreSQL's `Key (...)=(...)`,
 * BigQuery's `value: x`), and e-mail addresses other than `identifiers` (a service account). Warehouses do not escape quotes inside a value (`'O'Brien'`), so a literal that is
 * not a known name runs to the last quote of its kind on the line: over-redacting is the safe side.
 */
export function redactSourceMessage(text: string, identifiers: Iterable<string> = []): string {
  const known = new Set<string>();
  for (const id of identifiers) if (id !== '') known.add(id.toLowerCase());
  const removed: string[] = [];
  let segments: Segment[] = [{ text, kept: true }];
  segments = mapKept(segments, (t) => redactUnquotedValues(t, removed));
  segments = mapKept(segments, (t) => redactQuoted(t, known, removed));
  const echoes = echoesOf(removed, known);
  segments = mapKept(segments, (t) => redactEchoes(t, echoes));
  segments = mapKept(segments, (t) => [{ text: t.replace(EMAIL, (email) => (known.has(email.toLowerCase()) ? email : REDACTED)), kept: true }]);
  return segments.map((s) => (s.kept ? s.text : s.shown)).join('');
}

/** The last line of defence for text stored by other paths (run errors): e-mail addresses only. */
export function redactEmailAddresses(text: string): string {
  return text.replace(EMAIL, REDACTED);
}

function mapKept(segments: Segment[], f: (text: string) => Segment[]): Segment[] {
  return segments.flatMap((s) => (s.kept ? f(s.text) : [s]));
}

function redactUnquotedValues(text: string, removed: string[]): Segment[] {
  let segments: Segment[] = [{ text, kept: true }];
  for (const pattern of UNQUOTED_VALUES) {
    segments = mapKept(segments, (t) => {
      const out: Segment[] = [];
      let at = 0;
      for (const m of t.matchAll(pattern)) {
        out.push({ text: t.slice(at, m.index) + m[1]!, kept: true });
        out.push({ text: m[2]!, kept: false, shown: REDACTED });
        out.push({ text: m[3]!, kept: true });
        removed.push(m[2]!);
        at = m.index + m[0].length;
      }
      out.push({ text: t.slice(at), kept: true });
      return out;
    });
  }
  return segments;
}

/** A quote character that can open or close a literal: not an apostrophe inside a word (`can't`). */
function isQuote(text: string, i: number): boolean {
  const ch = text[i];
  return (ch === "'" || ch === '"') && !(isWordChar(text[i - 1]) && isWordChar(text[i + 1]));
}

function redactQuoted(text: string, known: ReadonlySet<string>, removed: string[]): Segment[] {
  const quotes: Record<string, number[]> = { "'": [], '"': [] };
  for (let i = 0; i < text.length; i++) if (isQuote(text, i)) quotes[text[i]!]!.push(i);
  const out: Segment[] = [];
  let kept = 0;
  let i = 0;
  while (i < text.length) {
    if (!isQuote(text, i)) {
      i++;
      continue;
    }
    const quote = text[i]!;
    const after = quotes[quote]!.filter((p) => p > i);
    const close = after[0];
    if (close !== undefined && isKnown(text.slice(i + 1, close), known) && !isWordChar(text[close + 1]) && balanced(after, 0)) {
      i = close + 1;
      continue;
    }
    const end = closingQuote(text, i, after);
    const stop = end === undefined ? text.length : end + 1;
    removed.push(text.slice(i + 1, end ?? text.length));
    out.push({ text: text.slice(kept, i), kept: true }, { text: text.slice(i, stop), kept: false, shown: `${quote}${REDACTED}${end === undefined ? '' : quote}` });
    kept = i = stop;
  }
  out.push({ text: text.slice(kept), kept: true });
  return out;
}

/**
 * Where a value's literal ends: warehouses do not escape quotes inside a value, so the last balanced
 * quote on its line; the last quote of the message for a value with a line break (over-redacting is
 * the safe side); none when it never closes.
 */
function closingQuote(text: string, open: number, after: readonly number[]): number | undefined {
  const lineEnd = text.indexOf('\n', open);
  for (let k = after.length - 1; k >= 0; k--) if ((lineEnd === -1 || after[k]! < lineEnd) && balanced(after, k)) return after[k];
  return after.at(-1);
}

/** The quotes left after a closing quote pair up: an odd count means it closed inside a value. */
function balanced(after: readonly number[], k: number): boolean {
  return (after.length - k - 1) % 2 === 0;
}

function isKnown(name: string, known: ReadonlySet<string>): boolean {
  if (name === '') return false;
  const lower = name.toLowerCase();
  return known.has(lower) || lower.split('.').every((part) => known.has(part));
}

/** The pieces of redacted literals a message may repeat unquoted (DuckDB's strptime prints the value again on its own line). */
function echoesOf(removed: readonly string[], known: ReadonlySet<string>): string[] {
  const pieces = new Set<string>();
  for (const value of removed) {
    for (const piece of value.split(/['"\n]/)) {
      const p = piece.trim();
      if (p.length >= MIN_ECHO_LENGTH && /[\p{L}\p{N}]/u.test(p) && !isKnown(p, known)) pieces.add(p);
    }
  }
  return [...pieces].sort((a, b) => b.length - a.length);
}

/** Each echo where it stands as a whole (not inside a longer word), in one pass over the text. */
function redactEchoes(text: string, echoes: readonly string[]): Segment[] {
  if (echoes.length === 0) return [{ text, kept: true }];
  const pattern = new RegExp(echoes.map((e) => e.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gu');
  const out: Segment[] = [];
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    const end = m.index + m[0].length;
    const inWord = (isWordChar(text[m.index - 1]) && isWordChar(m[0][0])) || (isWordChar(text[end]) && isWordChar(m[0].at(-1)));
    if (inWord) continue;
    out.push({ text: text.slice(at, m.index), kept: true }, { text: m[0], kept: false, shown: REDACTED });
    at = end;
  }
  out.push({ text: text.slice(at), kept: true });
  return out;
}
