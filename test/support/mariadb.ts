// A real, throw-away MariaDB server for tests (Debian's mariadb-server; `.ci/run` installs it): its own
// data dir in a temp folder, listening on 127.0.0.1 at a free port, with a self-signed TLS
// certificate for 127.0.0.1, no binary log, no durability. mariadbd refuses to run as root, so as
// root it runs as the `mysql` user (runuser). Missing binaries are an error, never a skipped test.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { asServerUser, freePort } from '../../src/devtools/server-process.js';

const run = promisify(execFile);

export interface TestMariaDb {
  readonly port: number;
  /** PEM of the server's self-signed certificate (its own CA; names localhost and 127.0.0.1), for TLS tests. */
  readonly certificate: string;
  /** A connection as root (over the server's socket), for fixtures and admin statements. */
  admin(database?: string): Promise<mysql.Connection>;
  stop(): Promise<void>;
}

function findBinary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`MariaDB binaries not found (${name}): install mariadb-server (apt-get install mariadb-server; .ci/run does it)`);
}

async function waitForSocket(socket: string, server: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`MariaDB exited (${server.exitCode}):\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
    try {
      const c = await mysql.createConnection({ socketPath: socket, user: 'root' });
      await c.end();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`MariaDB did not accept connections within 60 s: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startMariaDb(): Promise<TestMariaDb> {
  const installDb = findBinary('mariadb-install-db');
  const mariadbd = findBinary('mariadbd');
  const user = asServerUser('mysql', 'MariaDB');
  const base = mkdtempSync(join(tmpdir(), 'audience-sync-mariadb-'));
  if (user.uid !== undefined && user.gid !== undefined) chownSync(base, user.uid, user.gid);
  const exec = (bin: string, args: string[]) => {
    const [cmd, argv] = user.wrap(bin, args);
    return run(cmd, argv, { timeout: 120_000 });
  };
  const data = join(base, 'data');
  const socket = join(base, 'mariadb.sock');
  const log = join(base, 'server.log');
  const cert = join(base, 'cert.pem');
  const key = join(base, 'key.pem');
  const cleanup = () => rmSync(base, { recursive: true, force: true });

  try {
    await exec(installDb, ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve']);
    await exec('/usr/bin/openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
    ]);
  } catch (err) {
    cleanup();
    throw new Error(`MariaDB setup failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
  }

  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const [cmd, argv] = user.wrap(mariadbd, [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      `--log-error=${log}`,
      `--pid-file=${join(base, 'mariadb.pid')}`,
      `--ssl-cert=${cert}`,
      `--ssl-key=${key}`,
      '--skip-log-bin',
      '--innodb-buffer-pool-size=32M',
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      '--performance-schema=OFF',
      '--max-connections=60',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
    ]);
    const server = spawn(cmd, argv, { stdio: 'ignore' });
    try {
      await waitForSocket(socket, server, log);
    } catch (err) {
      lastError = (err as Error).message;
      server.kill('SIGKILL');
      // The port may have been taken between probing and binding: try another one.
      continue;
    }
    let stopped = false;
    return {
      port,
      certificate: readFileSync(cert, 'utf8'),
      admin: (database) => mysql.createConnection({ socketPath: socket, user: 'root', ...(database ? { database } : {}), multipleStatements: true }),
      async stop() {
        if (stopped) return;
        stopped = true;
        if (server.exitCode === null) {
          const exited = new Promise((r) => server.once('exit', r));
          // Under runuser the pid file names mariadbd itself (runuser ends with it).
          const pidFile = join(base, 'mariadb.pid');
          const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
          if (pid > 0) process.kill(pid, 'SIGKILL');
          else server.kill('SIGKILL');
          await exited;
        }
        cleanup();
      },
    };
  }
  cleanup();
  throw new Error(`MariaDB did not start:\n${lastError}`);
}
