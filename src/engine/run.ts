import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createRecordEncoder, type RecordEncoder } from '../identity/index.js';
import { checkAudience, createAudience } from './audience.js';
import { coverageDrops, describeDrops, type CoverageBaseline } from './coverage.js';
import { deliverSpool } from './deliver.js';
import type { Delivery } from './diff.js';
import { pickUpMatches } from './match.js';
import type { AudienceRef, EngineGraph, EngineSource, EngineStore } from './ports.js';
import { disposeScan, scanModel, type ScanResult } from './scan.js';
import type { Spool } from './spool.js';
import { PhaseTimer } from './timings.js';
import { emptyCounts, type EngineEvent, type ErrorSample, type RecordWrite, type RunCounts, type RunSummary, type SyncSpec } from './types.js';

/**
 * Bumped whenever a normalization rule changes. It is part of every row's fingerprint, so the next run re-encodes
 * every record once and sends only those whose cells changed (classify() compares them; docs/identity.md).
 */
export const IDENTITY_RULES_VERSION = 2;
const MAX_BATCH_ROWS = 10_000;

export interface EngineDeps {
  source: EngineSource;
  store: EngineStore;
  graph: EngineGraph;
  adAccountId: string;
  /** Where plan spools go (hashed cells only); removed after the run. */
  workDir: string;
  onEvent?: (e: EngineEvent) => void;
  lockTtlMs?: number;
}

export interface RunOptions {
  /** Skip the safeguards (empty model, identifier coverage drop, too many removals). */
  force?: boolean;
  /** What started the run (cli, dashboard, api, schedule, ...); a refusal names the override available there. */
  trigger?: string;
}

export class SyncBusyError extends Error {
  override readonly name = 'SyncBusyError';
}

/**
 * One run of one sync: check the audience → extract → validate keys → diff → identity → safeguards →
 * (create the audience) → deliver → commit, recorded in the run history. Never throws for a failed run
 * (the summary says why); throws SyncBusyError when another run of the same sync holds the lock.
 */
export async function runSync(spec: SyncSpec, untimedDeps: EngineDeps, options: RunOptions = {}): Promise<RunSummary> {
  const timer = new PhaseTimer();
  const deps: EngineDeps = { ...untimedDeps, source: timer.source(untimedDeps.source), store: timer.store(untimedDeps.store), graph: timer.graph(untimedDeps.graph) };
  const { store } = deps;
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const ttl = deps.lockTtlMs ?? 60_000;
  if (!(await acquireLock(store, spec.name, holder, ttl))) {
    throw new SyncBusyError(`sync "${spec.name}" is already running (lock held by ${await store.lockHolder(spec.name)}); wait for it to finish`);
  }
  const refresher = setInterval(() => void store.refreshLock(spec.name, holder, ttl).catch(() => undefined), Math.max(1000, ttl / 3));
  refresher.unref();

  const startedAt = new Date();
  const counts = emptyCounts();
  const samples: ErrorSample[] = [];
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    deps.onEvent?.({ type: 'warning', message });
  };
  let runId: number | undefined;
  let audienceId: string | undefined;
  let scan: ScanResult | undefined;
  let status: RunSummary['status'];
  let error: string | undefined;

  try {
    runId = await store.startRun(spec.name, options.trigger ?? 'manual');
    deps.onEvent?.({ type: 'run_started', runId });
    await timer.time('commit', async () => store.prepareRun?.(spec.name, warn));
    const encoder = createRecordEncoder(spec.mapping, spec.identity);
    const schemaSignature = schemaSignatureOf(encoder.schema);
    const info = await store.getSyncInfo(spec.name);
    const schemaChanged = info?.schemaSignature != null && info.schemaSignature !== schemaSignature;
    if (schemaChanged) {
      warn(`the mapping changed the audience's schema from [${info!.schemaSignature}] to [${schemaSignature}]: every record is re-sent, and Meta may refuse uploads to an audience whose data source was set by the old schema (error 2650); if it does, sync into a new audience`);
    }
    // A broken token or an unreachable Graph API fails the run here, even when there is nothing to send.
    audienceId = await checkAudience(spec, deps.graph, deps.adAccountId, info, warn, (a) => recordSize(counts, a));
    // Meta's match counts for earlier runs: read only when one of them still waits for them, never waited for.
    await pickUpMatches(spec.name, deps.graph, store).catch((e: unknown) => warn(`could not read Meta's match counts of earlier runs (the next run tries again): ${e instanceof Error ? e.message : String(e)}`));
    const baseline = await store.getCoverageBaseline(spec.name);

    deps.onEvent?.({ type: 'phase', phase: 'extract' });
    try {
      scan = await timer.time('plan', () => scanModel(spec, encoder, deps.source, store, counts, samples, {
        workDir: deps.workDir,
        signature: encoderSignature(spec, encoder),
        encodeAll: false,
        staleRemoval: !schemaChanged,
        onProgress: (done) => deps.onEvent?.({ type: 'progress', phase: 'extract', done }),
      }));
    } finally {
      // Freeing memory must never fail the run: the next read opens the source again anyway.
      await deps.source.release?.().catch(() => undefined);
    }

    deps.onEvent?.({ type: 'planned', counts: { ...counts }, toRemove: scan.removals.size, toSend: scan.deliveries.size });
    deps.onEvent?.({ type: 'phase', phase: 'safeguards' });
    const refusal = options.force ? undefined : safeguardRefusal(spec, counts, scan, baseline, forceHint(options.trigger, spec.name));
    if (refusal) {
      status = 'failed';
      error = refusal;
      setPlannedOnly(counts, scan);
    } else {
      // Only now, with the model read and the safeguards passed, is a missing audience created.
      audienceId ??= await createAudience(spec, deps.graph, deps.adAccountId);
      await store.saveSyncInfo(spec.name, { audienceId, schemaSignature });
      await applySpool(store, spec.name, scan.stateWrites);
      status = await deliver(spec, deps, encoder, audienceId, scan, counts, samples, timer);
    }
  } catch (e) {
    status = 'failed';
    error = e instanceof Error ? e.message : String(e);
  } finally {
    clearInterval(refresher);
    // Writes kept aside (warehouse change detection's journal) go where they belong, also after a failure.
    await timer.time('commit', async () => store.settleRun?.(spec.name, warn)).catch((e: unknown) => warn(e instanceof Error ? e.message : String(e)));
    // A run that failed before reading the model (at the audience check) still lets go of the source it opened.
    await deps.source.release?.().catch(() => undefined);
  }
  if (status === 'success' && counts.failed > 0) status = 'partial';
  if (status === 'success' && counts.modelCoverage) {
    // The next run's coverage safeguard compares against this run. Failing to save it must not fail a run that delivered.
    await store.saveCoverageBaseline(spec.name, { ...counts.modelCoverage, mapping: spec.mapping }).catch((e: unknown) => warn(`could not save the identifier coverage for the next run's safeguard: ${e instanceof Error ? e.message : String(e)}`));
  }

  const summary: RunSummary = {
    ...(runId !== undefined ? { runId } : {}),
    sync: spec.name,
    ...(audienceId !== undefined ? { audienceId } : {}),
    mode: spec.mode,
    status,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    counts,
    ...(error !== undefined ? { error } : {}),
    errorSamples: samples,
    warnings,
    timings: timer.timings(),
  };
  try {
    if (runId !== undefined) await store.finishRun(runId, summary);
  } finally {
    if (scan) await disposeScan(scan);
    await store.releaseLock(spec.name, holder).catch(() => undefined);
  }
  return summary;
}

async function deliver(
  spec: SyncSpec,
  deps: EngineDeps,
  encoder: RecordEncoder,
  audienceId: string,
  scan: ScanResult,
  counts: RunSummary['counts'],
  samples: ErrorSample[],
  timer: PhaseTimer,
): Promise<RunSummary['status']> {
  const common = {
    sync: spec.name,
    audienceId,
    schema: encoder.schema,
    ...(spec.batchRows !== undefined ? { batchRows: spec.batchRows } : {}),
    maxAttempts: spec.maxAttempts,
    graph: deps.graph,
    store: deps.store,
    counts,
    samples,
    externIdIndex: encoder.schema.indexOf('EXTERN_ID'),
  };
  const phase = (p: 'remove' | 'add' | 'replace', spool: Spool<Delivery>) => {
    deps.onEvent?.({ type: 'phase', phase: p, total: spool.size });
    const send = () => deliverSpool(spool, { ...common, op: p, onProgress: (done, total) => deps.onEvent?.({ type: 'progress', phase: p, done, total }) });
    return timer.time(p === 'remove' ? 'remove' : 'add', send);
  };
  let failedBatches = 0;
  if (spec.mode === 'replace') {
    failedBatches += await phase('replace', scan.deliveries);
    await applySpool(deps.store, spec.name, scan.afterReplace);
  } else {
    failedBatches += await phase('remove', scan.removals);
    failedBatches += await phase('add', scan.deliveries);
  }
  return failedBatches > 0 ? 'partial' : 'success';
}

/**
 * The empty-model, identifier-coverage and mass-removal guards: a broken model must never wipe an
 * audience or strip its members of identifiers. `hint` names the override where the run was started.
 */
export function safeguardRefusal(
  spec: SyncSpec,
  counts: Pick<RunCounts, 'extracted' | 'modelCoverage'>,
  scan: Pick<ScanResult, 'members' | 'departures' | 'deliveries'>,
  baseline: CoverageBaseline | undefined,
  hint: string,
): string | undefined {
  const { extracted } = counts;
  if (scan.members > 0 && (extracted === 0 || (spec.mode === 'replace' && scan.deliveries.size === 0))) {
    return `refused: the model returned ${extracted === 0 ? 'no rows' : 'no usable rows'} while the audience holds ${scan.members} records from earlier runs; nothing was sent. If the model really is empty now, ${hint}.`;
  }
  const drops = counts.modelCoverage ? coverageDrops(counts.modelCoverage, baseline, spec.mapping, spec.minCoverageRatio) : [];
  if (drops.length > 0) {
    return `refused: ${describeDrops(drops)} at the last successful run, below minCoverageRatio ${spec.minCoverageRatio * 100}% of it; nothing was sent. Check the model for a column that became empty; if the drop is intended, ${hint} or lower minCoverageRatio.`;
  }
  const removesOnDeparture = spec.mode === 'mirror' || spec.mode === 'delete';
  if (removesOnDeparture && scan.members > 0 && scan.departures / scan.members > spec.maxRemovalShare) {
    const share = ((scan.departures / scan.members) * 100).toFixed(1);
    return `refused: this run would remove ${scan.departures} of ${scan.members} records (${share}%), above maxRemovalShare ${spec.maxRemovalShare * 100}%; nothing was sent. Check the model; if the removals are intended, ${hint} or raise maxRemovalShare.`;
  }
  return undefined;
}

/**
 * The sync's audience before a run sends to it (`test-record` before the first sync): the configured
 * or recorded one, or the one this sync created earlier, else one created and recorded exactly as a
 * run does, so the run then uses it.
 */
export async function ensureAudience(
  spec: SyncSpec,
  deps: Pick<EngineDeps, 'graph' | 'adAccountId' | 'store'>,
  schema: readonly string[],
  warn: (message: string) => void = () => undefined,
): Promise<string> {
  const info = await deps.store.getSyncInfo(spec.name);
  const audienceId = (await checkAudience(spec, deps.graph, deps.adAccountId, info, warn)) ?? (await createAudience(spec, deps.graph, deps.adAccountId));
  if (!('id' in spec.audience) && audienceId !== info?.audienceId) {
    await deps.store.saveSyncInfo(spec.name, { audienceId, schemaSignature: info?.schemaSignature ?? schemaSignatureOf(schema) });
  }
  return audienceId;
}

/** Meta's size bounds of the audience at the start of the run, when it has computed them. */
function recordSize(counts: RunCounts, a: AudienceRef): void {
  const { approximateCountLowerBound: lower, approximateCountUpperBound: upper } = a;
  if (lower !== undefined && upper !== undefined && lower >= 0 && upper >= 0) counts.audienceSize = { lower, upper };
}

/** What the state store keeps of a schema, to see when the mapping changes it. */
function schemaSignatureOf(schema: readonly string[]): string {
  return schema.join(',');
}

/** How to override a safeguard from where the run was started. */
export function forceHint(trigger: string | undefined, sync: string): string {
  switch (trigger) {
    case 'cli':
      return 'rerun with --force';
    case 'dashboard':
      return 'run it again from the dashboard with "skip safeguards" ticked';
    case 'api':
      return 'start it again with {"force": true}';
    default:
      return `run it once with \`audience-sync sync ${sync} --force\` or with "skip safeguards" in the dashboard`;
  }
}

/** A refused run sent nothing: its change counts move to `planned`, so no view reports them as done. */
function setPlannedOnly(counts: RunCounts, scan: Pick<ScanResult, 'removals' | 'deliveries'>): void {
  const { added, updated, deleted, retried } = counts;
  counts.planned = { added, updated, deleted, retried, toRemove: scan.removals.size, toSend: scan.deliveries.size };
  counts.added = counts.updated = counts.deleted = counts.retried = 0;
}

/** Takes the sync's lock (also for work besides runs that must not overlap one). */
export async function acquireLock(store: Pick<EngineStore, 'acquireLock' | 'lockHolder' | 'forceReleaseLock'>, sync: string, holder: string, ttl: number): Promise<boolean> {
  if (await store.acquireLock(sync, holder, ttl)) return true;
  // A run killed on this host leaves its lock behind: take it over when its process is gone.
  const current = await store.lockHolder(sync);
  const [host, pid] = (current ?? '').split(':');
  if (host === hostname() && pid !== undefined && !processAlive(Number(pid))) {
    await store.forceReleaseLock(sync);
    return store.acquireLock(sync, holder, ttl);
  }
  return false;
}

/** Whether a process with this id runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function applySpool(store: EngineStore, sync: string, spool: Spool<RecordWrite>): Promise<void> {
  for await (const batch of spool.batches(MAX_BATCH_ROWS)) await store.applyRecordWrites(sync, batch);
}

export function encoderSignature(spec: SyncSpec, encoder: RecordEncoder): string {
  const { now: _now, ...identity } = spec.identity;
  return JSON.stringify({ v: IDENTITY_RULES_VERSION, schema: encoder.schema, mapping: spec.mapping, identity });
}
