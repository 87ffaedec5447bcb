import type { Command } from 'commander';
import { wholeNumber } from '../options.js';
import type { PlannedChanges } from '../../engine/index.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

/** Error samples shown per run; `locate` prints the keys of all of them. */
const SAMPLES_SHOWN = 3;

export function register(program: Command): void {
  withConfigOption(
    program
      .command('runs')
      .description('run history: status, counts, time per phase and errors of past runs, newest first, and the records given up')
      .argument('[sync]', 'only this sync')
      .option('-n, --limit <n>', 'how many runs', wholeNumber(1, 10_000), 20)
      .option('--json', 'print as JSON'),
  ).action(async (sync: string | undefined, opts: { config: string; limit: number; json?: boolean }) => {
    const [{ lowMatchSentence, matchHealth, readTimings, runMatch }, { formatGivenUp, formatMatch, formatPlanned, formatSample, formatTimings }] = await Promise.all([import('../../engine/index.js'), import('../render.js')]);
    await withWorkspace(opts.config, async (ws) => {
      if (sync) ws.sync(sync);
      const runs = await (await ws.state()).listRuns({ ...(sync ? { sync } : {}), limit: opts.limit });
      if (opts.json) {
        // `match`: Meta's counts (received, matched, invalid, rate) once it processed the run's uploads, else null.
        console.log(JSON.stringify(runs.map((r) => ({ ...r, match: runMatch(r) })), null, 2));
        return;
      }
      if (runs.length === 0) console.log('no runs yet');
      for (const r of runs) {
        const c = r.counts as Record<string, number> & { planned?: PlannedChanges };
        const secs = r.finishedAt ? ((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000).toFixed(1) + 's' : 'running';
        console.log(
          `#${r.id} ${r.sync} ${r.status.padEnd(7)} ${r.startedAt.toISOString()} ${secs} (${r.trigger}) ` +
            `extracted ${c.extracted ?? 0} · added ${c.added ?? 0} · updated ${c.updated ?? 0} · deleted ${c.deleted ?? 0} · rejected ${c.rejected ?? 0} · delivered ${c.delivered ?? 0} · failed ${c.failed ?? 0}`,
        );
        if (c.planned) console.log(`  ${formatPlanned(c.planned)}`);
        if (r.error) console.log(`    error: ${r.error}`);
        const timings = readTimings(r.counts);
        if (timings) console.log(`    ${formatTimings(timings)}`);
        const match = formatMatch(r.counts, runMatch(r));
        if (match) console.log(`    ${match}`);
        for (const s of r.errorSamples.slice(0, SAMPLES_SHOWN)) {
          console.log(`    sample: ${formatSample({ pkHash: s.pk, reason: s.reason, ...(s.identifiers?.EXTERN_ID ? { externId: s.identifiers.EXTERN_ID } : {}) })}`);
        }
        if (r.errorSamples.length > 0) {
          const more = r.errorSamples.length > SAMPLES_SHOWN ? `${r.errorSamples.length - SAMPLES_SHOWN} more samples; ` : '';
          console.log(`    ${more}\`audience-sync locate ${r.sync} --run ${r.id}\` prints the primary keys behind the samples on this terminal`);
        }
      }
      // What runs no longer send: shown under the history so it is not mistaken for a past problem.
      for (const name of sync ? [sync] : ws.config.syncs.map((s) => s.name)) {
        const health = matchHealth(runs.filter((r) => r.sync === name));
        const low = lowMatchSentence(health);
        if (low) {
          console.log(`${name}: ${low}. Likely causes:`);
          for (const cause of health.causes) console.log(`  - ${cause}`);
        }
        const lines = formatGivenUp(name, await ws.givenUp(name));
        if (lines.length > 0) console.log([`${name}:`, ...lines].join('\n'));
      }
    });
  });
}
