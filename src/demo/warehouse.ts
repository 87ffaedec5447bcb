// A synthetic customer warehouse for the demo and the benchmarks: one DuckDB table `customers` with
// the columns a real CRM export has, realistically messy (case, spaces, phone formats, country
// spellings, nulls, unusable values) yet distinct per user. Generated in SQL, so millions of rows
// take seconds. Same seed, same data.
import { existsSync, rmSync } from 'node:fs';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

export const CUSTOMER_COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'last_name', 'city', 'zip', 'country'] as const;

export interface SyntheticWarehouse {
  path: string;
  table: 'customers';
  rows: number;
  columns: string[];
}

/** How many customers a `changeCustomers` call touched. */
export interface CustomerChanges {
  added: number;
  updated: number;
  deleted: number;
  /** Rows in the table afterwards. */
  rows: number;
}

/**
 * The SELECT that generates customers with user_id `from + 1` … `from + count`. Each row's content
 * depends only on its index and the seed, so a later batch of new customers looks like the first.
 */
function customersSql(from: number, count: number, seed: number): string {
  return `
    with base as (
      select i, hash(i, ${seed}) as h, lpad(cast(2012000000 + i as varchar), 10, '0') as d
      from range(${from}, ${from + count}) r(i)
    ),
    shaped as (
      select *, cast(h % 10 as bigint) as region, cast((h >> 8) % 100 as bigint) as pick, cast((h >> 16) % 1000 as bigint) as pick2,
        cast((h >> 24) % 10 as bigint) as pick_fn, cast((h >> 32) % 8 as bigint) as pick_ln from base
    )
    select
      cast(i + 1 as bigint) as user_id,
      case
        when pick < 3 then null
        when pick < 5 then 'n/a'
        when pick < 25 then '  ' || upper(first_name) || '.' || last_name || i || '@Example.COM '
        when pick < 40 then lower(first_name) || '+promo' || i || '@gmail.com'
        else lower(first_name) || '.' || lower(last_name) || i || '@' || (['example.com', 'mail.net', 'web.de', 'yahoo.co.uk'])[1 + pick2 % 4]
      end as email,
      case
        when pick2 % 10 = 0 then null
        when region = 9 then '+49 30 ' || substr(d, 3, 8)
        when region >= 7 then (case when pick2 % 2 = 0 then '+44 20 ' else '020 ' end) || substr(d, 3, 4) || ' ' || substr(d, 7, 4)
        when pick2 % 4 = 0 then '+1 (' || substr(d, 1, 3) || ') ' || substr(d, 4, 3) || '-' || substr(d, 7, 4)
        when pick2 % 4 = 1 then substr(d, 1, 3) || '.' || substr(d, 4, 3) || '.' || substr(d, 7, 4)
        when pick2 % 4 = 2 then '1' || d
        else '+1' || d
      end as phone,
      case when pick % 17 = 0 then upper(first_name) else first_name end as first_name,
      last_name,
      case region
        when 9 then (['Berlin', 'München', ' Köln'])[1 + pick2 % 3]
        when 8 then 'London'
        when 7 then ' london '
        else (['New York', 'San Francisco', 'Menlo Park', 'Austin', 'São Paulo'])[1 + pick2 % 5]
      end as city,
      case
        when region = 9 then lpad(cast(10000 + pick2 * 7 as varchar), 5, '0')
        when region >= 7 then (['SW1A 1AA', 'EC1A 1BB', 'W1A 0AX'])[1 + pick2 % 3]
        when pick2 % 3 = 0 then cast(94000 + pick2 as varchar) || '-' || lpad(cast(pick as varchar), 4, '0')
        else cast(10000 + pick2 * 13 as varchar)
      end as zip,
      case
        when pick % 23 = 0 then null
        when region = 9 then (['DE', 'de', 'Germany', 'DEU'])[1 + pick2 % 4]
        when region >= 7 then (['GB', 'gb', 'United Kingdom', 'GBR'])[1 + pick2 % 4]
        else (['US', 'us', 'USA', 'United States', 'U.S.'])[1 + pick2 % 5]
      end as country
    from (
      select *,
        (['José', 'Mary-Ann', 'John', 'Zoë', 'Li', 'Ölaf', 'Siobhán', 'Ana Maria', 'Kenji', 'Fatima'])[1 + pick_fn] as first_name,
        (['O''Brien', 'Smith', 'García', 'Müller', 'Nguyen', 'de la Cruz', 'Kowalski', 'Ibrahim'])[1 + pick_ln] as last_name
      from shaped
    )
    order by h`;
}

async function withDatabase<T>(path: string, fn: (db: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    return await fn(db);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

function wholeNumber(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a whole number ≥ 0, got ${n}`);
  return n;
}

/** Creates (replacing) a DuckDB file at `path` with `rows` customers. */
export async function createSyntheticWarehouse(path: string, rows: number, opts: { seed?: number } = {}): Promise<SyntheticWarehouse> {
  const count = wholeNumber(rows, 'rows');
  const seed = wholeNumber(opts.seed ?? 1, 'seed');
  for (const p of [path, `${path}.wal`]) if (existsSync(p)) rmSync(p);
  await withDatabase(path, async (db) => {
    await db.run(`create table customers as ${customersSql(0, count, seed)}`);
    await db.run('checkpoint');
  });
  return { path, table: 'customers', rows: count, columns: [...CUSTOMER_COLUMNS] };
}

/**
 * Changes a warehouse made by `createSyntheticWarehouse` the way a day of business would: a share of
 * customers leave, another share change their email (and spelling of their name), and new customers
 * arrive with fresh user ids. Shares are of the current row count; `round` picks which rows (1, 2, …).
 */
export async function changeCustomers(
  path: string,
  opts: { deleteShare?: number; updateShare?: number; addShare?: number; seed?: number; round?: number } = {},
): Promise<CustomerChanges> {
  const seed = wholeNumber(opts.seed ?? 1, 'seed');
  const round = wholeNumber(opts.round ?? 1, 'round');
  const perMille = (share: number | undefined, fallback: number) => Math.round(Math.min(1, Math.max(0, share ?? fallback)) * 1000);
  const del = perMille(opts.deleteShare, 0.02);
  const upd = perMille(opts.updateShare, 0.03);
  const add = opts.addShare ?? 0.02;
  return withDatabase(path, async (db) => {
    const scalar = async (sql: string): Promise<number> => Number((await (await db.run(sql)).getRows())[0]?.[0] ?? 0);
    const before = await scalar('select count(*) from customers');
    const maxId = await scalar('select coalesce(max(user_id), 0) from customers');
    // Picks are a hash of (user_id, seed, round): stable for one round, different across rounds.
    const bucket = `hash(user_id, ${seed}, ${round}) % 1000`;
    const deleted = await scalar(`select count(*) from customers where ${bucket} < ${del}`);
    await db.run(`delete from customers where ${bucket} < ${del}`);
    const updated = await scalar(`select count(*) from customers where ${bucket} >= ${del} and ${bucket} < ${del + upd}`);
    await db.run(`
      update customers set
        email = 'moved' || ${round} || '.' || user_id || '@new-mail.example',
        first_name = upper(first_name)
      where ${bucket} >= ${del} and ${bucket} < ${del + upd}`);
    const added = Math.round(before * Math.min(1, Math.max(0, add)));
    if (added > 0) await db.run(`insert into customers ${customersSql(maxId, added, seed)}`);
    await db.run('checkpoint');
    return { added, updated, deleted, rows: before - deleted + added };
  });
}
