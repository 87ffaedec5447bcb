import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AD_ACCOUNT } from '../../src/emulator/index.js';
import { createWorld, customers, type World } from '../support/world.js';
import { runCli } from './run-cli.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('audience-sync test-record (real process against the emulator)', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld({ model: 'select * from customers order by user_id' });
    await world.setCustomers(customers(3));
  });
  afterAll(async () => {
    await world.close();
  });
  const cli = (...args: string[]) => runCli(['test-record', 'loyalty', '-c', world.configPath, ...args], { env: world.env });

  it("sends the first row, prints its hashed cells and Meta's answer, and the person is in the audience", async () => {
    const r = await cli();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`sent 1 record of sync loyalty to audience ${world.audienceId}`);
    expect(r.stdout).toMatch(/EXTERN_ID\s+u0/);
    expect(r.stdout).toContain(sha('user0@example.com'));
    expect(r.stdout).toContain("Meta's answer: received 1, invalid 0");
    // The raw email never shows, only its hash.
    expect(r.stdout.toLowerCase()).not.toContain('user0@example.com');
    expect(world.memberIds()).toEqual(['u0']);
  });

  it('sends the row with --key, as JSON', async () => {
    const r = await cli('--key', 'u2', '--json');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { schema: string[]; cells: unknown[]; numReceived: number; numInvalidEntries: number };
    expect(result.cells[result.schema.indexOf('EXTERN_ID')]).toBe('u2');
    expect(result.cells[result.schema.indexOf('EMAIL')]).toBe(sha('user2@example.com'));
    expect(result.numInvalidEntries).toBe(0);
    expect(world.memberIds()).toContain('u2');
  });

  it('says what is wrong when the key is not in the model or the terms are not accepted', async () => {
    const missing = await cli('--key', 'nobody');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no row whose user_id is the key given');

    world.emulator.control.setTos(DEFAULT_AD_ACCOUNT, false);
    try {
      const blocked = await cli();
      expect(blocked.code).toBe(1);
      expect(blocked.stderr).toContain(`customaudiences/tos/?act=${DEFAULT_AD_ACCOUNT}`);
    } finally {
      world.emulator.control.setTos(DEFAULT_AD_ACCOUNT, true);
    }
    const unknownSync = await runCli(['test-record', 'nope', '-c', world.configPath], { env: world.env });
    expect(unknownSync.code).toBe(2);
    expect(unknownSync.stderr).toContain('no sync named "nope"');
  });
});

describe('audience-sync test-record before the first sync of an audience.create sync', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld({ audience: { create: { name: 'made by test-record' } } });
  });
  afterAll(async () => {
    await world.close();
  });
  const named = () => world.emulator.control.audiences().filter((a) => a.name === 'made by test-record');

  it('creates the audience the way the sync does, records it, and the sync then uses it', async () => {
    // A model with no row to send creates nothing.
    const empty = await runCli(['test-record', 'loyalty', '-c', world.configPath], { env: world.env });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('returned no rows');
    expect(named()).toHaveLength(0);

    await world.setCustomers(customers(3));
    const sent = await runCli(['test-record', 'loyalty', '-c', world.configPath, '--json'], { env: world.env });
    expect(sent.code, sent.stderr).toBe(0);
    const result = JSON.parse(sent.stdout) as { audienceId: string; numReceived: number };
    expect(result.numReceived).toBe(1);
    expect(named().map((a) => a.id)).toEqual([result.audienceId]);
    expect(world.emulator.control.members(result.audienceId)).toHaveLength(1);

    // A second test record and the first sync use that audience: no second one is created.
    expect((await runCli(['test-record', 'loyalty', '-c', world.configPath, '--key', 'u2'], { env: world.env })).code).toBe(0);
    const sync = await runCli(['sync', 'loyalty', '-c', world.configPath, '--json'], { env: world.env });
    expect(sync.code, sync.stderr).toBe(0);
    const summary = JSON.parse(sync.stdout) as { audienceId: string; status: string; warnings: string[] };
    expect(summary).toMatchObject({ audienceId: result.audienceId, status: 'success', warnings: [] });
    expect(named()).toHaveLength(1);
    expect(world.emulator.control.members(result.audienceId)).toHaveLength(3);
  });
});

