// CI's guarantees: dist/ is rebuilt before tests that run it, and a missing browser fails the run
// instead of skipping the dashboard's browser tests.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, staleReason } from '../support/build-dist.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('vitest global setup: dist/ is built from the current sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src', 'cli', 'main.ts');
  const out = join(dir, 'dist', 'cli', 'main.js');
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  writeFileSync(
    join(dir, 'tsconfig.build.json'),
    JSON.stringify({ compilerOptions: { rootDir: 'src', outDir: 'dist', module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [], skipLibCheck: true }, include: ['src'] }),
  );

  it('builds a missing dist/, leaves a fresh one alone, rebuilds after a source edit', () => {
    writeFileSync(src, 'export const version: string = "one";\n');
    expect(staleReason(dir)).toBe('dist/cli/main.js is missing');
    expect(ensureBuilt(dir)).toBe(true);
    expect(readFileSync(out, 'utf8')).toContain('"one"');
    expect(staleReason(dir)).toBeUndefined();
    expect(ensureBuilt(dir)).toBe(false);

    writeFileSync(src, 'export const version: string = "two";\n');
    const later = new Date(Date.now() + 5_000);
    utimesSync(src, later, later);
    expect(staleReason(dir)).toBe('src/cli/main.ts changed after the last build');
    expect(ensureBuilt(dir)).toBe(true);
    expect(readFileSync(out, 'utf8')).toContain('"two"');
  });

  it('says why when the build fails', () => {
    writeFileSync(src, 'export const version: number = "three";\n');
    const later = new Date(Date.now() + 10_000);
    utimesSync(src, later, later);
    expect(() => ensureBuilt(dir)).toThrow(/building dist\/ failed \(src\/cli\/main\.ts changed after the last build\)[\s\S]*TS2322/);
  });

  it('is the global setup of the test run', () => {
    expect(readFileSync(join(ROOT, 'vitest.config.ts'), 'utf8')).toMatch(/globalSetup: \['test\/support\/build-dist\.ts'\]/);
  });
});

function vitest(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', file], { cwd: ROOT, env: { ...env, NO_COLOR: '1', CI: '1' } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('browser tests without chromium', () => {
  const missing = { ...process.env, AUDIENCE_SYNC_CHROMIUM: '/nonexistent/chromium' };

  it('fail with a clear message, never skip', async () => {
    const r = await vitest('test/server/dashboard.browser.test.ts', missing);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('chromium is missing at /nonexistent/chromium');
    expect(r.output).toMatch(/Test Files +1 failed/);
  });
});
