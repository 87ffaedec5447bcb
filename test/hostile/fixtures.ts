// Loads the hostile-input corpus (test/fixtures/hostile) and builds a DuckDB table from a row case.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

export const FIXTURES = new URL('../fixtures/hostile/', import.meta.url).pathname;

/** A value in a row case: literal, or a generated one too big to keep in a file. */
export type CaseValue = string | number | boolean | null | { repeat: string; times: number; prefix?: string; suffix?: string };

export interface RowCase {
  name: string;
  /** What makes these rows hostile, and why the expected outcome is the right one. */
  why: string;
  /** DuckDB type per column (default VARCHAR); values are loaded as text and cast. */
  types?: Record<string, string>;
  /** Widens the model by this many VARCHAR columns c0…cN-1 (all 'x'), through a view. */
  extraColumns?: number;
  mapping?: Record<string, string>;
  primaryKey?: string;
  rows: Array<Record<string, CaseValue>>;
  /**
   * Set while the engine does not meet `expect` yet: where and why. The case then runs as an
   * expected failure, and starts failing the suite once fixed, so the note gets removed.
   */
  knownIssue?: string;
  expect: {
    status: 'success' | 'partial' | 'failed';
    /** EXTERN_IDs in the audience after the run, sorted; `{ count }` when they are too long to list. */
    members: string[] | { count: number };
    /** Rejected rows by a substring of their reason. */
    rejected?: Record<string, number>;
    /** Per match key, values dropped by a substring of the reason. */
    dropped?: Record<string, Record<string, number>>;
  };
}

export function rowCases(): RowCase[] {
  const dir = join(FIXTURES, 'rows');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RowCase);
}

export function materialize(v: CaseValue): string | null {
  if (v === null) return null;
  if (typeof v === 'object') return `${v.prefix ?? ''}${v.repeat.repeat(v.times)}${v.suffix ?? ''}`;
  return String(v);
}

/** Replaces `customers` in the DuckDB file with the case's rows, typed as the case says. */
export async function writeCaseTable(path: string, c: RowCase): Promise<void> {
  const columns = [...new Set(c.rows.flatMap((r) => Object.keys(r)))];
  const extra = Array.from({ length: c.extraColumns ?? 0 }, (_, i) => `c${i}`);
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
  try {
    // Text first (the appender takes any string), then cast to the case's types. Extra columns come
    // from a view: storing 10,000 columns would make the checkpoint alone take half a minute.
    await db.run(`create or replace table staging (${columns.map((n) => `${q(n)} varchar`).join(', ')})`);
    const appender = await db.createAppender('staging');
    for (const row of c.rows) {
      for (const col of columns) {
        const value = materialize(row[col] ?? null);
        if (value === null) appender.appendNull();
        else appender.appendVarchar(value);
      }
      appender.endRow();
    }
    appender.closeSync();
    const typed = columns.map((n) => `cast(${q(n)} as ${c.types?.[n] ?? 'varchar'}) as ${q(n)}`);
    // createWorld made an empty `customers` table; a case replaces it.
    await db.run('drop table if exists customers');
    if (extra.length === 0) {
      await db.run(`create table customers as select ${typed.join(', ')} from staging`);
    } else {
      await db.run(`create table customers_narrow as select ${typed.join(', ')} from staging`);
      await db.run(`create view customers as select *, ${extra.map((n) => `'x' as ${q(n)}`).join(', ')} from customers_narrow`);
    }
    await db.run('drop table staging');
    await db.run('checkpoint');
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}
