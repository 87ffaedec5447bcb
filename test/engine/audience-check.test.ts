// The start of a run: one request proves the token, the ad account and the audience; an audience is
// created only once the model was read, and a sync whose state was lost finds the audience it made.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { openStateStore } from '../../src/state/index.js';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { createWorld, customers, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const CREATE = { create: { name: 'Loyalty (created)', description: 'made by a test' } };
const graphCalls = (w: World) => w.emulator.control.requestLog().filter((e) => !e.path.startsWith('/_emulator'));
const createCalls = (w: World) => graphCalls(w).filter((e) => e.method === 'POST' && e.path.endsWith('/customaudiences'));

interface ConfigFile {
  state: { url: string };
  syncs: Array<Record<string, unknown>>;
}
const readConfig = (w: World) => parse(readFileSync(w.configPath, 'utf8')) as ConfigFile;

function editConfig(w: World, edit: (config: ConfigFile) => void): void {
  const config = readConfig(w);
  edit(config);
  writeFileSync(w.configPath, stringify(config));
}

describe('the start-of-run check', () => {
  it('a rejected token fails a run that has nothing to send, after one request', async () => {
    world = await createWorld();
    await world.setCustomers(customers(20));
    expect((await world.run()).status).toBe('success');

    world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    world.emulator.control.clearRequestLog();
    const r = await world.run();
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/audience \d+ \(audience\.id of sync "loyalty"\) could not be checked.*access token rejected/);
    // One request, a read of the audience with its ad account, and nothing else.
    expect(graphCalls(world).map((e) => `${e.method} ${e.path}`)).toEqual([`GET /v25.0/${world.audienceId}`]);
    expect(r.counts.extracted).toBe(0);
  });

  it('fails when the audience was deleted or belongs to another ad account', async () => {
    world = await createWorld();
    await world.setCustomers(customers(5));
    await fetch(`${world.emulator.url}/v25.0/${world.audienceId}`, { method: 'DELETE', headers: { authorization: `Bearer ${DEFAULT_TOKEN}` } });
    const gone = await world.run();
    expect(gone.status).toBe('failed');
    expect(gone.error).toMatch(/object not found/);

    world.emulator.control.addAdAccount({ id: '2000000000000002', name: 'Other', tosAccepted: true, status: 1 });
    const res = await fetch(`${world.emulator.url}/v25.0/act_2000000000000002/customaudiences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'elsewhere', subtype: 'CUSTOM' }),
    });
    const other = ((await res.json()) as { id: string }).id;
    editConfig(world, (c) => (c.syncs[0]!.audience = { id: other }));
    const foreign = await world.run();
    expect(foreign.status).toBe('failed');
    expect(foreign.error).toMatch(new RegExp(`audience ${other} belongs to ad account act_2000000000000002, not to act_${DEFAULT_AD_ACCOUNT}`));
    expect(world.emulator.control.members(other)).toHaveLength(0);
  });

  it('a recorded audience that was deleted says how to get a new one', async () => {
    world = await createWorld({ audience: CREATE });
    await world.setCustomers(customers(5));
    const first = await world.run();
    await fetch(`${world.emulator.url}/v25.0/${first.audienceId}`, { method: 'DELETE', headers: { authorization: `Bearer ${DEFAULT_TOKEN}` } });
    const r = await world.run();
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/which an earlier run of sync "loyalty" created.*audience-sync reset loyalty --forget-audience --yes/);
  });
});

describe('audience.create', () => {
  it('creates nothing when the model fails while it is read; the first good run creates one, marked', async () => {
    // DESCRIBE accepts the model; the cast only fails once rows are read.
    world = await createWorld({ audience: CREATE, model: 'select user_id, cast(email as integer) as email, phone, first_name, country from customers' });
    await world.setCustomers(customers(10));
    for (let i = 0; i < 2; i++) {
      const r = await world.run();
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(/DuckDB/);
      expect(r.audienceId).toBeUndefined();
    }
    expect(world.emulator.control.audiences()).toHaveLength(0);
    expect(createCalls(world)).toHaveLength(0);

    editConfig(world, (c) => (c.syncs[0]!.model = 'select * from customers'));
    const good = await world.run();
    expect(good.status).toBe('success');
    const audiences = world.emulator.control.audiences();
    expect(audiences).toHaveLength(1);
    expect(audiences[0]).toMatchObject({ id: good.audienceId, name: 'Loyalty (created)', description: 'made by a test [audience-sync:loyalty]' });
  });

  it('plan neither creates an audience nor calls Meta', async () => {
    world = await createWorld({ audience: CREATE });
    await world.setCustomers(customers(10));
    const { Workspace } = await import('../../src/app/workspace.js');
    const { loadConfig } = await import('../../src/config/index.js');
    const ws = new Workspace(loadConfig(world.configPath, world.env));
    try {
      const plan = await ws.plan('loyalty');
      expect(plan.counts.added).toBe(10);
    } finally {
      await ws.close();
    }
    expect(graphCalls(world)).toHaveLength(0);
  });
});

describe.each(STATE_KINDS)('lost state with %s', (kind) => {
  const state = stateWorlds(kind, 'lost');
  const createWorldWithState = state.createWorld;
  /** A new, empty state store: the SQLite file deleted, or a new PostgreSQL database. */
  async function loseState(w: World): Promise<void> {
    const url = await state.freshStateUrl();
    if (url) editConfig(w, (c) => (c.state.url = url));
    else for (const suffix of ['', '-wal', '-shm']) rmSync(w.statePath + suffix, { force: true });
  }

  it('adopts the audience this sync created instead of creating a second one', async () => {
    world = await createWorldWithState({ audience: CREATE });
    await world.setCustomers(customers(30));
    const first = await world.run();
    expect(first.status).toBe('success');
    world.audienceId = first.audienceId!;

    await loseState(world);
    await world.setCustomers(customers(35));
    const again = await world.run();
    expect(again.status).toBe('success');
    expect(again.audienceId).toBe(first.audienceId);
    expect(again.warnings.join('\n')).toMatch(new RegExp(`using audience ${first.audienceId} "Loyalty \\(created\\)", which an earlier run of this sync created`));
    expect(world.emulator.control.audiences()).toHaveLength(1);
    expect(world.memberIds()).toHaveLength(35);
  });

  it('refuses, saying to set audience.id, when an audience of that name exists that this sync did not create', async () => {
    world = await createWorldWithState({ audience: CREATE });
    await world.setCustomers(customers(10));
    const res = await fetch(`${world.emulator.url}/v25.0/act_${DEFAULT_AD_ACCOUNT}/customaudiences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Loyalty (created)', subtype: 'CUSTOM' }),
    });
    const theirs = ((await res.json()) as { id: string }).id;
    const r = await world.run();
    expect(r.status).toBe('failed');
    expect(r.error).toContain(`an audience named "Loyalty (created)" already exists (${theirs} "Loyalty (created)")`);
    expect(r.error).toMatch(/set audience\.id of sync "loyalty" to its id/);
    expect(world.emulator.control.audiences()).toHaveLength(1);
    expect(world.emulator.control.members(theirs)).toHaveLength(0);
  });

  it('refuses when two audiences of that name carry its mark; reset --forget-audience asks for a new one', async () => {
    world = await createWorldWithState({ audience: CREATE });
    await world.setCustomers(customers(10));
    const first = await world.run();
    // The user asks for a new audience: the old one is kept in Meta, the state forgets it.
    const state = await openStateStore(readConfig(world).state.url);
    try {
      await state.resetSync('loyalty', { forgetAudience: true });
    } finally {
      await state.close();
    }
    const second = await world.run();
    expect(second.status).toBe('success');
    expect(second.audienceId).not.toBe(first.audienceId);
    expect(world.emulator.control.audiences()).toHaveLength(2);

    await loseState(world);
    const lost = await world.run();
    expect(lost.status).toBe('failed');
    expect(lost.error).toMatch(/2 audiences named "Loyalty \(created\)" were created by it .*Set audience\.id of sync "loyalty" to the one to keep/);
    expect(world.emulator.control.audiences()).toHaveLength(2);
  });
});
