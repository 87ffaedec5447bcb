#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('audience-sync')
  .description('Keep Meta Custom Audiences in step with a SQL model in your warehouse.')
  .version(pkg.version)
  .showHelpAfterError();

// Each command lives in its own module under ./commands and registers itself here.
const commands: Array<{ register(program: Command): void }> = [];
for (const c of commands) c.register(program);

await program.parseAsync(process.argv);
