/** `audience-sync demo`: the whole job against the in-process emulator, no account and no network needed. */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_DEMO_DIR, DEFAULT_DEMO_ROWS, runDemo, type DemoReport, type SecondRunStory } from '../../demo/index.js';
import type { AudienceInfo } from '../../meta/index.js';
import { progressReporter } from '../progress.js';
import { formatCoverage, formatSummary } from '../render.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('see the whole job work: a synthetic DuckDB warehouse, a local Graph API emulator, two mirror syncs around a data change')
    .option('--rows <n>', 'customers in the synthetic warehouse', parseRows, DEFAULT_DEMO_ROWS)
    .option('--dir <folder>', 'folder for the warehouse, config and state', DEFAULT_DEMO_DIR)
    .option('--keep', 'keep the files afterwards (the config, warehouse and state)')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: { rows: number; dir: string; keep?: boolean; json?: boolean }) => {
      const quiet = opts.json === true;
      const report = await runDemo({
        rows: opts.rows,
        dir: opts.dir,
        keep: opts.keep === true,
        ...(quiet ? {} : { log: (line: string) => process.stderr.write(`demo: ${line}\n`), progress: (label: string) => progressReporter(label) }),
      });
      console.log(quiet ? JSON.stringify(report, null, 2) : formatDemoReport(report));
    });
}

function parseRows(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 100 || n > 50_000_000) throw new InvalidArgumentError('expected a whole number from 100 to 50000000');
  return n;
}

const n = (x: number) => x.toLocaleString('en-US');

export function formatDemoReport(r: DemoReport): string {
  const [first, second] = r.runs;
  return [
    '',
    `run 1 — first sync of ${n(r.rows)} customers`,
    formatSummary(first),
    first.counts.rejected === 0
      ? `  in words: the audience was empty, so every one of the ${people(first.counts.extracted)} was sent as an add (${n(first.counts.delivered)} rows)`
      : `  in words: the audience was empty: ${n(first.counts.added)} of the ${people(first.counts.extracted)} were sent as adds, ${n(first.counts.rejected)} rejected`,
    ...formatCoverage(first.counts),
    '',
    `data changed: ${n(r.changes.added)} customers added, ${n(r.changes.updated)} updated (new email), ${n(r.changes.deleted)} deleted`,
    `run 2 — only the changes are sent`,
    formatSummary(second),
    ...explainInWords(r.secondRun),
    '',
    formatAudience(r.audience, r.members),
    '',
    `done in ${r.seconds.total.toFixed(1)}s (warehouse ${r.seconds.warehouse.toFixed(1)}s, run 1 ${r.seconds.firstRun.toFixed(1)}s, data change ${r.seconds.change.toFixed(1)}s, run 2 ${r.seconds.secondRun.toFixed(1)}s)`,
    r.kept ? `files kept in ${r.dir} (the emulator the config points at has stopped)` : `files removed from ${r.dir} (pass --keep to keep them)`,
    'next: `audience-sync init` writes a config for your own warehouse and ad account',
  ].join('\n');
}

const people = (x: number) => `${n(x)} customer${x === 1 ? '' : 's'}`;

/** Run 2's counts said in words, each total with the parts it is made of. */
export function explainInWords(s: SecondRunStory): string[] {
  const { model, removals, adds } = s;
  const noOldEmail = model.changed - removals.identifierChanged;
  const removalParts = [`${people(removals.departed)} who left`];
  if (removals.identifierChanged > 0) removalParts.push(`${people(removals.identifierChanged)} whose old email is taken out before the new one goes in`);
  const addParts = [`${n(adds.joined)} new customer${adds.joined === 1 ? '' : 's'}`, `${people(adds.changed)} with a new email`];
  if (adds.retried > 0) addParts.push(`${people(adds.retried)} retried after a failed send`);
  return [
    '  in words:',
    `    the model now has ${people(model.now)} = ${n(model.before)} before − ${n(model.left)} who left + ${n(model.joined)} new;` +
      ` of them, ${n(model.unchanged)} are unchanged (nothing sent), ${n(model.joined)} new and ${n(model.changed)} with a new email`,
    `    sent to Meta: ${n(s.sent)} rows = ${n(removals.total)} removals + ${n(adds.total)} adds`,
    `    removals: ${n(removals.total)} = ${removalParts.join(' + ')}` +
      (noOldEmail > 0 ? ` (the other ${n(noOldEmail)} with a new email had no usable email before: nothing to take out)` : ''),
    `    adds: ${n(adds.total)} = ${addParts.join(' + ')}`,
  ];
}

function formatAudience(a: AudienceInfo, members: number): string {
  const lower = a.approximateCountLowerBound;
  const upper = a.approximateCountUpperBound;
  const size = lower === undefined || lower < 0 ? 'not computed yet' : lower === upper || upper === undefined ? `~${n(lower)} people` : `${n(lower)}–${n(upper)} people`;
  return [
    `audience ${a.id}${a.name ? ` "${a.name}"` : ''}: ${size} (${n(members)} members in the emulator)`,
    `  operation status ${a.operationStatus ? `${a.operationStatus.code} ${a.operationStatus.description}` : 'unknown'}`,
    `  delivery status  ${a.deliveryStatus ? `${a.deliveryStatus.code} ${a.deliveryStatus.description}` : 'unknown'}`,
  ].join('\n');
}
