// `audience-sync serve` as a child process (the build): runs syncs through the JSON API one after
// another and gathers what a person could see of each run: the API's answer, the dashboard's run
// page, and the service log.
import { spawn } from 'node:child_process';
import { CLI } from './child.js';

export interface ServedRun {
  sync: string;
  /** The run's status once finished (undefined: it did not finish in time or never started). */
  status?: string;
  /** `GET /api/runs/:id` and `GET /runs/:id`, as served. */
  api: string;
  page: string;
}

export async function serveRuns(req: { configPath: string; env: NodeJS.ProcessEnv; syncs: readonly string[]; timeoutMs: number }): Promise<{ runs: ServedRun[]; log: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '-c', req.configPath, '--port', '0'], { env: { ...req.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + req.timeoutMs;
  const pause = () => new Promise((r) => setTimeout(r, 50));
  const runs: ServedRun[] = [];
  try {
    let url: string | undefined;
    while (!(url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log)?.[1])) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${log.trim().split('\n').at(-1) ?? ''}`);
      await pause();
    }
    for (const sync of req.syncs) {
      const started = (await (await fetch(`${url}/api/syncs/${encodeURIComponent(sync)}/runs`, { method: 'POST' })).json()) as { runId?: number | null };
      const run: ServedRun = { sync, api: '', page: '' };
      runs.push(run);
      if (typeof started.runId !== 'number') continue;
      for (;;) {
        run.api = await (await fetch(`${url}/api/runs/${started.runId}`)).text();
        const status = (JSON.parse(run.api) as { status?: string }).status;
        if (status !== 'running') {
          run.status = status;
          break;
        }
        if (Date.now() > deadline) break;
        await pause();
      }
      run.page = await (await fetch(`${url}/runs/${started.runId}`)).text();
    }
    // A run's log line comes once it has finished recording.
    const finished = runs.filter((r) => r.status !== undefined).length;
    while (log.split('"event":"run_finished"').length - 1 < finished && Date.now() < deadline) await pause();
    child.kill('SIGTERM');
    await exited;
  } finally {
    child.kill('SIGKILL');
  }
  return { runs, log };
}
