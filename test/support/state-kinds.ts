// The engine's tests run once over SQLite state and once over PostgreSQL state. This registers the
// PostgreSQL server's start and stop in the calling describe block and hands out worlds whose state
// lives in a database of their own.
import { afterAll, beforeAll } from 'vitest';
import { createDatabase } from '../fleet/helpers.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { createWorld, type World, type WorldOptions } from './world.js';

export const STATE_KINDS = ['SQLite', 'PostgreSQL'] as const;
export type StateKind = (typeof STATE_KINDS)[number];

export interface StateWorlds {
  /** A state URL no world used yet: a new PostgreSQL database, or undefined for a world's own SQLite file. */
  freshStateUrl(): Promise<string | undefined>;
  /** A world whose state is a fresh store of this kind. */
  createWorld(opts?: WorldOptions): Promise<World>;
  /** The state URL of the world created last. */
  stateUrlOf(world: World): string;
}

/** Call inside a describe block: `prefix` names the PostgreSQL databases. */
export function stateWorlds(kind: StateKind, prefix: string): StateWorlds {
  let server: TestPostgres | undefined;
  let databases = 0;
  let lastUrl: string | undefined;
  if (kind === 'PostgreSQL') {
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => {
      await server?.stop();
    });
  }
  const freshStateUrl = async () => (server ? createDatabase(server.url, `${prefix}_${++databases}`) : undefined);
  return {
    freshStateUrl,
    async createWorld(opts: WorldOptions = {}) {
      lastUrl = await freshStateUrl();
      return createWorld({ ...opts, ...(lastUrl ? { stateUrl: lastUrl } : {}) });
    },
    stateUrlOf: (world) => lastUrl ?? `sqlite://${world.statePath}`,
  };
}
