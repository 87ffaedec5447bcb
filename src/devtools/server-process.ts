// What the throw-away database servers of the tests share (PostgreSQL here, MariaDB in test/support):
// a free port on 127.0.0.1, and running the server as its own unprivileged user when we are root
// (both refuse to run as root).
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ServerUser {
  /** The command line that runs `bin` as the server's user. */
  wrap(bin: string, args: string[]): [string, string[]];
  /** Set when we are root: the files the server writes must belong to this user. */
  uid?: number;
  gid?: number;
}

/** How to run a server binary: as `user` via runuser when we are root, else as ourselves. */
export function asServerUser(user: string, product: string): ServerUser {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return { wrap: (bin, args) => [bin, args] };
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));
  if (!runuser) throw new Error(`running as root without runuser: ${product} refuses to run as root; run the tests as another user`);
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const [, , uid, gid] = passwd?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`running as root but there is no "${user}" user to run ${product} as`);
  return { wrap: (bin, args) => [runuser, ['-u', user, '--', bin, ...args]], uid: Number(uid), gid: Number(gid) };
}
