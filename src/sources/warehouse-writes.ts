// What the cloud warehouses (Snowflake, BigQuery, Databricks) share to write warehouse change
// detection's tables: INSERT ... VALUES statements cut to the vendor's size limits, string literals all
// three read back as the same text, and the schema or table a statement writes (named by the grant a
// refused write asks for).
import { SourceError } from './types.js';

/** How big one INSERT statement may be, and how its strings are written. */
export interface InsertLimits extends LiteralStyle {
  /** UTF-8 bytes of the statement's text. */
  readonly maxBytes: number;
  /** Rows of its VALUES list (Snowflake takes at most 16,384). */
  readonly maxRows?: number;
}

/** Control characters, the backslash and the quote: what a literal may escape. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const ESCAPED = /[\u0000-\u001f\u007f\\']/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\', "'": "\\'" };

/** How a warehouse's string literals take characters a statement should not hold as they are. */
export interface LiteralStyle {
  /** \uXXXX stands for a character (Snowflake, BigQuery); without it (Databricks) other control characters stay as they are. */
  readonly unicodeEscapes: boolean;
}

/**
 * A string as a literal that Snowflake, BigQuery and Databricks read back as the same text. The quote
 * is escaped with a backslash, not doubled: BigQuery refuses '' inside a literal and Databricks reads
 * 'a''b' as two literals, 'ab'. Line breaks and tabs are \n, \r, \t (BigQuery refuses a raw line break
 * inside '...'); other control characters \u00XX where the warehouse reads that.
 */
export function backslashLiteral(value: string, style: LiteralStyle): string {
  return `'${value.replace(ESCAPED, (ch) => NAMED[ch] ?? (style.unicodeEscapes ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch))}'`;
}

/** A value of `insertRows` as SQL: a string literal, an integer, or NULL. */
export function valueLiteral(value: string | number | null, style: LiteralStyle): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new SourceError(`cannot write ${value} to the state schema: only integers are written`);
    return String(value);
  }
  return backslashLiteral(value, style);
}

/**
 * `INSERT INTO table (columns) VALUES (...), (...)` statements holding `rows`, each within `limits`
 * (a row too big on its own is a statement of its own). Made one at a time, as they are sent.
 */
export function* insertStatements(
  table: string,
  quotedColumns: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number | null>>,
  limits: InsertLimits,
): Generator<string> {
  const head = `INSERT INTO ${table} (${quotedColumns.join(', ')}) VALUES\n`;
  const headBytes = Buffer.byteLength(head);
  let tuples: string[] = [];
  let bytes = headBytes;
  for (const row of rows) {
    if (row.length !== quotedColumns.length) throw new SourceError(`a row for ${table} has ${row.length} values where ${quotedColumns.length} columns were named`);
    const tuple = `(${row.map((v) => valueLiteral(v, limits)).join(', ')})`;
    const size = Buffer.byteLength(tuple) + 2; // and its ",\n"
    if (tuples.length > 0 && (bytes + size > limits.maxBytes || tuples.length === limits.maxRows)) {
      yield head + tuples.join(',\n');
      tuples = [];
      bytes = headBytes;
    }
    tuples.push(tuple);
    bytes += size;
  }
  if (tuples.length > 0) yield head + tuples.join(',\n');
}

/** The object a DDL or DML statement writes, by the names it is written with (`[database, schema, table]`). */
export interface WrittenObject {
  readonly object: 'schema' | 'table';
  /** CREATE or DROP with IF [NOT] EXISTS. */
  readonly conditional: boolean;
  readonly path: readonly string[];
}

/** Words that may stand between a statement's verb and the object it writes. */
const LEADING_WORDS = new Set(['CREATE', 'OR', 'REPLACE', 'TRANSIENT', 'TEMPORARY', 'TEMP', 'DROP', 'ALTER', 'INSERT', 'INTO', 'OVERWRITE', 'DELETE', 'FROM', 'UPDATE', 'MERGE', 'TRUNCATE', 'IF', 'NOT', 'EXISTS', 'TABLE', 'SCHEMA', 'DATABASE']);
const WRITE_VERBS = new Set(['CREATE', 'DROP', 'ALTER', 'INSERT', 'DELETE', 'UPDATE', 'MERGE', 'TRUNCATE']);

/** A name at the start of `text`: "quoted" ("" is a quote), `quoted` (`` is a backquote; dots inside split it, as BigQuery's `p.d.t`), or a bare word. */
function nameAt(text: string): { parts: string[]; length: number } | undefined {
  const double = /^"((?:[^"]|"")*)"/.exec(text);
  if (double) return { parts: [double[1]!.replace(/""/g, '"')], length: double[0].length };
  const back = /^`((?:[^`\\]|``|\\.)*)`/.exec(text);
  if (back) return { parts: back[1]!.replace(/``/g, '`').replace(/\\(.)/g, '$1').split('.'), length: back[0].length };
  const word = /^[\p{L}_][\p{L}\p{N}_$]*/u.exec(text);
  return word ? { parts: [word[0]], length: word[0].length } : undefined;
}

/**
 * The table or schema a DDL or DML statement writes (CREATE/DROP TABLE or SCHEMA, INSERT INTO,
 * DELETE FROM, UPDATE, MERGE INTO, TRUNCATE), or undefined for a query.
 */
export function writtenObject(sql: string): WrittenObject | undefined {
  let rest = sql;
  const skip = () => {
    rest = rest.replace(/^(\s+|--[^\n]*|\/\*[\s\S]*?\*\/)+/, '');
  };
  skip();
  let object: 'schema' | 'table' = 'table';
  let conditional = false;
  let verb: string | undefined;
  for (;;) {
    const word = /^[A-Za-z]+\b/.exec(rest)?.[0];
    const upper = word?.toUpperCase();
    if (upper === undefined || !LEADING_WORDS.has(upper)) break;
    verb ??= upper;
    if (upper === 'SCHEMA' || upper === 'DATABASE') object = 'schema';
    if (upper === 'EXISTS') conditional = true;
    rest = rest.slice(word!.length);
    skip();
  }
  if (verb === undefined || !WRITE_VERBS.has(verb)) return undefined;
  const path: string[] = [];
  for (;;) {
    const name = nameAt(rest);
    if (!name) break;
    path.push(...name.parts);
    rest = rest.slice(name.length);
    if (!rest.startsWith('.')) break;
    rest = rest.slice(1);
  }
  return path.length === 0 ? undefined : { object, conditional, path };
}
