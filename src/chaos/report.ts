import type { ChaosReport } from './run.js';

/** The chaos report as text: what ran, what broke on purpose, what was checked, and how to replay. */
export function formatChaosReport(r: ChaosReport): string {
  const lines: string[] = [];
  const ok = r.violations.length === 0;
  lines.push(`chaos ${ok ? 'PASSED' : 'FAILED'} · seed ${r.seed} · ${r.steps} steps in ${r.seconds.toFixed(0)} s · ${r.changeDetection} change detection`);
  const runs = r.runs;
  lines.push(
    `runs: ${runs.total} (${runs.viaCli} through the CLI) · success ${runs.success} · partial ${runs.partial} · failed ${runs.failed} · killed ${runs.killed}` +
      (runs.busy + runs.hung + runs.crashed > 0 ? ` · busy ${runs.busy} · hung ${runs.hung} · crashed ${runs.crashed}` : ''),
  );
  lines.push(`faults injected: ${Object.entries(r.faults).map(([k, n]) => `${k} ${n}`).join(' · ')}`);
  lines.push(`SIGKILLs: ${r.kills} · token renewals: ${r.tokenRenewals} · peak sync RSS: ${r.peakRssMb.toFixed(0)} MB`);
  lines.push('invariant checks:');
  for (const [name, c] of Object.entries(r.checks)) lines.push(`  ${name.padEnd(16)} ${c.passed} passed${c.failed ? `, ${c.failed} FAILED` : ''}`);
  for (const s of r.syncs) lines.push(`sync ${s.name} (${s.warehouse}): ${s.people} people in the model, ${s.members} audience members, ${s.settled ? 'converged' : 'NOT converged'}`);
  if (!ok) {
    lines.push('violations:');
    for (const v of r.violations.slice(0, 20)) lines.push(`  step ${v.step} · ${v.sync} · ${v.check}: ${v.detail}`);
    if (r.violations.length > 20) lines.push(`  … ${r.violations.length - 20} more`);
    lines.push(`replay: npm run chaos -- --seed ${r.seed} --steps ${r.steps}${r.changeDetection === 'warehouse' ? ' --warehouse' : ''}`);
  }
  if (r.workDir) lines.push(`work folder kept: ${r.workDir}`);
  return lines.join('\n');
}
