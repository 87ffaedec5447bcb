import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('validate')
      .description('check the config, open every warehouse and check each model against its mapping (no rows read, nothing sent)')
      .option('--json', 'print the problems as JSON'),
  ).action(async (opts: { config: string; json?: boolean }) => {
    await withWorkspace(opts.config, async (ws) => {
      const problems: Array<{ path: string; message: string }> = [];
      for (const sync of ws.config.syncs) problems.push(...(await ws.checkSync(sync.name)));
      if (opts.json) console.log(JSON.stringify({ ok: problems.length === 0, problems }, null, 2));
      else if (problems.length === 0) console.log(`${opts.config}: ok (${ws.config.syncs.length} sync${ws.config.syncs.length === 1 ? '' : 's'})`);
      else console.error(`${opts.config}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
      if (problems.length > 0) process.exitCode = EXIT.usage;
    });
  });
}
