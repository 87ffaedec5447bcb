import pg from 'pg';
import { columnsQuery, errorText, streamQuery, validChunkRows, type KeyDialect } from './sql.js';
import { DEFAULT_CHUNK_ROWS, SourceError, type ColumnInfo, type Row, type Source, type StreamOptions } from './types.js';
import { dateFromIsoDay, dateFromMillis, decimalValue, integerValue } from './values.js';

const POSTGRES_KEYS: KeyDialect = {
  text: (col) => `(${col})::text COLLATE "C"`,
  sha256: (col) => `encode(sha256(convert_to((${col})::text, 'UTF8')), 'hex')`,
};

const APPLICATION_NAME = 'audience-sync source';

const OID = { bool: 16, int8: 20, int2: 21, int4: 23, oid: 26, float4: 700, float8: 701, date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700 } as const;

const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?([+-]\d{2})?(?::?(\d{2}))?(?::?(\d{2}))?$/;

/** A timestamp without zone is read as UTC; with one, as that offset. BC and infinity stay text. */
function parseTimestamp(text: string): Date | string {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return text;
  const ms = Math.floor(Number(`0${m[7] ?? ''}`) * 1000);
  let t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  if (m[8] !== undefined) {
    const sign = m[8].startsWith('-') ? -1 : 1;
    const offsetSeconds = Math.abs(Number(m[8])) * 3600 + Number(m[9] ?? 0) * 60 + Number(m[10] ?? 0);
    t -= sign * offsetSeconds * 1000;
  }
  return dateFromMillis(t) ?? text;
}

const parsers: Record<number, (text: string) => unknown> = {
  [OID.bool]: (t) => t === 't',
  [OID.int2]: Number,
  [OID.int4]: Number,
  [OID.oid]: Number,
  [OID.float4]: Number,
  [OID.float8]: Number,
  [OID.int8]: (t) => integerValue(BigInt(t)),
  [OID.numeric]: decimalValue,
  [OID.date]: dateFromIsoDay,
  [OID.timestamp]: parseTimestamp,
  [OID.timestamptz]: parseTimestamp,
};
const asText = (t: string) => t;

/** Plain JS values: anything without a natural JS form (json, arrays, uuid, ...) stays text. */
const typeParsers = {
  getTypeParser: ((oid: number) => parsers[oid] ?? asText) as pg.CustomTypesConfig['getTypeParser'],
};

/** `host:port/db` for messages: the URL itself may hold a password. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}

/** Errors that mean the session is gone: admin shutdown / crash (57P0x), connection class 08, socket errors. */
function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^57P0[1-3]$/.test(code) || code.startsWith('08') || code === 'ECONNRESET' || code === 'EPIPE')) return true;
  return /Connection terminated|not queryable|ECONNRESET/i.test(errorText(err));
}

/** The message with PostgreSQL's DETAIL and HINT lines, which often say what to change. */
function pgErrorText(err: unknown): string {
  const { detail, hint } = (typeof err === 'object' && err !== null ? err : {}) as { detail?: unknown; hint?: unknown };
  let text = errorText(err);
  if (typeof detail === 'string' && detail !== '') text += `\nDETAIL: ${detail}`;
  if (typeof hint === 'string' && hint !== '') text += `\nHINT: ${hint}`;
  return text;
}

let cursorCounter = 0;

/**
 * A PostgreSQL database. Rows are read through a server-side cursor (`DECLARE` + `FETCH n`) in a
 * read-only, repeatable-read transaction: memory stays flat and the model is one consistent snapshot.
 */
export async function openPostgres(url: string, label: string): Promise<Source> {
  const where = describeUrl(url);
  const client = new pg.Client({ connectionString: url, types: typeParsers, application_name: APPLICATION_NAME });
  let lost: Error | undefined;
  // A dropped connection is reported by the query in progress; without a listener it would crash the process.
  client.on('error', (err) => {
    lost = err;
  });
  try {
    await client.connect();
    await client.query("SET TIME ZONE 'UTC'");
  } catch (err) {
    await client.end().catch(() => {});
    throw new SourceError(`${label}: cannot connect to PostgreSQL at ${where}: ${errorText(err)}; check the source's url and that the server is reachable`, { cause: err });
  }

  let streaming = false;
  let closed = false;
  const fail = (what: string, err: unknown): SourceError => {
    if (!lost && isConnectionLoss(err)) lost = err instanceof Error ? err : new Error(errorText(err));
    const reason = lost ? `lost the connection to PostgreSQL at ${where} (${errorText(lost)})` : `PostgreSQL ${what}: ${pgErrorText(err)}`;
    return new SourceError(`${label}: ${reason}`, { cause: err });
  };
  const usable = () => {
    if (closed) throw new SourceError(`${label}: the source is closed`);
    if (lost) throw fail('', lost);
  };

  async function* streamRows(sql: string, opts: StreamOptions): AsyncGenerator<Row[]> {
    const chunkRows = validChunkRows(opts.chunkRows, DEFAULT_CHUNK_ROWS);
    const query = streamQuery(sql, opts, POSTGRES_KEYS);
    usable();
    if (streaming) throw new SourceError(`${label}: a model is already being read from this source; read one at a time`);
    streaming = true;
    const cursor = `audience_sync_cursor_${++cursorCounter}`;
    let phase = 'could not run the model';
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${query}`);
      phase = 'failed while reading the model';
      for (;;) {
        const result = await client.query<Row>(`FETCH FORWARD ${chunkRows} FROM ${cursor}`);
        if (result.rows.length > 0) yield result.rows;
        if (result.rows.length < chunkRows) break;
      }
    } catch (err) {
      throw fail(phase, err);
    } finally {
      streaming = false;
      if (!lost && !closed) await client.query('ROLLBACK').catch(() => {});
    }
  }

  return {
    type: 'postgres',

    async columns(sql: string): Promise<ColumnInfo[]> {
      usable();
      try {
        const { fields } = await client.query(columnsQuery(sql));
        const { rows } = await client.query<{ type: string }>(
          'SELECT format_type(t.oid, t.mod) AS type FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS t(oid, mod, i) ORDER BY t.i',
          [fields.map((f) => f.dataTypeID), fields.map((f) => f.dataTypeModifier)],
        );
        return fields.map((f, i) => ({ name: f.name, type: rows[i]?.type ?? String(f.dataTypeID) }));
      } catch (err) {
        throw fail('could not run the model', err);
      }
    },

    stream(sql: string, opts: StreamOptions = {}): AsyncIterable<Row[]> {
      return streamRows(sql, opts);
    },

    // One idle connection holds next to nothing here; the cursor's rows were freed as they streamed.
    async release() {},

    async close() {
      if (closed) return;
      closed = true;
      await client.end().catch(() => {});
    },
  };
}
