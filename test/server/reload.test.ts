// `serve` follows edits of its config file and model files without a restart, and survives a broken
// edit: it keeps the last good config, says what is wrong (log, /healthz) and takes the fix.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers, writeCustomers } from '../support/world.js';
import { serveWorld, type ServedWorld } from './helpers.js';

type RawConfig = { syncs: Array<Record<string, unknown>> } & Record<string, unknown>;

function editConfig(s: ServedWorld, edit: (config: RawConfig) => void): void {
  const config = parse(readFileSync(s.world.configPath, 'utf8')) as RawConfig;
  edit(config);
  writeFileSync(s.world.configPath, stringify(config));
}

async function runNow(s: ServedWorld): Promise<{ status: string; counts: Record<string, number> }> {
  const started = await s.api('POST', '/api/syncs/loyalty/runs', { body: { force: true } });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return s.waitForRun(started.body.runId);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('before each run, serve reads the config and model files again', () => {
  let s: ServedWorld;
  // No periodic check: only the read before each run can see the edits.
  beforeAll(async () => {
    s = await serveWorld({ rows: 5, server: { configCheckMs: 0 } });
  });
  afterAll(() => s?.close());

  it('a config edit (inline model → modelFile) and then a model file edit', async () => {
    const modelFile = join(s.world.dir, 'models', 'loyalty.sql');
    mkdirSync(join(s.world.dir, 'models'));
    writeFileSync(modelFile, "select * from customers where user_id in ('u0', 'u1')");
    editConfig(s, (c) => {
      delete c.syncs[0]!.model;
      c.syncs[0]!.modelFile = 'models/loyalty.sql';
    });
    expect((await runNow(s)).counts.extracted).toBe(2);
    expect(s.world.memberIds()).toEqual(['u0', 'u1']);

    writeFileSync(modelFile, 'select * from customers');
    expect((await runNow(s)).counts.extracted).toBe(5);
    expect(s.world.memberIds()).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
  });

  it('a warehouse whose path changed is opened anew', async () => {
    await writeCustomers(join(s.world.dir, 'other.duckdb'), customers(6));
    editConfig(s, (c) => {
      (c.sources as Record<string, { path: string }>).warehouse!.path = './other.duckdb';
    });
    expect((await runNow(s)).counts.extracted).toBe(6);
    expect(s.world.memberIds()).toHaveLength(6);
  });
});

describe('a broken config while serve runs', () => {
  let s: ServedWorld;
  const logged: Array<{ event?: string; error?: string; msg: string }> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logged.push(JSON.parse(line));
        done();
      },
    });
    s = await serveWorld({ rows: 5, server: { configCheckMs: 50, logger: pino({ level: 'info' }, sink) } });
  });
  afterAll(() => s?.close());
  const health = async () => (await s.api('GET', '/healthz')).body as { status: string; configError: string | null };

  it('picks up a new schedule and a new sync without a restart', async () => {
    expect((await s.api('GET', '/api/syncs/loyalty')).body.nextRunAt).toBeNull();
    editConfig(s, (c) => {
      c.syncs[0]!.schedule = '0 3 * * *';
      c.syncs.push({ ...c.syncs[0]!, name: 'second', schedule: undefined });
    });
    const next = await until('the schedule', async () => (await s.api('GET', '/api/syncs/loyalty')).body.nextRunAt ?? undefined);
    expect(new Date(next).getUTCHours()).toBe(3);
    expect((await s.api('GET', '/api/syncs')).body.syncs.map((x: { name: string }) => x.name)).toEqual(['loyalty', 'second']);
    expect(logged.some((l) => l.event === 'config_reloaded')).toBe(true);
  });

  it('keeps the last good config, says where the file is broken, runs on, and takes the fix', async () => {
    const good = readFileSync(s.world.configPath, 'utf8');
    writeFileSync(s.world.configPath, good.replace('primaryKey: user_id', 'primaryKey: user_id\n   broken: [indent'));
    const error = await until('the config error', async () => (await health()).configError ?? undefined);
    expect(error).toMatch(/is not a valid audience-sync config[\s\S]*\(line \d+, column \d+\): YAML syntax error/);
    expect((await health()).status).toBe('ok');

    // The service still answers and runs with the config it had.
    expect((await s.api('GET', '/api/syncs')).body.syncs).toHaveLength(2);
    expect(await runNow(s)).toMatchObject({ status: 'success', counts: { extracted: 5 } });
    // Logged once, not on every check.
    await new Promise((r) => setTimeout(r, 300));
    expect(logged.filter((l) => l.event === 'config_invalid')).toHaveLength(1);
    expect(logged.find((l) => l.event === 'config_invalid')?.error).toContain('YAML syntax error');

    // The fix, with a changed model, is taken.
    writeFileSync(s.world.configPath, good.replace('select * from customers', "select * from customers where user_id <> 'u4'"));
    await until('the fix', async () => ((await health()).configError === null ? true : undefined));
    expect(logged.some((l) => l.event === 'config_valid')).toBe(true);
    expect(await runNow(s)).toMatchObject({ status: 'success', counts: { extracted: 4 } });
    expect(s.world.memberIds()).toEqual(['u0', 'u1', 'u2', 'u3']);
  });

  it('a missing model file is a config error too, not a crash', async () => {
    editConfig(s, (c) => {
      delete c.syncs[0]!.model;
      c.syncs[0]!.modelFile = 'models/missing.sql';
    });
    const error = await until('the config error', async () => (await health()).configError ?? undefined);
    expect(error).toMatch(/syncs\[0\]\.modelFile.*file not found/);
    expect((await s.api('GET', '/api/syncs/loyalty')).status).toBe(200);
  });
});
