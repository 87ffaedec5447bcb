// Runs every bench/*.bench.mjs (or those named on the command line) and writes one markdown report,
// bench/results/latest.md: a summary table where every figure stands next to its floor measured in
// the same run (and the ratio between them), then each bench's own table.
//   node bench/run.mjs [names...] [--readme] [--out=file.md]
// --readme also copies the summary into README.md between <!-- bench:start --> and <!-- bench:end -->.
// Each bench's result is kept in bench/results/latest.json; running only some benches replaces theirs and the
// report is written from all of them, each section saying when it was measured.
// Each bench module exports `run()` returning { title, rows: [{ metric, value, note? }], headlines? };
// `headlines` ([{ figure, measured, floor, ratio, goal? }]) feed the summary. For benches that don't
// return them, HEADLINES below reads them from the bench's rows.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const updateReadme = args.includes('--readme');
const only = args.filter((a) => !a.startsWith('--'));
// --out: write the report elsewhere (a trial at small sizes must not replace the committed one).
const out = args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? join(here, 'results', 'latest.md');
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

// ---- headline figures read from the rows of benches that don't report them ----------------------

const find = (rows, pattern) => rows.find((r) => pattern.test(r.metric));
const number = (text) => Number(String(text ?? '').replace(/,/g, '').match(/[\d.]+/)?.[0] ?? NaN);
const times = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');

/** bench file → rows → headlines. Each names the row it reads, so a renamed metric shows up as "n/a", not as a wrong number. */
const HEADLINES = {
  'engine.bench.mjs': (rows) => {
    const floor = find(rows, /— floor$/);
    const floorSecs = number(floor?.value);
    const out = [];
    const first = find(rows, /^first full sync/);
    if (first) out.push({ figure: first.metric, measured: `${first.value} (${first.note?.split(';')[0]})`, floor: floor && `${floor.value} bare DuckDB scan`, ratio: `${times(number(first.value) / floorSecs)} the scan` });
    for (const [pattern, goal] of [[/^rerun, no change/, '≤ 5×'], [/^rerun, 1% changed/, undefined], [/^rerun after an identity rules change/, 'sends only the changed 1%']]) {
      const row = find(rows, pattern);
      if (row) out.push({ figure: row.metric, measured: row.value, floor: floor && `${floor.value} bare DuckDB scan`, ratio: `${times(number(row.value) / floorSecs)} the scan`, goal });
    }
    for (const row of rows.filter((r) => /^peak RSS/.test(r.metric))) out.push({ figure: row.metric, measured: row.value, floor: '—', ratio: '—', goal: '< 400 MB' });
    return out;
  },
  'delivery.bench.mjs': (rows) => {
    const client = find(rows, /^client upload rows\/s/);
    const ceiling = find(rows, /ceiling\)$/);
    const ratio = find(rows, /^client \/ ceiling/);
    return [{ figure: 'delivery: GraphClient upload', measured: client && `${client.value} rows/s`, floor: ceiling && `${ceiling.value} rows/s emulator raw ingest`, ratio: ratio && `${ratio.value} of the ceiling` }];
  },
};

// ---- run ------------------------------------------------------------------------------------------

const machine = `Node ${process.version} · ${os.cpus().length} cores · ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
const now = () => `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
const sizes = Object.entries(process.env)
  .filter(([k]) => /BENCH/.test(k))
  .map(([k, v]) => `${k}=${v}`)
  .join(' ');
// Results by bench file: { title, rows, seconds, when, machine, sizes } or { failed, when }.
const resultsFile = join(dirname(out), 'latest.json');
const results = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const failures = [];
for (const file of files) {
  process.stderr.write(`bench: ${file} ...\n`);
  const started = performance.now();
  try {
    const mod = await import(join(here, file));
    const result = await mod.run();
    const seconds = (performance.now() - started) / 1000;
    results[file] = { title: result.title, rows: result.rows, headlines: result.headlines, seconds, when: now(), machine, sizes };
    process.stderr.write(`bench: ${file} done in ${seconds.toFixed(1)}s\n`);
  } catch (e) {
    // One broken bench must not cost the others' figures: report it and go on.
    failures.push(file);
    results[file] = { failed: String(e?.stack ?? e).split('\n').slice(0, 3).join(' '), when: now(), machine, sizes };
    process.stderr.write(`bench: ${file} FAILED: ${e?.message ?? e}\n`);
  }
}

const sections = [];
const headlines = [];
for (const file of Object.keys(results).sort()) {
  const r = results[file];
  const stamp = `_${file} · ${r.when} · ${r.machine}${r.sizes ? ` · ${r.sizes}` : ''}${r.seconds ? ` · ${r.seconds.toFixed(0)} s` : ''}_`;
  if (r.failed) {
    sections.push(`## ${file}\n\nFAILED: ${r.failed}\n\n${stamp}`);
    continue;
  }
  const lines = [`## ${r.title}`, '', '| metric | value | note |', '|---|---|---|'];
  for (const row of r.rows) lines.push(`| ${row.metric} | ${row.value} | ${row.note ?? ''} |`);
  lines.push('', stamp);
  sections.push(lines.join('\n'));
  if (files.includes(file)) console.log(lines.join('\n') + '\n');
  headlines.push(...(r.headlines ?? HEADLINES[file]?.(r.rows) ?? []));
}

const summary = [
  '| figure | measured | floor (same run) | ratio | goal |',
  '|---|---|---|---|---|',
  ...headlines.map((h) => `| ${h.figure} | ${h.measured ?? 'n/a'} | ${h.floor ?? 'n/a'} | ${h.ratio ?? 'n/a'} | ${h.goal ?? ''} |`),
].join('\n');
const failed = Object.keys(results).filter((f) => results[f].failed);
const header = [
  '# audience-sync performance report',
  '',
  `Written ${now()}; each section says when and where it was measured.`,
  '',
  '## Summary',
  '',
  headlines.length ? summary : '_no headline figures in this run_',
  ...(failed.length ? ['', `**Failed benches:** ${failed.join(', ')}`] : []),
].join('\n');

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, [header, ...sections].join('\n\n') + '\n');
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
process.stderr.write(`bench: report written to ${out}\n`);

if (updateReadme) {
  const readme = join(here, '..', 'README.md');
  const block = ['<!-- bench:start -->', `_Latest \`npm run bench\` figures (${machine}); every bench's full table, with when it ran, is in [bench/results/latest.md](bench/results/latest.md)._`, '', summary, '<!-- bench:end -->'].join('\n');
  const text = existsSync(readme) ? readFileSync(readme, 'utf8') : '';
  const marked = /<!-- bench:start -->[\s\S]*?<!-- bench:end -->/;
  writeFileSync(readme, marked.test(text) ? text.replace(marked, () => block) : `${text.trimEnd()}\n\n## Performance\n\n${block}\n`);
  process.stderr.write(`bench: README.md performance block updated\n`);
}
if (failures.length) process.exitCode = 1;
