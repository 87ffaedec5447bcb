// Vitest global setup: tests that run the built CLI (dist/) must never run a stale build. Rebuilds
// dist/ once before the run when any source file is newer than what was built from it; after
// `npm run build` (as `npm test` does) this is a quick look at file times, not a second build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Source files (`.ts`, not `.d.ts`) under `dir`, recursively. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The first reason dist/ is out of date, or undefined when every source has a newer output. */
export function staleReason(root: string): string | undefined {
  const mtime = (p: string) => statSync(p).mtimeMs;
  const configs = ['tsconfig.json', 'tsconfig.build.json'].map((f) => join(root, f)).filter((f) => existsSync(f));
  const configTime = Math.max(0, ...configs.map(mtime));
  for (const src of sources(join(root, 'src'))) {
    const out = join(root, 'dist', relative(join(root, 'src'), src)).replace(/\.ts$/, '.js');
    if (!existsSync(out)) return `${relative(root, out)} is missing`;
    const built = mtime(out);
    if (built < mtime(src)) return `${relative(root, src)} changed after the last build`;
    if (built < configTime) return 'the TypeScript config changed after the last build';
  }
  return undefined;
}

/** Builds `root`'s dist/ with tsc when it is stale. Returns whether it built. */
export function ensureBuilt(root: string = ROOT): boolean {
  const reason = staleReason(root);
  if (reason === undefined) return false;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const started = Date.now();
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building dist/ failed (${reason}):\n${r.stdout}${r.stderr}`);
  console.log(`[build-dist] rebuilt dist/ in ${((Date.now() - started) / 1000).toFixed(1)}s: ${reason}`);
  return true;
}

export default function setup(): void {
  ensureBuilt();
}
