// A throw-away PostgreSQL server for the chaos run: its own data folder in a temp dir, 127.0.0.1 on
// a free port, trust auth, no fsync. initdb refuses to run as root, so as root the server runs as
// the `postgres` user (runuser). (test/support/postgres.ts does the same for the tests; the chaos
// run keeps its own copy so the shipped build never imports test code.)
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface ScratchPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL binaries not found: install postgresql (15 or later) or set PG_BIN to the folder holding initdb and pg_ctl');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** As root, run server binaries as `postgres` through runuser; otherwise as ourselves. */
function serverUser(): { argv(bin: string, args: string[]): [string, string[]]; owner?: { uid: number; gid: number } } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { argv: (bin, args) => [bin, args] };
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = entry?.split(':') ?? [];
  if (!runuser || uid === undefined || gid === undefined) {
    throw new Error('running as root without runuser or a "postgres" user: PostgreSQL refuses to run as root; run the chaos test as another user');
  }
  return { argv: (bin, args) => [runuser, ['-u', 'postgres', '--', bin, ...args]], owner: { uid: Number(uid), gid: Number(gid) } };
}

export async function startScratchPostgres(): Promise<ScratchPostgres> {
  const bin = binDir();
  const user = serverUser();
  const exec = (name: string, args: string[]) => {
    const [cmd, argv] = user.argv(join(bin, name), args);
    return execFileAsync(cmd, argv, { timeout: 60_000 });
  };
  const base = mkdtempSync(join(tmpdir(), 'audience-sync-chaos-pg-'));
  if (user.owner) chownSync(base, user.owner.uid, user.owner.gid);
  const data = join(base, 'data');
  const log = join(base, 'server.log');
  const cleanup = () => rmSync(base, { recursive: true, force: true });
  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  } catch (e) {
    cleanup();
    throw new Error(`initdb failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`, { cause: e });
  }
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const options = [`-p ${port}`, `-k ${base}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=40'].join(' ');
    try {
      await exec('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', options]);
    } catch (e) {
      // The port may have been taken between probing and binding: try another.
      lastError = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : (e as Error).message;
      continue;
    }
    let stopped = false;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
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
