// MySQL 8 and MariaDB 10.6+, read with mysql2: the result is streamed (the server writes rows as the
// socket takes them, and the socket is paused while a chunk waits), never buffered whole.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import mysql from 'mysql2';
import { columnsQuery, errorText, exactColumn, modelAsSubquery, quoteBackticks, streamQuery, validChunkRows, type SqlDialect } from './sql.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type RowEstimate, type Source, type SourceCheck, type StreamOptions } from './types.js';
import { doctorChecks } from './doctor.js';
import { decimalValue, parseDate, parseTimestamp } from './values.js';
import { cancelOnSignal } from './signals.js';

/** TLS settings of a MySQL source; file paths are absolute (the config resolves them). */
export interface MySqlTls {
  /** CA certificate file (PEM) the server's certificate must chain to. */
  readonly ca?: string;
  /** Client certificate and key files (PEM), for servers that ask for one. */
  readonly cert?: string;
  readonly key?: string;
  /** Refuse a server whose certificate is not trusted or does not name its host (default true). */
  readonly rejectUnauthorized?: boolean;
}

const MYSQL_SQL: SqlDialect = {
  quote: quoteBackticks,
  keyText: (col) => `CAST(${col} AS CHAR CHARACTER SET utf8mb4)`,
  keySha256: (col) => `SHA2(CAST(${col} AS CHAR CHARACTER SET utf8mb4), 256)`,
  // Collations compare case-insensitively or pad spaces; the binary string compares bytes. MySQL has
  // no NULLS LAST: `IS NULL` sorts false (0) before true (1).
  orderByKey: (pk) => `${pk} IS NULL, CAST(${pk} AS BINARY)`,
  lexicon: { hashComments: true, backquotes: true, backslashEscapes: true },
};

type SslMode = 'DISABLED' | 'REQUIRED' | 'VERIFY_CA' | 'VERIFY_IDENTITY';
const SSL_MODES: readonly SslMode[] = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];

interface MySqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  sslMode?: SslMode;
}

/** `mysql://user:password@host:port/database?ssl-mode=...`; the message never repeats the URL (it holds a password). */
export function parseMySqlUrl(url: string, label: string): MySqlTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SourceError(`${label}: url is not a URL; write it as mysql://user:password@host:3306/database`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') throw new SourceError(`${label}: url must start with mysql:// (got ${u.protocol}//)`);
  let sslMode: SslMode | undefined;
  for (const [name, value] of u.searchParams) {
    if (name !== 'ssl-mode' && name !== 'sslmode') throw new SourceError(`${label}: url option "${name}" is not supported; TLS settings go under ssl: (ca, cert, key, rejectUnauthorized) or ?ssl-mode=`);
    const mode = value.toUpperCase().replace(/-/g, '_') as SslMode;
    if (!SSL_MODES.includes(mode)) throw new SourceError(`${label}: url ssl-mode must be one of ${SSL_MODES.join(', ')} (got "${value}")`);
    sslMode = mode;
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    ...(database ? { database } : {}),
    ...(sslMode ? { sslMode } : {}),
  };
}

/**
 * mysql2's TLS options: `ssl-mode` as MySQL's own clients read it (REQUIRED encrypts without checking
 * the certificate, VERIFY_CA checks it, VERIFY_IDENTITY checks it names the host); an `ssl:` block
 * alone means VERIFY_IDENTITY. No TLS when neither is given.
 */
function tlsOptions(target: MySqlTarget, tls: MySqlTls | undefined, label: string): mysql.SslOptions | undefined {
  const mode = target.sslMode;
  if (mode === 'DISABLED') {
    if (tls) throw new SourceError(`${label}: the url says ssl-mode=DISABLED but ssl: is set; remove one of them`);
    return undefined;
  }
  if (mode === undefined && tls === undefined) return undefined;
  const read = (what: 'ca' | 'cert' | 'key'): string | undefined => {
    const path = tls?.[what];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new SourceError(`${label}: cannot read ssl.${what} file ${path}: ${errorText(err)}`, { cause: err });
    }
  };
  const verify = tls?.rejectUnauthorized ?? (mode !== 'REQUIRED' || tls?.ca !== undefined);
  const verifyIdentity = verify && mode !== 'VERIFY_CA';
  // mysql2 checks the certificate's names against "localhost" when the url gives an IP address:
  // refuse rather than let that check fail with a misleading message or silently skip it.
  if (verifyIdentity && isIP(target.host) !== 0) {
    throw new SourceError(`${label}: the url names the server by IP address (${target.host}), so TLS cannot check the certificate names it: use the server's host name in the url, or add ?ssl-mode=VERIFY_CA to check only that the certificate is signed by ssl.ca`);
  }
  const ca = read('ca');
  const cert = read('cert');
  const key = read('key');
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: verify,
    verifyIdentity,
  };
}

type Convert = (value: unknown) => unknown;

const toBoolean: Convert = (v) => (typeof v === 'number' ? v !== 0 : v);
const toDecimal: Convert = (v) => (typeof v === 'string' ? decimalValue(v) : v);
const toDate: Convert = (v) => (typeof v === 'string' ? parseDate(v) : v);
const toTimestamp: Convert = (v) => (typeof v === 'string' ? parseTimestamp(v) : v);

const T = mysql.Types;
const BINARY_CHARSET = 63;
const UNSIGNED_FLAG = 32;

/** The conversion of one result column, or undefined when mysql2's value is already plain JS. */
function converterFor(field: mysql.FieldPacket): Convert | undefined {
  switch (field.columnType) {
    case T.TINY:
      // BOOLEAN is TINYINT(1).
      return field.columnLength === 1 ? toBoolean : undefined;
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return toDecimal;
    case T.DATE:
      return toDate;
    case T.DATETIME:
    case T.TIMESTAMP:
      return toTimestamp;
    default:
      // BIGINT: a number while exact, else a decimal string (supportBigNumbers); JSON: parsed by mysql2,
      // MariaDB's too (its JSON is LONGTEXT, told apart by the extended metadata).
      return undefined;
  }
}

/** The column's type the way MySQL writes it. */
function typeName(field: mysql.FieldPacket): string {
  if (field.extendedFormat === 'json' || field.columnType === T.JSON) return 'JSON';
  const unsigned = typeof field.flags === 'number' && (field.flags & UNSIGNED_FLAG) !== 0;
  const length = field.columnLength ?? 0;
  const base = (() => {
    switch (field.columnType) {
      case T.TINY:
        return length === 1 ? 'TINYINT(1)' : 'TINYINT';
      case T.SHORT:
        return 'SMALLINT';
      case T.INT24:
        return 'MEDIUMINT';
      case T.LONG:
        return 'INT';
      case T.LONGLONG:
        return 'BIGINT';
      case T.DECIMAL:
      case T.NEWDECIMAL: {
        const precision = length - (field.decimals > 0 ? 1 : 0) - (unsigned ? 0 : 1);
        return `DECIMAL(${precision},${field.decimals})`;
      }
      case T.VAR_STRING:
      case T.VARCHAR:
        return field.characterSet === BINARY_CHARSET ? 'VARBINARY' : 'VARCHAR';
      case T.STRING:
        return field.characterSet === BINARY_CHARSET ? 'BINARY' : 'CHAR';
      case T.BLOB:
      case T.TINY_BLOB:
      case T.MEDIUM_BLOB:
      case T.LONG_BLOB:
        return field.characterSet === BINARY_CHARSET ? 'BLOB' : 'TEXT';
      default:
        return (field.extendedTypeName ?? mysql.Types[field.columnType as keyof typeof mysql.Types] ?? String(field.columnType)).toString().toUpperCase();
    }
  })();
  return unsigned && /INT/.test(base) ? `${base} UNSIGNED` : base;
}

const errno = (err: unknown): number | undefined => (err as { errno?: unknown } | null)?.errno as number | undefined;

/** Errors after which the connection cannot be used: lost, killed, or a protocol error (mysql2 marks them fatal). */
function isFatal(err: unknown): boolean {
  return (err as { fatal?: unknown } | null)?.fatal === true || errno(err) === 1927 /* connection killed */;
}

/** What to ask for when MySQL refuses: a grant (to `account`, the one the server signed us in as), a new password. */
export function mysqlHint(err: unknown, account?: string): string | undefined {
  const text = errorText(err);
  switch (errno(err)) {
    case 1142: // ER_TABLEACCESS_DENIED_ERROR: "SELECT command denied to user 'u'@'h' for table `db`.`t`"
    case 1143: {
      // ER_COLUMNACCESS_DENIED_ERROR
      const m = /command denied to user ('[^']*'@'[^']*') for (?:column .* in )?table (.+)$/i.exec(text);
      const table = m?.[2]?.replace(/['`]/g, '') ?? 'the table';
      return `ask an admin to run: GRANT SELECT ON ${table} TO ${account ?? m?.[1] ?? "the source's user"}`;
    }
    case 1044: {
      // ER_DBACCESS_DENIED_ERROR: "Access denied for user 'u'@'h' to database 'd'"
      const m = /for user ('[^']*'@'[^']*') to database '([^']*)'/i.exec(text);
      return `ask an admin to run: GRANT SELECT ON ${m?.[2] ?? 'the_database'}.* TO ${account ?? m?.[1] ?? "the source's user"} (or SELECT on the model's tables)`;
    }
    case 1045: // ER_ACCESS_DENIED_ERROR
      return 'the server refused the user or its password: check the credentials in the source\'s url';
    case 1820: // ER_MUST_CHANGE_PASSWORD
    case 1862: // ER_MUST_CHANGE_PASSWORD_LOGIN
      return 'the password of the source\'s user has expired: ask an admin for a new one (ALTER USER ... IDENTIFIED BY ...) and update the url';
    default:
      return /self[- ]signed|unable to verify|certificate/i.test(text)
        ? 'the server\'s TLS certificate is not trusted: set ssl.ca to the CA file that signed it'
        : undefined;
  }
}

/** A MySQL 8 or MariaDB 10.6+ database. One connection, reopened after a read was stopped or lost. */
export async function openMySql(url: string, tls: MySqlTls | undefined, label: string): Promise<Source> {
  const target = parseMySqlUrl(url, label);
  const ssl = tlsOptions(target, tls, label);
  const where = `${target.host}:${target.port}${target.database ? `/${target.database}` : ''}`;
  const options: mysql.ConnectionOptions = {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    ...(target.database ? { database: target.database } : {}),
    ...(ssl ? { ssl } : {}),
    charset: 'utf8mb4_unicode_ci',
    // Exact integers as numbers, larger ones as decimal strings; decimals and dates as text, read below.
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: true,
    connectTimeout: 30_000,
  };
  let version = '';
  /**
   * The account the server matched, `` `user`@`host pattern` ``: the one grants go to. Backquoted (as
   * MySQL allows), since quoted text in a warehouse error is redacted as if it were a row's value.
   */
  let account: string | undefined;

  const connect = async (): Promise<mysql.Connection> => {
    const connection = mysql.createConnection(options);
    // An idle connection that drops (wait_timeout, a restart) reports here, not to a query: the next
    // read opens a new one. Without a listener the error would crash the process.
    connection.on('error', () => {
      if (current === connection) current = undefined;
      connection.destroy();
    });
    try {
      await run(connection, "SET time_zone = '+00:00'");
      if (!version) {
        const [about] = await run(connection, 'SELECT VERSION() AS v, CURRENT_USER() AS u');
        version = String(about?.v ?? '');
        const at = String(about?.u ?? '').lastIndexOf('@');
        if (at > 0) account = `${quoteBackticks(String(about!.u).slice(0, at))}@${quoteBackticks(String(about!.u).slice(at + 1))}`;
      }
      return connection;
    } catch (err) {
      connection.destroy();
      const hint = mysqlHint(err) ?? "check the source's url and that the server is reachable";
      throw new SourceError(`${label}: cannot connect to MySQL at ${where}: ${errorText(err)}; ${hint}`, { cause: err });
    }
  };

  let current: mysql.Connection | undefined = await connect();
  let streaming = false;
  let closed = false;
  /** The connection of the read in progress, to cancel it on close. */
  let reading: mysql.Connection | undefined;

  const connection = async (): Promise<mysql.Connection> => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
    current ??= await connect();
    return current;
  };
  const fail = (what: string, err: unknown, c: mysql.Connection): SourceError => {
    if (closed) return new SourceError(`${label}: the source was closed while the model was being read`, { cause: err });
    if (isFatal(err)) {
      // The next read opens a new connection.
      if (current === c) current = undefined;
      c.destroy();
      return new SourceError(`${label}: lost the connection to MySQL at ${where} (${errorText(err)})`, { cause: err });
    }
    const hint = mysqlHint(err, account);
    return new SourceError(`${label}: MySQL ${what}: ${errorText(err)}${hint ? `; ${hint}` : ''}`, { cause: err });
  };

  /** Stops the statement on the server (KILL QUERY from a second connection), then drops the connection. */
  const cancel = async (c: mysql.Connection): Promise<void> => {
    if (current === c) current = undefined;
    const killer = mysql.createConnection({ ...options, connectTimeout: 5_000 });
    killer.on('error', () => {});
    await run(killer, `KILL QUERY ${Number(c.threadId)}`).catch(() => {});
    killer.destroy();
    c.destroy();
  };

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    const query = streamQuery(sql, opts, MYSQL_SQL);
    if (streaming) throw new SourceError(`${label}: a model is already being read from this source; read one at a time`);
    streaming = true;
    let c: mysql.Connection | undefined;
    let finished = false;
    let phase = 'could not run the model';
    let unregister = () => {};
    try {
      c = await connection();
      reading = c;
      const running = c;
      // A process told to stop must not leave the model running on the server.
      unregister = cancelOnSignal(() => cancel(running));
      const rows = new RowPump(c, query, chunkRows);
      for (;;) {
        const chunk = await rows.next();
        // Rows already received are not handed out once the source is closed.
        if (closed) throw new SourceError(`${label}: the source was closed while the model was being read`);
        if (chunk === undefined) break;
        phase = 'failed while reading the model';
        yield chunk;
      }
      finished = true;
    } catch (err) {
      if (err instanceof SourceError) throw err;
      finished = true;
      throw c ? fail(phase, err, c) : err;
    } finally {
      unregister();
      streaming = false;
      reading = undefined;
      // Stopped early (the reader broke off, or failed): the server must not go on running the model.
      if (!finished && c && !closed) await cancel(c);
    }
  }

  return {
    type: 'mysql',

    async columns(sql: string): Promise<ColumnInfo[]> {
      const c = await connection();
      try {
        const [, fields] = await runWithFields(c, columnsQuery(sql, MYSQL_SQL));
        return fields.map((f) => ({ name: f.name, type: typeName(f) }));
      } catch (err) {
        throw fail('could not run the model', err, c);
      }
    },

    findColumn: exactColumn,

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    doctor(sql: string): Promise<SourceCheck[]> {
      return doctorChecks(sql, {
        async signIn() {
          const m = /^([\d.]+)(?:-.*?(MariaDB))?/i.exec(version);
          return `${m ? `${m[2] ? 'MariaDB' : 'MySQL'} ${m[1]}` : version}, signed in as ${account ?? target.user}`;
        },
        async rows(model: string): Promise<RowEstimate> {
          const c = await connection();
          try {
            // The first table of the outer join order and those joined with it (same id): their row
            // estimates multiply. A derived table the optimizer keeps reports its own estimate.
            const plan = await run(c, `EXPLAIN SELECT * FROM ${modelAsSubquery(model, MYSQL_SQL)}`);
            const first = plan[0]?.id;
            let rows = 1;
            for (const step of plan) if (step.id === first && step.rows !== null && step.rows !== undefined) rows *= Number(step.rows);
            return { rows, estimated: true };
          } catch (err) {
            throw fail('could not plan the model', err, c);
          }
        },
      });
    },

    // One idle connection holds next to nothing; the streamed rows were freed as they went.
    async release() {},

    async close() {
      if (closed) return;
      closed = true;
      const c = current;
      current = undefined;
      if (reading) await cancel(reading);
      else if (c) await quit(c);
    },
  };
}

function converters(fields: mysql.FieldPacket[]): Array<[string, Convert]> {
  const out: Array<[string, Convert]> = [];
  for (const f of fields) {
    const convert = converterFor(f);
    if (convert) out.push([f.name, convert]);
  }
  return out;
}

/**
 * The rows of one streamed query, handed out `chunkRows` at a time. The connection is paused while a
 * full chunk waits for its reader, so the server only writes as fast as the rows are taken.
 */
class RowPump {
  private buffer: Row[] = [];
  private convert: Array<[string, Convert]> = [];
  private done = false;
  private error: unknown;
  private wake: (() => void) | undefined;

  constructor(
    private readonly c: mysql.Connection,
    sql: string,
    private readonly chunkRows: number,
  ) {
    const signal = () => {
      const w = this.wake;
      this.wake = undefined;
      w?.();
    };
    // A query without a callback does not hear of a connection lost mid-result: the connection does.
    const lost = (err: unknown) => {
      this.error ??= err;
      signal();
    };
    c.on('error', lost);
    const settled = () => c.off('error', lost);
    c.query(sql)
      .on('fields', (fields: mysql.FieldPacket[]) => {
        this.convert = converters(fields);
      })
      .on('result', (row: Row) => {
        for (const [name, convert] of this.convert) {
          const v = row[name];
          if (v !== null) row[name] = convert(v);
        }
        this.buffer.push(row);
        if (this.buffer.length >= this.chunkRows) {
          c.pause();
          signal();
        }
      })
      .on('error', (err: unknown) => {
        settled();
        this.error ??= err;
        signal();
      })
      .on('end', () => {
        settled();
        this.done = true;
        signal();
      });
  }

  /** The next chunk, or undefined at the end of the result; throws the query's error. */
  async next(): Promise<Row[] | undefined> {
    while (this.error === undefined && !this.done && this.buffer.length < this.chunkRows) await new Promise<void>((r) => (this.wake = r));
    if (this.error !== undefined) throw this.error;
    if (this.buffer.length === 0) return undefined;
    const chunk = this.buffer.length <= this.chunkRows ? this.buffer : this.buffer.slice(0, this.chunkRows);
    this.buffer = chunk === this.buffer ? [] : this.buffer.slice(this.chunkRows);
    if (!this.done) this.c.resume();
    return chunk;
  }
}

/** Says goodbye to the server; a connection the server already dropped never answers, so not for long. */
function quit(c: mysql.Connection): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      c.destroy();
      resolve();
    }, 2_000);
    c.end(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A small query's rows. */
function run(c: mysql.Connection, sql: string): Promise<Array<Record<string, unknown>>> {
  return runWithFields(c, sql).then(([rows]) => rows);
}

function runWithFields(c: mysql.Connection, sql: string): Promise<[Array<Record<string, unknown>>, mysql.FieldPacket[]]> {
  return new Promise((resolve, reject) => {
    c.query(sql, (err, rows, fields) => {
      if (err) reject(err);
      else resolve([Array.isArray(rows) ? (rows as Array<Record<string, unknown>>) : [], (fields ?? []) as mysql.FieldPacket[]]);
    });
  });
}
