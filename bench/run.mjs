// Runs every bench/*.bench.mjs in turn and writes one markdown report (bench/results/latest.md).
// Each bench module exports `run()` returning { title, rows: [{ metric, value, note? }] }.
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

const sections = [];
for (const file of files) {
  const mod = await import(join(here, file));
  process.stderr.write(`bench: ${file} ...\n`);
  const started = performance.now();
  const result = await mod.run();
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`bench: ${file} done in ${secs}s\n`);
  const lines = [`## ${result.title}`, '', '| metric | value | note |', '|---|---|---|'];
  for (const r of result.rows) lines.push(`| ${r.metric} | ${r.value} | ${r.note ?? ''} |`);
  sections.push(lines.join('\n'));
  console.log(lines.join('\n') + '\n');
}

const header = `# audience-sync performance report\n\n${new Date().toISOString()} · Node ${process.version} · ${os.cpus().length} cores · ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB\n`;
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'latest.md'), [header, ...sections].join('\n\n') + '\n');
