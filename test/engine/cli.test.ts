import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/identity/index.js';
import { createWorld, customers, type World, cliOn } from '../support/world.js';
import { CLI } from '../cli/run-cli.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const cli = cliOn;

function editSync(w: World, edit: (sync: Record<string, unknown>) => void): void {
  const config = parse(readFileSync(w.configPath, 'utf8')) as { syncs: Array<Record<string, unknown>> };
  edit(config.syncs[0]!);
  writeFileSync(w.configPath, stringify(config));
}

describe('CLI: validate, plan, sync, runs, reset', () => {
  it('validate and plan name the config path of a mapping to a missing column', async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    world = await createWorld();
    await world.setCustomers(customers(3));
    expect((await cli(world, 'validate')).code).toBe(0);
    editSync(world, (s) => ((s.mapping as Record<string, string>).EMAIL = 'emial'));
    for (const command of ['validate', 'plan']) {
      const r = await cli(world, command);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/syncs\[0\]\.mapping\.EMAIL \(loyalty\): EMAIL column "emial" is not in the model's result \(columns: user_id, email/);
    }
  });

  it('plan is a dry run with coverage and a hashed sample request; sync --json reports the run; runs lists it', async () => {
    world = await createWorld();
    const rows = customers(20);
    rows[3] = { ...rows[3]!, email: 'broken' };
    await world.setCustomers(rows);

    const plan = await cli(world, 'plan');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/20 rows in the model: 20 to add/);
    expect(plan.stdout).toMatch(/EMAIL\s+95\.0%\s+dropped: not an email address \(1\)/);
    expect(plan.stdout).toMatch(/"schema": \[\s*"EXTERN_ID",\s*"EMAIL",\s*"PHONE",\s*"FN",\s*"FI",\s*"COUNTRY"/);
    expect(plan.stdout).not.toMatch(/example\.com/i);
    expect(world.memberIds()).toHaveLength(0);
    expect(world.emulator.control.requestLog().filter((r) => r.path.includes('/users'))).toHaveLength(0);

    const sync = await cli(world, 'sync', 'loyalty', '--json');
    expect(sync.code).toBe(0);
    const summary = JSON.parse(sync.stdout) as { status: string; counts: { added: number; delivered: number } };
    expect(summary).toMatchObject({ status: 'success', counts: { added: 20, delivered: 20 } });
    expect(world.memberIds()).toHaveLength(20);

    const runs = await cli(world, 'runs', 'loyalty');
    expect(runs.stdout).toMatch(/#1 loyalty success .* extracted 20 · added 20/);

    const reset = await cli(world, 'reset', 'loyalty');
    expect(reset.code).toBe(2);
    expect(reset.stderr).toMatch(/--yes/);
    expect((await cli(world, 'reset', 'loyalty', '--yes')).code).toBe(0);
    const again = JSON.parse((await cli(world, 'sync', '--all', '--json')).stdout) as Array<{ counts: { added: number } }>;
    expect(again[0]!.counts.added).toBe(20);
  });

  it('exits 1 with the reason when a run fails, and 2 on a broken config', async () => {
    world = await createWorld();
    await world.setCustomers(customers(10));
    await cli(world, 'sync', 'loyalty');
    await world.setCustomers([]);
    const refused = await cli(world, 'sync', 'loyalty');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/loyalty: failed .*\n.*\n.*refused, nothing sent.*\n\s+error: refused: the model returned no rows/);

    writeFileSync(world.configPath, 'version: 1\nsyncs: nope\n');
    const broken = await cli(world, 'sync', '--all');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/is not a valid audience-sync config/);
  });

  it('plan shows how many date-of-birth values each dateFormat reads, and the sync reads them in its own', async () => {
    // birth_date is text written month first (12/31/1990 style): days 1–20 of December, so 12 of 20 also read as dmy.
    const model = "select *, '12/' || lpad(cast(cast(substr(user_id, 2) as int) + 1 as varchar), 2, '0') || '/1990' as birth_date from customers";
    const mapping = { EXTERN_ID: 'user_id', EMAIL: 'email', DOBY: 'birth_date', DOBM: 'birth_date', DOBD: 'birth_date' };
    world = await createWorld({ model, mapping });
    await world.setCustomers(customers(20));

    const iso = await cli(world, 'plan');
    expect(iso.code).toBe(0);
    expect(iso.stdout).toContain('dates of birth written as text (dateFormat iso; never guessed):');
    expect(iso.stdout).toContain('birth_date (DOBY, DOBM, DOBD): 20 values, real dates in each format: iso 0 ← · mdy 20 · dmy 12 · ymd 0 · yyyymmdd 0');
    expect(iso.stdout).toContain("more of birth_date's values are dates in mdy than in iso: check the sync's dateFormat");
    expect(iso.stdout).toMatch(/DOBY\s+0\.0%\s+dropped: not a date in dateFormat iso/);

    editSync(world, (s) => (s.dateFormat = 'mdy'));
    const mdy = await cli(world, 'plan', '--json');
    const [plan] = JSON.parse(mdy.stdout) as Array<{ dateFormats: unknown; counts: { coverage: Record<string, { usable: number }> } }>;
    expect(plan!.dateFormats).toEqual({
      dateFormat: 'mdy',
      columns: [{ column: 'birth_date', keys: ['DOBY', 'DOBM', 'DOBD'], textValues: 20, accepted: { iso: 0, mdy: 20, dmy: 12, ymd: 0, yyyymmdd: 0 } }],
    });
    expect(plan!.counts.coverage.DOBD!.usable).toBe(20);

    const sync = JSON.parse((await cli(world, 'sync', 'loyalty', '--json')).stdout) as { status: string; counts: { delivered: number } };
    expect(sync).toMatchObject({ status: 'success', counts: { delivered: 20 } });
    const member = world.emulator.control.members(world.audienceId).find((m) => m.EXTERN_ID === 'u4');
    expect(member).toMatchObject({ DOBY: sha256Hex('1990'), DOBM: sha256Hex('12'), DOBD: sha256Hex('05') });

    editSync(world, (s) => (s.dateFormat = 'dd.mm.yyyy'));
    const bad = await cli(world, 'plan');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/syncs\[0\]\.dateFormat.*must be one of iso, mdy, dmy, ymd, yyyymmdd/);
  });
});

describe('CLI: what a run says', () => {
  it('a run that cannot reach the Graph API exits 1 even with nothing to send, and runs shows it failed', async () => {
    world = await createWorld();
    await world.setCustomers(customers(5));
    expect((await cli(world, 'sync', 'loyalty')).code).toBe(0);
    // Nothing changed, so there is nothing to send; the Graph API is not there (port 1 is never open).
    const config = parse(readFileSync(world.configPath, 'utf8')) as { meta: Record<string, unknown> };
    config.meta.graphUrl = 'http://127.0.0.1:1';
    writeFileSync(world.configPath, stringify(config));
    const r = await cli(world, 'sync', 'loyalty');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/loyalty: failed .*\n[^]*error: the audience \d+ \(audience\.id of sync "loyalty"\) could not be checked/);
    expect((await cli(world, 'runs', 'loyalty')).stdout).toMatch(/^#2 loyalty failed /);
  });

  it('a run refused by a safeguard removed nobody: sync names --force, runs shows 0 deleted and what was planned', async () => {
    world = await createWorld();
    await world.setCustomers(customers(10));
    await cli(world, 'sync', 'loyalty');
    await world.setCustomers(customers(2));
    const refused = await cli(world, 'sync', 'loyalty');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/deleted 0 .*\n\s+refused, nothing sent; it had planned: 0 to add, 0 to update, 8 departed \(8 removals, 0 rows to send\)\n\s+error: refused: this run would remove 8 of 10 records .*rerun with --force or raise maxRemovalShare/);
    const runs = await cli(world, 'runs', 'loyalty');
    expect(runs.stdout).toMatch(/#2 loyalty failed .* deleted 0 · rejected 0 · delivered 0 · failed 0\n\s+refused, nothing sent; it had planned: .*8 departed/);
    const [last] = JSON.parse((await cli(world, 'runs', 'loyalty', '--json')).stdout) as Array<{ counts: { deleted: number; removedFromAudience: number; planned: { deleted: number; toRemove: number } } }>;
    expect(last!.counts).toMatchObject({ deleted: 0, removedFromAudience: 0, planned: { deleted: 8, toRemove: 8 } });
    expect(world.memberIds()).toHaveLength(10);
  });

  it('refuses a drop in identifier coverage with exit 1; plan reports it; --force sends', async () => {
    world = await createWorld();
    const rows = customers(20);
    await world.setCustomers(rows);
    await cli(world, 'sync', 'loyalty');
    await world.setCustomers(rows.map((r) => ({ ...r, email: null })));
    const plan = await cli(world, 'plan');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/a real run would be refused: EMAIL is usable in 0\.0% of the model's rows \(0 of 20\), down from 100\.0%/);
    const refused = await cli(world, 'sync', 'loyalty');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/error: refused: EMAIL is usable in 0\.0%.*rerun with --force or lower minCoverageRatio/);
    expect(refused.stdout).toMatch(/refused, nothing sent; it had planned: 0 to add, 20 to update/);
    expect((await cli(world, 'sync', 'loyalty', '--force')).code).toBe(0);
  });
});
