// Shared by the tests (test/support/postgres.ts) and the chaos run, so there is one copy.
// Starts a real, throw-away PostgreSQL server for tests: its own data dir in a temp folder, listening on
// 127.0.0.1 at a free port, trust auth, no fsync. initdb refuses to run as root, so as root the server
// runs as the `postgres` user (runuser); otherwise as the current user. Members of the role
// `password_login` (create it to use it) must sign in with their password over TCP, so tests can
// expire a credential (VALID UNTIL) and see it refused.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { asServerUser, freePort } from './server-process.js';

const run = promisify(execFile);

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv) return fromEnv;
  const preferred = '/usr/lib/postgresql/15/bin';
  if (existsSync(join(preferred, 'initdb'))) return preferred;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL binaries not found: install postgresql-15 or set PG_BIN to the folder holding initdb');
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = findBinDir();
  const user = asServerUser('postgres', 'PostgreSQL');
  const exec = (name: string, args: string[]) => {
    const [cmd, argv] = user.wrap(join(bin, name), args);
    return run(cmd, argv, { timeout: 60_000 });
  };

  const base = mkdtempSync(join(tmpdir(), 'audience-sync-pg-'));
  if (user.uid !== undefined && user.gid !== undefined) chownSync(base, user.uid, user.gid);
  const data = join(base, 'data');
  const log = join(base, 'server.log');
  const cleanup = () => rmSync(base, { recursive: true, force: true });

  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  } catch (err) {
    cleanup();
    throw new Error(`initdb failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
  }
  // The first matching line wins: password members before initdb's trust lines.
  const hba = join(data, 'pg_hba.conf');
  writeFileSync(hba, `host all +password_login 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);

  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-k ${base}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c shared_buffers=32MB',
      '-c max_connections=40',
    ].join(' ');
    try {
      await exec('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', options]);
    } catch (err) {
      lastError = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : String((err as Error).message);
      // The port may have been taken between probing and binding: try another one.
      continue;
    }
    let stopped = false;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          await exec('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30']);
        } finally {
          cleanup();
        }
      },
    };
  }
  cleanup();
  throw new Error(`PostgreSQL did not start:\n${lastError}`);
}
