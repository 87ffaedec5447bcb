/** `audience-sync doctor`: checks token, permission, ad account, ToS, API version and every sync. */
import type { Command } from 'commander';
import { runDoctor, type Check, type DoctorReport } from '../../doctor/index.js';
import { EXIT } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('doctor')
      .description("check the setup: token, ads_management, ad account, audience terms, API version, and each sync's audience, schema and model")
      .option('--json', 'print the checks as JSON on stdout'),
  ).action(async (opts: { config: string; json?: boolean }) => {
    await withWorkspace(opts.config, async (ws) => {
      const report = await runDoctor(ws);
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report, ws.config.configPath));
      if (!report.ok) process.exitCode = EXIT.failed;
    });
  });
}

const MARK: Record<Check['status'], string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

export function formatDoctorReport(report: DoctorReport, configPath: string): string {
  const lines = [`audience-sync doctor: ${configPath}`];
  for (const c of report.checks) {
    lines.push(`${MARK[c.status]} ${c.subject}: ${c.message}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) lines.push(`    fix: ${c.fix}`);
  }
  const count = (s: Check['status']) => report.checks.filter((c) => c.status === s).length;
  lines.push(`${count('ok')} ok, ${count('warn')} warning(s), ${count('fail')} failed${count('skip') ? `, ${count('skip')} skipped` : ''}`);
  return lines.join('\n');
}
