// The CLI against the local Snowflake and Databricks API servers: doctor's source checks, a plan that
// reads a model whose columns Snowflake names in upper case, and SIGTERM cancelling a running statement.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { startDatabricksServer, type DatabricksServer } from '../support/databricks-server.js';
import { startSnowflakeServer, type SnowflakeServer } from '../support/snowflake-server.js';
import { CLI, runCli } from './run-cli.js';

let emulator: RunningEmulator;
let snowflake: SnowflakeServer;
let databricks: DatabricksServer;
let dir: string;
let env: NodeJS.ProcessEnv;

const PEOPLE = 'create table people as select i as user_id, \'p\' || i || \'@example.com\' as email from range(50) t(i)';

function writeConfig(name: string): string {
  const sf = snowflake.sourceConfig();
  const dbx = databricks.sourceConfig();
  const config = {
    version: 1,
    state: { url: `sqlite://${join(dir, `${name}.db`)}` },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: emulator.url },
    sources: {
      sf: { ...sf, privateKey: '${SF_PRIVATE_KEY}' },
      dbx: { ...dbx, clientSecret: '${DBX_CLIENT_SECRET}' },
    },
    syncs: ['sf', 'dbx'].map((source) => ({
      name: `people-${source}`,
      source,
      model: 'select user_id, email from people',
      primaryKey: 'user_id',
      audience: { create: { name: `people from ${source}` } },
      mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' },
    })),
  };
  const path = join(dir, `${name}.yml`);
  writeFileSync(path, stringify(config));
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'audience-sync-warehouses-'));
  emulator = await startEmulator({ port: 0 });
  snowflake = await startSnowflakeServer();
  databricks = await startDatabricksServer({ auth: 'm2m' });
  await snowflake.exec(PEOPLE);
  await databricks.exec(PEOPLE);
  env = { ...process.env, META_ACCESS_TOKEN: DEFAULT_TOKEN, SF_PRIVATE_KEY: snowflake.privateKeyPem, DBX_CLIENT_SECRET: databricks.clientSecret };
});

afterAll(async () => {
  await snowflake?.stop();
  await databricks?.stop();
  await emulator?.close();
});

describe('Snowflake and Databricks sources through the CLI', () => {
  it('doctor signs in to each warehouse, counts the model rows, and names a missing grant', async () => {
    const config = writeConfig('doctor');
    const ok = await runCli(['doctor', '-c', config], { env });
    expect(ok.stdout).toMatch(/✓ source sf: signed in to 127\.0\.0\.1:\d+ as AUDIENCE_SYNC with role ANALYST; warehouse COMPUTE_WH/);
    expect(ok.stdout).toMatch(/✓ source dbx: signed in to 127\.0\.0\.1:\d+ as [0-9a-f-]+; SQL warehouse a1b2c3d4e5f60718 runs statements/);
    expect(ok.stdout).toContain('✓ sync people-sf: model');
    expect(ok.stdout).toContain('✓ sync people-sf: rows: the model returns 50 rows');
    expect(ok.stdout).toContain('✓ sync people-dbx: rows: the model returns 50 rows');
    expect(ok.stdout).not.toContain('PRIVATE KEY');

    const scoped = await startSnowflakeServer();
    const original = snowflake;
    try {
      scoped.revokeWarehouseUsage();
      snowflake = scoped;
      const broken = writeConfig('doctor-broken');
      const r = await runCli(['doctor', '-c', broken], { env: { ...env, SF_PRIVATE_KEY: scoped.privateKeyPem } });
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('✗ source sf: source "sf": role ANALYST cannot use warehouse COMPUTE_WH: grant USAGE on warehouse COMPUTE_WH to role ANALYST');
    } finally {
      snowflake = original;
      await scoped.stop();
    }
  });

  it('validates and plans a sync whose mapping says user_id for Snowflake\'s USER_ID', async () => {
    const config = writeConfig('plan');
    expect((await runCli(['validate', '-c', config], { env })).code).toBe(0);
    for (const sync of ['people-sf', 'people-dbx']) {
      const r = await runCli(['plan', sync, '-c', config], { env });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/50/);
    }
  });

  for (const which of ['sf', 'dbx'] as const) {
    it(`cancels the running ${which === 'sf' ? 'Snowflake' : 'Databricks'} statement when the process gets SIGTERM`, async () => {
      const config = writeConfig(`term-${which}`);
      const server = which === 'sf' ? snowflake : databricks;
      server.slowStatements(30_000);
      try {
        const submitsBefore = server.requests.get('submit') ?? 0;
        const cancelsBefore = server.cancelled.length;
        const child = spawn(process.execPath, [CLI, 'plan', `people-${which}`, '-c', config], { env: { ...env, NO_COLOR: '1' }, stdio: 'ignore' });
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
        // The first statement (the column check) stays running: SIGTERM must not leave it behind.
        const deadline = Date.now() + 20_000;
        while ((server.requests.get('submit') ?? 0) < submitsBefore + 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        await new Promise((resolve) => setTimeout(resolve, 200));
        child.kill('SIGTERM');
        const { signal } = await exited;
        expect(signal).toBe('SIGTERM');
        expect(server.cancelled.length).toBe(cancelsBefore + 1);
      } finally {
        server.slowStatements(0);
      }
    });
  }
});
