/** The page frame, shared styles and small formatting helpers of the dashboard. No script, no CDN. */
import { html, type SafeHtml } from '../html.js';
import type { Session } from '../security.js';

const CSS = `
:root{--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--run:#0969da}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",system-ui,sans-serif;color:var(--fg);background:#fff}
header{display:flex;align-items:center;gap:1rem;padding:.7rem 1.5rem;border-bottom:1px solid var(--line);background:var(--bg)}
header a.brand{font-weight:600;color:var(--fg);text-decoration:none;font-size:1.05rem}header nav{margin-left:auto;display:flex;gap:1rem;align-items:center}
main{max-width:1100px;margin:0 auto;padding:1.2rem 1.5rem 3rem}h1{font-size:1.4rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
a{color:var(--run)}table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.82rem;text-transform:uppercase;letter-spacing:.03em}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:1rem;font-size:.8rem;font-weight:600;border:1px solid currentColor}
.s-success{color:var(--ok)}.s-partial{color:var(--warn)}.s-failed{color:var(--bad)}.s-running{color:var(--run)}.s-never{color:var(--muted)}
.muted{color:var(--muted)}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:.8rem;margin:.6rem 0}
.card{border:1px solid var(--line);border-radius:8px;padding:.7rem .9rem}.card .k{color:var(--muted);font-size:.8rem}.card .v{font-size:1.15rem;font-weight:600}
.flash{padding:.6rem .9rem;border-radius:6px;margin:.4rem 0 1rem;border:1px solid}.flash.ok{background:#dafbe1;border-color:#4ac26b}.flash.warn{background:#fff8c5;border-color:#d4a72c}.flash.error{background:#ffebe9;border-color:#ff8182}
.actions{display:flex;gap:.8rem;flex-wrap:wrap;align-items:flex-end;margin:.6rem 0}.actions form{display:flex;gap:.4rem;align-items:center}
button,.button{font:inherit;padding:.35rem .9rem;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--fg);cursor:pointer;text-decoration:none}
button.primary,.button.primary{background:#1f883d;border-color:#1a7f37;color:#fff}.button.fb{background:#1877f2;border-color:#1877f2;color:#fff}
input[type=text],input[type=password]{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:6px}
.chart{border:1px solid var(--line);border-radius:8px;padding:.4rem;background:#fff}
pre{background:var(--bg);padding:.7rem;border-radius:6px;overflow:auto;white-space:pre-wrap}
`;

export interface PageFrame {
  title: string;
  session: Session | undefined;
  /** Show the log-out button (an admin token is in use). */
  loginRequired: boolean;
  /** Why the config file cannot be used (the service runs on its last good config). */
  configError?: string | undefined;
}

export function layout(frame: PageFrame, body: SafeHtml): SafeHtml {
  const flash = frame.session?.flash;
  if (frame.session) delete frame.session.flash;
  return html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${frame.title} · audience-sync</title><style>${CSS}</style></head>
<body><header><a class="brand" href="/">audience-sync</a><span class="muted">Meta Custom Audiences</span>
<nav><a href="/">Syncs</a><a href="/openapi.json">API</a>${
    frame.loginRequired && frame.session?.authenticated ? html`<form method="post" action="/logout">${csrfField(frame.session)}<button type="submit">Log out</button></form>` : ''
  }</nav></header>
<main>${frame.configError ? configErrorBanner(frame.configError) : ''}${flash ? html`<div class="flash ${flash.kind}" role="status">${flash.text}</div>` : ''}${body}</main></body></html>`;
}

function configErrorBanner(error: string): SafeHtml {
  return html`<div class="flash error config-error" role="alert"><strong>The config file cannot be used.</strong> The service keeps running with the last good config and picks up the file once it is fixed.<pre>${error}</pre></div>`;
}

export function csrfField(session: Session | undefined): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session?.csrf ?? ''}">`;
}

export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge s-${status}">${status}</span>`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}

export function duration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function n(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : v.toLocaleString('en-US');
}
