/** The dashboard's pages, rendered from view objects. Everything interpolated is escaped by `html`. */
import type { TestRecordResult } from '../../app/test-record.js';
import { givenUpSentence, type GivenUpReport } from '../../app/given-up.js';
import { EXPIRY_WARNING_DAYS } from '../../app/tokens.js';
import { readTimings, TIMING_LABELS } from '../../engine/index.js';
import { html, trusted, type SafeHtml } from '../html.js';
import { count, plannedOf, type AlertView, type AudienceHealth, type ConnectionView, type RunView, type SyncView } from '../service.js';
import { lineChart, runChart } from './chart.js';
import { csrfField, duration, layout, n, statusBadge, when, type PageFrame } from './layout.js';

type Frame = Omit<PageFrame, 'title'>;

export function overviewPage(
  frame: Frame,
  data: { syncs: SyncView[]; sizes: Map<string, AudienceHealth | null>; connections: ConnectionView[]; adAccounts: string[]; adAccount: string | null; undelivered?: AlertView[] },
): SafeHtml {
  const several = data.connections.length > 1;
  const rows = data.syncs.map((s) => {
    const health = data.sizes.get(s.name);
    const last = s.lastRun;
    return html`<tr data-sync="${s.name}" data-ad-account="${s.adAccountId}">
<td><a href="/syncs/${encodeURIComponent(s.name)}">${s.name}</a><div class="muted">${s.mode} · ${s.source} · act_${s.adAccountId}${several ? html` · <span data-connection>${s.connection}</span>` : ''}</div></td>
<td>${statusBadge(s.status)}${s.givenUp.count > 0 ? html`<div class="given-up"><a href="/syncs/${encodeURIComponent(s.name)}#given-up">${n(s.givenUp.count)} given up</a></div>` : ''}</td>
<td>${last ? html`<a href="/runs/${last.id}">${when(last.startedAt)}</a><div class="muted">+${n(count(last, 'added'))} / −${n(count(last, 'deleted'))} / ${n(count(last, 'failed'))} failed${plannedOf(last) ? ' · refused by a safeguard' : ''}</div>` : html`<span class="muted">never</span>`}</td>
<td>${s.nextRunAt ? when(s.nextRunAt) : html`<span class="muted">${s.schedule ? 'no upcoming tick' : 'not scheduled'}</span>`}</td>
<td class="mono">${s.audienceId ?? '—'}</td>
<td class="num">${sizeText(health)}</td>
</tr>`;
  });
  const empty = data.syncs.length === 0 ? html`<tr><td colspan="6" class="muted">No sync uses act_${data.adAccount ?? ''}.</td></tr>` : '';
  return layout(
    { ...frame, title: 'Syncs' },
    html`<h1>Syncs</h1>${data.connections.map((c) => connectionPanel(c, several))}${undeliveredPanel(data.undelivered ?? [])}
${adAccountFilter(data.adAccounts, data.adAccount)}
<table><thead><tr><th>Sync</th><th>Status</th><th>Last run</th><th>Next run</th><th>Audience</th><th class="num">Audience size</th></tr></thead>
<tbody>${rows}${empty}</tbody></table>`,
  );
}

/** A plain GET form (the dashboard runs no script): `/?adAccount=…` lists the syncs of one ad account. */
function adAccountFilter(accounts: string[], selected: string | null): SafeHtml | string {
  if (accounts.length < 2 && selected === null) return '';
  const option = (value: string, label: string) => html`<option value="${value}"${(selected ?? '') === value ? trusted(' selected') : ''}>${label}</option>`;
  return html`<form method="get" action="/" class="actions" data-ad-account-filter><label>Ad account <select name="adAccount">${option('', 'All ad accounts')}${accounts.map((a) => option(a, `act_${a}`))}</select></label><button type="submit">Filter</button></form>`;
}

export function syncPage(frame: Frame, data: { sync: SyncView; runs: RunView[]; health: AudienceHealth | null; connection: ConnectionView }): SafeHtml {
  const { sync, runs, health } = data;
  const chart = runChart(
    runs
      .filter((r) => r.status !== 'running')
      .map((r) => ({ at: new Date(r.startedAt), runId: r.id, added: count(r, 'added'), removed: count(r, 'deleted'), failed: count(r, 'failed') })),
  );
  const matchChart = lineChart(
    runs.flatMap((r) => (r.match ? [{ at: new Date(r.startedAt), runId: r.id, sent: r.match.received, matched: r.match.matched }] : [])),
    MATCH_SERIES,
    { label: 'Rows sent and rows Meta matched per run', empty: 'Meta has not reported match counts yet: they arrive once it has processed a run\'s upload.' },
  );
  const sizeChart = lineChart(
    runs.flatMap((r) => {
      const size = audienceSizeOf(r);
      return size ? [{ at: new Date(r.startedAt), runId: r.id, ...size }] : [];
    }),
    SIZE_SERIES,
    { label: "The audience's approximate size at the start of each run", empty: 'No audience size recorded yet.' },
  );
  return layout(
    { ...frame, title: sync.name },
    html`<h1>${sync.name} ${statusBadge(sync.status)}</h1>
<div class="cards">
<div class="card"><div class="k">Mode</div><div class="v">${sync.mode}</div></div>
<div class="card"><div class="k">Schedule</div><div class="v">${sync.schedule ?? 'manual'}</div><div class="muted">next: ${when(sync.nextRunAt)}</div></div>
<div class="card"><div class="k">Records in state</div><div class="v">${n(sync.records.total)}</div><div class="muted">${n(sync.records.pending)} pending · ${n(sync.records.failed)} failed</div></div>
<div class="card"><div class="k">Given up</div><div class="v" data-given-up="${sync.givenUp.count}">${n(sync.givenUp.count)}</div><div class="muted">after ${sync.givenUp.maxAttempts} failed attempt${sync.givenUp.maxAttempts === 1 ? '' : 's'}</div></div>
<div class="card"><div class="k">Audience</div><div class="v mono">${sync.audienceId ?? '—'}</div></div>
<div class="card"><div class="k">Ad account</div><div class="v mono">act_${sync.adAccountId}</div><div class="muted">connection ${sync.connection}</div></div>
</div>
<div class="actions">
<form method="post" action="/syncs/${encodeURIComponent(sync.name)}/run">${csrfField(frame.session)}<button class="primary" type="submit">Run now</button>
<label class="muted"><input type="checkbox" name="force" value="1"> skip safeguards</label></form>
<form method="post" action="/syncs/${encodeURIComponent(sync.name)}/test-record">${csrfField(frame.session)}
<input type="text" name="primaryKey" placeholder="primary key (optional)" aria-label="primary key"><button type="submit">Send test record</button></form>
</div>
${givenUpPanel(sync.name, sync.givenUp, frame)}
<h2>Audience health</h2>${healthPanel(health, data.connection)}
${matchWarning(sync)}
<h2>Added, removed and failed per run</h2>${trusted(chart)}
<h2>Sent and matched by Meta</h2>${trusted(matchChart)}
<h2>Audience size over time</h2>${trusted(sizeChart)}
<h2>Run history</h2>${runsTable(runs)}`,
  );
}

export function runPage(frame: Frame, run: RunView): SafeHtml {
  const counters = Object.entries(run.counts).filter(([, v]) => typeof v === 'number');
  const rejected = run.counts.rejectedByReason;
  const rejectedRows = rejected && typeof rejected === 'object' ? Object.entries(rejected as Record<string, unknown>) : [];
  const warnings = Array.isArray(run.counts.warnings) ? (run.counts.warnings as unknown[]).map(String) : [];
  return layout(
    { ...frame, title: `Run ${run.id}` },
    html`<h1>Run ${run.id} of <a href="/syncs/${encodeURIComponent(run.sync)}">${run.sync}</a> ${statusBadge(run.status)}</h1>
<div class="cards">
<div class="card"><div class="k">Started</div><div class="v">${when(run.startedAt)}</div><div class="muted">by ${run.trigger}</div></div>
<div class="card"><div class="k">Duration</div><div class="v">${duration(run.durationMs)}</div></div>
<div class="card"><div class="k">Delivered</div><div class="v">${n(count(run, 'delivered'))}</div></div>
<div class="card"><div class="k">Failed</div><div class="v">${n(count(run, 'failed'))}</div></div>
</div>
${run.error ? html`<h2>Error</h2><pre>${run.error}</pre>` : ''}
${plannedPanel(run)}
${warnings.length > 0 ? html`<h2>Warnings</h2><ul>${warnings.map((w) => html`<li>${w}</li>`)}</ul>` : ''}
<h2>Counts</h2><table><tbody>${counters.map(([k, v]) => html`<tr><th>${k}</th><td class="num">${n(v as number)}</td></tr>`)}</tbody></table>
${timingsTable(run)}
${rejectedRows.length > 0 ? html`<h2>Rejected rows by reason</h2><table><tbody>${rejectedRows.map(([k, v]) => html`<tr><td>${k}</td><td class="num">${String(v)}</td></tr>`)}</tbody></table>` : ''}
<h2>Error samples</h2>${
      run.errorSamples.length === 0
        ? html`<p class="muted">None.</p>`
        : html`<p class="muted">Primary keys are shown as SHA-256 hashes. <code>audience-sync locate ${run.sync} --run ${run.id}</code> prints the keys themselves on your terminal.</p>${samplesTable(run.errorSamples)}`
    }`,
  );
}

export function testRecordPage(frame: Frame, result: TestRecordResult): SafeHtml {
  return layout(
    { ...frame, title: 'Test record' },
    html`<h1>Test record sent to audience <span class="mono">${result.audienceId}</span></h1>
<div class="cards"><div class="card"><div class="k">Received by Meta (this session)</div><div class="v">${n(result.numReceived)}</div></div>
<div class="card"><div class="k">Invalid entries</div><div class="v">${n(result.numInvalidEntries)}</div></div></div>
<h2>What was sent</h2><p class="muted">Hashed values only (EXTERN_ID as given).</p>
<table><thead><tr><th>Key</th><th>Value sent</th></tr></thead><tbody>${result.schema.map(
      (k, i) => html`<tr><th>${k}</th><td class="mono">${String(result.cells[i] ?? '') || html`<span class="muted">(empty)</span>`}</td></tr>`,
    )}</tbody></table>
${result.dropped.length > 0 ? html`<h2>Keys left out</h2><ul>${result.dropped.map((d) => html`<li>${d.key}: ${d.reason}</li>`)}</ul>` : ''}
<p><a href="/syncs/${encodeURIComponent(result.sync)}">Back to ${result.sync}</a></p>`,
  );
}

export function loginPage(frame: Frame, error?: string): SafeHtml {
  return layout(
    { ...frame, title: 'Log in' },
    html`<h1>Log in</h1>${error ? html`<div class="flash error">${error}</div>` : ''}
<form method="post" action="/login">${csrfField(frame.session)}
<p><label>Admin token <input type="password" name="token" autocomplete="current-password" required></label></p>
<p class="muted">The value of AUDIENCE_SYNC_ADMIN_TOKEN on the server.</p><button class="primary" type="submit">Log in</button></form>`,
  );
}

export function errorPage(frame: Frame, status: number, message: string): SafeHtml {
  return layout({ ...frame, title: `Error ${status}` }, html`<h1>${status === 404 ? 'Not found' : 'Something went wrong'}</h1><div class="flash error">${message}</div><p><a href="/">Back to the syncs</a></p>`);
}

function runsTable(runs: RunView[]): SafeHtml {
  if (runs.length === 0) return html`<p class="muted">No runs yet.</p>`;
  return html`<table><thead><tr><th>Run</th><th>Status</th><th>Started</th><th>Trigger</th><th>Duration</th><th class="num">Extracted</th><th class="num">Added</th><th class="num">Updated</th><th class="num">Removed</th><th class="num">Failed</th><th class="num">Rejected</th><th class="num">Match rate</th></tr></thead><tbody>${runs.map(
    (r) => html`<tr data-run-id="${r.id}"><td><a href="/runs/${r.id}">#${r.id}</a></td><td>${statusBadge(r.status)}${refusedNote(r)}</td><td>${when(r.startedAt)}</td><td>${r.trigger}</td><td>${duration(r.durationMs)}</td>
<td class="num">${n(count(r, 'extracted'))}</td><td class="num" data-count="added">${n(count(r, 'added'))}</td><td class="num">${n(count(r, 'updated'))}</td><td class="num">${n(count(r, 'deleted'))}</td><td class="num">${n(count(r, 'failed'))}</td><td class="num">${n(count(r, 'rejected'))}</td><td class="num" data-match-rate>${matchRateText(r)}</td></tr>`,
  )}</tbody></table>`;
}

const MATCH_SERIES = [
  { key: 'sent', label: 'sent', color: '#0969da' },
  { key: 'matched', label: 'matched by Meta', color: '#1a7f37' },
] as const;

const SIZE_SERIES = [
  { key: 'lower', label: 'size (lower)', color: '#8250df' },
  { key: 'upper', label: 'size (upper)', color: '#bf8700' },
] as const;

function audienceSizeOf(r: RunView): { lower: number; upper: number } | undefined {
  const size = r.counts.audienceSize as { lower?: unknown; upper?: unknown } | undefined;
  return size && typeof size.lower === 'number' && typeof size.upper === 'number' ? { lower: size.lower, upper: size.upper } : undefined;
}

/** The run's match rate; "pending" while Meta is still processing what it sent. */
function matchRateText(r: RunView): SafeHtml | string {
  if (r.match) return html`<span title="${n(r.match.matched)} of ${n(r.match.received)} rows sent">${(r.match.rate * 100).toFixed(1)}%</span>`;
  return Array.isArray(r.counts.uploadSessions) && r.counts.uploadSessions.length > 0 ? html`<span class="muted">pending</span>` : html`<span class="muted">—</span>`;
}

function matchWarning(sync: SyncView): SafeHtml | string {
  if (!sync.match.warning) return '';
  return html`<div class="flash error" data-match-warning><strong>${sync.match.warning}.</strong> Likely causes:<ul>${sync.match.causes.map((c) => html`<li>${c}</li>`)}</ul></div>`;
}

/** Error samples: the key's SHA-256 (never the key), EXTERN_ID when mapped, and the reason unless it is the same for all. */
function samplesTable(samples: ReadonlyArray<{ pkHash: string; externId?: string; reason: string; attempts?: number }>, opts: { reason: boolean } = { reason: true }): SafeHtml {
  const attempts = samples.some((s) => s.attempts !== undefined);
  return html`<table class="samples"><thead><tr><th>Primary key (SHA-256)</th><th>EXTERN_ID</th>${opts.reason ? html`<th>Reason</th>` : ''}${attempts ? html`<th class="num">Attempts</th>` : ''}</tr></thead><tbody>${samples.map(
    (s) =>
      html`<tr><td class="mono">${s.pkHash || html`<span class="muted">null key</span>`}</td><td class="mono">${s.externId ?? html`<span class="muted">—</span>`}</td>${opts.reason ? html`<td>${s.reason}</td>` : ''}${attempts ? html`<td class="num">${n(s.attempts)}</td>` : ''}</tr>`,
  )}</tbody></table>`;
}

function givenUpPanel(sync: string, g: GivenUpReport, frame: Frame): SafeHtml {
  if (g.count === 0) return html``;
  return html`<h2 id="given-up">Given up</h2>
<div class="flash warn">${givenUpSentence(g)}. Fix the cause, then retry them; a record whose data changes is retried on its own.
<code>audience-sync locate ${sync} --given-up</code> prints their primary keys on your terminal.</div>
<table><thead><tr><th>Last error</th><th class="num">Records</th></tr></thead><tbody>${g.reasons.map((r) => html`<tr><td>${r.reason}</td><td class="num">${n(r.count)}</td></tr>`)}</tbody></table>
${samplesTable(g.samples, { reason: g.reasons.length > 1 })}
<form method="post" action="/syncs/${encodeURIComponent(sync)}/retry">${csrfField(frame.session)}<button class="primary" type="submit">Retry given-up records</button>
<span class="muted">puts them back in the queue; the next run sends them</span></form>`;
}

function timingsTable(run: RunView): SafeHtml {
  const t = readTimings(run.counts);
  if (!t) return html``;
  return html`<h2>Time per phase</h2><table class="timings"><tbody>${TIMING_LABELS.map(([k, label]) => html`<tr><th>${label}</th><td class="num" data-phase="${k}">${duration(t[k])}</td></tr>`)}</tbody></table>`;
}

/** A refused run's planned changes, apart from its counts: it sent none of them. */
function refusedNote(r: RunView): SafeHtml | string {
  const p = plannedOf(r);
  return p ? html`<div class="muted" data-refused>refused · planned +${n(p.added)} / −${n(p.deleted)}</div>` : '';
}

function plannedPanel(run: RunView): SafeHtml | string {
  const p = plannedOf(run);
  if (!p) return '';
  return html`<h2>Refused by a safeguard</h2><p data-refused>Nothing was sent and nobody was added or removed. The run had planned: ${n(p.added)} to add, ${n(p.updated)} to update, ${n(p.deleted)} departed (${n(p.toRemove)} removals and ${n(p.toSend)} rows to send).</p>`;
}

function sizeText(h: AudienceHealth | null | undefined): string {
  if (!h || h.sizeLower === null) return '—';
  return h.sizeUpper !== null && h.sizeUpper !== h.sizeLower ? `${n(h.sizeLower)}–${n(h.sizeUpper)}` : n(h.sizeLower);
}

function healthPanel(h: AudienceHealth | null, c: ConnectionView): SafeHtml {
  if (!h) return html`<p class="muted">The audience is created by the first run.</p>`;
  if (h.error) return html`<div class="flash error">Could not read the audience from Meta: ${h.error}</div>${tokenCard(c)}`;
  const status = (s: AudienceHealth['operationStatus']) => (s ? `${s.code} · ${s.description}` : '—');
  return html`<div class="cards">
<div class="card"><div class="k">Size (Meta's estimate)</div><div class="v">${sizeText(h)}</div><div class="muted">lower–upper bound</div></div>
<div class="card"><div class="k">Operation status</div><div class="v">${status(h.operationStatus)}</div></div>
<div class="card"><div class="k">Delivery status</div><div class="v">${status(h.deliveryStatus)}</div></div>
${tokenCard(c)}</div>`;
}

function tokenCard(c: ConnectionView): SafeHtml {
  return html`<div class="card"><div class="k">Access token</div><div class="v">${tokenText(c)}</div><div class="muted">${c.tokenSource === 'connected' ? 'connected account' : c.tokenSource === 'config' ? 'from the config' : 'none'}</div></div>`;
}

function tokenText(c: ConnectionView): string {
  if (c.tokenSource !== 'connected') return c.tokenSource === 'config' ? 'expiry unknown' : 'not connected';
  if (!c.expiresAt) return 'does not expire';
  return `expires ${when(c.expiresAt)}`;
}

/** Alerts that never reached their destination (the config's `alerts:`), newest first. */
export function undeliveredPanel(alerts: AlertView[]): SafeHtml | '' {
  if (alerts.length === 0) return '';
  return html`<section class="flash error undelivered-alerts" role="alert"><strong>${alerts.length === 1 ? 'An alert was' : `${alerts.length} alerts were`} not delivered.</strong>
Alerts are tried again with backoff before they count as not delivered. Check the destination's URL and that it is up; <code>audience-sync alerts test</code> sends a sample to every destination.
<table><thead><tr><th>When</th><th>Destination</th><th>Alert</th><th>Reason</th></tr></thead><tbody>${alerts.map(
    (a) => html`<tr data-alert-id="${a.id}"><td>${when(a.createdAt)}</td><td>${a.destination}</td><td>${a.kind === 'resolved' ? 'resolved: ' : ''}${a.runId !== null ? html`<a href="/runs/${a.runId}">${a.title}</a>` : a.title}</td><td>${a.error ?? ''}</td></tr>`,
  )}</tbody></table></section>`;
}

function connectionPanel(c: ConnectionView, several = false): SafeHtml {
  const href = several ? `/connect?connection=${encodeURIComponent(c.name)}` : '/connect';
  const connect = c.connectEnabled ? html`<a class="button fb" href="${href}">${c.tokenSource === 'connected' ? 'Reconnect with Facebook' : 'Connect with Facebook'}</a>` : '';
  let status: SafeHtml;
  if (c.tokenSource === 'connected') {
    const left = c.daysLeft === null ? '' : c.daysLeft < 0 ? ' (expired)' : ` (${c.daysLeft} days left)`;
    status = html`Meta account connected ${when(c.connectedAt)}; token ${c.expiresAt ? html`expires <strong data-token-expiry>${when(c.expiresAt)}</strong>${left}` : 'does not expire'}.`;
  } else if (c.tokenSource === 'config') {
    status = html`Using the access token from the config file.`;
  } else if (several) {
    status = html`No Meta access token yet: ${c.connectEnabled ? 'connect a Meta account' : 'set its accessToken in the config, or its appId and appSecret to connect with Facebook'}.`;
  } else {
    status = html`No Meta access token yet: ${c.connectEnabled ? 'connect a Meta account' : 'set meta.accessToken, or meta.appId and meta.appSecret to connect with Facebook'}.`;
  }
  const kind = c.tokenSource === 'connected' && c.expiringSoon ? 'warn' : c.tokenSource === 'none' ? 'error' : 'ok';
  const warning =
    c.tokenSource === 'connected' && c.expiringSoon
      ? html` <strong>The token ${c.daysLeft !== null && c.daysLeft < 0 ? 'has expired' : `expires within ${EXPIRY_WARNING_DAYS} days`}: reconnect to keep the syncs running.</strong>`
      : '';
  // With several connections each panel says whose token it is and which ad accounts it reaches.
  const whose = several ? html`<strong>Connection ${c.name}</strong>${c.adAccounts.length > 0 ? ` (${c.adAccounts.map((a) => `act_${a}`).join(', ')})` : ''}: ` : '';
  return html`<div class="flash ${kind} actions" style="justify-content:space-between" data-connection-panel="${c.name}"><span>${whose}${status}${warning}</span>${connect}</div>`;
}
