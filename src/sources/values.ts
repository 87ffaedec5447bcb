// Conversions to plain JS shared by the sources.

/** Integers stay numbers while exact; larger ones become decimal strings. */
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function integerValue(value: bigint): number | string {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
}

/** Digits in a number's text (sign and point left out). */
const digitCount = (t: string) => t.length - (t.charCodeAt(0) === 45 ? 1 : 0) - (t.includes('.') ? 1 : 0);

/** An integer's text (warehouses that send numbers as text): a number while exact, else the decimal text. */
export function integerText(text: string): number | string {
  if (digitCount(text) <= 15) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  try {
    return integerValue(BigInt(text));
  } catch {
    return text;
  }
}

/** A decimal's text as a number when a double holds it exactly; 15 digits or fewer take the fast path. */
export function decimalText(text: string): number | string {
  if (digitCount(text) <= 15) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return decimalValue(text);
}

/** A decimal's text becomes a number when a double holds it exactly (≤ 15 significant digits). */
export function decimalValue(text: string): number | string {
  const digits = text.replace(/^[-+]?0*/, '').replace('.', '').replace(/^0+/, '');
  if (!/^\d*$/.test(digits) || digits.replace(/0+$/, '').length > 15) return text;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

const MAX_DATE_MS = 8.64e15;

/** A Date from epoch milliseconds, or undefined outside JS Date's range. */
export function dateFromMillis(ms: number): Date | undefined {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? new Date(ms) : undefined;
}

/**
 * A JSON document as nested JS values (objects and arrays), which identity drops with a reason where
 * their text would be hashed as if it were a name or an email. Text that is not JSON stays text.
 */
export function jsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2})?(?::?(\d{2}))?(?::?(\d{2}))?$/;

/** Epoch milliseconds of a UTC calendar time, or NaN for a month or day out of range (MySQL's zero date). */
function utcMillis(year: number, month: number, day: number, h = 0, mi = 0, s = 0, ms = 0): number {
  if (month < 1 || month > 12 || day < 1 || day > 31) return NaN;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(h, mi, s, ms);
  return d.getTime();
}

/** `YYYY-MM-DD` at UTC midnight; anything else (BC, infinity, MySQL's zero date) stays text. */
export function parseDate(text: string): Date | string {
  const m = DATE_TEXT.exec(text);
  if (!m) return text;
  return dateFromMillis(utcMillis(Number(m[1]), Number(m[2]), Number(m[3]))) ?? text;
}

/** `YYYY-MM-DD[T ]hh:mm:ss[.f][Z|±hh[:mm]]`: without a zone it is read as UTC; with one, as that offset. Anything else stays text. */
export function parseTimestamp(text: string): Date | string {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return text;
  const ms = Math.floor(Number(`0${m[7] ?? ''}`) * 1000);
  let t = utcMillis(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  if (m[8] !== undefined && m[8] !== 'Z') {
    const sign = m[8].startsWith('-') ? -1 : 1;
    const offsetSeconds = Math.abs(Number(m[8])) * 3600 + Number(m[9] ?? 0) * 60 + Number(m[10] ?? 0);
    t -= sign * offsetSeconds * 1000;
  }
  return dateFromMillis(t) ?? text;
}
