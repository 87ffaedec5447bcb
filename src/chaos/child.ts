// Runs one sync as a child process (the chaos runner or the real CLI), kills it with SIGKILL when
// its kill plan says so, and gathers what it printed and how much memory it used.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../cli/exit-codes.js';
import type { RunSummary } from '../engine/index.js';
import type { RunnerOutput } from './runner.js';
import type { KillPlan, Via } from './schedule.js';

// Children always run the build: tests import these sources through Vitest, the script the build.
const HERE = new URL('.', import.meta.url);
const BUILT = HERE.pathname.endsWith('/src/chaos/') ? new URL('../../dist/chaos/', HERE) : HERE;
const RUNNER = fileURLToPath(new URL('runner.js', BUILT));
const RSS_PROBE = new URL('rss-probe.js', BUILT).href;
/** The built CLI; the serve check (serve.ts) runs it too. */
export const CLI = fileURLToPath(new URL('../cli/main.js', BUILT));

export interface ChildRequest {
  via: Via;
  configPath: string;
  sync: string;
  emulatorUrl: string;
  env: NodeJS.ProcessEnv;
  kill: KillPlan;
  /** How many `/users` requests the emulator has seen since the child started (for users-request kills). */
  usersRequests(): number;
  /** A child still running after this long is killed and reported as hung. */
  timeoutMs: number;
}

export interface ChildOutcome {
  killed: boolean;
  hung: boolean;
  exitCode: number | null;
  summary?: RunSummary;
  /** The run could not start: another run held the lock. */
  busy?: string;
  /** The process failed outside a run summary (config, crash). */
  error?: string;
  maxRssMb?: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export async function runSyncChild(req: ChildRequest): Promise<ChildOutcome> {
  if (!existsSync(RUNNER)) throw new Error(`${RUNNER} is missing: build first (npm run build)`);
  const probeDir = mkdtempSync(join(tmpdir(), 'audience-sync-chaos-rss-'));
  const rssFile = join(probeDir, 'rss');
  const [args, env] =
    req.via === 'runner'
      ? [[RUNNER, req.configPath, req.sync, req.emulatorUrl], req.env]
      : [['--import', RSS_PROBE, CLI, 'sync', req.sync, '-c', req.configPath, '--json'], { ...req.env, CHAOS_RSS_FILE: rssFile }];
  const started = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );

  let killed = false;
  let hung = false;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL');
  };
  const timers: NodeJS.Timeout[] = [];
  if (req.kill.kind === 'timer') timers.push(setTimeout(kill, req.kill.afterMs));
  if (req.kill.kind === 'users-request') {
    const n = req.kill.n;
    timers.push(setInterval(() => req.usersRequests() >= n && kill(), 5));
  }
  timers.push(
    setTimeout(() => {
      hung = true;
      kill();
    }, req.timeoutMs),
  );
  const { code } = await exited;
  for (const t of timers) clearTimeout(t);

  const outcome: ChildOutcome = { killed: killed && !hung, hung, exitCode: code, stdout, stderr, seconds: (performance.now() - started) / 1000 };
  try {
    if (!killed) parseOutput(req.via, stdout, stderr, outcome);
    if (req.via === 'cli') {
      const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
      outcome.maxRssMb = Number(lines.at(-1));
    }
  } catch {
    // A killed or crashed process may have printed nothing; the checks report a missing summary.
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
  return outcome;
}

function parseOutput(via: Via, stdout: string, stderr: string, outcome: ChildOutcome): void {
  if (via === 'runner') {
    const line = stdout.trim().split('\n').at(-1) ?? '';
    const out = JSON.parse(line) as RunnerOutput;
    outcome.maxRssMb = out.maxRssMb;
    if (out.summary) outcome.summary = out.summary;
    if (out.busy) outcome.busy = out.busy;
    if (out.error) outcome.error = out.error;
    return;
  }
  // `sync --json` prints the summary as pretty JSON; a busy sync prints `[]` and exits 3.
  const text = stdout.trim();
  if (text.startsWith('{')) outcome.summary = JSON.parse(text) as RunSummary;
  else if (outcome.exitCode === EXIT.busy) outcome.busy = stderr.trim();
  else outcome.error = `the CLI printed no summary (exit ${outcome.exitCode}): ${stderr.trim().split('\n').at(-1) ?? ''}`;
}
