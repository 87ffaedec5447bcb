import { CommanderError } from 'commander';
import { CliError, EXIT } from './exit-codes.js';

/** By error name, so the CLI's entry point does not load the engine just to map an exit code. */
const EXIT_BY_NAME: Record<string, number> = {
  ConfigError: EXIT.usage,
  ModelCheckError: EXIT.usage,
  MappingError: EXIT.usage,
  ServeRefusedError: EXIT.usage,
  UnknownSyncError: EXIT.usage,
  UnknownConnectionError: EXIT.usage,
  SyncBusyError: EXIT.busy,
};

export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  // Commander's own errors are usage errors (unknown command or option, bad value, missing
  // argument); its exit code 0 is help or the version, printed as asked.
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof Error) return EXIT_BY_NAME[error.name] ?? EXIT.failed;
  return EXIT.failed;
}

/** Commander has already printed its message (or the help / version it was asked for). */
export function printedByCommander(error: unknown): boolean {
  return error instanceof CommanderError;
}

export interface ErrorReport {
  ok: false;
  exitCode: number;
  error: string;
  /** Each problem of a config or a model, with the config path at fault (and its line, when known). */
  problems?: Array<{ path: string; message: string; line?: number; column?: number }>;
}

/** What `--json` prints on stdout when a command fails before it has a result of its own. */
export function errorReport(error: unknown, exitCode: number): ErrorReport {
  const message = error instanceof Error ? error.message.replace(/^error: /, '') : String(error);
  const issues = (error as { issues?: unknown } | null)?.issues;
  return {
    ok: false,
    exitCode,
    error: message,
    ...(Array.isArray(issues) ? { problems: issues as NonNullable<ErrorReport['problems']> } : {}),
  };
}
