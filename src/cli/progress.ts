import cliProgress from 'cli-progress';
import type { EngineEvent } from '../engine/index.js';

const PHASE_LABEL: Record<string, string> = {
  extract: 'reading model',
  safeguards: 'checking safeguards',
  remove: 'removing',
  add: 'adding',
  replace: 'replacing',
  commit: 'committing',
};

/**
 * Turns engine events into a live progress bar on a terminal, or into plain, sparse lines when
 * output is piped (logs, CI). Writes to stderr so stdout stays clean for --json.
 */
export function progressReporter(sync: string, opts: { tty?: boolean; quiet?: boolean } = {}): { onEvent(e: EngineEvent): void; stop(): void } {
  const out = process.stderr;
  if (opts.quiet) return { onEvent: () => undefined, stop: () => undefined };
  const tty = opts.tty ?? out.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let lastLine = 0;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onEvent(e) {
      if (e.type === 'warning') {
        stopBar();
        out.write(`${sync}: warning: ${e.message}\n`);
      } else if (e.type === 'phase') {
        stopBar();
        const label = PHASE_LABEL[e.phase] ?? e.phase;
        if (tty && e.total !== undefined && e.total > 0) {
          bar = new cliProgress.SingleBar(
            { format: `${sync} ${label.padEnd(14)} [{bar}] {percentage}% {value}/{total} rows · {eta_formatted} left`, hideCursor: true, stream: out },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.total, 0);
        } else if (e.total === undefined || e.total > 0) {
          out.write(`${sync}: ${label}${e.total ? ` (${e.total} rows)` : ''}\n`);
        }
      } else if (e.type === 'progress') {
        if (bar) bar.update(e.done);
        else if (tty && e.phase === 'extract') out.write(`\r${sync}: ${e.done} rows read`);
        else if (!tty && Date.now() - lastLine > 5000) {
          lastLine = Date.now();
          out.write(`${sync}: ${PHASE_LABEL[e.phase]} ${e.done}${e.total ? `/${e.total}` : ''} rows\n`);
        }
      }
    },
    stop() {
      stopBar();
      if (tty) out.write('\n');
    },
  };
}
