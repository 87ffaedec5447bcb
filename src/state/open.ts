import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { StateDb } from './schema.js';
import { createStateStore, migrate, type StoreInternals, type StoreOptions } from './store.js';
import type { StateStore } from './types.js';

/** How long a writer waits for another process's SQLite write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000;

export class StateStoreError extends Error {
  override readonly name = 'StateStoreError';
}

/** Where a state URL points: a SQLite file, SQLite in memory, or PostgreSQL. */
export type StateLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export function parseStateUrl(url: string): StateLocation {
  if (url === 'sqlite::memory:' || url === 'sqlite://:memory:') return { kind: 'sqlite', path: ':memory:' };
  if (url.startsWith('sqlite://') && url.length > 'sqlite://'.length) return { kind: 'sqlite', path: url.slice('sqlite://'.length) };
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  throw new StateStoreError(
    'unsupported state URL: use sqlite://path/to/state.db, sqlite::memory: or postgres://user@host/db (state.url in the config)',
  );
}

/**
 * Opens (creating if needed) and migrates the state store at `url`: `sqlite://path` (relative paths
 * from the working directory; a new file is created 0600, a new folder 0700), `sqlite::memory:`, or `postgres://...`.
 * SQLite runs in WAL mode, so readers (`runs`) never block a sync, with synchronous=NORMAL: a commit
 * survives a killed process; a power loss may lose the last commits, which only re-sends them.
 */
export async function openStateStore(url: string, opts: StoreOptions = {}): Promise<StateStore> {
  const location = parseStateUrl(url);
  if (location.kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: location.url, max: 4 });
    // An idle client's connection dropping must not crash the process; the next query reports it.
    pool.on('error', () => {});
    const db = new Kysely<StateDb>({ dialect: new PostgresDialect({ pool }) });
    return openWith(db, 'postgres', opts, 'PostgreSQL state store');
  }

  let sqlite: Database.Database;
  const path = location.path === ':memory:' ? ':memory:' : resolve(location.path);
  try {
    if (path !== ':memory:') {
      // The state holds the run history and hashed identifiers: private to this user. SQLite gives the
      // WAL and shared-memory files the database file's mode, so creating it 0600 covers all three.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
    }
    sqlite = new Database(path);
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
  } catch (err) {
    throw new StateStoreError(`cannot open the state database ${path}: ${(err as Error).message}; check state.url and the folder's permissions`, {
      cause: err,
    });
  }
  const db = new Kysely<StateDb>({ dialect: new SqliteDialect({ database: sqlite }) });
  return openWith(db, 'sqlite', opts, `state database ${path}`, { sqlite });
}

async function openWith(db: Kysely<StateDb>, kind: 'sqlite' | 'postgres', opts: StoreOptions, what: string, internals: StoreInternals = {}): Promise<StateStore> {
  try {
    await migrate(db, kind);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw new StateStoreError(`cannot prepare the ${what}: ${(err as Error).message}`, { cause: err });
  }
  return createStateStore(db, kind, opts, internals);
}
