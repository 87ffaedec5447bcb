import cliProgress from 'cli-progress';
import type { EngineEvent, RunCounts } from '../engine/index.js';

const PHASE_LABEL: Record<string, string> = {
  extract: 'reading model',
  safeguards: 'checking safeguards',
  remove: 'removing',
  add: 'adding',
  replace: 'replacing',
  commit: 'committing',
};

const n = (x: number) => x.toLocaleString('en-US');

export function planLine(counts: RunCounts, toRemove: number, toSend: number): string {
  return (
    `added ${n(counts.added)} · updated ${n(counts.updated)} · deleted ${n(counts.deleted)} · unchanged ${n(counts.unchanged)}` +
    `${counts.retried ? ` · retried ${n(counts.retried)}` : ''} · rejected ${n(counts.rejected)} → sending ${n(toRemove)} removals, ${n(toSend)} rows`
  );
}

export interface ProgressOptions {
  tty?: boolean;
  quiet?: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Turns engine events into a live table on a terminal (one row per phase: the model read, the
 * plan's counts, removals, adds, each with its bar) or into plain, sparse lines when output is
 * piped (logs, CI). Writes to stderr so stdout stays clean for --json.
 */
export function progressReporter(sync: string, opts: ProgressOptions = {}): { onEvent(e: EngineEvent): void; stop(): void } {
  const out = opts.stream ?? process.stderr;
  if (opts.quiet) return { onEvent: () => undefined, stop: () => undefined };
  const tty = opts.tty ?? out.isTTY === true;
  return tty ? liveTable(sync, out) : plainLines(sync, out);
}

function liveTable(sync: string, out: NodeJS.WritableStream): { onEvent(e: EngineEvent): void; stop(): void } {
  const table = new cliProgress.MultiBar(
    { stream: out as NodeJS.WriteStream, hideCursor: true, clearOnComplete: false, format: `${sync} {label} [{bar}] {value}/{total} rows · {eta_formatted} left`, forceRedraw: true },
    cliProgress.Presets.shades_classic,
  );
  const rows = new Map<string, cliProgress.SingleBar>();
  const row = (key: string, label: string, total: number, format?: string) => {
    let bar = rows.get(key);
    if (!bar) {
      bar = table.create(Math.max(total, 1), 0, { label: label.padEnd(14), text: '' }, format ? { format } : {});
      rows.set(key, bar);
    }
    return bar;
  };
  return {
    onEvent(e) {
      if (e.type === 'warning') table.log(`${sync}: warning: ${e.message}\n`);
      else if (e.type === 'progress' && e.phase === 'extract') {
        row('extract', PHASE_LABEL.extract!, 1, `${sync} {label} {value} rows`).update(e.done);
      } else if (e.type === 'planned') {
        row('extract', PHASE_LABEL.extract!, 1, `${sync} {label} {value} rows`).update(e.counts.extracted);
        row('plan', 'plan', 1, `${sync} {label} {text}`).update(0, { label: 'plan'.padEnd(14), text: planLine(e.counts, e.toRemove, e.toSend) });
      } else if (e.type === 'phase' && e.total !== undefined && e.total > 0) {
        row(e.phase, PHASE_LABEL[e.phase] ?? e.phase, e.total).setTotal(e.total);
      } else if (e.type === 'progress') {
        rows.get(e.phase)?.update(e.done);
      }
    },
    stop() {
      table.stop();
    },
  };
}

function plainLines(sync: string, out: NodeJS.WritableStream): { onEvent(e: EngineEvent): void; stop(): void } {
  let lastLine = 0;
  return {
    onEvent(e) {
      if (e.type === 'warning') out.write(`${sync}: warning: ${e.message}\n`);
      else if (e.type === 'planned') out.write(`${sync}: plan: ${planLine(e.counts, e.toRemove, e.toSend)}\n`);
      else if (e.type === 'phase' && (e.total === undefined || e.total > 0)) {
        out.write(`${sync}: ${PHASE_LABEL[e.phase] ?? e.phase}${e.total ? ` (${n(e.total)} rows)` : ''}\n`);
      } else if (e.type === 'progress' && Date.now() - lastLine > 5000) {
        lastLine = Date.now();
        out.write(`${sync}: ${PHASE_LABEL[e.phase]} ${n(e.done)}${e.total ? `/${n(e.total)}` : ''} rows\n`);
      }
    },
    stop: () => undefined,
  };
}
