import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { GraphClient, type AudienceInfo } from '../../src/meta/index.js';
import { createWorld, customers, type World } from '../support/world.js';
import { runCli } from './run-cli.js';

describe('audience-sync audiences (real processes against the emulator)', () => {
  let world: World;
  let client: GraphClient;
  beforeAll(async () => {
    world = await createWorld();
    client = new GraphClient({ accessToken: DEFAULT_TOKEN, graphUrl: world.emulator.url });
  });
  afterAll(async () => {
    await world.close();
  });
  const cli = (...args: string[]) => runCli(['audiences', ...args, '-c', world.configPath], { env: world.env });

  it('creates an audience, shows it, and lists every page of the account', async () => {
    const created = await cli('create', '--name', 'vip customers', '--description', 'spend > 1000', '--value-based', '--json');
    expect(created.code).toBe(0);
    const { id } = JSON.parse(created.stdout) as { id: string };
    expect(world.emulator.control.audience(id)).toMatchObject({ name: 'vip customers', isValueBased: true, description: 'spend > 1000' });

    const shown = await cli('show', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`audience ${id} "vip customers"`);
    expect(shown.stdout).toMatch(/type\s+CUSTOM \(value-based\)/);
    expect(shown.stdout).toMatch(/operation status\s+200 Normal/);

    // More audiences than two pages of 20, so `list` has to follow the cursors.
    for (let i = 0; i < 45; i++) await client.createCustomAudience(DEFAULT_AD_ACCOUNT, { name: `bulk ${i}` });
    const listed = await cli('list', '--json');
    expect(listed.code).toBe(0);
    const all = JSON.parse(listed.stdout) as AudienceInfo[];
    expect(all).toHaveLength(world.emulator.control.audiences().filter((a) => !a.deleted).length);
    expect(all.map((a) => a.name)).toEqual(expect.arrayContaining(['vip customers', 'bulk 0', 'bulk 44', 'test audience']));
    const table = await cli('list');
    expect(table.stdout).toMatch(/^ID\s+TYPE\s+SIZE\s+STATUS\s+NAME/);
    expect(table.stdout).toContain(`${all.length} audiences in act_${DEFAULT_AD_ACCOUNT}`);
    expect(table.stdout + table.stderr).not.toContain(DEFAULT_TOKEN);
  });

  it('creates a lookalike of an audience with people, after which the origin cannot be deleted', async () => {
    await world.setCustomers(customers(5));
    expect((await world.run()).status).toBe('success');
    const made = await cli('lookalike', '--from', world.audienceId, '--country', 'us', '--ratio', '0.02');
    expect(made.code).toBe(0);
    const id = /created lookalike audience (\d+)/.exec(made.stdout)?.[1];
    expect(id).toBeDefined();
    expect(world.emulator.control.audience(id!)).toMatchObject({ subtype: 'LOOKALIKE', name: `Lookalike (US, 2%) of ${world.audienceId}` });

    const refused = await cli('delete', world.audienceId, '--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Lookalike audiences depend on this audience; delete them first');

    const badRatio = await cli('lookalike', '--from', world.audienceId, '--country', 'US', '--ratio', '0.5');
    expect(badRatio.code).not.toBe(0);
    expect(badRatio.stderr).toContain('expected a number from 0.01 to 0.20');
  });

  it('deletes only with --yes when not on a terminal', async () => {
    const { id } = await client.createCustomAudience(DEFAULT_AD_ACCOUNT, { name: 'to delete' });
    const asked = await cli('delete', id);
    expect(asked.code).toBe(2);
    expect(asked.stderr).toContain('pass --yes to delete from a script');
    expect(world.emulator.control.audience(id)?.deleted).toBe(false);

    const done = await cli('delete', id, '--yes', '--json');
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toEqual({ id, deleted: true });
    expect(world.emulator.control.audience(id)?.deleted).toBe(true);

    const gone = await cli('show', id);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('object not found');
    const notAnId = await cli('show', 'act_12');
    expect(notAnId.code).toBe(2);
    expect(notAnId.stderr).toContain('is not an audience id');
  });

  it('explains a refused create: terms not accepted, expired token', async () => {
    world.emulator.control.setTos(DEFAULT_AD_ACCOUNT, false);
    try {
      const r = await cli('create', '--name', 'blocked');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`https://business.facebook.com/ads/manage/customaudiences/tos/?act=${DEFAULT_AD_ACCOUNT}`);
    } finally {
      world.emulator.control.setTos(DEFAULT_AD_ACCOUNT, true);
    }
    world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    try {
      const r = await cli('list');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/access token rejected.*Re-authorize: the token expired/);
      expect(r.stderr).not.toContain(DEFAULT_TOKEN);
    } finally {
      world.emulator.control.setTokenState(DEFAULT_TOKEN, 'valid');
    }
  });
});
