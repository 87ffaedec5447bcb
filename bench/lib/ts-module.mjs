// Loads a self-contained TypeScript file of the repo (one that imports only packages and node:
// modules, such as test/support/bigquery-server.ts) in plain node: transpiled once into
// node_modules/.cache, where its package imports still resolve.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** @param {string} path repo-relative path of the .ts file @returns {string} file URL of the transpiled module */
export function transpiledModule(path) {
  const source = readFileSync(join(root, path), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: basename(path) });
  const out = join(root, 'node_modules', '.cache', 'audience-sync-bench', basename(path).replace(/\.ts$/, '.mjs'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, outputText);
  return pathToFileURL(out).href;
}
