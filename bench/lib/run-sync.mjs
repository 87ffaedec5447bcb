// Runs one sync in this (child) process and prints its summary with the process's peak RSS, so a
// bench measures the sync alone: `node bench/lib/run-sync.mjs <config> <sync>`.
import { Workspace } from '../../dist/app/workspace.js';

const [configPath, sync] = process.argv.slice(2);
const ws = await Workspace.open(configPath);
const started = performance.now();
try {
  const summary = await ws.run(sync, { force: true, trigger: 'bench' });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssMb: process.resourceUsage().maxRSS / 1024, summary }) + '\n');
} finally {
  await ws.close();
}
