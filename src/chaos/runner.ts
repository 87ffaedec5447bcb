// The chaos runner: one sync in this (child) process, the way `audience-sync sync --json` runs it
// (Workspace.run), but with a Graph client whose retry waits are short and move the emulator's
// clock instead of sleeping, so throttles (minutes long) cost milliseconds. Prints one JSON line
// with the summary and the process's peak RSS.
//   node dist/chaos/runner.js <config> <sync> <emulator-url>
import { DEFAULT_CONNECTION, loadConfig } from '../config/index.js';
import { Workspace } from '../app/workspace.js';
import { SyncBusyError } from '../engine/index.js';
import { GraphClient } from '../meta/index.js';

export interface RunnerOutput {
  summary?: import('../engine/index.js').RunSummary;
  busy?: string;
  error?: string;
  maxRssMb: number;
}

async function main(): Promise<void> {
  const [configPath, sync, emulatorUrl] = process.argv.slice(2);
  if (!configPath || !sync || !emulatorUrl) throw new Error('usage: runner.js <config> <sync> <emulator-url>');
  const config = loadConfig(configPath);
  const connection = config.connections[DEFAULT_CONNECTION];
  const graph = new GraphClient({
    accessToken: connection?.accessToken ?? '',
    graphUrl: connection?.graphUrl,
    retry: { baseDelayMs: 5, maxDelayMs: 40 },
    sleep: async (ms) => {
      await fetch(`${emulatorUrl}/_emulator/clock/advance`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms }) });
      await new Promise((r) => setTimeout(r, Math.min(ms, 20)));
    },
  });
  const ws = new Workspace(config, { graph });
  const out: RunnerOutput = { maxRssMb: 0 };
  try {
    out.summary = await ws.run(sync, { trigger: 'chaos' });
  } catch (e) {
    if (e instanceof SyncBusyError) out.busy = e.message;
    else out.error = e instanceof Error ? e.message : String(e);
  } finally {
    await ws.close();
  }
  out.maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
