import type { Command } from 'commander';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('plan')
      .description('dry run: what a sync would add, update and remove, identifier coverage per key, and a sample request (nothing is sent)')
      .argument('[syncs...]', 'syncs to plan (default: all)')
      .option('--json', 'print the plans as JSON'),
  ).action(async (names: string[], opts: { config: string; json?: boolean }) => {
    const { formatPlan } = await import('../render.js');
    await withWorkspace(opts.config, async (ws) => {
      const selected = names.length > 0 ? names : ws.config.syncs.map((s) => s.name);
      const plans = [];
      for (const name of selected) {
        const plan = await ws.plan(name);
        plans.push(plan);
        if (!opts.json) console.log(formatPlan(plan) + '\n');
      }
      if (opts.json) console.log(JSON.stringify(plans, null, 2));
    });
  });
}
