import { describe, expect, it } from 'vitest';
import { MetaApiError } from '../../src/meta/index.js';
import { ACCOUNT, SCHEMA, person, useTestEmulator, testClient } from './harness.js';

const emulator = useTestEmulator();

async function originWithPeople(count: number): Promise<string> {
  const { client } = testClient(emulator());
  const { id } = await client.createCustomAudience(ACCOUNT, { name: `origin ${count}` });
  if (count > 0) await client.upload('add', id, SCHEMA, Array.from({ length: count }, (_, i) => person(i)));
  return id;
}

describe('createLookalike', () => {
  it('creates a LOOKALIKE audience from an origin with people and ties the origin to it', async () => {
    const origin = await originWithPeople(5);
    const { client } = testClient(emulator());
    const { id } = await client.createLookalike(`act_${ACCOUNT}`, { name: 'lal 1% US', originAudienceId: origin, country: 'US', ratio: 0.01 });
    expect(id).toMatch(/^\d+$/);
    expect(id).not.toBe(origin);
    const info = await client.getAudience(id);
    expect(info).toMatchObject({ name: 'lal 1% US', subtype: 'LOOKALIKE' });
    expect(emulator().control.audience(origin)?.hasLookalikes).toBe(true);
    // The origin cannot be deleted while the lookalike depends on it.
    const err = await client.deleteAudience(origin).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetaApiError);
    expect((err as MetaApiError).code).toBe(2656);
    expect((err as MetaApiError).message).toMatch(/delete them first/);
  });

  it('sends lookalike_spec as Meta expects it (JSON with country, ratio and type)', async () => {
    const origin = await originWithPeople(1);
    const { client } = testClient(emulator());
    await client.createLookalike(ACCOUNT, { name: 'reach 5% GB', originAudienceId: origin, country: 'GB', ratio: 0.05, type: 'reach' });
    const created = emulator().control.audiences().find((a) => a.name === 'reach 5% GB');
    expect(created?.subtype).toBe('LOOKALIKE');
    expect(created?.description).toContain('GB');
  });

  it('is refused when the origin has no people yet, or does not exist', async () => {
    const empty = await originWithPeople(0);
    const { client } = testClient(emulator());
    await expect(client.createLookalike(ACCOUNT, { name: 'x', originAudienceId: empty, country: 'US', ratio: 0.01 })).rejects.toThrow(/has no people yet/);
    await expect(client.createLookalike(ACCOUNT, { name: 'x', originAudienceId: '999999999', country: 'US', ratio: 0.01 })).rejects.toThrow(/does not exist/);
    expect(emulator().control.audience(empty)?.hasLookalikes).toBe(false);
  });

  it('checks country and ratio before calling Meta', async () => {
    const { client, events } = testClient(emulator());
    await expect(client.createLookalike(ACCOUNT, { name: 'x', originAudienceId: '123', country: 'usa', ratio: 0.01 })).rejects.toThrow(/two-letter/);
    await expect(client.createLookalike(ACCOUNT, { name: 'x', originAudienceId: '123', country: 'US', ratio: 0.5 })).rejects.toThrow(/0\.01 .* 0\.20/);
    expect(events.filter((e) => e.type === 'request')).toHaveLength(0);
  });
});
