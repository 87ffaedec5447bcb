/**
 * `audience-sync normalize`: shows how values become Meta match keys, so a user can check by hand why a
 * record does not match. One value from flags, or JSONL on stdin (one result line per input line).
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { CliError } from '../exit-codes.js';
import {
  DATE_FORMAT_EXAMPLES,
  DATE_FORMATS,
  isDateFormat,
  isMatchKey,
  MATCH_KEYS,
  normalizeKey,
  type DateFormat,
  type Hashing,
  type KeyOutcome,
} from '../../identity/index.js';

interface NormalizeFlags {
  key?: string;
  value?: string;
  country?: string;
  defaultPhoneCountry?: string;
  hashing: string;
  dateFormat: string;
  json?: boolean;
}

/** One output line of the JSONL mode (and of --json). */
interface ResultLine {
  key: string | null;
  normalized: string | null;
  hash: string | null;
  error: string | null;
}

const EXIT_NORMALIZED = 0;
const EXIT_NOT_USABLE = 1;

const HELP = `
Modes:
  One value:  audience-sync normalize --key EMAIL --value " A@B.COM " [--country GB] [--default-phone-country US] [--json]
              audience-sync normalize --key DOBM --value 12/31/1990 --date-format mdy
  JSONL:      audience-sync normalize < values.jsonl
              each input line: {"key":"PHONE","value":"020 7183 8750","country":"GB","defaultPhoneCountry":"US"}
              ("dateFormat" on a line overrides --date-format for that line)
              each output line: {"key":"PHONE","normalized":"442071838750","hash":"8d5f…","error":null}
              ("hash" is null for EXTERN_ID, MADID and LOOKALIKE_VALUE, which Meta takes unhashed;
               a malformed line gives a line with "error" set, never a crash; blank lines are skipped)

Exit status:
  0  one value: it was normalized; JSONL: all lines were read (per-line problems are in "error")
  1  one value: it was dropped (the reason is printed) or empty
  2  usage error (unknown key, missing --value, bad --hashing or --date-format)

Keys: ${MATCH_KEYS.join(', ')}
`;

function parseHashing(mode: string): Hashing | undefined {
  return mode === 'auto' || mode === 'pre-hashed' ? mode : undefined;
}

interface Defaults {
  hashing: Hashing;
  dateFormat: DateFormat;
  defaultPhoneCountry?: string;
}

function toLine(key: string, outcome: KeyOutcome): ResultLine {
  switch (outcome.status) {
    case 'ok':
      return { key, normalized: String(outcome.normalized), hash: outcome.hash, error: null };
    case 'empty':
      return { key, normalized: null, hash: null, error: `${key}: no value (empty)` };
    case 'dropped':
      return { key, normalized: null, hash: null, error: outcome.reason };
  }
}

function unknownKey(key: string): string {
  return `unknown key ${JSON.stringify(key)}: use one of ${MATCH_KEYS.join(', ')}`;
}

/** One JSONL input line → its result line. Never throws. */
export function normalizeJsonLine(line: string, lineNumber: number, defaults: Defaults): ResultLine {
  const fail = (error: string, key: string | null = null): ResultLine => ({ key, normalized: null, hash: null, error: `line ${lineNumber}: ${error}` });
  let input: unknown;
  try {
    input = JSON.parse(line);
  } catch {
    return fail('not valid JSON');
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return fail('expected an object like {"key":"EMAIL","value":"…"}');
  }
  const { key, value, country, defaultPhoneCountry, dateFormat } = input as Record<string, unknown>;
  if (typeof key !== 'string') return fail('"key" is missing or not a string');
  if (!isMatchKey(key)) return fail(unknownKey(key), key);
  if (defaultPhoneCountry !== undefined && typeof defaultPhoneCountry !== 'string') {
    return fail('"defaultPhoneCountry" must be a string such as "US"', key);
  }
  if (dateFormat !== undefined && !isDateFormat(dateFormat)) return fail(`"dateFormat" must be one of ${DATE_FORMATS.join(', ')}`, key);
  const outcome = normalizeKey(key, value, {
    country,
    defaultPhoneCountry: defaultPhoneCountry ?? defaults.defaultPhoneCountry,
    hashing: defaults.hashing,
    dateFormat: dateFormat ?? defaults.dateFormat,
  });
  return toLine(key, outcome);
}

async function normalizeStream(defaults: Defaults): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === '') continue;
    const out = JSON.stringify(normalizeJsonLine(line, lineNumber, defaults)) + '\n';
    if (!process.stdout.write(out)) await once(process.stdout, 'drain');
  }
}

function printOne(line: ResultLine, asJson: boolean): void {
  if (asJson) {
    process.stdout.write(JSON.stringify(line) + '\n');
    return;
  }
  if (line.error !== null) {
    process.stdout.write(`dropped  ${line.error}\n`);
    return;
  }
  process.stdout.write(`key         ${line.key}\nnormalized  ${line.normalized}\n`);
  process.stdout.write(line.hash === null ? 'hash        (none: Meta takes this key unhashed)\n' : `sha256      ${line.hash}\n`);
}

export function register(program: Command): void {
  program
    .command('normalize')
    .description('Show how a value becomes a Meta match key (normalized, then SHA-256 hashed)')
    .option('--key <key>', 'Meta match key of one value (without it, JSONL is read from stdin)')
    .option('--value <value>', 'the raw value, with --key')
    .option('--country <country>', "the row's COUNTRY value: phone default region and ZIP rule")
    .option('--default-phone-country <code>', 'region for national phone numbers when there is no row country, e.g. US')
    .option('--hashing <mode>', 'auto (hash plain values, pass hashes) or pre-hashed (refuse plain values)', 'auto')
    .option('--date-format <format>', `how DOBY/DOBM/DOBD read dates written as text: ${DATE_FORMATS.map((f) => `${f} (${DATE_FORMAT_EXAMPLES[f]})`).join(', ')}`, 'iso')
    .option('--json', 'with --key: print the JSON line instead of text')
    .addHelpText('after', HELP)
    .action(async (flags: NormalizeFlags) => {
      const hashing = parseHashing(flags.hashing);
      if (!hashing) throw new CliError('--hashing must be "auto" or "pre-hashed"');
      if (!isDateFormat(flags.dateFormat)) throw new CliError(`--date-format must be one of ${DATE_FORMATS.join(', ')}`);
      const defaults: Defaults = { hashing, dateFormat: flags.dateFormat, defaultPhoneCountry: flags.defaultPhoneCountry };
      if (flags.key === undefined) {
        if (flags.value !== undefined) throw new CliError('--value needs --key (e.g. --key EMAIL --value "a@b.com")');
        await normalizeStream(defaults);
        return;
      }
      if (!isMatchKey(flags.key)) throw new CliError(unknownKey(flags.key));
      if (flags.value === undefined) throw new CliError('--key needs --value (or leave both out and pipe JSONL to stdin)');
      const line = toLine(flags.key, normalizeKey(flags.key, flags.value, { ...defaults, country: flags.country }));
      printOne(line, flags.json === true);
      process.exitCode = line.error === null ? EXIT_NORMALIZED : EXIT_NOT_USABLE;
    });
}
