import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { customer, customers, type Customer, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});
const ids = (rows: Customer[]) => rows.map((r) => String(r.user_id)).sort();

/** Every row of every state table, as text: what an attacker reading the database would see. */
async function postgresDump(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = 'public'`);
    let text = '';
    for (const t of tables) {
      const { rows } = await client.query<{ row: string }>(`select r::text as row from "${t.name}" r`);
      text += rows.map((r) => r.row).join('\n');
    }
    return text;
  } finally {
    await client.end();
  }
}

describe.each(STATE_KINDS)('sync engine over DuckDB, the emulator and %s state', (kind) => {
  const state = stateWorlds(kind, 'world');
  const createWorldWithState = state.createWorld;

  it('mirror: first run adds everything, a rerun with no change sends nothing, changes converge', async () => {
    world = await createWorldWithState();
    let model = customers(1200);
    await world.setCustomers(model);

    const first = await world.run();
    expect(first.status).toBe('success');
    expect(first.counts).toMatchObject({ extracted: 1200, added: 1200, delivered: 1200, failed: 0, rejected: 0 });
    expect(world.memberIds()).toEqual(ids(model));

    world.emulator.control.clearRequestLog();
    const second = await world.run();
    expect(second.counts).toMatchObject({ extracted: 1200, unchanged: 1200, added: 0, delivered: 0, encoded: 0 });
    expect(world.emulator.control.requestLog().filter((r) => r.path.includes('/users'))).toHaveLength(0);

    // 100 deleted, 50 updated (new email), 70 added.
    model = [...model.slice(100, 1150), ...model.slice(1150).map((c, i) => (i < 50 ? customer(1150 + i, 1) : c)), ...customers(70, 5000)];
    await world.setCustomers(model);
    const third = await world.run();
    expect(third.status).toBe('success');
    expect(third.counts).toMatchObject({ added: 70, updated: 50, deleted: 100, unchanged: 1200 - 150 });
    expect(world.memberIds()).toEqual(ids(model));
    // The updated people carry their new email only.
    const m = world.emulator.control.members(world.audienceId).find((x) => x.EXTERN_ID === 'u1150');
    expect(m?.EMAIL).toMatch(/^[0-9a-f]{64}$/);
  });

  it('upsert never removes; delete never adds', async () => {
    world = await createWorldWithState({ mode: 'upsert' });
    await world.setCustomers(customers(50));
    await world.run();
    await world.setCustomers(customers(10));
    const r = await world.run();
    expect(r.counts.deleted).toBe(40);
    expect(world.memberIds()).toHaveLength(50);
    await world.close();

    world = await createWorldWithState({ mode: 'delete' });
    await world.setCustomers(customers(50));
    const first = await world.run();
    expect(first.counts.delivered).toBe(0);
    expect(world.memberIds()).toHaveLength(0);
  });

  it('delete mode removes records that leave the model', async () => {
    world = await createWorldWithState({ mode: 'delete' });
    await world.setCustomers(customers(40));
    await world.run();
    // Someone else put these people in the audience; this sync only takes departed ones out.
    await fetch(`${world.emulator.url}/v25.0/${world.audienceId}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${world.env.META_ACCESS_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { schema: ['EXTERN_ID'], is_raw: true, data: customers(40).map((c) => [c.user_id]) } }),
    });
    expect(world.memberIds()).toHaveLength(40);
    await world.setCustomers(customers(30));
    const r = await world.run();
    expect(r.status).toBe('success');
    expect(r.counts.deleted).toBe(10);
    expect(world.memberIds()).toEqual(ids(customers(30)));
  });

  it('replace rebuilds the audience with usersreplace on every run', async () => {
    world = await createWorldWithState({ mode: 'replace' });
    await world.setCustomers(customers(300));
    expect((await world.run()).status).toBe('success');
    expect(world.memberIds()).toEqual(ids(customers(300)));
    const next = customers(200, 250);
    await world.setCustomers(next);
    world.emulator.control.clearRequestLog();
    const r = await world.run();
    expect(r.status).toBe('success');
    expect(world.memberIds()).toEqual(ids(next));
    expect(world.emulator.control.requestLog().some((e) => e.path.endsWith('/usersreplace'))).toBe(true);
  });

  it('rejects null and duplicate keys and rows without a usable identifier, with hashed samples only', async () => {
    world = await createWorldWithState({ mapping: { EMAIL: 'email', PHONE: 'phone' } });
    const rows: Customer[] = [
      ...customers(5),
      { user_id: null, email: 'nokey@example.com' },
      { user_id: 'dup', email: 'a@example.com' },
      { user_id: 'dup', email: 'b@example.com' },
      { user_id: 'bad', email: 'not-an-email', phone: 'call me' },
      { user_id: 'half', email: 'still-bad', phone: '+44 20 7183 8750' },
    ];
    await world.setCustomers(rows);
    const r = await world.run();
    expect(r.status).toBe('success');
    expect(r.counts.rejectedByReason['null primary key']).toBe(1);
    expect(r.counts.rejectedByReason['duplicate primary key']).toBe(2);
    expect(r.counts.rejected).toBe(4);
    expect(r.counts.added).toBe(6);
    expect(r.counts.coverage.EMAIL?.dropReasons).toMatchObject({ 'EMAIL: not an email address': 2 });
    expect(JSON.stringify(r)).not.toMatch(/not-an-email|still-bad|nokey@|a@example|call me/);
    expect(world.emulator.control.members(world.audienceId)).toHaveLength(6);
  });

  it('a SQL error fails the run before anything is sent', async () => {
    world = await createWorldWithState({ model: 'select * from no_such_table' });
    world.emulator.control.clearRequestLog();
    await expect(world.run()).rejects.toThrow(/no_such_table/);
    expect(world.emulator.control.requestLog()).toHaveLength(0);
  });

  it('refuses an empty model or mass removal unless forced', async () => {
    world = await createWorldWithState();
    await world.setCustomers(customers(100));
    await world.run();
    await world.setCustomers([]);
    const refused = await world.run();
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/no rows.*--force/);
    expect(world.memberIds()).toHaveLength(100);

    await world.setCustomers(customers(30));
    const tooMany = await world.run();
    expect(tooMany.status).toBe('failed');
    expect(tooMany.error).toMatch(/remove 70 of 100.*maxRemovalShare/);
    expect(world.memberIds()).toHaveLength(100);

    const forced = await world.run({ force: true });
    expect(forced.status).toBe('success');
    expect(world.memberIds()).toEqual(ids(customers(30)));
  });

  it('sends on the next run what a run stopped by Meta faults did not', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 1 } });
    await world.setCustomers(customers(20));
    // Uploads fail; the start-of-run check gets through, so the records are tracked as failed deliveries.
    world.emulator.control.setFaults({ rate: 1, kinds: ['transient'], seed: 1, paths: '/users$' });
    const failed = await world.run();
    expect(failed.status).toBe('failed');
    expect(world.memberIds()).toHaveLength(0);

    world.emulator.control.setFaults({ rate: 0, kinds: [] });
    const retried = await world.run();
    expect(retried.status).toBe('success');
    expect(retried.counts.retried).toBe(20);
    expect(world.memberIds()).toEqual(ids(customers(20)));
  });

  it('rides out transient faults within a run', async () => {
    world = await createWorldWithState({ sync: { batchRows: 100 } });
    await world.setCustomers(customers(1000));
    world.emulator.control.setFaults({ rate: 0.2, kinds: ['transient', 'html5xx', 'drop'], seed: 7 });
    const r = await world.run();
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('success');
    expect(world.memberIds()).toEqual(ids(customers(1000)));
  });

  it('creates the audience on the first run and records its id', async () => {
    world = await createWorldWithState({ audience: { create: { name: 'Loyalty (created)', description: 'made by a test' } } });
    await world.setCustomers(customers(10));
    const r = await world.run();
    expect(r.status).toBe('success');
    expect(r.audienceId).toMatch(/^\d{16,}$/);
    world.audienceId = r.audienceId!;
    expect(world.memberIds()).toHaveLength(10);
    const again = await world.run();
    expect(again.audienceId).toBe(r.audienceId);
    expect(world.emulator.control.audiences()).toHaveLength(1);
  });

  it('never writes a raw email, phone or name to the state database', async () => {
    world = await createWorldWithState();
    const rows = customers(300);
    await world.setCustomers(rows);
    await world.run();
    await world.setCustomers(rows.slice(0, 250));
    await world.run();
    const bytes = kind === 'PostgreSQL'
      ? await postgresDump(state.stateUrlOf(world))
      : readFileSync(world.statePath).toString('latin1') + readFileSync(world.statePath + '-wal', { flag: 'a+' }).toString('latin1');
    expect(bytes).toContain(world.audienceId);
    for (const r of rows.slice(0, 20)) {
      expect(bytes).not.toContain(String(r.email).trim().toLowerCase());
      expect(bytes).not.toContain(String(r.email).trim());
      expect(bytes).not.toContain(String(r.phone));
      expect(bytes).not.toContain(String(r.phone).replace(/\D/g, ''));
    }
    expect(bytes).not.toContain('Mary');
  });
});
