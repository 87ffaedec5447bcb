// The chaos run: syncs over a DuckDB and a PostgreSQL model that churn between runs, against the
// emulator injecting every fault kind, with sync processes SIGKILLed at random points; after every
// run the invariants of invariants.ts are checked. The schedule comes from one seed.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type RunningEmulator } from '../emulator/index.js';
import { snapshotTableName } from '../config/index.js';
import { openStateStore, type StateStore } from '../state/index.js';
import { runSyncChild, type ChildOutcome } from './child.js';
import {
  CHECK_NAMES,
  checkMemory,
  checkMirror,
  checkRetryBudget,
  checkStateComplete,
  checkTrackedMembers,
  type CheckName,
  type Member,
  type RecordView,
} from './invariants.js';
import { findPii } from './pii.js';
import { serveRuns } from './serve.js';
import { Population } from './population.js';
import { startPostgres, type TestPostgres } from '../devtools/postgres.js';
import { createRng } from './random.js';
import { FAULT_KINDS, planStep, type ChaosFaultKind, type StepPlan } from './schedule.js';
import { duckdbTable, postgresTable, type ModelTable } from './warehouses.js';

export interface ChaosOptions {
  seed: number;
  /** No new step starts after this long (the settling runs come after). */
  durationMs?: number;
  /** Stop after this many steps (how a failure is replayed); wins over durationMs. */
  steps?: number;
  /** Run the PostgreSQL model too (needs PostgreSQL binaries). Default true. */
  postgres?: boolean;
  /** People in each model before the first run. Default 1500. */
  initialRows?: number;
  /** Peak RSS a sync process may reach. Default 400 MB (the project's goal). */
  memoryLimitMb?: number;
  /** The syncs' maxAttempts. Default 8. */
  maxAttempts?: number;
  /** The syncs' batchRows: small batches give kills more places to land. Default 10. */
  batchRows?: number;
  /** Keep the work folder (warehouses, state, config) even when every check passed. */
  keep?: boolean;
  /** Progress lines (one per step). */
  log?: (line: string) => void;
  /**
   * Where the syncs find their changes: local (default) or warehouse (their snapshots in the schema
   * audience_sync of each warehouse, the journal applied every 50 writes so kills land in it).
   */
  changeDetection?: 'local' | 'warehouse';
}

export interface Violation {
  step: number;
  sync: string;
  check: CheckName;
  detail: string;
}

export type RunOutcomeKind = 'success' | 'partial' | 'failed' | 'killed' | 'busy' | 'hung' | 'crashed';

export interface ChaosReport {
  seed: number;
  changeDetection: 'local' | 'warehouse';
  steps: number;
  seconds: number;
  runs: Record<RunOutcomeKind, number> & { total: number; viaCli: number };
  /** Faults the emulator injected, by kind (from its request log). */
  faults: Record<ChaosFaultKind, number>;
  kills: number;
  tokenRenewals: number;
  checks: Record<CheckName, { passed: number; failed: number }>;
  violations: Violation[];
  peakRssMb: number;
  syncs: Array<{ name: string; warehouse: 'duckdb' | 'postgres'; people: number; members: number; settled: boolean }>;
  /** Set when the work folder was kept (a violation, or `keep`). */
  workDir?: string;
}

interface SyncWorld {
  name: string;
  warehouse: 'duckdb' | 'postgres';
  audienceId: string;
  table: ModelTable;
  population: Population;
}

const CHILD_TIMEOUT_MS = { runner: 120_000, cli: 240_000 };
/** With warehouse change detection: the schema the snapshots go to, and how often the journal is applied (often, so kills land in it). */
const STATE_SCHEMA = 'audience_sync';
const WAREHOUSE_FLUSH_ROWS = 50;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const o = {
    durationMs: 60_000,
    postgres: true,
    initialRows: 1500,
    memoryLimitMb: 400,
    maxAttempts: 8,
    batchRows: 10,
    keep: false,
    changeDetection: 'local' as const,
    ...options,
    log: options.log ?? (() => undefined),
  };
  const started = performance.now();
  const rng = createRng(o.seed);
  const dir = mkdtempSync(join(tmpdir(), 'audience-sync-chaos-'));
  const report = emptyReport(o.seed, o.changeDetection);
  let emulator: RunningEmulator | undefined;
  let postgres: TestPostgres | undefined;
  let state: StateStore | undefined;
  try {
    emulator = await startEmulator({ port: 0, rateLimit: { budgetPerHour: 1e9 } });
    if (o.postgres) postgres = await startPostgres();
    const serials = { next: 0 };
    const worlds: SyncWorld[] = [
      { name: 'duck', warehouse: 'duckdb', audienceId: await createAudience(emulator.url, 'chaos duck'), table: duckdbTable(join(dir, 'warehouse.duckdb')), population: new Population('d', rng, serials) },
    ];
    if (postgres) {
      worlds.push({ name: 'pg', warehouse: 'postgres', audienceId: await createAudience(emulator.url, 'chaos pg'), table: postgresTable(postgres.url), population: new Population('p', rng, serials) });
    }
    const configPath = writeConfig(dir, emulator.url, worlds, o);
    const statePath = join(dir, 'state.db');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      META_ACCESS_TOKEN: DEFAULT_TOKEN,
      ...(postgres ? { CHAOS_PG_URL: postgres.url } : {}),
      ...(o.changeDetection === 'warehouse' ? { AUDIENCE_SYNC_SNAPSHOT_FLUSH_ROWS: String(WAREHOUSE_FLUSH_ROWS) } : {}),
    };
    for (const w of worlds) {
      w.population.churn({ adds: o.initialRows, readds: 0, updates: 0, cosmetic: 0, removes: 0, nullKeys: 0 });
      await w.table.write(w.population.rows());
    }
    const needles = () => {
      const all = new Set<string>();
      for (const w of worlds) for (const n of w.population.piiNeedles()) all.add(n);
      return all;
    };
    const emu = emulator;
    const check = (step: number, sync: string, name: CheckName, problems: string[]) => {
      if (problems.length === 0) report.checks[name].passed++;
      else {
        report.checks[name].failed++;
        for (const detail of problems) report.violations.push({ step, sync, check: name, detail });
      }
    };
    const openState = async () => (state ??= await openStateStore(`sqlite://${statePath}`));
    const records = async (sync: string): Promise<RecordView[]> => {
      const state = await openState();
      const local = (await state.listRecords(sync)).map((r) => ({ pk: r.pk, status: r.status, attempts: r.attempts, hasCells: r.hasCells }));
      if (o.changeDetection === 'local') return local;
      // The snapshot in the warehouse, with the journal a killed run left on top of it: where the records are.
      const world = worlds.find((w) => w.name === sync)!;
      const byPk = new Map((await world.table.snapshot(STATE_SCHEMA, snapshotTableName(sync))).map((r) => [r.pk, r]));
      for await (const entries of state.streamJournal(sync)) {
        for (const e of entries) {
          if (e.op === 'delete') byPk.delete(e.pk);
          else byPk.set(e.pk, { pk: e.pk, status: e.status, attempts: e.attempts, hasCells: e.cellsText !== null });
        }
      }
      return [...byPk.values()];
    };
    /** The sync's run history as `runs --json` and the API print it. */
    const history = async (sync: string): Promise<string> => JSON.stringify(await (await openState()).listRuns({ sync, limit: 1000 }));
    const closeState = async () => {
      await state?.close();
      state = undefined;
    };

    const runStep = async (plan: StepPlan, world: SyncWorld): Promise<ChildOutcome> => {
      emu.control.clearRequestLog();
      if (plan.faults) emu.control.setFaults({ ...plan.faults, kinds: [...plan.faults.kinds] });
      const outcome = await runSyncChild({
        via: plan.via,
        configPath,
        sync: world.name,
        emulatorUrl: emu.url,
        env,
        kill: plan.kill,
        usersRequests: () => emu.control.requestLog().filter((e) => e.path.endsWith('/users')).length,
        timeoutMs: CHILD_TIMEOUT_MS[plan.via],
      });
      emu.control.setFaults({ rate: 0, kinds: [] });
      let expired = false;
      for (const e of emu.control.requestLog()) {
        if (e.fault === undefined) continue;
        report.faults[e.fault as ChaosFaultKind]++;
        if (e.fault === 'token_expiry') expired = true;
      }
      if (expired) {
        // The token "expired" mid-run; a person would renew it before the next run.
        emu.control.setTokenState(DEFAULT_TOKEN, 'valid');
        report.tokenRenewals++;
      }
      tally(report, plan, outcome);
      return outcome;
    };

    const checkStep = async (plan: StepPlan, world: SyncWorld, outcome: ChildOutcome) => {
      const step = plan.index;
      const sync = world.name;
      const expected = world.population.expected();
      const members = emu.control.members(world.audienceId) as Member[];
      const recs = await records(sync);
      const runs = await history(sync);
      await closeState();
      if (!outcome.killed) {
        const problems: string[] = [];
        if (outcome.hung) problems.push(`the sync process did not finish within ${CHILD_TIMEOUT_MS[plan.via] / 1000} s`);
        else if (outcome.busy) problems.push(`the run found the sync busy after the previous run ended: ${outcome.busy}`);
        else if (!outcome.summary) problems.push(`no run summary: ${outcome.error ?? lastLine(outcome.stderr)}`);
        check(step, sync, 'run-completed', problems);
      }
      const summary = outcome.summary;
      if (summary?.status === 'success') {
        check(step, sync, 'mirror', checkMirror(expected, members));
        check(step, sync, 'state-complete', checkStateComplete(expected.keys(), recs));
      }
      check(step, sync, 'tracked-members', checkTrackedMembers(members, new Set(expected.keys()), recs));
      check(step, sync, 'retry-budget', checkRetryBudget(recs, o.maxAttempts));
      if (outcome.maxRssMb !== undefined) {
        report.peakRssMb = Math.max(report.peakRssMb, outcome.maxRssMb);
        check(step, sync, 'memory', checkMemory(outcome.maxRssMb, o.memoryLimitMb));
      }
      if (plan.via === 'cli' && summary && !outcome.killed) {
        const want = summary.status === 'success' ? 0 : 1;
        check(step, sync, 'exit-code', outcome.exitCode === want ? [] : [`the CLI exited ${outcome.exitCode} for a ${summary.status} run (expected ${want})`]);
      }
      check(step, sync, 'no-pii', scanForPii(dir, statePath, { 'the run history': runs, 'the sync process output': outcome.stdout + outcome.stderr }, needles()));
    };

    // ---- the randomized steps ----
    const names = worlds.map((w) => w.name);
    let index = 0;
    for (; o.steps !== undefined ? index < o.steps : performance.now() - started < o.durationMs; index++) {
      const plan = planStep(rng, index, names);
      const world = worlds.find((w) => w.name === plan.sync)!;
      const churn = world.population.churn(plan.churn);
      await world.table.write(world.population.rows());
      const outcome = await runStep(plan, world);
      await checkStep(plan, world, outcome);
      o.log(describeStep(plan, churn, outcome));
      if (report.violations.length > 0) {
        index++;
        break;
      }
    }
    report.steps = index;

    // ---- settle: faults off, every sync must converge within a few clean runs ----
    if (report.violations.length === 0) {
      for (const world of worlds) {
        let settled = false;
        for (let attempt = 0; attempt < 3 && !settled; attempt++) {
          const plan: StepPlan = { index: report.steps + attempt, sync: world.name, churn: { adds: 0, readds: 0, updates: 0, cosmetic: 0, removes: 0, nullKeys: 0 }, faults: undefined, kill: { kind: 'none' }, via: 'runner' };
          const outcome = await runStep(plan, world);
          await checkStep(plan, world, outcome);
          o.log(`settle ${world.name}: ${outcome.summary?.status ?? outcome.error ?? 'no summary'}`);
          settled = outcome.summary?.status === 'success';
        }
        if (!settled) {
          report.violations.push({ step: report.steps, sync: world.name, check: 'mirror', detail: 'did not converge: 3 runs without faults did not end in success' });
        }
        report.syncs.push({ name: world.name, warehouse: world.warehouse, people: world.population.size, members: emu.control.members(world.audienceId).length, settled });
      }
    }

    // ---- served: a model failing on a raw value, run through `serve`; nothing a person sees may show it ----
    if (report.violations.length === 0) {
      const served = await serveRuns({ configPath, env, syncs: worlds.map((w) => poisonSync(w.name)), timeoutMs: CHILD_TIMEOUT_MS.runner });
      for (const run of served.runs) {
        const problems = run.status === 'failed' ? [] : [`a model failing on a raw value ended ${run.status ?? 'without finishing'} through serve`];
        const texts = { 'GET /api/runs/:id': run.api, 'the dashboard run page': run.page, 'the run history': await history(run.sync), 'the serve log': served.log };
        await closeState();
        problems.push(...scanForPii(dir, statePath, texts, needles()));
        check(report.steps, run.sync, 'no-pii-served', problems);
      }
    }
  } finally {
    await state?.close();
    await emulator?.close();
    await postgres?.stop();
    report.seconds = (performance.now() - started) / 1000;
    if (o.keep || report.violations.length > 0) report.workDir = dir;
    else rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

function emptyReport(seed: number, changeDetection: ChaosReport['changeDetection']): ChaosReport {
  return {
    seed,
    changeDetection,
    steps: 0,
    seconds: 0,
    runs: { total: 0, viaCli: 0, success: 0, partial: 0, failed: 0, killed: 0, busy: 0, hung: 0, crashed: 0 },
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<ChaosFaultKind, number>,
    kills: 0,
    tokenRenewals: 0,
    checks: Object.fromEntries(CHECK_NAMES.map((c) => [c, { passed: 0, failed: 0 }])) as ChaosReport['checks'],
    violations: [],
    peakRssMb: 0,
    syncs: [],
  };
}

function tally(report: ChaosReport, plan: StepPlan, outcome: ChildOutcome): void {
  report.runs.total++;
  if (plan.via === 'cli') report.runs.viaCli++;
  if (outcome.killed) report.kills++;
  const kind: RunOutcomeKind = outcome.killed ? 'killed' : outcome.hung ? 'hung' : outcome.busy ? 'busy' : (outcome.summary?.status ?? 'crashed');
  report.runs[kind]++;
}

async function createAudience(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v25.0/act_${DEFAULT_AD_ACCOUNT}/customaudiences`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
  });
  const body = (await res.json()) as { id?: string };
  if (!body.id) throw new Error(`the emulator did not create an audience: ${JSON.stringify(body)}`);
  return body.id;
}

function writeConfig(dir: string, graphUrl: string, worlds: readonly SyncWorld[], o: { maxAttempts: number; batchRows: number; changeDetection: 'local' | 'warehouse' }): string {
  const sources: Record<string, unknown> = {};
  for (const w of worlds) {
    sources[w.name] = {
      ...(w.warehouse === 'duckdb' ? { type: 'duckdb', path: './warehouse.duckdb' } : { type: 'postgres', url: '${CHAOS_PG_URL}' }),
      ...(o.changeDetection === 'warehouse' ? { stateSchema: STATE_SCHEMA } : {}),
    };
  }
  const sync = (w: SyncWorld, name: string, model: string) => ({
    name,
    source: w.name,
    model,
    primaryKey: 'user_id',
    audience: { id: w.audienceId },
    mode: 'mirror',
    defaultPhoneCountry: 'US',
    mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', COUNTRY: 'country' },
    maxAttempts: o.maxAttempts,
    batchRows: o.batchRows,
    changeDetection: o.changeDetection,
  });
  const config = {
    version: 1,
    state: { url: 'sqlite://./state.db' },
    meta: { accessToken: '${META_ACCESS_TOKEN}', adAccountId: `act_${DEFAULT_AD_ACCOUNT}`, graphUrl },
    sources,
    syncs: worlds.flatMap((w) => [sync(w, w.name, 'select * from customers'), sync(w, poisonSync(w.name), POISON_MODEL)]),
  };
  const path = join(dir, 'audience-sync.yml');
  writeFileSync(path, stringify(config));
  return path;
}

/**
 * A sync over the same table whose model fails on a row's raw e-mail address, name and phone number
 * together: the warehouse quotes them in its error, which must reach no one.
 */
const POISON_MODEL = `select user_id, cast(email || ' ' || first_name || ' ' || phone as integer) as email, phone, first_name, country from customers`;
const poisonSync = (sync: string) => `${sync}-poison`;

/** The state database (with its WAL), anything under .audience-sync (spools, spill files), and `texts` (output, history, pages) by where they were seen. */
function scanForPii(dir: string, statePath: string, texts: Readonly<Record<string, string>>, needles: ReadonlySet<string>): string[] {
  // DuckDB's spill files are the warehouse's own rows while it sorts them, in the run's private folder
  // (removed with it, or by the next run after a kill): the only files here meant to hold raw values.
  const written = listFiles(join(dir, '.audience-sync')).filter((f) => !/^duckdb_temp/.test(basename(f)));
  const files = [statePath, `${statePath}-wal`, `${statePath}-shm`, ...written].filter((f) => existsSync(f));
  const problems: string[] = [];
  const report = (where: string, text: string) => {
    const hits = findPii(text, needles);
    if (hits.length) problems.push(`${hits.length} raw values in ${where}: ${hits.slice(0, 3).map((h) => `${h.kind} ${h.redacted}`).join(', ')}`);
  };
  for (const f of files) report(f.slice(dir.length + 1), readFileSync(f).toString('utf8'));
  for (const [where, text] of Object.entries(texts)) report(where, text);
  return problems;
}

function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => join(root, f))
    .filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile());
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

function describeStep(plan: StepPlan, churn: ReturnType<Population['churn']>, outcome: ChildOutcome): string {
  const faults = plan.faults ? `${plan.faults.kinds.join('+')}@${plan.faults.rate} ${plan.faults.phase}` : 'no faults';
  const kill = plan.kill.kind === 'none' ? '' : plan.kill.kind === 'timer' ? ` kill@${plan.kill.afterMs}ms` : ` kill@users#${plan.kill.n}`;
  const result = outcome.killed ? 'KILLED' : outcome.hung ? 'HUNG' : outcome.busy ? 'busy' : (outcome.summary?.status ?? `crashed (${outcome.error ?? ''})`);
  const rss = outcome.maxRssMb !== undefined ? `, ${outcome.maxRssMb.toFixed(0)} MB` : '';
  return `step ${plan.index} ${plan.sync} via ${plan.via}: +${churn.added + churn.readded} ~${churn.updated} -${churn.removed} | ${faults}${kill} | ${result} (${outcome.seconds.toFixed(1)} s${rss})`;
}
