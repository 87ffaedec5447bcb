#!/usr/bin/env node
// `npm run chaos [-- --minutes N --seed S --steps K --rows R --no-postgres --warehouse --keep --json]`: the
// randomized fault run of src/chaos against the build. Exits 1 on any invariant violation, with the
// seed and step count that replay it. --warehouse: the syncs use changeDetection: warehouse.
import { parseArgs } from 'node:util';
import { formatChaosReport, runChaos } from '../dist/chaos/index.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    rows: { type: 'string' },
    'no-postgres': { type: 'boolean', default: false },
    warehouse: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});

const number = (name, text) => {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number, got "${text}"`);
    process.exit(2);
  }
  return n;
};

const seed = values.seed !== undefined ? number('seed', values.seed) : Math.floor(Math.random() * 2 ** 31);
console.error(`chaos: seed ${seed}${values.steps ? `, ${values.steps} steps` : `, ${values.minutes} min`}`);
const report = await runChaos({
  seed,
  durationMs: number('minutes', values.minutes) * 60_000,
  ...(values.steps !== undefined ? { steps: number('steps', values.steps) } : {}),
  ...(values.rows !== undefined ? { initialRows: number('rows', values.rows) } : {}),
  postgres: !values['no-postgres'],
  changeDetection: values.warehouse ? 'warehouse' : 'local',
  keep: values.keep,
  log: values.quiet ? undefined : (line) => console.error(line),
});
console.log(values.json ? JSON.stringify(report, null, 2) : formatChaosReport(report));
process.exitCode = report.violations.length > 0 ? 1 : 0;
