/** `audience-sync retry <sync>`: puts the records that used up their attempts back in the queue. */
import type { Command } from 'commander';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('retry')
      .description('put the records that used up their attempts ("given up") back in the queue: the next run sends them again')
      .argument('<sync>', 'name of the sync')
      .option('--json', 'print the result as JSON on stdout'),
  ).action(async (syncName: string, opts: { config: string; json?: boolean }) => {
    await withWorkspace(opts.config, async (ws) => {
      const before = await ws.givenUp(syncName);
      const requeued = await ws.retryGivenUp(syncName);
      if (opts.json) {
        console.log(JSON.stringify({ sync: syncName, requeued, reasons: before.reasons }, null, 2));
        return;
      }
      if (requeued === 0) {
        console.log(`${syncName}: no record is given up; nothing to retry`);
        return;
      }
      console.log(
        [
          `${syncName}: ${requeued.toLocaleString('en-US')} record${requeued === 1 ? '' : 's'} put back in the queue with ${before.maxAttempts} new attempt${before.maxAttempts === 1 ? '' : 's'}; the next run sends ${requeued === 1 ? 'it' : 'them'} (\`audience-sync sync ${syncName}\`)`,
          `  they had failed with:`,
          ...before.reasons.slice(0, 5).map((r) => `    ${r.count.toLocaleString('en-US')} × ${r.reason}`),
        ].join('\n'),
      );
    });
  });
}
