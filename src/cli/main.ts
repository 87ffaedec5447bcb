#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { errorReport, exitCodeFor, printedByCommander } from './errors.js';
import { limitHeapGrowth } from './heap.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('audience-sync')
  .description('Keep Meta Custom Audiences in step with a SQL model in your warehouse.')
  .version(pkg.version)
  .showHelpAfterError()
  // Usage errors reach the catch below (exit code 2, JSON with --json) instead of exiting with 1.
  .exitOverride();

/**
 * Each command lives in its own module under ./commands and registers itself. Only the invoked
 * command's module is loaded (all of them for help), so `normalize` does not pay for DuckDB.
 */
const COMMANDS: Record<string, () => Promise<{ register(program: Command): void }>> = {
  demo: () => import('./commands/demo.js'),
  init: () => import('./commands/init.js'),
  validate: () => import('./commands/validate.js'),
  plan: () => import('./commands/plan.js'),
  sync: () => import('./commands/sync.js'),
  runs: () => import('./commands/runs.js'),
  reset: () => import('./commands/reset.js'),
  retry: () => import('./commands/retry.js'),
  locate: () => import('./commands/locate.js'),
  'test-record': () => import('./commands/test-record.js'),
  audiences: () => import('./commands/audiences.js'),
  doctor: () => import('./commands/doctor.js'),
  serve: () => import('./commands/serve.js'),
  worker: () => import('./commands/worker.js'),
  alerts: () => import('./commands/alerts.js'),
  normalize: () => import('./commands/normalize.js'),
  emulator: () => import('./commands/emulator.js'),
};
// Output piped into `head` and the like: the reader has all it wanted, so stop quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
const invoked = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
// Every command but the emulator, whose heap holds every member it is sent and so grows by design.
if (invoked !== 'emulator') limitHeapGrowth();
const load = invoked !== undefined && invoked in COMMANDS ? [COMMANDS[invoked]!] : Object.values(COMMANDS);
for (const module of await Promise.all(load.map((l) => l()))) module.register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const code = exitCodeFor(error);
  // Errors a user can hit carry their own explanation: print it without a stack trace.
  if (!printedByCommander(error)) console.error(`audience-sync: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.AUDIENCE_SYNC_DEBUG && error instanceof Error) console.error(error.stack);
  // A script that asked for JSON gets JSON on stdout whatever went wrong.
  if (code !== 0 && process.argv.slice(2).includes('--json')) console.log(JSON.stringify(errorReport(error, code), null, 2));
  process.exitCode = code;
}
