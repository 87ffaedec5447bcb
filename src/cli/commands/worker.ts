import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../config/index.js';
import { CliError, EXIT } from '../exit-codes.js';
import { logLevel } from '../options.js';
import { withConfigOption } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('worker')
      .description('take due sync runs from the queue in the state PostgreSQL and run them (start any number, on any machine; `serve --scheduler-only` fills the queue)')
      .option('--concurrency <n>', 'runs this worker executes at once (fleet.maxConcurrentPerAdAccount caps them across all workers)', '1')
      .option('--shutdown-timeout <seconds>', 'on SIGINT/SIGTERM, how long to wait for running syncs before handing their jobs back', '600')
      .option('--log-level <level>', 'trace, debug, info, warn, error or silent', logLevel, 'info'),
  ).action(async (opts: { config: string; concurrency: string; shutdownTimeout: string; logLevel: string }) => {
    const concurrency = Number(opts.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new CliError(`--concurrency must be a whole number from 1 to 256, not "${opts.concurrency}"`, EXIT.usage);
    const timeoutMs = secondsOption('--shutdown-timeout', opts.shutdownTimeout);
    const { startWorker } = await import('../../fleet/index.js');
    const config = loadConfig(opts.config);
    const log = logger(opts.logLevel, 'worker');
    const worker = await asUsageError(() =>
      startWorker(config, {
        concurrency,
        alerts: { logger: log },
        onEvent: ({ type, ...fields }) => {
          if (type === 'error' || type === 'job_failed') log.warn({ event: type, ...fields }, type);
          else if (type === 'run_deferred') log.debug({ event: type, ...fields }, type);
          else log.info({ event: type, ...fields }, type);
        },
      }),
    );
    log.info({ concurrency, configPath: config.configPath }, 'worker started');
    await untilSignal(log, () => worker.stop({ timeoutMs }));
    log.info('worker stopped');
  });
}

/**
 * `audience-sync serve --scheduler-only`: enqueue each sync's due runs for the workers instead of
 * running them here. Runs until SIGINT/SIGTERM.
 */
export async function serveSchedulerOnly(opts: { config: string; logLevel: string }): Promise<void> {
  const { startFleetScheduler } = await import('../../fleet/index.js');
  const config = loadConfig(opts.config);
  const log = logger(opts.logLevel, 'scheduler');
  const scheduler = await asUsageError(() =>
    startFleetScheduler(config, {
      alerts: { logger: log },
      onEvent: ({ type, ...fields }) => {
        if (type === 'enqueued' || type === 'already_queued') log.debug({ event: type, ...fields }, type);
        else log.warn({ event: type, ...fields }, type);
      },
    }),
  );
  const scheduled = config.syncs.filter((s) => s.schedule).map((s) => s.name);
  log.info({ scheduled, configPath: config.configPath }, 'scheduler started: due runs go to the queue for the workers');
  await untilSignal(log, () => scheduler.stop());
  log.info('scheduler stopped');
}

function logger(level: string, role: string): Logger {
  return pino({ level, base: { service: 'audience-sync', role, pid: process.pid } });
}

function secondsOption(flag: string, value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) throw new CliError(`${flag} must be a number of seconds, not "${value}"`, EXIT.usage);
  return seconds * 1000;
}

/** A fleet that cannot start because of its config (SQLite state) is a usage error. */
async function asUsageError<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof Error && err.name === 'FleetSetupError') throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

/** Resolves after the first SIGINT/SIGTERM once `stop` finished; a second signal exits at once. */
function untilSignal(log: Logger, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting for running syncs');
        process.exit(EXIT.failed);
      }
      stopping = true;
      log.info({ signal }, 'stopping: finishing running syncs (send the signal again to exit now)');
      stop().then(resolve, (e: unknown) => {
        log.error({ error: e instanceof Error ? e.message : String(e) }, 'shutdown failed');
        process.exitCode = EXIT.failed;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
