// `audience-sync normalize` over real processes (the built CLI).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

beforeAll(() => {
  // CI builds before vitest; build here only on a fresh checkout.
  if (!existsSync(CLI)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
});

function run(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'normalize', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

type RunResult = Awaited<ReturnType<typeof run>>;
/** Starts every named run in a beforeAll, concurrently; the returned object fills in before the tests run. */
function beforeAllRuns(specs: Record<string, string[]>): Record<string, RunResult> {
  const results: Record<string, RunResult> = {};
  beforeAll(async () => {
    const entries = await Promise.all(Object.entries(specs).map(async ([name, args]) => [name, await run(args)] as const));
    for (const [name, result] of entries) results[name] = result;
  });
  return results;
}

const EMAIL_HASH = 'fb98d44ad7501a959f3f4f4a3f004fe2d9e581ea6207e218c4b02c08a4d75adf'; // sha256("a@b.com")

describe('audience-sync normalize (one value)', () => {
  // Each CLI start costs a second or more, so the processes of this block run side by side.
  const runs = beforeAllRuns({
    text: ['--key', 'EMAIL', '--value', ' A@B.COM '],
    phoneJson: ['--key', 'PHONE', '--value', '020 7183 8750', '--country', 'GB', '--json'],
    droppedJson: ['--key', 'EMAIL', '--value', 'john@localhost', '--json'],
    droppedText: ['--key', 'PHONE', '--value', '(650) 555-1212'],
    defaultCountry: ['--key', 'PHONE', '--value', '(650) 555-1212', '--default-phone-country', 'US', '--json'],
    unknownKey: ['--key', 'MAIL', '--value', 'x'],
    noValue: ['--key', 'EMAIL'],
    badHashing: ['--key', 'EMAIL', '--value', 'a@b.com', '--hashing', 'maybe'],
    mdy: ['--key', 'DOBM', '--value', '12/31/1990', '--date-format', 'mdy', '--json'],
    yyyymmdd: ['--key', 'DOBD', '--value', '19901231', '--date-format', 'yyyymmdd', '--json'],
    isoDefault: ['--key', 'DOBM', '--value', '12/31/1990', '--json'],
    badDateFormat: ['--key', 'DOBY', '--value', '1990', '--date-format', 'dd/mm/yyyy'],
    city: ['--key', 'CT', '--value', 'København', '--json'],
    help: ['--help'],
  });

  it('prints the normalized value and hash, exit 0', () => {
    const r = runs.text!;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('normalized  a@b.com');
    expect(r.stdout).toContain(`sha256      ${EMAIL_HASH}`);
  });

  it('--json prints the JSON line; a dropped value exits 1 with its reason', () => {
    expect(runs.phoneJson!.code).toBe(0);
    expect(JSON.parse(runs.phoneJson!.stdout)).toEqual({
      key: 'PHONE',
      normalized: '442071838750',
      hash: '8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417',
      error: null,
    });
    expect(runs.droppedJson!.code).toBe(1);
    expect(JSON.parse(runs.droppedJson!.stdout)).toEqual({ key: 'EMAIL', normalized: null, hash: null, error: 'EMAIL: not an email address' });
    expect(runs.droppedText!.code).toBe(1);
    expect(runs.droppedText!.stdout).toContain('PHONE: no country');
  });

  it('uses --default-phone-country', () => {
    expect(JSON.parse(runs.defaultCountry!.stdout).normalized).toBe('16505551212');
  });

  it('--date-format reads dates written as text; the default is iso', () => {
    expect(JSON.parse(runs.mdy!.stdout)).toMatchObject({ key: 'DOBM', normalized: '12', error: null });
    expect(JSON.parse(runs.yyyymmdd!.stdout)).toMatchObject({ key: 'DOBD', normalized: '31', error: null });
    expect(runs.isoDefault!.code).toBe(1);
    expect(JSON.parse(runs.isoDefault!.stdout).error).toMatch(/^DOBM: not a date in dateFormat iso/);
    expect(runs.badDateFormat!.code).toBe(2);
    expect(runs.badDateFormat!.stderr).toContain('--date-format must be one of iso, mdy, dmy, ymd, yyyymmdd');
    expect(runs.help!.stdout).toContain('--date-format <format>');
    expect(JSON.parse(runs.city!.stdout).normalized).toBe('kobenhavn');
  });

  it('usage errors exit 2 with a message', () => {
    expect(runs.unknownKey!.code).toBe(2);
    expect(runs.unknownKey!.stderr).toContain('unknown key "MAIL"');
    expect(runs.noValue!.code).toBe(2);
    expect(runs.noValue!.stderr).toContain('--key needs --value');
    expect(runs.badHashing!.code).toBe(2);
  });

  it('--help documents the exit codes', () => {
    expect(runs.help!.stdout).toMatch(/Exit status:[\s\S]*0 {2}one value[\s\S]*1 {2}one value: it was dropped[\s\S]*2 {2}usage error/);
  });
});

describe('audience-sync normalize (JSONL on stdin)', () => {
  it('writes one line per input line; malformed lines give error lines, not a crash', async () => {
    const input = [
      '{"key":"EMAIL","value":"  John.Doe@Example.COM "}',
      '{"key":"PHONE","value":"020 7183 8750","country":"gb"}',
      '{"key":"PHONE","value":"(650) 555-1212","defaultPhoneCountry":"US"}',
      'this is not json',
      '',
      '{"key":"NOPE","value":"x"}',
      '["EMAIL"]',
      '{"value":"x"}',
      '{"key":"MADID","value":"AECE52E7-03EE-455A-B3C4-E57283966239"}',
      '{"key":"EXTERN_ID","value":"crm-42"}',
      '{"key":"LOOKALIKE_VALUE","value":44.5}',
      '{"key":"DOBY","value":"85"}',
      '{"key":"FN","value":null}',
      '{"key":"DOBY","value":"31.12.1990","dateFormat":"dmy"}',
      '{"key":"DOBY","value":"31.12.1990","dateFormat":"d.m.y"}',
    ].join('\n');
    const r = await run(['--date-format', 'mdy'], input + '\n');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { key: 'EMAIL', normalized: 'john.doe@example.com', hash: '836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f', error: null },
      { key: 'PHONE', normalized: '442071838750', hash: '8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417', error: null },
      { key: 'PHONE', normalized: '16505551212', hash: expect.stringMatching(/^[0-9a-f]{64}$/), error: null },
      { key: null, normalized: null, hash: null, error: 'line 4: not valid JSON' },
      { key: 'NOPE', normalized: null, hash: null, error: expect.stringMatching(/^line 6: unknown key "NOPE"/) },
      { key: null, normalized: null, hash: null, error: expect.stringMatching(/^line 7: expected an object/) },
      { key: null, normalized: null, hash: null, error: 'line 8: "key" is missing or not a string' },
      { key: 'MADID', normalized: 'aece52e7-03ee-455a-b3c4-e57283966239', hash: null, error: null },
      { key: 'EXTERN_ID', normalized: 'crm-42', hash: null, error: null },
      { key: 'LOOKALIKE_VALUE', normalized: '44.5', hash: null, error: null },
      { key: 'DOBY', normalized: null, hash: null, error: 'DOBY: not a four-digit year' },
      { key: 'FN', normalized: null, hash: null, error: 'FN: no value (empty)' },
      { key: 'DOBY', normalized: '1990', hash: expect.stringMatching(/^[0-9a-f]{64}$/), error: null },
      { key: 'DOBY', normalized: null, hash: null, error: 'line 15: "dateFormat" must be one of iso, mdy, dmy, ymd, yyyymmdd' },
    ]);
  });

  it('streams: answers a line before stdin is closed', async () => {
    const child = spawn(process.execPath, [CLI, 'normalize'], { cwd: ROOT });
    const first = new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    child.stdin.write('{"key":"GEN","value":"Female"}\n');
    expect(JSON.parse(await first)).toMatchObject({ key: 'GEN', normalized: 'f' });
    child.stdin.end();
    await new Promise((resolve) => child.on('close', resolve));
  });

  it('handles many lines with CRLF endings', async () => {
    const input = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ key: 'EMAIL', value: `user${i}@example.com` })).join('\r\n');
    const r = await run([], input);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5000);
    expect(JSON.parse(lines[4999]!).normalized).toBe('user4999@example.com');
  });
});
