// The Graph API emulator in a child process, so a bench's client and the emulator don't share a thread.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const EMULATOR_MODULE = new URL('../../dist/emulator/index.js', import.meta.url).href;

/**
 * @param {{ flags?: Record<string, unknown> }} [options] emulator flags, e.g. `{ uploadLatencyMs: 2000 }`
 * @returns {Promise<{ url: string, stop(): Promise<void> }>}
 */
export async function startEmulatorChild(options = {}) {
  const code = `
    const { startEmulator } = await import(${JSON.stringify(EMULATOR_MODULE)});
    const emu = await startEmulator({ port: 0, rateLimit: { budgetPerHour: 1e9 }, flags: ${JSON.stringify(options.flags ?? {})} });
    process.stdout.write(JSON.stringify({ url: emu.url }) + '\\n');
    process.stdin.on('end', async () => { await emu.close(); process.exit(0); });
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['--max-old-space-size=12288', '--input-type=module', '-e', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  const firstLine = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`emulator child exited with ${c} before printing its URL`)));
  });
  const { url } = JSON.parse(firstLine);
  const stop = () =>
    new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin.end();
    });
  return { url, stop };
}
