import { ConfigError } from '../config/index.js';
import { SyncBusyError } from '../engine/index.js';
import { ModelCheckError } from '../app/workspace.js';
import { CliError, EXIT } from './exit-codes.js';

export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ConfigError || error instanceof ModelCheckError) return EXIT.usage;
  if (error instanceof SyncBusyError) return EXIT.busy;
  return EXIT.failed;
}
