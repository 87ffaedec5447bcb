/**
 * `audience-sync locate <sync>`: the primary keys behind a run's error samples (or the given-up
 * records), which store only the keys' SHA-256. The model is read again and the keys are printed on
 * this terminal; they are never stored, and there is no --json so they are not piped into files by habit.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { StateStore } from '../../state/index.js';
import { CliError, EXIT } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

interface Sample {
  pkHash: string;
  externId?: string;
  reason: string;
}

const wholeNumber = (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
};

export function register(program: Command): void {
  withConfigOption(
    program
      .command('locate')
      .description("print the primary keys of the rows behind a run's error samples (or the given-up records): the model is read again, nothing is stored")
      .argument('<sync>', 'name of the sync')
      .option('--run <id>', "the run whose samples to locate (default: the sync's newest run with samples)", wholeNumber)
      .option('--given-up', 'locate the records that used up their attempts instead')
      .option('--limit <n>', 'with --given-up: how many records at most', wholeNumber, 100),
  ).action(async (syncName: string, opts: { config: string; run?: number; givenUp?: boolean; limit: number }) => {
    if (opts.run !== undefined && opts.givenUp) throw new CliError('pass --run or --given-up, not both');
    const { locateKeys } = await import('../../app/locate.js');
    const { formatSample } = await import('../render.js');
    await withWorkspace(opts.config, async (ws) => {
      const sync = ws.sync(syncName);
      let what: string;
      let samples: Sample[];
      if (opts.givenUp) {
        const g = await ws.givenUp(syncName, opts.limit);
        what = `${g.count.toLocaleString('en-US')} given-up record${g.count === 1 ? '' : 's'}${g.count > g.samples.length ? ` (the first ${g.samples.length}; --limit shows more)` : ''}`;
        samples = g.samples;
      } else {
        const run = await findRun(await ws.state(), syncName, opts.run);
        what = `run #${run.id} (${run.startedAt.toISOString()}, ${run.status}): ${run.errorSamples.length} error sample${run.errorSamples.length === 1 ? '' : 's'}`;
        samples = run.errorSamples.map((s) => ({ pkHash: s.pk, reason: s.reason, ...(s.identifiers?.EXTERN_ID ? { externId: s.identifiers.EXTERN_ID } : {}) }));
      }
      const keyed = samples.filter((s) => s.pkHash !== '');
      const found = await locateKeys(ws, syncName, new Set(keyed.map((s) => s.pkHash)));
      const lines = [`${syncName}, ${what}; ${sync.primaryKey} of each as the model returns it now (shown here only, never stored):`];
      const missing: Sample[] = [];
      const shown = new Set<string>();
      for (const s of keyed) {
        const hit = found.get(s.pkHash);
        if (!hit) missing.push(s);
        else if (!shown.has(s.pkHash)) {
          shown.add(s.pkHash);
          lines.push(`  ${sync.primaryKey} ${hit.key}${hit.rows > 1 ? ` (${hit.rows} rows)` : ''}  ${s.externId ? `EXTERN_ID ${s.externId}  ` : ''}${s.reason}`);
        }
      }
      const nullKeys = samples.length - keyed.length;
      if (nullKeys > 0) lines.push(`  ${nullKeys} sample${nullKeys === 1 ? ' is a row' : 's are rows'} whose ${sync.primaryKey} is null: the model's rows where ${sync.primaryKey} is null`);
      if (missing.length > 0) {
        lines.push(`  ${missing.length} sample${missing.length === 1 ? ' has' : 's have'} no row in the model now (it left the model or its key changed):`);
        for (const s of missing) lines.push(`    ${formatSample(s)}`);
      }
      if (samples.length === 0) lines.push('  nothing to locate');
      console.log(lines.join('\n'));
    });
  });
}

async function findRun(state: StateStore, sync: string, id: number | undefined) {
  if (id !== undefined) {
    const run = await state.getRun(id);
    if (!run || run.sync !== sync) throw new CliError(`sync "${sync}" has no run #${id}; \`audience-sync runs ${sync}\` lists its runs`);
    return run;
  }
  // The newest runs first; a sync with a long clean streak still finds its last samples.
  const run = (await state.listRuns({ sync, limit: 200 })).find((r) => r.errorSamples.length > 0);
  if (!run) throw new CliError(`no recent run of "${sync}" has error samples: nothing to locate (pass --run <id> for an older run)`, EXIT.failed);
  return run;
}
