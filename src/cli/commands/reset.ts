import type { Command } from 'commander';
import { CliError } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('reset')
      .description("forget a sync's record state (with warehouse change detection, its snapshot table too) so the next run treats every row as new (run history is kept; the audience is not touched)")
      .argument('<sync>', 'the sync to reset')
      .option('--forget-audience', 'also forget the audience a previous run created: the next run creates a new one')
      .option('-y, --yes', 'do not ask for confirmation'),
  ).action(async (sync: string, opts: { config: string; forgetAudience?: boolean; yes?: boolean }) => {
    if (!opts.yes) throw new CliError(`reset forgets what "${sync}" has sent; the next run re-sends everything and cannot remove records that left the model before it. Rerun with --yes to confirm.`);
    await withWorkspace(opts.config, async (ws) => {
      await ws.resetSync(sync, { ...(opts.forgetAudience ? { forgetAudience: true } : {}) });
      console.log(`${sync}: state reset; the next run sends every record again`);
    });
  });
}
