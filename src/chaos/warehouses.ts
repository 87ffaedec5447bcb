// Writes a chaos model table into its warehouse between runs. The sync child reads it read-only,
// so every write here opens, writes and closes before the child starts.
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import type { RecordView } from './invariants.js';
import { CHAOS_COLUMNS, type ChaosRow } from './population.js';

export interface ModelTable {
  /** Replaces the table's rows with these. */
  write(rows: readonly ChaosRow[]): Promise<void>;
  /** A sync's snapshot (warehouse change detection) in `schema`, as the checks see records; [] when it does not exist. */
  snapshot(schema: string, table: string): Promise<RecordView[]>;
}

const snapshotQuery = (schema: string, table: string) => `select pk_hash, status, attempts, cells is not null as has_cells from ${schema}.${table}`;
/**
 * The snapshot with the newest entry per key of its journal table on top (DuckDB keeps a killed run's
 * writes there until the next run applies them): where the records are.
 */
const journaledSnapshotQuery = (schema: string, table: string) => {
  const newest = `select * from (select *, row_number() over (partition by pk_hash order by seq desc) as rn from ${schema}.${table}_journal) where rn = 1`;
  return (
    `select pk_hash, status, attempts, cells is not null as has_cells from ${schema}.${table} where pk_hash not in (select pk_hash from ${schema}.${table}_journal)` +
    ` union all select pk_hash, status, attempts, cells is not null as has_cells from (${newest}) where op = 'upsert'`
  );
};
const isMissing = (e: unknown) => /does not exist|Catalog Error/i.test(String(e));
const recordView = (r: Record<string, unknown>): RecordView => ({ pk: String(r.pk_hash), status: String(r.status) as RecordView['status'], attempts: Number(r.attempts), hasCells: r.has_cells === true });

const TABLE = 'customers';
const DDL = `(${CHAOS_COLUMNS.map((c) => `${c} varchar`).join(', ')})`;

export function duckdbTable(path: string): ModelTable {
  return {
    async write(rows) {
      const instance = await DuckDBInstance.create(path);
      const db = await instance.connect();
      try {
        await db.run(`create or replace table ${TABLE} ${DDL}`);
        const appender = await db.createAppender(TABLE);
        for (const row of rows) {
          for (const c of CHAOS_COLUMNS) {
            const v = row[c];
            if (v === null) appender.appendNull();
            else appender.appendVarchar(v);
          }
          appender.endRow();
        }
        appender.closeSync();
        await db.run('checkpoint');
      } finally {
        db.closeSync();
        instance.closeSync();
      }
    },
    async snapshot(schema, table) {
      const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
      const db = await instance.connect();
      try {
        const journaled = await db.runAndReadAll(journaledSnapshotQuery(schema, table)).catch((e: unknown) => (isMissing(e) ? undefined : Promise.reject(e)));
        return (journaled ?? (await db.runAndReadAll(snapshotQuery(schema, table)))).getRowObjectsJS().map(recordView);
      } catch (e) {
        if (isMissing(e)) return [];
        throw e;
      } finally {
        db.closeSync();
        instance.closeSync();
      }
    },
  };
}

export function postgresTable(url: string): ModelTable {
  return {
    async write(rows) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`create table if not exists ${TABLE} ${DDL}`);
        await client.query('begin');
        // DELETE, not TRUNCATE: a killed sync's backend may still hold a read lock for a moment.
        await client.query(`delete from ${TABLE}`);
        const width = CHAOS_COLUMNS.length;
        for (let start = 0; start < rows.length; start += 1000) {
          const chunk = rows.slice(start, start + 1000);
          const values = chunk.map((_, i) => `(${CHAOS_COLUMNS.map((_c, j) => `$${i * width + j + 1}`).join(', ')})`).join(', ');
          await client.query(`insert into ${TABLE} (${CHAOS_COLUMNS.join(', ')}) values ${values}`, chunk.flatMap((r) => CHAOS_COLUMNS.map((c) => r[c])));
        }
        await client.query('commit');
      } finally {
        await client.end();
      }
    },
    async snapshot(schema, table) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(snapshotQuery(schema, table))).rows.map(recordView);
      } catch (e) {
        if (isMissing(e)) return [];
        throw e;
      } finally {
        await client.end();
      }
    },
  };
}
