/** Inline SVG line charts of numbers per run, oldest run on the left. */
import { escapeHtml } from '../html.js';

export interface Series<K extends string> {
  key: K;
  label: string;
  color: string;
}

export type Point<K extends string> = { at: Date; runId: number } & Record<K, number>;

export type ChartPoint = Point<'added' | 'removed' | 'failed'>;

export const SERIES = [
  { key: 'added', label: 'added', color: '#1a7f37' },
  { key: 'removed', label: 'removed', color: '#0969da' },
  { key: 'failed', label: 'failed', color: '#cf222e' },
] as const;

/** Added, removed and failed records per run. */
export function runChart(points: readonly ChartPoint[]): string {
  return lineChart(points, SERIES, { label: 'Records added, removed and failed per run', empty: 'No runs yet: the chart appears after the first run.' });
}

const W = 760;
const H = 240;
const PAD = { left: 56, right: 16, top: 24, bottom: 28 };

/** Returns SVG markup; every text in it is escaped here. `empty`: the note shown without points. */
export function lineChart<K extends string>(points: ReadonlyArray<Point<K>>, series: ReadonlyArray<Series<K>>, opts: { label: string; empty: string }): string {
  const sorted = [...points].sort((a, b) => a.at.getTime() - b.at.getTime());
  if (sorted.length === 0) return `<p class="muted">${escapeHtml(opts.empty)}</p>`;
  const t0 = sorted[0]!.at.getTime();
  const t1 = sorted[sorted.length - 1]!.at.getTime();
  const max = Math.max(1, ...sorted.flatMap((p) => series.map((s) => p[s.key])));
  // Four gridline steps of a round, whole size (counts are whole numbers).
  const top = 4 * Math.max(1, niceCeiling(max / 4));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  // Spread by time; runs at the same instant (or a single run) fall back to even spacing.
  const x = (p: Point<K>, i: number) =>
    PAD.left + (t1 > t0 ? ((p.at.getTime() - t0) / (t1 - t0)) * plotW : sorted.length === 1 ? plotW / 2 : (i / (sorted.length - 1)) * plotW);
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;

  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    const yy = y(v).toFixed(1);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${yy}" y2="${yy}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${PAD.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle" class="axis">${escapeHtml(compact(v))}</text>`);
  }
  parts.push(`<text x="${PAD.left}" y="${H - 12}" class="axis">${escapeHtml(shortTime(sorted[0]!.at))}</text>`);
  if (sorted.length > 1) parts.push(`<text x="${W - PAD.right}" y="${H - 12}" text-anchor="end" class="axis">${escapeHtml(shortTime(sorted[sorted.length - 1]!.at))}</text>`);

  for (const s of series) {
    const coords = sorted.map((p, i) => `${x(p, i).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
    if (sorted.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    sorted.forEach((p, i) => {
      parts.push(
        `<circle cx="${x(p, i).toFixed(1)}" cy="${y(p[s.key]).toFixed(1)}" r="3.5" fill="${s.color}"><title>${escapeHtml(`run ${p.runId} (${shortTime(p.at)}): ${p[s.key]} ${s.label}`)}</title></circle>`,
      );
    });
  }
  const legend = series.map((s, i) => `<g transform="translate(${W - PAD.right - (series.length - i) * 110},2)"><rect width="10" height="10" fill="${s.color}" rx="2"/><text x="16" y="9" class="axis">${escapeHtml(s.label)}</text></g>`);
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${escapeHtml(opts.label)}"><style>.axis{font:11px system-ui,sans-serif;fill:#57606a}</style>${parts.join('')}${legend.join('')}</svg>`;
}

function niceCeiling(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= v) return m * magnitude;
  return 10 * magnitude;
}

function compact(v: number): string {
  if (v >= 1_000_000) return `${+(v / 1_000_000).toFixed(1)}M`;
  if (v >= 1_000) return `${+(v / 1_000).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

function shortTime(d: Date): string {
  return d.toISOString().slice(0, 16).replace('T', ' ');
}
