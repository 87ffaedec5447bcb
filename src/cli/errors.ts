import { CliError, EXIT } from './exit-codes.js';

/** By error name, so the CLI's entry point does not load the engine just to map an exit code. */
const EXIT_BY_NAME: Record<string, number> = {
  ConfigError: EXIT.usage,
  ModelCheckError: EXIT.usage,
  MappingError: EXIT.usage,
  ServeRefusedError: EXIT.usage,
  SyncBusyError: EXIT.busy,
};

export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof Error) return EXIT_BY_NAME[error.name] ?? EXIT.failed;
  return EXIT.failed;
}
