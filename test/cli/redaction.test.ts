// A model that fails on a value: the warehouse quotes the value in its error, and that error is shown
// by `sync`, `sync --json`, `runs`, `runs --json`, the run history, `/api/runs/:id`, the dashboard and
// the service log. None of them may show the raw value, on DuckDB or PostgreSQL.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AD_ACCOUNT } from '../../src/emulator/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { createWorld, type Customer, type World } from '../support/world.js';
import { CLI, runCli } from './run-cli.js';

const PEOPLE: Customer[] = [
  { user_id: 'p1', email: ' ANA.Lopez@Example.COM ', phone: '+1 (555) 123-4567', first_name: 'Quillonia', country: 'US' },
  { user_id: 'p2', email: "zephyrine.o'brien@example.org", phone: '+44 20 7183 9911', first_name: "O'Brien", country: 'GB' },
  { user_id: 'p3', email: 'say "Thaddeon"@example.net', phone: '+1 650 555 0199', first_name: 'Keturah\nVasquine', country: 'US' },
];
/** Lower-case parts of the people above that must never be shown. */
const SECRETS = ['ana.lopez', 'quillonia', 'zephyrine', 'brien', 'thaddeon', 'keturah', 'vasquine', '123-4567', '7183', '0199'];
/** Fails on every row, quoting its e-mail address, name and phone number together. */
const FAILING_MODEL = `select user_id, cast(email || ' ' || first_name || ' ' || phone as integer) as email, phone, first_name, country from customers`;

function expectNoSecrets(text: string, where: string): void {
  for (const secret of SECRETS) expect(text.toLowerCase(), `${where}:\n${text}`).not.toContain(secret);
}

let world: World;
let server: TestPostgres;
const configs: Record<'duckdb' | 'postgres', string> = { duckdb: '', postgres: '' };

beforeAll(async () => {
  [world, server] = await Promise.all([createWorld({ model: FAILING_MODEL }), startPostgres()]);
  await world.setCustomers(PEOPLE);
  configs.duckdb = world.configPath;

  const client = new pg.Client(server.url);
  await client.connect();
  await client.query('create table customers (user_id text, email text, phone text, first_name text, country text)');
  for (const p of PEOPLE) await client.query('insert into customers values ($1, $2, $3, $4, $5)', [p.user_id, p.email, p.phone, p.first_name, p.country]);
  await client.end();
  const config = {
    version: 1,
    state: { url: `sqlite://${join(world.dir, 'pg-state.db')}` },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl: world.emulator.url },
    sources: { crm: { type: 'postgres', url: server.url } },
    syncs: [
      {
        name: 'loyalty',
        source: 'crm',
        model: FAILING_MODEL,
        primaryKey: 'user_id',
        audience: { id: world.audienceId },
        mode: 'mirror',
        mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', COUNTRY: 'country' },
      },
    ],
  };
  configs.postgres = join(world.dir, 'pg.yml');
  writeFileSync(configs.postgres, stringify(config));
}, 60_000);

afterAll(async () => {
  await world?.close();
  await server?.stop();
});

/** `serve` as a real process: runs the sync through the API, returns what the API, the dashboard and the log showed. */
async function serveRun(configPath: string): Promise<{ api: string; page: string; log: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '-c', configPath, '--port', '0'], { env: { ...world.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${log}`)), 20_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    const started = await fetch(`${url}/api/syncs/loyalty/runs`, { method: 'POST' });
    expect(started.status).toBe(202);
    const { runId } = (await started.json()) as { runId: number };
    let api = '';
    const finished = () => api !== '' && (JSON.parse(api) as { status?: string }).status !== 'running';
    for (let i = 0; i < 200 && !finished(); i++) {
      await new Promise((r) => setTimeout(r, 100));
      api = await (await fetch(`${url}/api/runs/${runId}`)).text();
    }
    expect((JSON.parse(api) as { status?: string }).status).toBe('failed');
    const page = await (await fetch(`${url}/runs/${runId}`)).text();
    for (let i = 0; i < 100 && !log.includes('"event":"run_finished"'); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    await exited;
    return { api, page, log };
  } finally {
    child.kill('SIGKILL');
  }
}

describe.each(['duckdb', 'postgres'] as const)('a model failing on a value in %s', (warehouse) => {
  it('never shows the value: sync, sync --json, runs, runs --json, the state file, the API, the dashboard, the service log', async () => {
    const configPath = configs[warehouse];
    const env = world.env;

    const sync = await runCli(['sync', 'loyalty', '-c', configPath, '-q'], { env });
    expect(sync.code).toBe(1);
    expectNoSecrets(sync.stdout + sync.stderr, 'sync');
    expect(sync.stdout + sync.stderr).toMatch(/<redacted>/);

    const json = await runCli(['sync', 'loyalty', '-c', configPath, '--json'], { env });
    const summary = JSON.parse(json.stdout) as { status: string; error: string };
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(warehouse === 'duckdb' ? /Could not convert string '<redacted>' to INT32/ : /invalid input syntax for type integer: "<redacted>"/);
    expectNoSecrets(json.stdout + json.stderr, 'sync --json');

    for (const args of [['runs'], ['runs', '--json']]) {
      const runs = await runCli([...args, '-c', configPath], { env });
      expect(runs.code).toBe(0);
      expect(runs.stdout).toContain('<redacted>');
      expectNoSecrets(runs.stdout + runs.stderr, args.join(' '));
    }

    const served = await serveRun(configPath);
    expect(served.api).toContain('<redacted>');
    expectNoSecrets(served.api, '/api/runs/:id');
    expect(served.page).toContain('redacted');
    expectNoSecrets(served.page, 'the dashboard run page');
    expect(served.log).toContain('"event":"run_finished"');
    expect(served.log).toContain('<redacted>');
    expectNoSecrets(served.log, 'the service log');

    const state = warehouse === 'duckdb' ? world.statePath : join(world.dir, 'pg-state.db');
    for (const file of [state, `${state}-wal`].filter((f) => existsSync(f))) expectNoSecrets(readFileSync(file).toString('latin1'), file);
  }, 120_000);
});
