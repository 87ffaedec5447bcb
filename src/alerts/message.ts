/**
 * An alert's content and the two bodies it is sent as: the generic webhook's JSON and Slack's
 * incoming-webhook message (`text` as the notification fallback, `blocks` for the layout). Pure.
 * Nothing personal goes in: ids, counts, statuses and the run's error as the run history keeps it
 * (warehouse values quoted in it are already `<redacted>`), with any e-mail address and any known
 * secret (tokens, webhook URLs) scrubbed once more.
 */
import { redactEmailAddresses, REDACTED } from '../sources/redact.js';
import type { RunRecord } from '../state/index.js';
import { subjectOf, type Finding } from './conditions.js';
import type { AlertMessage } from './types.js';

/** Run counters an alert carries (numbers only). */
const COUNTS = ['extracted', 'added', 'updated', 'deleted', 'unchanged', 'rejected', 'delivered', 'failed', 'numInvalidEntries'] as const;

/** Secrets shorter than this are not scrubbed: they would match ordinary words. */
const MIN_SECRET_LENGTH = 8;

/** Removes e-mail addresses and every occurrence of the given secrets. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = redactEmailAddresses(text);
  for (const secret of secrets) if (secret.length >= MIN_SECRET_LENGTH) out = out.split(secret).join(REDACTED);
  return out;
}

/** `https://sync.example.com` + `/runs/12`; null without a dashboard address. */
export function link(base: string | undefined, path: string): string | null {
  return base ? `${base.replace(/\/+$/, '')}${path}` : null;
}

export function countsOf(run: RunRecord | null, extra?: Readonly<Record<string, number>>): Record<string, number> | null {
  if (!run && !extra) return null;
  const counts: Record<string, number> = {};
  for (const key of COUNTS) {
    const v = run?.counts[key];
    if (typeof v === 'number' && Number.isFinite(v)) counts[key] = v;
  }
  // A refused run sent nothing: what it would have done is the news.
  const planned = run?.counts.planned as Record<string, unknown> | undefined;
  if (planned && typeof planned === 'object') {
    for (const [k, v] of Object.entries(planned)) if (typeof v === 'number') counts[`planned${k[0]!.toUpperCase()}${k.slice(1)}`] = v;
  }
  return { ...counts, ...extra };
}

export function alertMessage(
  finding: Finding,
  kind: 'firing' | 'resolved',
  opts: { destination: string; dashboardUrl?: string | undefined; secrets: readonly string[]; now: Date },
): AlertMessage {
  const { sync, connection } = subjectOf(finding.subject);
  const run = finding.run;
  const clean = (text: string) => scrub(text, opts.secrets);
  return {
    kind,
    condition: finding.condition,
    destination: opts.destination,
    title: clean(kind === 'firing' ? finding.firing : finding.resolved),
    reason: kind === 'firing' && finding.reason ? clean(finding.reason) : null,
    sync,
    connection,
    run: run && {
      id: run.id,
      status: run.status,
      trigger: run.trigger,
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
      url: link(opts.dashboardUrl, `/runs/${run.id}`),
    },
    counts: countsOf(run, finding.extraCounts),
    dashboardUrl: link(opts.dashboardUrl, sync === null ? '/' : `/syncs/${encodeURIComponent(sync)}`),
    at: opts.now.toISOString(),
  };
}

/** The sample `audience-sync alerts test` sends: a made-up sync, no data of any run. */
export function testMessage(destination: string, dashboardUrl: string | undefined, now: Date): AlertMessage {
  return {
    kind: 'test',
    condition: 'test',
    destination,
    title: `Test alert from audience-sync to "${destination}": alerts reach this destination`,
    reason: 'This is a sample sent by `audience-sync alerts test`; the sync, run and counts are made up.',
    sync: 'example-sync',
    connection: null,
    run: { id: 0, status: 'failed', trigger: 'test', startedAt: now.toISOString(), finishedAt: now.toISOString(), url: link(dashboardUrl, '/') },
    counts: { extracted: 100, added: 3, deleted: 1, failed: 0 },
    dashboardUrl: link(dashboardUrl, '/'),
    at: now.toISOString(),
  };
}

/** The generic webhook's body. */
export function webhookBody(message: AlertMessage): Record<string, unknown> {
  return { source: 'audience-sync', version: 1, ...message };
}

// Slack's limits: header text 150 characters, section text 3000, 10 fields per section.
const HEADER_MAX = 150;
const SECTION_MAX = 2900;
const FIELDS_MAX = 10;

/** `&`, `<` and `>` are markup in Slack text (`<!channel>` would ping everyone). */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

const ICON: Record<AlertMessage['kind'], string> = { firing: ':rotating_light:', resolved: ':white_check_mark:', test: ':bell:' };

/** Slack's incoming-webhook message: `text` for notifications, `blocks` for the message itself. */
export function slackBody(message: AlertMessage): { text: string; blocks: unknown[] } {
  const blocks: unknown[] = [{ type: 'header', text: { type: 'plain_text', text: cut(message.title, HEADER_MAX), emoji: true } }];
  if (message.reason) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(slackEscape(message.reason), SECTION_MAX) } });
  const counts = Object.entries(message.counts ?? {}).slice(0, FIELDS_MAX);
  if (counts.length > 0) blocks.push({ type: 'section', fields: counts.map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v.toLocaleString('en-US')}` })) });
  const context = [
    message.sync ? `sync *${slackEscape(message.sync)}*` : message.connection ? `connection *${slackEscape(message.connection)}*` : '',
    message.run ? (message.run.url ? `<${slackEscape(message.run.url)}|run #${message.run.id}>` : `run #${message.run.id}`) + ` (${message.run.status})` : '',
    `${message.kind === 'test' ? 'test' : message.condition}${message.kind === 'resolved' ? ' · resolved' : ''}`,
    message.dashboardUrl && !message.run?.url ? `<${slackEscape(message.dashboardUrl)}|dashboard>` : '',
  ].filter(Boolean);
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] });
  return { text: `${ICON[message.kind]} ${slackEscape(message.title)}`, blocks };
}
