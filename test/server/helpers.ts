// A real world (DuckDB warehouse, emulator, SQLite state) with `audience-sync serve` on 127.0.0.1:0.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { createWorld, customers, type World, type WorldOptions } from '../support/world.js';
import { loadConfig } from '../../src/config/index.js';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server/index.js';

/** A parsed JSON answer; tests read its fields freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface ServedWorld {
  world: World;
  server: RunningServer;
  /** JSON request to the service; `body` is sent as application/json. */
  api(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: Json; headers: Headers }>;
  /** Polls a run until it is no longer `running` and its sync's runner has let go of it. */
  waitForRun(id: number, headers?: Record<string, string>): Promise<Json>;
  close(): Promise<void>;
}

export const SECRET_KEY = 'a'.repeat(64);

export async function serveWorld(
  opts: {
    world?: WorldOptions;
    rows?: number;
    env?: NodeJS.ProcessEnv;
    server?: Partial<ServeOptions>;
    /** Merged into the config file's `meta` / `server` sections. */
    meta?: Record<string, unknown>;
    settings?: Record<string, unknown>;
    /** The config's `alerts:` section. */
    alerts?: Record<string, unknown>;
  } = {},
): Promise<ServedWorld> {
  const world = await createWorld(opts.world);
  if (opts.meta || opts.settings || opts.alerts) {
    const config = parse(readFileSync(world.configPath, 'utf8')) as { meta: Record<string, unknown>; server?: Record<string, unknown>; alerts?: Record<string, unknown> };
    config.meta = { ...config.meta, ...opts.meta };
    if (opts.settings) config.server = { ...config.server, ...opts.settings };
    if (opts.alerts) config.alerts = opts.alerts;
    writeFileSync(world.configPath, stringify(config));
  }
  await world.setCustomers(customers(opts.rows ?? 25));
  const env = { ...world.env, AUDIENCE_SYNC_SECRET_KEY: SECRET_KEY, ...opts.env };
  let server: RunningServer;
  try {
    server = await startServer({ config: await loadConfig(world.configPath, env), env, port: 0, logLevel: 'silent', ...opts.server });
  } catch (e) {
    await world.close();
    throw e;
  }
  const api: ServedWorld['api'] = async (method, path, init = {}) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      redirect: 'manual',
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (a page or metrics)
    }
    return { status: res.status, body, headers: res.headers };
  };
  return {
    world,
    server,
    api,
    async waitForRun(id, headers = {}) {
      for (let i = 0; i < 400; i++) {
        const r = await api('GET', `/api/runs/${id}`, { headers });
        // The run's record is finished a moment before the runner returns and the sync stops showing `running`.
        if (r.status === 200 && r.body.status !== 'running') {
          const sync = await api('GET', `/api/syncs/${encodeURIComponent(String(r.body.sync))}`, { headers });
          if (sync.status !== 200 || sync.body.status !== 'running') return r.body;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`run ${id} did not finish`);
    },
    async close() {
      await server.close();
      await world.close();
    },
  };
}
