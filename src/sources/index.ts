import { isAbsolute, resolve } from 'node:path';
import type { SourceConfig } from '../config/index.js';
import { openBigQuery } from './bigquery.js';
import { openDuckDb, type DuckDbSettings } from './duckdb.js';
import { openDatabricks } from './databricks.js';
import { openMySql } from './mysql.js';
import { openPostgres } from './postgres.js';
import { redactSourceMessage } from './redact.js';
import { openRedshift } from './redshift.js';
import { openSnowflake } from './snowflake.js';
import { errorText, sqlIdentifiers } from './sql.js';
import { PK_FIELD, SourceError, type Row, type SnapshotOps, type Source, type SourceCheck, type StreamOptions } from './types.js';

export {
  SourceError,
  PK_FIELD,
  DEFAULT_CHUNK_ROWS,
  type ColumnInfo,
  type Row,
  type RowEstimate,
  type SnapshotDialect,
  type SnapshotOps,
  type Source,
  type SourceCheck,
  type StreamOptions,
} from './types.js';
export { quoteIdent } from './sql.js';
export { DEFAULT_DUCKDB_MEMORY_LIMIT, type DuckDbSettings } from './duckdb.js';
/** Every source opened by `openSource` is redacted already; a new source's own paths may call these too. */
export { redactSourceMessage, redactEmailAddresses, REDACTED } from './redact.js';

export interface OpenSourceOptions {
  /** The config's folder: a relative DuckDB path, and files a DuckDB model reads by a relative name, are found there (default: the working directory). */
  readonly baseDir?: string;
  /** The source's name in the config, used in error messages. */
  readonly name?: string;
  /** DuckDB memory limit (DuckDB sources only; the config's memoryLimit wins). */
  readonly duckdb?: DuckDbSettings;
  /** Environment cloud credentials are looked up in (BigQuery's Application Default Credentials; default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** A sync keeps its snapshot in this warehouse (changeDetection: warehouse): DuckDB opens its file read-write. */
  readonly writable?: boolean;
}

/** Names the SQL we wrap the model in uses (sql.ts). */
const WRAPPER_NAMES = [PK_FIELD, 'audience_sync_model', 'audience_sync_keyed'];

/**
 * Opens a warehouse; fails with `SourceError` when it cannot be reached. Every error the source
 * throws (opening, `columns`, `stream`) has its quoted values redacted here, whatever the warehouse.
 */
export async function openSource(config: SourceConfig, opts: OpenSourceOptions = {}): Promise<Source> {
  const label = opts.name === undefined ? `${config.type} source` : `source "${opts.name}"`;
  const names = [...(opts.name === undefined ? [] : [opts.name]), ...configNames(config, opts.baseDir), ...WRAPPER_NAMES];
  const text = (message: string, extra: Iterable<string> = []) => redactSourceMessage(message, [...names, ...extra]);
  const redacted = (err: unknown, extra: Iterable<string> = []) => {
    const vouched = err instanceof SourceError ? [...extra, ...err.names] : [...extra];
    const fix = err instanceof SourceError && err.fix !== undefined ? text(err.fix, vouched) : undefined;
    return new SourceError(text(errorText(err), vouched), fix === undefined ? {} : { fix });
  };
  try {
    return redacting(await open(config, opts, label), { error: redacted, text });
  } catch (err) {
    throw redacted(err);
  }
}

/** A new warehouse is added here; openSource redacts its errors like every other's. */
function open(config: SourceConfig, opts: OpenSourceOptions, label: string): Promise<Source> {
  switch (config.type) {
    case 'duckdb': {
      const memoryLimit = config.memoryLimit ?? opts.duckdb?.memoryLimit;
      // Files the model reads by a relative name are found next to the config, wherever it runs from.
      const fileSearchPath = resolve(opts.baseDir ?? '.');
      return openDuckDb(duckDbPath(config.path, opts.baseDir), label, {
        fileSearchPath,
        ...opts.duckdb,
        ...(memoryLimit === undefined ? {} : { memoryLimit }),
        ...(opts.writable ? { writable: true } : {}),
      });
    }
    case 'postgres':
      return openPostgres(config.url, label);
    case 'redshift':
      return openRedshift(config.url, label);
    case 'mysql':
      return openMySql(config.url, config.ssl, label);
    case 'bigquery':
      return openBigQuery(config, label, opts.env ? { env: opts.env } : {});
    case 'snowflake':
      return Promise.resolve(openSnowflake(config, label));
    case 'databricks':
      return Promise.resolve(openDatabricks(config, label));
  }
}

function duckDbPath(path: string, baseDir: string | undefined): string {
  return path === ':memory:' || isAbsolute(path) ? path : resolve(baseDir ?? '.', path);
}

/** Settings that hold secrets: never let a warehouse message quote them back. */
const SECRET_SETTINGS = new Set(['token', 'password', 'privateKey', 'privateKeyPassphrase', 'clientSecret']);

/** What the config itself names (a file path, a host, a database, a user, a project), which warehouse errors quote. */
function configNames(config: SourceConfig, baseDir: string | undefined): string[] {
  if (config.type === 'duckdb') return [config.path, duckDbPath(config.path, baseDir)];
  const names: string[] = [];
  for (const [setting, value] of Object.entries(config)) {
    if (typeof value !== 'string' || SECRET_SETTINGS.has(setting)) continue;
    if (setting === 'url') names.push(...urlNames(value));
    else names.push(value);
  }
  return names;
}

function urlNames(text: string): string[] {
  try {
    const url = new URL(text);
    return [url.hostname, decodeURIComponent(url.username), decodeURIComponent(url.pathname.slice(1))];
  } catch {
    return [];
  }
}

interface Redact {
  error(err: unknown, names?: Iterable<string>): SourceError;
  text(message: string, names?: Iterable<string>): string;
}

/**
 * The source with its errors rethrown redacted, whatever the method, and the messages of `doctor`'s
 * checks redacted too (a failed check quotes the warehouse). The driver's error is not kept as the
 * cause: loggers print causes, and its message holds the raw value.
 */
function redacting(source: Source, redact: Redact): Source {
  const modelNames = (sql: unknown, o: StreamOptions = {}) =>
    typeof sql === 'string' ? [...sqlIdentifiers(sql), ...(o.columns ?? []), ...(o.orderByKey === undefined ? [] : [o.orderByKey])] : [];
  return new Proxy(source, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop === 'snapshot' && value !== undefined) return redactingSnapshot(value as SnapshotOps, redact);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (prop === 'stream') {
        return (sql: string, o?: StreamOptions) => redactStream(method.call(target, sql, o) as AsyncIterable<Row[]>, (err) => redact.error(err, modelNames(sql, o)));
      }
      if (prop === 'doctor') {
        return async (sql: string) => {
          const checks = await (method.call(target, sql) as Promise<SourceCheck[]>).catch((err: unknown) => {
            throw redact.error(err, modelNames(sql));
          });
          // A sign-in that worked says who signed in to what (a principal may be an e-mail address):
          // no model ran, so no row's value can be in it.
          return checks.map((c) =>
            c.subject === 'sign-in' && c.status === 'ok'
              ? c
              : { ...c, message: redact.text(c.message, modelNames(sql)), ...(c.fix === undefined ? {} : { fix: redact.text(c.fix, modelNames(sql)) }) },
          );
        };
      }
      return (...args: unknown[]) => {
        const fail = (err: unknown): never => {
          throw redact.error(err, modelNames(args[0]));
        };
        try {
          const result = method.apply(target, args);
          return result instanceof Promise ? result.catch(fail) : result;
        } catch (err) {
          return fail(err);
        }
      };
    },
  });
}

/** Snapshot writes with their errors redacted: a failed INSERT may quote a value it was given. */
function redactingSnapshot(ops: SnapshotOps, redact: Redact): SnapshotOps {
  const redacted = async <T>(run: () => Promise<T>, names: Iterable<string>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw redact.error(err, names);
    }
  };
  const { queryAll, executeAside, materialize } = ops;
  return {
    dialect: ops.dialect,
    ...(ops.cheapWrites === undefined ? {} : { cheapWrites: ops.cheapWrites }),
    execute: (sql, opts) => redacted(() => ops.execute(sql, opts), sqlIdentifiers(sql)),
    insertRows: (table, columns, rows) => redacted(() => ops.insertRows(table, columns, rows), [...sqlIdentifiers(table), ...columns]),
    ...(queryAll === undefined ? {} : { queryAll: (sql: string) => redacted(() => queryAll(sql), sqlIdentifiers(sql)) }),
    ...(executeAside === undefined ? {} : { executeAside: (sql: string) => redacted(() => executeAside(sql), sqlIdentifiers(sql)) }),
    ...(materialize === undefined ? {} : { materialize: (name: string, select: string) => redacted(() => materialize(name, select), sqlIdentifiers(select)) }),
  };
}

async function* redactStream(rows: AsyncIterable<Row[]>, redacted: (err: unknown) => SourceError): AsyncGenerator<Row[]> {
  try {
    yield* rows;
  } catch (err) {
    throw redacted(err);
  }
}
