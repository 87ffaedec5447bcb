// The README's exit codes and `--json` promises, over the built CLI: usage errors (unknown sync
// names, typos, bad option values) exit 2; `--json` prints JSON even when the command fails; YAML
// syntax errors say where (line and column).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/index.js';
import { createWorld, customers, type World } from '../support/world.js';
import { CLI, runCli } from './run-cli.js';

let world: World;
beforeAll(async () => {
  world = await createWorld();
  await world.setCustomers(customers(3));
});
afterAll(() => world?.close());

const cli = (...args: string[]) => runCli([...args, '-c', world.configPath], { env: world.env });

describe('usage errors exit 2', () => {
  it('an unknown sync name, for every command that takes one', async () => {
    const results = await Promise.all([cli('sync', 'nope'), cli('plan', 'nope'), cli('runs', 'nope'), cli('test-record', 'nope'), cli('reset', 'nope', '--yes')]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('no sync named "nope"');
      expect(r.stderr).toContain('(syncs: loyalty)');
    }
  });

  it('typos and bad option values', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['snyc', 'loyalty'], /unknown command 'snyc'/],
      [['sync', 'loyalty', '--jsno'], /unknown option '--jsno'/],
      [['runs', '--limit', 'abc'], /expected a whole number from 1 to 10000/],
      [['serve', '--log-level', 'loud'], /expected one of trace, debug/],
      [['demo', '--rows', '5'], /expected a whole number from 100/],
      [['audiences', 'create'], /required option '--name <name>' not specified/],
      [['test-record'], /missing required argument 'sync'/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });

  it('help and version still exit 0', async () => {
    const [help, version] = await Promise.all([runCli(['sync', '--help']), runCli(['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: audience-sync sync');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('--json always prints JSON', () => {
  it('for an unknown sync and a mistyped option', async () => {
    for (const r of [await cli('sync', 'nope', '--json'), await cli('runs', 'nope', '--json')]) {
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 2, error: expect.stringContaining('no sync named "nope"') });
    }
    const typo = await cli('plan', '--json', '--frce');
    expect(typo.code).toBe(2);
    expect(JSON.parse(typo.stdout)).toMatchObject({ ok: false, exitCode: 2, error: "unknown option '--frce'" });
  });

  it('when the sync is busy: the sync, status "busy" and why, exit 3', async () => {
    const state = await openStateStore(`sqlite://${world.statePath}`);
    try {
      expect(await state.acquireLock('loyalty', 'another-host:4242:abcd', 60_000)).toBe(true);
      const one = await cli('sync', 'loyalty', '--json');
      expect(one.code).toBe(3);
      expect(JSON.parse(one.stdout)).toEqual({ sync: 'loyalty', status: 'busy', error: expect.stringMatching(/already running \(lock held by another-host:4242:abcd\)/) });
      const all = await cli('sync', '--all', '--json');
      expect(all.code).toBe(3);
      expect(JSON.parse(all.stdout)).toEqual([expect.objectContaining({ sync: 'loyalty', status: 'busy' })]);
    } finally {
      await state.releaseLock('loyalty', 'another-host:4242:abcd');
      await state.close();
    }
  });
});

describe('a broken YAML file', () => {
  it('gives the line and column, as text and as JSON', async () => {
    const broken = await createWorld();
    try {
      writeFileSync(broken.configPath, 'version: 1\nmeta:\n  adAccountId: "act_1"\n  accessToken: "x\nsyncs: []\n');
      const text = await runCli(['validate', '-c', broken.configPath], { env: broken.env });
      expect(text.code).toBe(2);
      expect(text.stderr).toMatch(/\(top level\) \(line \d+, column \d+\): YAML syntax error: Missing closing "quote/);

      writeFileSync(broken.configPath, 'version: 1\nsyncs:\n  - name: a\n   source: b\n');
      for (const command of [['sync', '--all'], ['plan'], ['validate'], ['doctor'], ['runs']]) {
        const r = await runCli([...command, '--json', '-c', broken.configPath], { env: broken.env });
        expect(r.code, command.join(' ')).toBe(2);
        const report = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; error: string; problems: Array<{ line: number; column: number; message: string }> };
        expect(report).toMatchObject({ ok: false, exitCode: 2, error: expect.stringContaining('is not a valid audience-sync config') });
        expect(report.problems).toEqual([{ path: '', message: 'YAML syntax error: Sequence item without - indicator', line: 4, column: 1 }]);
      }
    } finally {
      await broken.close();
    }
  });
});

describe('output piped into a reader that stops early', () => {
  it('ends quietly instead of crashing on EPIPE', async () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => JSON.stringify({ key: 'EMAIL', value: `person${i}@example.org` })).join('\n');
    const child = spawn(process.execPath, [CLI, 'normalize'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Like `| head -1`: read one chunk, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    child.stdin.on('error', () => undefined).end(lines);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });
});
