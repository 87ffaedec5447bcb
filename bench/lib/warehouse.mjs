// A synthetic customer warehouse for benchmarks: one DuckDB table `customers` with the columns a
// real CRM export has, realistically messy (case, spaces, phone formats, country spellings, nulls)
// yet distinct per user. Generated in SQL, so millions of rows take seconds. Same seed, same data.
import { existsSync, rmSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

export const CUSTOMER_COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'last_name', 'city', 'zip', 'country'];

/**
 * Creates (replacing) a DuckDB file at `path` with `rows` customers.
 * @returns {Promise<{ path: string, table: string, rows: number, columns: string[] }>}
 */
export async function createSyntheticWarehouse(path, rows, { seed = 1 } = {}) {
  for (const p of [path, `${path}.wal`]) if (existsSync(p)) rmSync(p);
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    await db.run(`
      create table customers as
      with base as (
        select i, hash(i, ${Number(seed)}) as h, lpad(cast(2012000000 + i as varchar), 10, '0') as d
        from range(${Number(rows)}) r(i)
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
      order by h
    `);
    await db.run('checkpoint');
  } finally {
    db.closeSync();
    instance.closeSync();
  }
  return { path, table: 'customers', rows, columns: [...CUSTOMER_COLUMNS] };
}
