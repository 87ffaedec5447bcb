/**
 * Date-of-birth parts (DOBY, DOBM, DOBD). Each may come from its own column or from one date column: a Date
 * (DATE and TIMESTAMP columns arrive as JS Dates at UTC midnight, so UTC getters) or a date written as text in
 * the sync's dateFormat. 03/07/1985 is March 7 in the US and July 3 in most other places, so the format is the
 * user's to say: nothing here guesses between mdy and dmy.
 */
import { Dropped, type Empty, isValidDate, toText } from './value.js';

export const DATE_FORMATS = ['iso', 'mdy', 'dmy', 'ymd', 'yyyymmdd'] as const;
export type DateFormat = (typeof DATE_FORMATS)[number];

export function isDateFormat(value: unknown): value is DateFormat {
  return typeof value === 'string' && (DATE_FORMATS as readonly string[]).includes(value);
}

/** How each format writes March 7, 1985 (for messages and docs). */
export const DATE_FORMAT_EXAMPLES: Readonly<Record<DateFormat, string>> = {
  iso: '1985-03-07',
  mdy: '03/07/1985',
  dmy: '07/03/1985',
  ymd: '1985/03/07',
  yyyymmdd: '19850307',
};

// An optional time after the date, as text exports of TIMESTAMP columns write it ("1985-03-07 00:00:00",
// "03/07/1985 12:00 AM"): the date part decides.
const TIME = String.raw`(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?: ?[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?)?`;
// One separator, the same twice: "/", "-", "." or a space.
const SEP = String.raw`([/.\- ])`;
const SHAPES: Readonly<Record<DateFormat, RegExp>> = {
  iso: new RegExp(String.raw`^(\d{4})-(\d{2})-(\d{2})${TIME}$`),
  mdy: new RegExp(String.raw`^(\d{1,2})${SEP}(\d{1,2})\2(\d{4})${TIME}$`),
  dmy: new RegExp(String.raw`^(\d{1,2})${SEP}(\d{1,2})\2(\d{4})${TIME}$`),
  ymd: new RegExp(String.raw`^(\d{4})${SEP}(\d{1,2})\2(\d{1,2})${TIME}$`),
  yyyymmdd: /^(\d{4})(\d{2})(\d{2})$/,
};
/** Where year, month and day are in each format's match. */
const GROUPS: Readonly<Record<DateFormat, readonly [year: number, month: number, day: number]>> = {
  iso: [1, 2, 3],
  mdy: [4, 1, 3],
  dmy: [4, 3, 1],
  ymd: [1, 3, 4],
  yyyymmdd: [1, 2, 3],
};
/** Any text a person would call a date, in some format: the drop reason then points at dateFormat. */
const DATE_LIKE = /^(?:\d{1,4}[/.\- ]\d{1,2}[/.\- ]\d{1,4}|\d{8})(?:[T ].*)?$/;

/** A date written in `format` that names no real day (February 30, month 13). */
export const IMPOSSIBLE = Symbol('impossible date');

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Year, month and day of `text` read in `format` (as written: no time-zone shift), IMPOSSIBLE when it has the
 * format's shape but names no real day, undefined when it does not have the shape.
 */
export function parseDate(text: string, format: DateFormat): [number, number, number] | typeof IMPOSSIBLE | undefined {
  const m = SHAPES[format].exec(text);
  if (!m) return undefined;
  const [yi, mi, di] = GROUPS[format];
  const y = Number(m[yi]);
  const mo = Number(m[mi]);
  const d = Number(m[di]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return IMPOSSIBLE;
  return [y, mo, d];
}

/** The formats in which `value` (a warehouse cell) reads as a real date: what `plan` counts per column. */
export function formatsAccepting(value: unknown): DateFormat[] {
  const text = toText(value);
  if (typeof text !== 'string') return [];
  return DATE_FORMATS.filter((f) => Array.isArray(parseDate(text, f)));
}

function twoDigits(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** The date in a text value: its parts, or a Dropped when it has the format's shape but no real day. */
function textDate(text: string, format: DateFormat): [number, number, number] | Dropped | undefined {
  const parts = parseDate(text, format);
  if (parts === IMPOSSIBLE) {
    return new Dropped(
      format === 'mdy' || format === 'dmy'
        ? `not a valid date in dateFormat ${format}: no such month or day (is the column ${format === 'mdy' ? 'dmy' : 'mdy'}?)`
        : `not a valid date in dateFormat ${format}: no such month or day`,
    );
  }
  return parts;
}

/** The reason for text that is neither a date in the format nor the key's own form. */
function notUsable(text: string, format: DateFormat, own: string): Dropped {
  if (DATE_LIKE.test(text)) {
    return new Dropped(`not a date in dateFormat ${format} (${DATE_FORMAT_EXAMPLES[format]}); set the sync's dateFormat to the column's: ${DATE_FORMATS.join(', ')}`);
  }
  return new Dropped(own);
}

const NOT_A_DATE = 'not a valid date';

/** The year as four digits, 1900 up to `currentYear`. */
export function birthYear(value: unknown, currentYear: number, format: DateFormat): string | Empty | Dropped {
  let year: number;
  if (value instanceof Date) {
    if (!isValidDate(value)) return new Dropped(NOT_A_DATE);
    year = value.getUTCFullYear();
  } else {
    const text = toText(value);
    if (typeof text !== 'string') return text;
    if (/^\d{4}$/.test(text)) year = Number(text);
    else {
      const date = textDate(text, format);
      if (date instanceof Dropped) return date;
      if (!date) return notUsable(text, format, 'not a four-digit year');
      year = date[0];
    }
  }
  if (year < 1900 || year > currentYear) return new Dropped(`year outside 1900–${currentYear}`);
  return String(year);
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const MONTH_BY_NAME: ReadonlyMap<string, number> = new Map(
  MONTHS.flatMap((name, i) => [[name, i + 1] as const, [name.slice(0, 3), i + 1] as const]),
);

/** The month as 01–12: a number, a month name or its three-letter abbreviation, a Date or a date. */
export function birthMonth(value: unknown, format: DateFormat): string | Empty | Dropped {
  if (value instanceof Date) return isValidDate(value) ? twoDigits(value.getUTCMonth() + 1) : new Dropped(NOT_A_DATE);
  const text = toText(value);
  if (typeof text !== 'string') return text;
  let month: number | undefined;
  if (/^\d{1,2}$/.test(text)) month = Number(text);
  else {
    const date = textDate(text, format);
    if (date instanceof Dropped) return date;
    if (date) return twoDigits(date[1]);
    month = MONTH_BY_NAME.get(text.toLowerCase().replace(/\.$/, ''));
    if (month === undefined) return notUsable(text, format, 'not a month (1–12 or a month name)');
  }
  if (month < 1 || month > 12) return new Dropped('not a month (1–12 or a month name)');
  return twoDigits(month);
}

/** The day as 01–31: a number, a Date or a date. */
export function birthDay(value: unknown, format: DateFormat): string | Empty | Dropped {
  if (value instanceof Date) return isValidDate(value) ? twoDigits(value.getUTCDate()) : new Dropped(NOT_A_DATE);
  const text = toText(value);
  if (typeof text !== 'string') return text;
  if (/^\d{1,2}$/.test(text)) {
    const day = Number(text);
    return day >= 1 && day <= 31 ? twoDigits(day) : new Dropped('not a day of the month (1–31)');
  }
  const date = textDate(text, format);
  if (date instanceof Dropped) return date;
  return date ? twoDigits(date[2]) : notUsable(text, format, 'not a day of the month (1–31)');
}

const DOB_KEYS = ['DOBY', 'DOBM', 'DOBD'] as const;
export type DobKey = (typeof DOB_KEYS)[number];

/** How many of a date-of-birth column's text values each dateFormat reads as a real date. */
export interface DateFormatCount {
  column: string;
  keys: DobKey[];
  /** Values that are text or numbers (Dates, nulls and blanks are not counted). */
  textValues: number;
  accepted: Record<DateFormat, number>;
}

/**
 * Counts, over the rows a plan reads, what each dateFormat would make of the columns mapped to DOBY/DOBM/DOBD.
 * Undefined when none is mapped.
 */
export function createDateFormatCounter(mapping: Readonly<Partial<Record<string, string>>>): { observe(row: Record<string, unknown>): void; counts(): DateFormatCount[] } | undefined {
  const byColumn = new Map<string, DateFormatCount>();
  for (const key of DOB_KEYS) {
    const column = mapping[key];
    if (column === undefined) continue;
    let count = byColumn.get(column);
    if (!count) byColumn.set(column, (count = { column, keys: [], textValues: 0, accepted: { iso: 0, mdy: 0, dmy: 0, ymd: 0, yyyymmdd: 0 } }));
    count.keys.push(key);
  }
  if (byColumn.size === 0) return undefined;
  const counts = [...byColumn.values()];
  return {
    observe(row) {
      for (const count of counts) {
        const value = row[count.column];
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint') continue;
        if (typeof toText(value) !== 'string') continue; // blank
        count.textValues++;
        for (const format of formatsAccepting(value)) count.accepted[format]++;
      }
    },
    counts: () => counts.filter((c) => c.textValues > 0),
  };
}
