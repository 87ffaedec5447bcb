import type { Command } from 'commander';
import { startServer } from '../../server/index.js';
import { CliError, EXIT } from '../exit-codes.js';
import { logLevel } from '../options.js';
import { withConfigOption } from '../workspace.js';
import { serveSchedulerOnly } from './worker.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('serve')
      .description('run the syncs on their schedules and serve the dashboard, the JSON API, /metrics and /healthz')
      .option('--host <address>', 'address to listen on (default: server.host from the config, else 127.0.0.1); other than loopback it needs AUDIENCE_SYNC_ADMIN_TOKEN')
      .option('--port <port>', 'port to listen on (default: server.port from the config, else 8080)')
      .option('--shutdown-timeout <seconds>', 'on SIGINT/SIGTERM, how long to wait for running syncs', '600')
      .option('--log-level <level>', 'trace, debug, info, warn, error or silent', logLevel, 'info')
      .option('--scheduler-only', 'only queue due runs for `audience-sync worker` processes (needs PostgreSQL state): no dashboard, no runs here'),
  ).action(async (opts: { config: string; host?: string; port?: string; shutdownTimeout: string; logLevel: string; schedulerOnly?: boolean }) => {
    if (opts.schedulerOnly) return serveSchedulerOnly(opts);
    const port = opts.port === undefined ? undefined : Number(opts.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new CliError(`--port must be a number from 0 to 65535, not "${opts.port}"`, EXIT.usage);
    const timeout = Number(opts.shutdownTimeout);
    if (!Number.isFinite(timeout) || timeout < 0) throw new CliError(`--shutdown-timeout must be a number of seconds, not "${opts.shutdownTimeout}"`, EXIT.usage);
    const server = await startServer({
      config: opts.config,
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(port !== undefined ? { port } : {}),
      logLevel: opts.logLevel,
      shutdownTimeoutMs: timeout * 1000,
    });
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          console.error(`audience-sync: ${signal} again, exiting without waiting for running syncs`);
          process.exit(EXIT.failed);
        }
        stopping = true;
        console.error(`audience-sync: ${signal} received, finishing running syncs (send it again to exit now)`);
        void server.close().then(resolve, (e: unknown) => {
          console.error(`audience-sync: shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
          process.exitCode = EXIT.failed;
          resolve();
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}
