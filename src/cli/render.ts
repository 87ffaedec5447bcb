// Human-readable output of runs and plans. Only counts, hashes and EXTERN_IDs are ever shown.
import type { RunCounts, RunSummary, SyncPlan } from '../engine/index.js';

const n = (x: number) => x.toLocaleString('en-US');

export function formatCounts(c: RunCounts): string {
  const parts = [
    `extracted ${n(c.extracted)}`,
    `added ${n(c.added)}`,
    `updated ${n(c.updated)}`,
    `deleted ${n(c.deleted)}`,
    `unchanged ${n(c.unchanged)}`,
  ];
  if (c.retried) parts.push(`retried ${n(c.retried)}`);
  parts.push(`rejected ${n(c.rejected)}`, `delivered ${n(c.delivered)}`, `failed ${n(c.failed)}`);
  if (c.numInvalidEntries) parts.push(`invalid per Meta ${n(c.numInvalidEntries)}`);
  return parts.join(' · ');
}

export function formatRejections(c: RunCounts): string[] {
  return Object.entries(c.rejectedByReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([reason, count]) => `  rejected ${n(count)}: ${reason}`);
}

/** Per match key: share of encoded rows with a usable value, and the top reasons values were dropped. */
export function formatCoverage(c: RunCounts): string[] {
  if (c.encoded === 0) return [];
  const lines = [`identifier coverage (${n(c.encoded)} rows encoded):`];
  for (const [key, entry] of Object.entries(c.coverage)) {
    if (!entry) continue;
    const pct = ((entry.usable / c.encoded) * 100).toFixed(1).padStart(5);
    const top = Object.entries(entry.dropReasons)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([reason, count]) => `${reason.replace(/^[A-Z_]+: /, '')} (${n(count)})`)
      .join(', ');
    lines.push(`  ${key.padEnd(16)} ${pct}%${top ? `   dropped: ${top}` : ''}`);
  }
  return lines;
}

export function formatSummary(s: RunSummary): string {
  const secs = ((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1);
  const lines = [`${s.sync}: ${s.status} in ${secs}s (${s.mode}${s.audienceId ? `, audience ${s.audienceId}` : ''}${s.runId !== undefined ? `, run #${s.runId}` : ''})`, `  ${formatCounts(s.counts)}`];
  lines.push(...formatRejections(s.counts));
  if (s.error) lines.push(`  error: ${s.error}`);
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  for (const e of s.errorSamples.slice(0, 5)) lines.push(`  sample: key sha256 ${e.pkHash.slice(0, 16)}…${e.externId ? ` (EXTERN_ID ${e.externId})` : ''}: ${e.reason}`);
  return lines.join('\n');
}

/** Per text date-of-birth column: how many values each dateFormat reads, and a hint when another fits better. */
export function formatDateFormats(p: SyncPlan): string[] {
  if (!p.dateFormats) return [];
  const { dateFormat, columns } = p.dateFormats;
  const lines = [`dates of birth written as text (dateFormat ${dateFormat}; never guessed):`];
  for (const c of columns) {
    const formats = (Object.keys(c.accepted) as Array<keyof typeof c.accepted>).map((f) => `${f} ${n(c.accepted[f])}${f === dateFormat ? ' ←' : ''}`);
    lines.push(`  ${c.column} (${c.keys.join(', ')}): ${n(c.textValues)} values, real dates in each format: ${formats.join(' · ')}`);
    const best = (Object.keys(c.accepted) as Array<keyof typeof c.accepted>).reduce((a, b) => (c.accepted[b] > c.accepted[a] ? b : a), dateFormat);
    if (best !== dateFormat) lines.push(`    more of ${c.column}'s values are dates in ${best} than in ${dateFormat}: check the sync's dateFormat`);
  }
  return lines;
}

export function formatPlan(p: SyncPlan): string {
  const c = p.counts;
  const lines = [
    `${p.sync} (${p.mode}) — dry run, nothing sent, state untouched`,
    `  ${n(c.extracted)} rows in the model: ${n(c.added)} to add, ${n(c.updated)} to update, ${n(c.deleted)} departed, ${n(c.unchanged)} unchanged, ${n(c.retried)} to retry, ${n(c.rejected)} rejected`,
    `  would send: ${n(p.toRemove)} removals, ${n(p.toSend)} ${p.mode === 'replace' ? 'rows in a replace session' : 'adds'}`,
    `  schema: [${p.schema.join(', ')}]`,
  ];
  lines.push(...formatRejections(c), ...formatCoverage(c), ...formatDateFormats(p));
  if (p.refusal) lines.push(`  a real run would be ${p.refusal}`);
  if (p.sampleRequest) lines.push(`sample request (POST ${p.sampleRequest.endpoint}, hashed values):`, JSON.stringify({ payload: p.sampleRequest.payload }, null, 2));
  return lines.join('\n');
}
