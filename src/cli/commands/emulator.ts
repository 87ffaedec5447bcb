/** `audience-sync emulator`: runs the Graph API emulator until SIGINT/SIGTERM. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type FaultKind } from '../../emulator/index.js';

const FAULT_KINDS: readonly FaultKind[] = ['transient', 'unknown', 'throttle', 'html5xx', 'drop', 'latency', 'token_expiry'];

interface EmulatorCommandOptions {
  port: number;
  host: string;
  dataFile?: string;
  faultRate: number;
  faults: FaultKind[];
  faultSeed?: number;
  appSecret?: string;
}

export function register(program: Command): void {
  program
    .command('emulator')
    .description('Run a local Meta Graph API emulator (custom audiences) for tests, demos and dry runs.')
    .option('--port <port>', 'port to listen on (0 = random)', parsePort, 4010)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--data-file <path>', 'load the store from this JSON file and save it back on exit')
    .option('--fault-rate <rate>', 'share of Graph requests that get an injected fault (0..1)', parseRate, 0)
    .option('--faults <kinds>', `comma-separated fault kinds: ${FAULT_KINDS.join(',')}`, parseKinds, ['transient'] as FaultKind[])
    .option('--fault-seed <n>', 'seed of the fault RNG (reproducible runs)', parseInteger)
    .addOption(new Option('--app-secret <secret>', 'require appsecret_proof computed with this app secret').env('EMULATOR_APP_SECRET'))
    .action(async (opts: EmulatorCommandOptions) => {
      const emulator = await startEmulator({
        port: opts.port,
        host: opts.host,
        ...(opts.dataFile === undefined ? {} : { dataFile: opts.dataFile }),
        ...(opts.appSecret === undefined ? {} : { appSecret: opts.appSecret }),
        ...(opts.faultRate > 0 ? { faults: { rate: opts.faultRate, kinds: opts.faults, ...(opts.faultSeed === undefined ? {} : { seed: opts.faultSeed }) } } : {}),
      });
      console.log(`Graph API emulator listening on ${emulator.url} (use base URL ${emulator.url}, API version v25.0)`);
      console.log(`  access token: ${DEFAULT_TOKEN}`);
      console.log(`  ad account:   act_${DEFAULT_AD_ACCOUNT} (Custom Audience ToS accepted)`);
      if (opts.appSecret !== undefined) console.log('  appsecret_proof is required');
      if (opts.faultRate > 0) console.log(`  faults: ${opts.faults.join(',')} on ${(opts.faultRate * 100).toFixed(1)}% of requests`);
      if (opts.dataFile !== undefined) console.log(`  data file: ${opts.dataFile} (saved on exit)`);
      console.log(`  control: ${emulator.url}/_emulator/... (see src/emulator/README.md); Ctrl-C to stop`);

      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          console.log(`\n${signal}: stopping the emulator${opts.dataFile === undefined ? '' : ' and saving the data file'}...`);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await emulator.close();
      console.log('Emulator stopped.');
    });
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}

function parseRate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number from 0 to 1, e.g. 0.05');
  return n;
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
}

function parseKinds(value: string): FaultKind[] {
  const kinds = value.split(',').map((k) => k.trim()).filter((k) => k !== '');
  const bad = kinds.find((k) => !(FAULT_KINDS as readonly string[]).includes(k));
  if (bad !== undefined || kinds.length === 0) {
    throw new InvalidArgumentError(`unknown fault kind '${bad ?? ''}'; use any of ${FAULT_KINDS.join(', ')}`);
  }
  return kinds as FaultKind[];
}
