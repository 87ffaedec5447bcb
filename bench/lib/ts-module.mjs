// Loads a TypeScript file of the repo that imports only packages, node: modules and src/ (such as
// test/support/bigquery-server.ts) in plain node: transpiled once into node_modules/.cache, where its
// package imports still resolve, with its imports of src/ pointed at the build (dist/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** @param {string} path repo-relative path of the .ts file @returns {string} file URL of the transpiled module */
export function transpiledModule(path) {
  const source = readFileSync(join(root, path), 'utf8');
  const { outputText: transpiled } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: basename(path) });
  const src = join(root, 'src');
  const outputText = transpiled.replace(/(from\s+)(['"])(\.[^'"]*)\2/g, (whole, from, quote, specifier) => {
    const target = resolve(dirname(join(root, path)), specifier);
    if (!target.startsWith(src + sep)) throw new Error(`${path} imports ${specifier}: only packages, node: modules and src/ can be loaded here`);
    return `${from}${quote}${pathToFileURL(join(root, 'dist', relative(src, target))).href}${quote}`;
  });
  const out = join(root, 'node_modules', '.cache', 'audience-sync-bench', basename(path).replace(/\.ts$/, '.mjs'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, outputText);
  return pathToFileURL(out).href;
}
