#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import * as emulatorCommand from './commands/emulator.js';
import * as syncCommand from './commands/sync.js';
import * as planCommand from './commands/plan.js';
import * as validateCommand from './commands/validate.js';
import * as runsCommand from './commands/runs.js';
import * as resetCommand from './commands/reset.js';
import * as normalizeCommand from './commands/normalize.js';
import * as serveCommand from './commands/serve.js';
import * as demoCommand from './commands/demo.js';
import * as doctorCommand from './commands/doctor.js';
import * as audiencesCommand from './commands/audiences.js';
import * as testRecordCommand from './commands/test-record.js';
import * as initCommand from './commands/init.js';
import { exitCodeFor } from './errors.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('audience-sync')
  .description('Keep Meta Custom Audiences in step with a SQL model in your warehouse.')
  .version(pkg.version)
  .showHelpAfterError();

// Each command lives in its own module under ./commands and registers itself here.
const commands: Array<{ register(program: Command): void }> = [syncCommand, planCommand, validateCommand, runsCommand, resetCommand, emulatorCommand, normalizeCommand, demoCommand, serveCommand, doctorCommand, audiencesCommand, testRecordCommand, initCommand];
for (const c of commands) c.register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Errors a user can hit carry their own explanation: print it without a stack trace.
  console.error(`audience-sync: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.AUDIENCE_SYNC_DEBUG && error instanceof Error) console.error(error.stack);
  process.exitCode = exitCodeFor(error);
}
