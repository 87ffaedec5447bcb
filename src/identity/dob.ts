/**
 * Date-of-birth parts (DOBY, DOBM, DOBD). Each may come from its own column or from one date column:
 * a Date (DATE columns arrive as JS Dates at UTC midnight, so UTC getters) or an ISO date string.
 */
import { Dropped, type Empty, isValidDate, toText } from './value.js';

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.]*(?:Z|[+-]\d{2}:?\d{2})?)?$/;
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const MONTH_BY_NAME: ReadonlyMap<string, number> = new Map(
  MONTHS.flatMap((name, i) => [[name, i + 1] as const, [name.slice(0, 3), i + 1] as const]),
);

function twoDigits(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Year, month and day of an ISO date string as written (no time-zone shift), or undefined. */
function isoDateParts(text: string): [number, number, number] | undefined {
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  return [y, mo, d];
}

const NOT_A_DATE = 'not a valid date';

/** The year as four digits, 1900 up to `currentYear`. */
export function birthYear(value: unknown, currentYear: number): string | Empty | Dropped {
  let year: number;
  if (value instanceof Date) {
    if (!isValidDate(value)) return new Dropped(NOT_A_DATE);
    year = value.getUTCFullYear();
  } else {
    const text = toText(value);
    if (typeof text !== 'string') return text;
    const iso = isoDateParts(text);
    if (iso) year = iso[0];
    else if (/^\d{4}$/.test(text)) year = Number(text);
    else return new Dropped('not a four-digit year');
  }
  if (year < 1900 || year > currentYear) return new Dropped(`year outside 1900–${currentYear}`);
  return String(year);
}

/** The month as 01–12: a number, a month name or its three-letter abbreviation, a Date or ISO date. */
export function birthMonth(value: unknown): string | Empty | Dropped {
  if (value instanceof Date) return isValidDate(value) ? twoDigits(value.getUTCMonth() + 1) : new Dropped(NOT_A_DATE);
  const text = toText(value);
  if (typeof text !== 'string') return text;
  const iso = isoDateParts(text);
  if (iso) return twoDigits(iso[1]);
  let month: number | undefined;
  if (/^\d{1,2}$/.test(text)) month = Number(text);
  else month = MONTH_BY_NAME.get(text.toLowerCase().replace(/\.$/, ''));
  if (month === undefined || month < 1 || month > 12) return new Dropped('not a month (1–12 or a month name)');
  return twoDigits(month);
}

/** The day as 01–31: a number, a Date or ISO date. */
export function birthDay(value: unknown): string | Empty | Dropped {
  if (value instanceof Date) return isValidDate(value) ? twoDigits(value.getUTCDate()) : new Dropped(NOT_A_DATE);
  const text = toText(value);
  if (typeof text !== 'string') return text;
  const iso = isoDateParts(text);
  if (iso) return twoDigits(iso[2]);
  const day = /^\d{1,2}$/.test(text) ? Number(text) : 0;
  if (day < 1 || day > 31) return new Dropped('not a day of the month (1–31)');
  return twoDigits(day);
}
