// What only the Redshift source does. It runs against a real PostgreSQL standing in for Redshift
// (test/support/redshift.ts); what every source does is in conformance/sources.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runDoctor } from '../../src/doctor/index.js';
import { checkModelColumns } from '../../src/engine/index.js';
import { REDSHIFT_DIALECT } from '../../src/sources/redshift.js';
import { wireTypeParsers } from '../../src/sources/postgres.js';
import { streamQuery } from '../../src/sources/sql.js';
import { openSource, type Source } from '../../src/sources/index.js';
import { createWorld, type World } from '../support/world.js';
import { redshift } from './conformance/backends.js';
import type { BackendInstance } from './conformance/harness.js';

let standin: BackendInstance;
let source: Source;

beforeAll(async () => {
  standin = await redshift.start();
  await standin.exec([
    `create table customers as select 'u' || i as user_id, 'User' || i || '@Example.com' as email from generate_series(1, 30) i`,
    'create table secret (id int)',
  ]);
  source = await openSource(standin.config, { name: 'warehouse' });
}, 120_000);

afterAll(async () => {
  await source?.close();
  await standin?.stop();
});

describe('Redshift source', () => {
  it('speaks Redshift SQL: SHA2 and VARBYTE for the key, a plain cursor in a read-only transaction', () => {
    const ordered = streamQuery('select * from t', { orderByKey: 'id' }, REDSHIFT_DIALECT.sql);
    expect(ordered).toContain(`CAST("id" AS VARCHAR(65535)) AS "__pk"`);
    expect(ordered).toContain(`ORDER BY TO_VARBYTE(CAST("id" AS VARCHAR(65535)), 'utf8') NULLS LAST`);
    const hashed = streamQuery('select * from t', { orderByKey: 'id', keyForm: 'sha256' }, REDSHIFT_DIALECT.sql);
    expect(hashed).toContain(`SHA2(CAST("id" AS VARCHAR(65535)), 256) AS "__pk"`);
    for (const sql of [ordered, hashed]) expect(sql).not.toMatch(/COLLATE|sha256\(|::text/i);
    expect(REDSHIFT_DIALECT.declareCursor('c', 'q')).toBe('DECLARE c CURSOR FOR q');
    expect(REDSHIFT_DIALECT.begin).toBe('BEGIN READ ONLY');
  });

  it('fetches at most 1000 rows at a time (single-node clusters refuse more), whatever the chunk size', async () => {
    const admin = new pg.Client(standin.config.type === 'redshift' ? standin.config.url.replace('reader@', 'postgres@') : '');
    await admin.connect();
    try {
      const fetched: string[] = [];
      for await (const chunk of source.stream('select * from customers cross join generate_series(1, 200)', { chunkRows: 5_000 })) {
        expect(chunk.length).toBeLessThanOrEqual(5_000);
        const { rows } = await admin.query<{ query: string }>(`select query from pg_stat_activity where usename = 'reader' and state <> 'idle'`);
        fetched.push(...rows.map((r) => r.query));
      }
      expect(fetched.length).toBeGreaterThan(0);
      for (const q of fetched) expect(q).toMatch(/^FETCH FORWARD 1000 FROM audience_sync_cursor_\d+$/);
    } finally {
      await admin.end();
    }
  });

  it('hands SUPER values on as nested values and names the Redshift version', () => {
    const parse = wireTypeParsers(REDSHIFT_DIALECT.parsers).getTypeParser(4000 as never);
    expect((parse as (t: string) => unknown)('{"a":[1,2]}')).toEqual({ a: [1, 2] });
    expect(REDSHIFT_DIALECT.serverInfo('PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 (Red Hat 3.4.2-6.fc3), Redshift 1.0.77467')).toBe(
      'Redshift 1.0.77467',
    );
  });

  it('tells a user whose column names Redshift folded to lower case what to write', () => {
    const issues = checkModelColumns(
      { primaryKey: 'UserId', mapping: { EMAIL: 'email' } } as unknown as Parameters<typeof checkModelColumns>[0],
      ['userid', 'email'],
    );
    expect(issues).toEqual([expect.objectContaining({ path: 'primaryKey', message: expect.stringContaining('the warehouse returns it as "userid": write "userid" here') })]);
  });

  describe('in a sync', () => {
    let world: World;
    beforeAll(async () => {
      world = await createWorld({
        source: { type: 'redshift', url: '${REDSHIFT_URL}' },
        env: { REDSHIFT_URL: standin.config.type === 'redshift' ? standin.config.url : '' },
        model: 'select user_id, email from customers',
        mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' },
      });
    });
    afterAll(async () => {
      await world?.close();
    });

    it('plans and runs a sync, and doctor reports the source, the rows and a missing grant', async () => {
      const ws = world.workspace();
      try {
        const plan = await ws.plan('loyalty');
        expect(plan.counts.extracted).toBe(30);
        expect(plan.toSend).toBe(30);
        expect((await ws.run('loyalty')).status).toBe('success');
        expect(world.memberIds()).toHaveLength(30);

        const healthy = await runDoctor(ws);
        expect(healthy.checks).toContainEqual(expect.objectContaining({ subject: 'source warehouse', status: 'ok', message: expect.stringMatching(/^PostgreSQL .*, signed in as reader$/) }));
        expect(healthy.checks).toContainEqual(expect.objectContaining({ subject: 'sync loyalty: rows', status: 'ok', message: expect.stringMatching(/the model returns about \d+ rows/) }));

        await standin.revokeGrant!('customers');
        const refused = await runDoctor(ws);
        expect(refused.checks).toContainEqual(
          expect.objectContaining({
            subject: 'sync loyalty: model',
            status: 'fail',
            message: expect.stringContaining('permission denied for table customers; ask an admin to run: GRANT SELECT ON customers TO reader'),
            fix: expect.stringContaining('ask the warehouse admin for the grant'),
          }),
        );
      } finally {
        await ws.close();
      }
    });
  });
});
