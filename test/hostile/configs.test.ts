// Every hostile config of test/fixtures/hostile/configs through the real loader: a ConfigError that
// names the file and, for each problem, the config path at fault and what to do; never another
// exception, never a hang.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { FIXTURES } from './fixtures.js';

interface ConfigCase {
  file: string;
  why: string;
  knownIssue?: string;
  expect: Array<{ path: string; message: string }>;
}

const dir = join(FIXTURES, 'configs');
const { valid, cases } = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as { valid: string; cases: ConfigCase[] };
const env = { META_ACCESS_TOKEN: 'token-for-hostile-config-tests' };

describe('hostile configs', () => {
  it(`${valid}, the config they vary, loads`, () => {
    expect(loadConfig(join(dir, valid), env).syncs).toHaveLength(1);
  });

  for (const c of cases) {
    const test = c.knownIssue ? it.fails : it;
    test(`${c.file}: ${c.why}${c.knownIssue ? ' (known issue)' : ''}`, () => {
      const path = join(dir, c.file);
      const started = performance.now();
      let error: unknown;
      try {
        loadConfig(path, env);
      } catch (e) {
        error = e;
      }
      expect(performance.now() - started).toBeLessThan(3000);
      expect(error).toBeInstanceOf(ConfigError);
      const configError = error as ConfigError;
      expect(configError.message).toContain(c.file);
      for (const want of c.expect) {
        const match = configError.issues.find((i) => i.path === want.path && new RegExp(want.message).test(i.message));
        expect(match, `no issue at "${want.path}" matching /${want.message}/ in:\n${configError.message}`).toBeDefined();
      }
    });
  }
});
