// SQL text shared by the sources: the model is wrapped as a subquery, so it must be one statement.
import { PK_FIELD, SourceError, type StreamOptions } from './types.js';

/** `"name"` with embedded quotes doubled; valid in DuckDB, PostgreSQL and Redshift. */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new SourceError('a column name cannot contain a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** The names of a qualified name `quoteIdent` spelled (`"s"."t"` → ['s', 't']); unquoted parts as written. */
export function unquoteQualified(qualified: string): string[] {
  const parts: string[] = [];
  for (const m of qualified.matchAll(/"((?:[^"]|"")*)"|([^."]+)/g)) parts.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!);
  return parts;
}

/** `\`name\`` with embedded backquotes doubled (MySQL, Databricks). */
export function quoteBackticks(name: string): string {
  if (name.includes('\u0000')) throw new SourceError('a column name cannot contain a NUL character');
  return `\`${name.replace(/`/g, '``')}\``;
}

/** What a dialect's lexer adds to standard SQL's quotes and comments (where the model's text ends). */
export interface Lexicon {
  /** `#` starts a comment (BigQuery, MySQL). */
  readonly hashComments?: boolean;
  /** `\`name\`` quotes a name (BigQuery, Databricks, MySQL). */
  readonly backquotes?: boolean;
  /** A backslash escapes the quote inside a string (MySQL). */
  readonly backslashEscapes?: boolean;
}

/** How a warehouse spells what the shared queries need. */
export interface SqlDialect {
  /** An identifier, quoted. */
  quote(name: string): string;
  /** The key's text form. */
  keyText(column: string): string;
  /** The lowercase hex SHA-256 of the key's text form (its UTF-8 bytes). */
  keySha256(column: string): string;
  /**
   * ORDER BY terms putting `__pk` (`pk`, computed by `key`) in UTF-8 byte order, nulls last. The key
   * expression is given too: not every warehouse lets ORDER BY use an output column inside an expression.
   */
  orderByKey(pk: string, key: string, form: 'text' | 'sha256'): string;
  readonly lexicon?: Lexicon;
}

/** For warehouses whose text compares by bytes once the key expression says so (DuckDB, PostgreSQL, Snowflake, Databricks). */
export const byteOrderedKey = (pk: string): string => `${pk} NULLS LAST`;

/**
 * Blanks the semicolons after the model's last statement text (`select ...; -- note` included), so
 * it can be used as a subquery. Quotes and comments are skipped while scanning.
 */
export function stripTrailingSemicolons(sql: string, lexicon: Lexicon = {}): string {
  const semicolons: number[] = [];
  let lastText = -1;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"' || (ch === '`' && lexicon.backquotes)) {
      let end = sql.indexOf(ch, i + 1);
      // MySQL strings may escape their quote with a backslash.
      if (lexicon.backslashEscapes && ch !== '`') while (end !== -1 && isEscaped(sql, end)) end = sql.indexOf(ch, end + 1);
      lastText = end === -1 ? sql.length - 1 : end;
      i = lastText;
    } else if ((ch === '-' && sql[i + 1] === '-') || (ch === '#' && lexicon.hashComments)) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 1;
    } else if (ch === ';') {
      semicolons.push(i);
    } else if (!/\s/.test(ch)) {
      lastText = i;
    }
  }
  const blank = new Set(semicolons.filter((i) => i > lastText));
  let out = '';
  for (let i = 0; i < sql.length; i++) out += blank.has(i) ? ' ' : sql[i];
  return out;
}

/** True when an odd run of backslashes precedes `at`. */
function isEscaped(sql: string, at: number): boolean {
  let n = 0;
  for (let i = at - 1; i >= 0 && sql[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

/** The model's text without trailing semicolons; an empty model (or only comments) is an error. */
export function modelBody(sql: string, lexicon: Lexicon = {}): string {
  const body = stripTrailingSemicolons(sql, lexicon).trim();
  const onlyComments = lexicon.hashComments ? /^(\s|(--|#)[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*$/ : /^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*$/;
  if (body === '' || onlyComments.test(body)) {
    throw new SourceError('the model is empty: give the sync a SQL query');
  }
  return body;
}

type Spelling = Pick<SqlDialect, 'quote' | 'lexicon'>;
const ANSI: Spelling = { quote: quoteIdent };

/** The model as a subquery. */
export function modelAsSubquery(sql: string, dialect: Spelling = ANSI): string {
  // The newline ends a trailing `-- comment` before the closing parenthesis.
  return `(\n${modelBody(sql, dialect.lexicon)}\n) AS ${dialect.quote('audience_sync_model')}`;
}

export function columnsQuery(sql: string, dialect: Spelling = ANSI): string {
  return `SELECT * FROM ${modelAsSubquery(sql, dialect)} LIMIT 0`;
}

/** A slice of the SHA-256 key space, by lowercase hex prefix: `from` inclusive, `to` exclusive (none: to the end, nulls included). */
export interface KeyRange {
  from: string;
  to?: string;
}

/** `key` within `range`, as a condition. */
export function inKeyRange(key: string, range: KeyRange): string {
  return `${key} >= '${range.from}'${range.to === undefined ? '' : ` AND ${key} < '${range.to}'`}`;
}

/**
 * Splits the SHA-256 key space into `parts` contiguous slices. Hashes are uniform, so each slice
 * holds about 1/parts of the rows, and the slices read in order give the whole model in key order.
 */
export function keyRanges(parts: number): KeyRange[] {
  const n = Math.max(1, Math.min(4096, Math.floor(parts)));
  const bound = (i: number) => Math.floor((i * 4096) / n).toString(16).padStart(3, '0');
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? { from: bound(i) } : { from: bound(i), to: bound(i + 1) }));
}

/**
 * The model's rows, projected to `columns` when given, with `__pk` = the key's text form (or its
 * SHA-256 hex with `keyForm: 'sha256'`) and ordered by it when `orderByKey` is given.
 */
export function streamQuery(sql: string, opts: StreamOptions, dialect: SqlDialect, range?: KeyRange): string {
  const q = (name: string) => dialect.quote(name);
  const model = modelAsSubquery(sql, dialect);
  const projection = opts.columns ? opts.columns.map(q) : ['*'];
  if (opts.orderByKey === undefined) return `SELECT ${projection.join(', ')} FROM ${model}`;
  const column = q(opts.orderByKey);
  const form = opts.keyForm === 'sha256' ? 'sha256' : 'text';
  const key = form === 'sha256' ? dialect.keySha256(column) : dialect.keyText(column);
  const pk = q(PK_FIELD);
  const keyed = `SELECT ${[...projection, `${key} AS ${pk}`].join(', ')} FROM ${model}`;
  if (range === undefined) return `${keyed} ORDER BY ${dialect.orderByKey(pk, key, form)}`;
  // Slices (DuckDB only) filter on the computed key, so the key is read from the keyed subquery.
  const below = range.to === undefined ? `(${pk} IS NULL OR ${inKeyRange(pk, range)})` : inKeyRange(pk, range);
  return `SELECT * FROM (${keyed}) AS ${q('audience_sync_keyed')} WHERE ${below} ORDER BY ${dialect.orderByKey(pk, pk, form)}`;
}

export function validChunkRows(chunkRows: number | undefined, fallback: number): number {
  const n = chunkRows ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new SourceError(`chunkRows must be a positive integer, got ${String(chunkRows)}`);
  return n;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** String literals and comments (skipped), double-quoted identifiers and bare words (kept). */
const SQL_TOKENS = /'(?:[^']|'')*'?|--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|"((?:[^"]|"")*)"?|([\p{L}_][\p{L}\p{N}_$]*)/gu;

/**
 * The names a model's SQL text uses: its bare words and double-quoted identifiers, never the text of
 * its string literals. An error quoting one of these quotes the user's own code, not a row value.
 */
export function sqlIdentifiers(sql: string): string[] {
  const names: string[] = [];
  for (const m of sql.matchAll(SQL_TOKENS)) {
    if (m[1] !== undefined) names.push(m[1].replace(/""/g, '"'));
    else if (m[2] !== undefined) names.push(m[2]);
  }
  return names;
}

// ---- column names: the warehouse's rule for the names a config uses ------------------------------

/** Exactly as the model names it (DuckDB, PostgreSQL, Redshift, MySQL, BigQuery). */
export function exactColumn(name: string, columns: readonly string[]): string | undefined {
  return columns.includes(name) ? name : undefined;
}

/** A name Snowflake and most SQL dialects read as an unquoted identifier. */
const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Exact, else (for a plain identifier) its upper-case form: how Snowflake resolves `user_id` to USER_ID. */
export function findColumnFoldingUpper(name: string, columns: readonly string[]): string | undefined {
  if (columns.includes(name)) return name;
  return PLAIN_IDENTIFIER.test(name) ? columns.find((c) => c === name.toUpperCase()) : undefined;
}

/** Exact, else the one column equal ignoring case (Databricks SQL names are case-insensitive); none when ambiguous. */
export function findColumnIgnoringCase(name: string, columns: readonly string[]): string | undefined {
  if (columns.includes(name)) return name;
  const lower = name.toLowerCase();
  const matches = columns.filter((c) => c.toLowerCase() === lower);
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * A projected or keyed read with its configured names (`user_id`) resolved to the model's columns
 * (USER_ID), and the names its rows are keyed by: those the config used, then `__pk`. A name not
 * found is kept as is, so the warehouse's SQL error names it.
 */
export function resolveRead(opts: StreamOptions, available: readonly string[], find: (name: string, columns: readonly string[]) => string | undefined): { opts: StreamOptions; keys?: string[] } {
  const resolve = (name: string) => find(name, available) ?? name;
  return {
    opts: { ...opts, ...(opts.columns ? { columns: opts.columns.map(resolve) } : {}), ...(opts.orderByKey === undefined ? {} : { orderByKey: resolve(opts.orderByKey) }) },
    ...(opts.columns ? { keys: [...opts.columns, ...(opts.orderByKey === undefined ? [] : [PK_FIELD])] } : {}),
  };
}
