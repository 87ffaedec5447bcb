import type { Command } from 'commander';
import type { RunSummary } from '../../engine/index.js';
import { CliError, EXIT } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

/** A sync another run holds the lock of: nothing was done (exit code 3). */
interface BusyResult {
  sync: string;
  status: 'busy';
  error: string;
}

export function register(program: Command): void {
  withConfigOption(
    program
      .command('sync')
      .description('run syncs now: extract the model, diff it against the last run, send the changes to Meta')
      .argument('[syncs...]', 'names of the syncs to run')
      .option('--all', 'run every sync in the config')
      .option('--force', 'skip the safeguards (empty model, identifier coverage below minCoverageRatio, removals above maxRemovalShare)')
      .option('--json', 'print the run summaries as JSON on stdout')
      .option('-q, --quiet', 'no progress output'),
  ).action(async (names: string[], opts: { config: string; all?: boolean; force?: boolean; json?: boolean; quiet?: boolean }) => {
    const [{ SyncBusyError }, { progressReporter }, { formatCoverage, formatSummary }] = await Promise.all([
      import('../../engine/index.js'),
      import('../progress.js'),
      import('../render.js'),
    ]);
    await withWorkspace(opts.config, async (ws) => {
      const selected = opts.all ? ws.config.syncs.map((s) => s.name) : names;
      if (selected.length === 0) throw new CliError(`name the syncs to run or pass --all (syncs in ${opts.config}: ${ws.config.syncs.map((s) => s.name).join(', ') || 'none'})`);
      for (const name of selected) ws.sync(name);
      const summaries: RunSummary[] = [];
      const results: Array<RunSummary | BusyResult> = [];
      for (const name of selected) {
        const progress = progressReporter(name, { quiet: opts.quiet === true || opts.json === true });
        try {
          const summary = await ws.run(name, { ...(opts.force ? { force: true } : {}), onEvent: progress.onEvent });
          progress.stop();
          summaries.push(summary);
          results.push(summary);
          if (!opts.json) console.log([formatSummary(summary), ...formatCoverage(summary.counts)].join('\n'));
        } catch (e) {
          progress.stop();
          if (!(e instanceof SyncBusyError)) throw e;
          results.push({ sync: name, status: 'busy', error: e.message });
          console.error(`${name}: ${e.message}`);
        }
      }
      // One named sync prints one object; --all or several names print an array, whatever the count.
      if (opts.json) console.log(JSON.stringify(!opts.all && names.length === 1 ? results[0] : results, null, 2));
      if (summaries.some((s) => s.status !== 'success')) process.exitCode = EXIT.failed;
      else if (results.length > summaries.length) process.exitCode = EXIT.busy;
    });
  });
}
