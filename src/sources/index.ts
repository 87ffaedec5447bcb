import { isAbsolute, resolve } from 'node:path';
import type { SourceConfig } from '../config/index.js';
import { openDuckDb, type DuckDbSettings } from './duckdb.js';
import { openMySql } from './mysql.js';
import { openPostgres } from './postgres.js';
import { openRedshift } from './redshift.js';
import type { Source } from './types.js';

export { SourceError, PK_FIELD, DEFAULT_CHUNK_ROWS, type ColumnInfo, type Row, type RowEstimate, type Source, type StreamOptions } from './types.js';
export { quoteIdent } from './sql.js';
export { DEFAULT_DUCKDB_MEMORY_LIMIT, type DuckDbSettings } from './duckdb.js';

export interface OpenSourceOptions {
  /** The config's folder: a relative DuckDB path, and files a DuckDB model reads by a relative name, are found there (default: the working directory). */
  readonly baseDir?: string;
  /** The source's name in the config, used in error messages. */
  readonly name?: string;
  /** DuckDB memory limit / spill folder (DuckDB sources only; the config's memoryLimit wins). */
  readonly duckdb?: DuckDbSettings;
}

/** Opens a warehouse; fails with `SourceError` when it cannot be reached. */
export async function openSource(config: SourceConfig, opts: OpenSourceOptions = {}): Promise<Source> {
  const label = opts.name === undefined ? `${config.type} source` : `source "${opts.name}"`;
  switch (config.type) {
    case 'duckdb': {
      const baseDir = resolve(opts.baseDir ?? '.');
      const path = config.path === ':memory:' || isAbsolute(config.path) ? config.path : resolve(baseDir, config.path);
      const memoryLimit = config.memoryLimit ?? opts.duckdb?.memoryLimit;
      // Files the model reads by a relative name are found next to the config, wherever it runs from.
      return openDuckDb(path, label, { fileSearchPath: baseDir, ...opts.duckdb, ...(memoryLimit === undefined ? {} : { memoryLimit }) });
    }
    case 'postgres':
      return openPostgres(config.url, label);
    case 'redshift':
      return openRedshift(config.url, label);
    case 'mysql':
      return openMySql(config.url, config.ssl, label);
  }
}
