// `audience-sync doctor` for a sync with warehouse change detection: it checks that the source's
// user may create and write the snapshot tables in the stateSchema, and says which GRANT is missing.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../fleet/helpers.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { createWorld, type World } from '../support/world.js';
import { runCli } from './run-cli.js';

describe('doctor: the grants warehouse change detection needs (real process, real PostgreSQL)', () => {
  let server: TestPostgres;
  let world: World;
  let admin: pg.Client;
  beforeAll(async () => {
    server = await startPostgres();
    const url = await createDatabase(server.url, 'doctor_grants');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`create table customers (user_id text, email text); insert into customers values ('u1', 'one@example.com')`);
    // A reader: it may read the model, not create anything.
    await admin.query(`create role reader login; grant select on customers to reader; revoke create on schema public from public`);
    const readerUrl = new URL(url);
    readerUrl.username = 'reader';
    world = await createWorld({
      source: { type: 'postgres', url: '${CRM_URL}', stateSchema: 'audience_sync' },
      env: { CRM_URL: readerUrl.toString() },
      model: 'select user_id, email from customers',
      mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' },
      sync: { changeDetection: 'warehouse' },
    });
  }, 120_000);
  afterAll(async () => {
    await admin?.end();
    await world?.close();
    await server?.stop();
  });
  const doctor = () => runCli(['doctor', '-c', world.configPath], { env: world.env });

  it('fails the check with the GRANT to run when the user may not create the state schema, then passes once granted', async () => {
    let r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ sync loyalty: state schema: cannot create the state schema audience_sync for the snapshot of sync "loyalty": .*permission denied for database doctor_grants/);
    expect(r.stdout).toContain('ask an admin to run: CREATE SCHEMA audience_sync; GRANT USAGE, CREATE ON SCHEMA audience_sync TO reader');

    // An admin made the schema but granted only USAGE: the message names the grant still missing, for this user.
    await admin.query('create schema audience_sync; grant usage on schema audience_sync to reader');
    r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ sync loyalty: state schema: .*permission denied for schema audience_sync/);
    expect(r.stdout).toContain('ask an admin to run: GRANT USAGE, CREATE ON SCHEMA audience_sync TO reader');

    await admin.query('grant create on schema audience_sync to reader');
    r = await doctor();
    expect(r.stdout).toMatch(/✓ sync loyalty: state schema: audience-sync can create, write and read its snapshot audience_sync\.audience_sync_loyalty \(0 records\)/);
    // The probe table is gone again; the snapshot's own tables stay.
    const { rows } = await admin.query(`select table_name from information_schema.tables where table_schema = 'audience_sync' order by 1`);
    expect(rows.map((t: { table_name: string }) => t.table_name)).toEqual(['audience_sync_loyalty', 'audience_sync_loyalty_buckets', 'audience_sync_loyalty_journal', 'audience_sync_loyalty_stage']);
  });
});
