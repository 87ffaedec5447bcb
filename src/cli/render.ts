// Human-readable output of runs and plans. Only counts, hashes and EXTERN_IDs are ever shown.
import { givenUpSentence, type GivenUpReport } from '../app/given-up.js';
import { TIMING_LABELS, type PlannedChanges, type RunMatch, type RunCounts, type RunSummary, type RunTimings, type SyncPlan } from '../engine/index.js';

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

/** What a run refused by a safeguard had planned; it sent none of it. */
export function formatPlanned(p: PlannedChanges): string {
  return `  refused, nothing sent; it had planned: ${n(p.added)} to add, ${n(p.updated)} to update, ${n(p.deleted)} departed (${n(p.toRemove)} removals, ${n(p.toSend)} rows to send)`;
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
    // The rest of the rows had no value for the key at all: said, so the shares add up to 100%.
    const empty = c.encoded - entry.usable - Object.values(entry.dropReasons).reduce((sum, x) => sum + x, 0);
    const notes = [...(top ? [`dropped: ${top}`] : []), ...(empty > 0 ? [`no value in ${n(empty)}`] : [])];
    lines.push(`  ${key.padEnd(16)} ${pct}%${notes.length > 0 ? `   ${notes.join('; ')}` : ''}`);
  }
  return lines;
}

export function formatSummary(s: RunSummary): string {
  const secs = ((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1);
  const lines = [`${s.sync}: ${s.status} in ${secs}s (${s.mode}${s.audienceId ? `, audience ${s.audienceId}` : ''}${s.runId !== undefined ? `, run #${s.runId}` : ''})`, `  ${formatCounts(s.counts)}`];
  if (s.counts.planned) lines.push(formatPlanned(s.counts.planned));
  lines.push(...formatRejections(s.counts));
  if (s.error) lines.push(`  error: ${s.error}`);
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  for (const e of s.errorSamples.slice(0, 5)) lines.push(`  sample: ${formatSample(e)}`);
  lines.push(`  ${formatTimings(s.timings)}`);
  return lines.join('\n');
}

/** An error sample as shown everywhere: the key's hash (never the key), EXTERN_ID when mapped, the reason. */
export function formatSample(e: { pkHash: string; externId?: string | undefined; reason: string }): string {
  return `${formatKey(e)}: ${e.reason}`;
}

function formatKey(e: { pkHash: string; externId?: string | undefined }): string {
  const key = e.pkHash === '' ? 'null primary key' : `key sha256 ${e.pkHash.slice(0, 16)}…`;
  return `${key}${e.externId ? ` (EXTERN_ID ${e.externId})` : ''}`;
}

const seconds = (ms: number) => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);

export function formatTimings(t: RunTimings): string {
  return `time: ${TIMING_LABELS.map(([k, label]) => `${label} ${seconds(t[k])}`).join(' · ')}`;
}

/** The given-up block of `plan`, `runs` and `retry`: count, reasons, samples and what to do. */
export function formatGivenUp(sync: string, g: GivenUpReport): string[] {
  if (g.count === 0) return [];
  return [
    `  given up: ${givenUpSentence(g)}:`,
    ...g.reasons.slice(0, 5).map((r) => `    ${n(r.count)} × ${r.reason}`),
    // With one reason, listed just above, the samples need not repeat it.
    ...g.samples.map((e) => `    sample: ${g.reasons.length === 1 ? formatKey(e) : formatSample(e)}`),
    `    fix the cause, then \`audience-sync retry ${sync}\` puts them back in the queue (a record whose data changes is retried on its own);`,
    `    \`audience-sync locate ${sync} --given-up\` prints their primary keys on this terminal`,
  ];
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

export function formatPlan(p: SyncPlan & { givenUp?: GivenUpReport }): string {
  const c = p.counts;
  const lines = [
    `${p.sync} (${p.mode}) — dry run, nothing sent, state untouched`,
    `  ${n(c.extracted)} rows in the model: ${n(c.added)} to add, ${n(c.updated)} to update, ${n(c.deleted)} departed, ${n(c.unchanged)} unchanged, ${n(c.retried)} to retry, ${n(c.rejected)} rejected${c.failed ? `, ${n(c.failed)} given up` : ''}`,
    `  would send: ${n(p.toRemove)} removals, ${n(p.toSend)} ${p.mode === 'replace' ? 'rows in a replace session' : 'adds'}`,
    `  schema: [${p.schema.join(', ')}]`,
  ];
  lines.push(...formatRejections(c), ...formatCoverage(c), ...formatDateFormats(p));
  if (p.givenUp) lines.push(...formatGivenUp(p.sync, p.givenUp));
  if (p.refusal) lines.push(`  a real run would be ${p.refusal}`);
  if (p.sampleRequest) lines.push(`sample request (POST ${p.sampleRequest.endpoint}, hashed values):`, JSON.stringify({ payload: p.sampleRequest.payload }, null, 2));
  return lines.join('\n');
}

/** Meta's side of a run: how many of the rows sent it matched to people, and the audience's size when the run started. */
export function formatMatch(counts: Readonly<Record<string, unknown>>, match: RunMatch | null): string | undefined {
  const parts: string[] = [];
  if (match) parts.push(`Meta matched ${n(match.matched)} of ${n(match.received)} rows sent (${(match.rate * 100).toFixed(1)}%)${match.invalid > 0 ? `, ${n(match.invalid)} invalid` : ''}`);
  else if (Array.isArray(counts.uploadSessions) && counts.uploadSessions.length > 0) parts.push('Meta is still matching the rows sent (picked up by the next run or by serve)');
  const size = counts.audienceSize as { lower: number; upper: number } | undefined;
  if (size) parts.push(`audience about ${n(size.lower)}${size.upper !== size.lower ? `–${n(size.upper)}` : ''} people at the start`);
  return parts.length > 0 ? parts.join(' · ') : undefined;
}
