// Shared by the alert tests: a config with an `alerts:` section, a logger whose lines the test reads,
// and an AlertCenter over a world's config and state.
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { parse, stringify } from 'yaml';
import { AlertCenter, type AlertCenterOptions } from '../../src/alerts/index.js';
import { loadConfig } from '../../src/config/index.js';
import { openStateStore, type StateStore } from '../../src/state/index.js';

/** Merges top-level sections (e.g. `alerts`, `server`) into a config file. */
export function addToConfig(configPath: string, sections: Record<string, unknown>): void {
  const config = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(configPath, stringify({ ...config, ...sections }));
}

/** A pino logger whose JSON lines land in `lines` (and `text`). */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>>; text: () => string } {
  const lines: Array<Record<string, unknown>> = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines, text: () => text };
}

/** Fast retries for tests. */
export const FAST_DELIVERY = { attempts: 3, backoffMs: 20, timeoutMs: 2_000 };

export interface TestCenter {
  center: AlertCenter;
  state: StateStore;
  log: ReturnType<typeof capturingLogger>;
  close(): Promise<void>;
}

/** An AlertCenter on the config file (read afresh on each check) and a state store of its own. */
export async function centerOn(configPath: string, env: NodeJS.ProcessEnv, opts: Partial<AlertCenterOptions> = {}, stateUrl?: string): Promise<TestCenter> {
  const log = capturingLogger();
  const first = loadConfig(configPath, env);
  const state = await openStateStore(stateUrl ?? first.state.url, opts.now ? { now: opts.now } : {});
  const center = new AlertCenter({ config: () => loadConfig(configPath, env), state: async () => state, log: log.logger, delivery: FAST_DELIVERY, ...opts });
  return {
    center,
    state,
    log,
    async close() {
      await center.close();
      await state.close();
    },
  };
}
