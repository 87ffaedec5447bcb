/** `audience-sync alerts test`: a sample alert to every destination of the config's `alerts:` section. */
import type { Command } from 'commander';
import { CliError, EXIT } from '../exit-codes.js';
import { withConfigOption } from '../workspace.js';

/** An interactive check: two tries each, so a receiver that is down is reported within seconds. */
const TEST_DELIVERY = { attempts: 2, backoffMs: 1_000, timeoutMs: 10_000 };

export function register(program: Command): void {
  const alerts = program.command('alerts').description("the alert destinations of the config's alerts: section");
  withConfigOption(
    alerts
      .command('test')
      .description('send a sample alert (a made-up sync, no personal data) to every destination, and say whether each got it; exit 1 if any did not')
      .option('--json', 'print the outcome per destination as JSON on stdout'),
  ).action(async (opts: { config: string; json?: boolean }) => {
    // Only the config is read: no state store, warehouse or Meta call.
    const [{ loadConfig }, { describeDestination, sendTestAlerts }] = await Promise.all([import('../../config/index.js'), import('../../alerts/index.js')]);
    const config = loadConfig(opts.config);
    if ((config.alerts?.length ?? 0) === 0) {
      throw new CliError(`${config.configPath} has no alert destination: add an alerts: section (see docs/alerts.md)`, EXIT.usage);
    }
    const results = await sendTestAlerts(config, TEST_DELIVERY);
    const failed = results.filter((r) => !r.result.delivered);
    if (opts.json) {
      const destinations = results.map(({ destination: d, result: r }) => ({
        name: d.name,
        type: d.type,
        origin: new URL(d.url).origin,
        delivered: r.delivered,
        attempts: r.attempts,
        error: r.error ?? null,
      }));
      console.log(JSON.stringify({ ok: failed.length === 0, destinations }, null, 2));
    } else {
      for (const { destination, result } of results) {
        console.log(`${describeDestination(destination)}: ${result.delivered ? 'delivered' : `failed: ${result.error ?? 'not delivered'}`}`);
      }
      if (failed.length > 0) console.log(`${failed.length} of ${results.length} destination${results.length === 1 ? '' : 's'} did not get the sample alert`);
    }
    if (failed.length > 0) process.exitCode = EXIT.failed;
  });
}
