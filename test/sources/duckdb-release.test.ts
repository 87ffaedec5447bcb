import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { GraphClient } from '../../src/meta/index.js';
import { openSource, type Row, type Source } from '../../src/sources/index.js';
import { createWorld, customers } from '../support/world.js';

const run = promisify(execFile);
let dir: string;
let path: string;

/** Whether another process can open the file for writing: not while a read-only instance holds it. */
async function writableElsewhere(file: string): Promise<boolean> {
  const code = `const { DuckDBInstance } = await import('@duckdb/node-api');
    const i = await DuckDBInstance.create(${JSON.stringify(file)}); i.closeSync();`;
  try {
    await run(process.execPath, ['--input-type=module', '-e', code], { cwd: process.cwd() });
    return true;
  } catch {
    return false;
  }
}

async function count(stream: AsyncIterable<Row[]>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'as-duckdb-release-'));
  path = join(dir, 'warehouse.duckdb');
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  await db.run(`create table users as select i as user_id, 'user' || i || '@example.com' as email from range(30000) r(i)`);
  db.closeSync();
  instance.closeSync();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DuckDB source release', () => {
  let source: Source | undefined;
  afterAll(async () => source?.close());

  it('closes the database until the next read, which opens it again', async () => {
    source = await openSource({ type: 'duckdb', path }, { name: 'warehouse' });
    expect(await writableElsewhere(path)).toBe(false);
    await source.release();
    expect(await writableElsewhere(path)).toBe(true);
    expect(await count(source.stream('select * from users', { orderByKey: 'user_id', keyForm: 'sha256' }))).toBe(30000);
    expect(await writableElsewhere(path)).toBe(false);
  });

  it('leaves a read in progress alone', async () => {
    source ??= await openSource({ type: 'duckdb', path }, { name: 'warehouse' });
    const iterator = source.stream('select * from users', { chunkRows: 1000 })[Symbol.asyncIterator]();
    let n = (await iterator.next()).value!.length;
    await source.release();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) n += next.value.length;
    expect(n).toBe(30000);
  });

  it('keeps an in-memory database open', async () => {
    const memory = await openSource({ type: 'duckdb', path: ':memory:' });
    await memory.release();
    expect(await count(memory.stream('select 1 as a'))).toBe(1);
    await memory.close();
  });
});

describe('a sync run', () => {
  it('releases the warehouse once the model is read, so between runs a writer can open it', async () => {
    const world = await createWorld();
    const ws = new Workspace(loadConfig(world.configPath, world.env), { graph: new GraphClient({ accessToken: DEFAULT_TOKEN, graphUrl: world.emulator.url }) });
    try {
      await world.setCustomers(customers(500));
      let planned = false;
      const summary = await ws.run('loyalty', { onEvent: (e) => (planned ||= e.type === 'planned') });
      expect(summary.status).toBe('success');
      expect(planned).toBe(true);
      // The workspace keeps its sources for the next run; the DuckDB one holds no lock meanwhile.
      expect(await writableElsewhere(world.warehouse)).toBe(true);
      await world.setCustomers(customers(600));
      expect((await ws.run('loyalty')).counts.added).toBe(100);
    } finally {
      await ws.close();
      await world.close();
    }
  });
});
