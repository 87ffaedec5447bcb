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
