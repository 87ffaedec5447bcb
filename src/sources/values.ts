// Conversions to plain JS shared by the sources.

/** Integers stay numbers while exact; larger ones become decimal strings. */
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function integerValue(value: bigint): number | string {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
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

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;

/** `YYYY-MM-DD` at UTC midnight; anything else (BC or infinite dates) stays text. */
export function dateFromIsoDay(text: string): Date | string {
  const m = DATE_TEXT.exec(text);
  if (!m) return text;
  return dateFromMillis(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) ?? text;
}
