/** `audience-sync demo`: the whole job against the in-process emulator, no account and no network needed. */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_DEMO_DIR, DEFAULT_DEMO_ROWS, runDemo, type DemoReport } from '../../demo/index.js';
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
    ...formatCoverage(first.counts),
    '',
    `data changed: ${n(r.changes.added)} customers added, ${n(r.changes.updated)} updated (new email), ${n(r.changes.deleted)} deleted`,
    `run 2 — only the changes are sent`,
    formatSummary(second),
    '',
    formatAudience(r.audience, r.members),
    '',
    `done in ${r.seconds.total.toFixed(1)}s (warehouse ${r.seconds.warehouse.toFixed(1)}s, run 1 ${r.seconds.firstRun.toFixed(1)}s, run 2 ${r.seconds.secondRun.toFixed(1)}s)`,
    r.kept ? `files kept in ${r.dir} (the emulator the config points at has stopped)` : `files removed from ${r.dir} (pass --keep to keep them)`,
    'next: `audience-sync init` writes a config for your own warehouse and ad account',
  ].join('\n');
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
