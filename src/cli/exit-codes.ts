/** Documented exit codes of every command (see README "Exit codes"). */
export const EXIT = {
  ok: 0,
  /** A sync failed or only partly succeeded; a check failed. */
  failed: 1,
  /** Bad config, bad arguments, or a model that does not fit its mapping. */
  usage: 2,
  /** Another run of the same sync holds its lock. */
  busy: 3,
} as const;

/** An error the CLI prints as is (no stack) before exiting with its code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}
