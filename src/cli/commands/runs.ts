import type { Command } from 'commander';
import type { PlannedChanges } from '../../engine/index.js';
import { formatPlanned } from '../render.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('runs')
      .description('run history: status, counts and errors of past runs, newest first')
      .argument('[sync]', 'only this sync')
      .option('-n, --limit <n>', 'how many runs', '20')
      .option('--json', 'print as JSON'),
  ).action(async (sync: string | undefined, opts: { config: string; limit: string; json?: boolean }) => {
    await withWorkspace(opts.config, async (ws) => {
      if (sync) ws.sync(sync);
      const runs = await (await ws.state()).listRuns({ ...(sync ? { sync } : {}), limit: Math.max(1, Number(opts.limit) || 20) });
      if (opts.json) {
        console.log(JSON.stringify(runs, null, 2));
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
      }
    });
  });
}
