import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { checkApiVersion, checkAudience, checkSchema, type DoctorReport } from '../../src/doctor/index.js';
import { createWorld, customers, type World } from '../support/world.js';
import { runCli } from './run-cli.js';

describe('doctor checks (pure)', () => {
  const on = (day: string) => new Date(`${day}T12:00:00Z`);
  it('judges API versions by their known expiry dates', () => {
    expect(checkApiVersion('v25.0', on('2026-11-28'))).toMatchObject({ status: 'ok', message: expect.stringContaining('2027-02-23') });
    expect(checkApiVersion('v25.0', on('2027-02-01'))).toMatchObject({ status: 'warn', message: expect.stringContaining('in 21 days'), fix: expect.stringContaining('v25.0') });
    expect(checkApiVersion('v25.0', on('2027-03-01')).status).toBe('fail');
    // v24: the earlier of the two published dates counts.
    expect(checkApiVersion('v24.0', on('2026-09-10')).status).toBe('warn');
    expect(checkApiVersion('v24.0', on('2026-10-07')).status).toBe('fail');
    expect(checkApiVersion('v23.0', on('2026-06-10')).status).toBe('fail');
    expect(checkApiVersion('v22.0', on('2026-02-01')).status).toBe('warn');
    expect(checkApiVersion('v22.0', on('2026-01-01')).status).toBe('ok');
    expect(checkApiVersion('v19.0', on('2025-01-01'))).toMatchObject({ status: 'fail', message: expect.stringContaining('retired') });
    expect(checkApiVersion('v26.0', on('2027-06-01')).status).toBe('ok');
  });

  it('compares the mapping schema with the one the audience was filled with', () => {
    expect(checkSchema('s', 'EXTERN_ID,EMAIL', null).status).toBe('ok');
    expect(checkSchema('s', 'EXTERN_ID,EMAIL', 'EXTERN_ID,EMAIL').status).toBe('ok');
    expect(checkSchema('s', 'EXTERN_ID,EMAIL,PHONE', 'EXTERN_ID,EMAIL')).toMatchObject({ status: 'fail', message: expect.stringContaining('2650') });
  });

  it('reads audience statuses: flagged, too small, lookalike, value-based mismatch', () => {
    const base = { id: '1', subtype: 'CUSTOM', operationStatus: { code: 200, description: 'Normal' }, deliveryStatus: { code: 200, description: 'ready' }, approximateCountLowerBound: 5000, isValueBased: false };
    expect(checkAudience('a', base, { valueBased: false })).toEqual([expect.objectContaining({ status: 'ok' })]);
    expect(checkAudience('a', { ...base, operationStatus: { code: 471, description: 'flagged' } }, { valueBased: false })[0]).toMatchObject({ status: 'fail', message: expect.stringContaining('flagged') });
    expect(checkAudience('a', { ...base, deliveryStatus: { code: 300, description: 'too small' } }, { valueBased: false })[0]?.status).toBe('warn');
    expect(checkAudience('a', { ...base, subtype: 'LOOKALIKE' }, { valueBased: false })[0]).toMatchObject({ status: 'fail', message: expect.stringContaining('LOOKALIKE') });
    expect(checkAudience('a', base, { valueBased: true })[0]).toMatchObject({ status: 'fail', message: expect.stringContaining('not value-based') });
  });
});

describe('audience-sync doctor (real process against the emulator)', () => {
  // One world for the file (a run fills the audience and the state); each test undoes what it breaks.
  let world: World;
  let configText: string;
  beforeAll(async () => {
    world = await createWorld();
    await world.setCustomers(customers(20));
    expect((await world.run()).status).toBe('success');
    configText = readFileSync(world.configPath, 'utf8');
  });
  afterEach(() => {
    const c = world.emulator.control;
    c.setTos(DEFAULT_AD_ACCOUNT, true);
    c.setTokenState(DEFAULT_TOKEN, 'valid');
    c.setScopes(DEFAULT_TOKEN, ['ads_management', 'ads_read']);
    c.setAudienceStatus(world.audienceId, 200, []);
    c.setFlags({ deliveryThreshold: 1000 });
    writeFileSync(world.configPath, configText);
  });
  afterAll(async () => {
    await world.close();
  });

  const doctor = (args: string[] = []) => runCli(['doctor', '-c', world.configPath, ...args], { env: world.env });
  interface EditableConfig {
    meta: { apiVersion?: string };
    syncs: Array<{ mapping: Record<string, string>; audience: unknown }>;
  }
  const editConfig = (fn: (c: EditableConfig) => void) => {
    const config = parse(readFileSync(world.configPath, 'utf8')) as EditableConfig;
    fn(config);
    writeFileSync(world.configPath, stringify(config));
  };

  it('passes a healthy setup with ✓ lines and exit 0', async () => {
    world.emulator.control.setFlags({ deliveryThreshold: 10 });
    const r = await doctor();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const line of ['✓ api version', '✓ token', '✓ permission ads_management', '✓ ad account', '✓ custom audience terms', '✓ sync loyalty: audience', '✓ sync loyalty: schema', '✓ sync loyalty: model']) {
      expect(r.stdout).toContain(line);
    }
    // The warehouse: reachable, and how many rows the model returns.
    expect(r.stdout).toMatch(/✓ source warehouse: DuckDB v\d.*, file .*warehouse\.duckdb/);
    expect(r.stdout).toContain('✓ sync loyalty: rows: the model returns 20 rows');
    expect(r.stdout).not.toContain(DEFAULT_TOKEN);
    const json = JSON.parse((await doctor(['--json'])).stdout) as DoctorReport;
    expect(json.ok).toBe(true);
    expect(json.checks.every((c) => c.status === 'ok')).toBe(true);
  });

  it('warns (exit 0) about an audience too small to deliver', async () => {
    const r = await doctor();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/! sync loyalty: audience: .*about 20 people; delivery status 300/);
    expect(r.stdout).toContain('1 warning(s), 0 failed');
  });

  it('fails when the Custom Audience terms are not accepted, with the link to accept them', async () => {
    world.emulator.control.setTos(DEFAULT_AD_ACCOUNT, false);
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ custom audience terms');
    expect(r.stdout).toContain(`fix: open https://business.facebook.com/ads/manage/customaudiences/tos/?act=${DEFAULT_AD_ACCOUNT}`);
  });

  it('fails on an expired token, says to re-authorize, and skips what needs the token', async () => {
    world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ token: .*access token rejected.*/);
    expect(r.stdout).toMatch(/fix: Re-authorize: the token expired/);
    expect(r.stdout).toContain('- permission ads_management: not checked');
    expect(r.stdout).not.toContain(DEFAULT_TOKEN);
  });

  it('fails when the token lacks ads_management', async () => {
    world.emulator.control.setScopes(DEFAULT_TOKEN, ['ads_read']);
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ permission ads_management: the token was not granted ads_management (only ads_read');
  });

  it('fails on a flagged audience, a changed schema and a mapping to a missing column', async () => {
    world.emulator.control.setAudienceStatus(world.audienceId, 471, ['EMAIL']);
    editConfig((c) => {
      c.syncs[0]!.mapping.ZIP = 'zip_code';
    });
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`✗ sync loyalty: audience: audience ${world.audienceId} is flagged`);
    expect(r.stdout).toMatch(/✗ sync loyalty: schema: the mapping now sends \[.*ZIP.*\] but the audience was filled with/);
    expect(r.stdout).toMatch(/✗ sync loyalty: model: .*zip_code/);
  });

  it('fails on a warehouse it cannot open, and skips the model checks of its syncs', async () => {
    const config = parse(readFileSync(world.configPath, 'utf8')) as { sources: Record<string, unknown> };
    config.sources.warehouse = { type: 'duckdb', path: './missing.duckdb' };
    writeFileSync(world.configPath, stringify(config));
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ source warehouse: .*missing\.duckdb does not exist/);
    expect(r.stdout).toContain('fix: check sources.warehouse in the config');
    expect(r.stdout).toContain('- sync loyalty: model: not checked: source warehouse cannot be reached');
  });

  it('fails on an audience that does not exist and on a retired API version', async () => {
    editConfig((c) => {
      c.syncs[0]!.audience = { id: '999999' };
      c.meta.apiVersion = 'v19.0';
    });
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ api version: v19.0 is retired');
    expect(r.stdout).toContain('✗ sync loyalty: audience: audience 999999 does not exist or this token cannot see it');
  });
});

describe("Meta's match rate in doctor and runs (real process against the emulator)", () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('warns when the latest processed run matched well below the usual rate, naming the key that dropped', async () => {
    const w = (world = await createWorld());
    // Emails match 80% of the time, phones never: people who come with a phone only match no one.
    w.emulator.control.setFlags({ matchRates: { EMAIL: 0.8, PHONE: 0 } });
    await w.setCustomers(customers(50));
    await w.run();
    await w.setCustomers(customers(100));
    await w.run();
    await w.setCustomers([...customers(100), ...customers(50, 100).map((c) => ({ ...c, email: null }))]);
    await w.run();
    await w.run(); // picks up the counts of the third run

    const doctor = await runCli(['doctor', '-c', w.configPath, '--json'], { env: w.env });
    const check = (JSON.parse(doctor.stdout) as DoctorReport).checks.find((c) => c.subject === 'sync loyalty: match rate');
    expect(check).toMatchObject({ status: 'warn', message: expect.stringMatching(/Meta matched 0\.0% of the rows run #3 sent \(0 of 50\), well below the sync's usual [78]\d\.\d%/) });
    expect(check?.fix).toMatch(/EMAIL is filled in for 67% of the model's rows, down from 100%/);
    expect(check?.fix).toMatch(/work emails only/);

    const runs = await runCli(['runs', '-c', w.configPath], { env: w.env });
    expect(runs.stdout).toMatch(/#3 loyalty success[^\n]*\n\s+time: [^\n]*\n\s+Meta matched 0 of 50 rows sent \(0\.0%\) · audience about 100 people at the start/);
    expect(runs.stdout).toMatch(/loyalty: Meta matched 0\.0% of the rows run #3 sent.*Likely causes:\n\s+- EMAIL is filled in/);
    const json = JSON.parse((await runCli(['runs', '-c', w.configPath, '--json'], { env: w.env })).stdout) as Array<{ id: number; match: { received: number; matched: number; rate: number } | null }>;
    expect(json.find((r) => r.id === 3)?.match).toMatchObject({ received: 50, matched: 0, rate: 0 });
    expect(json.find((r) => r.id === 2)?.match?.received).toBe(50);
    expect(json.find((r) => r.id === 4)?.match).toBeNull();
  });
});
