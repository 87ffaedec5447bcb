/** Parsers of option values shared by several commands: a bad value is a usage error (exit code 2). */
import { InvalidArgumentError } from 'commander';

export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function logLevel(value: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/** `act_1234567890` or `1234567890` → the digits. */
export function adAccountId(value: string): string {
  const v = value.trim();
  if (!/^(act_)?\d+$/.test(v)) throw new InvalidArgumentError('expected an ad account id such as act_1234567890 (Business Manager → Ad accounts)');
  return v.replace(/^act_/, '');
}

/** A connection name: a slug, as under `connections:` in the config. */
export function connectionName(value: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(value)) throw new InvalidArgumentError('expected a connection name: lower-case letters, digits, "-" or "_"');
  return value;
}
