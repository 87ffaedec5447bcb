import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createRecordEncoder, type RecordEncoder } from '../identity/index.js';
import { deliverSpool } from './deliver.js';
import type { Delivery } from './diff.js';
import type { EngineGraph, EngineSource, EngineStore } from './ports.js';
import { disposeScan, scanModel, type ScanResult } from './scan.js';
import type { Spool } from './spool.js';
import { emptyCounts, type EngineEvent, type ErrorSample, type RecordWrite, type RunSummary, type SyncSpec } from './types.js';

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
  /** Skip the safeguards (empty model, too many removals). */
  force?: boolean;
  trigger?: string;
}

export class SyncBusyError extends Error {
  override readonly name = 'SyncBusyError';
}

/**
 * One run of one sync: extract → validate keys → diff → identity → safeguards → deliver → commit,
 * recorded in the run history. Never throws for a failed run (the summary says why); throws
 * SyncBusyError when another run of the same sync holds the lock.
 */
export async function runSync(spec: SyncSpec, deps: EngineDeps, options: RunOptions = {}): Promise<RunSummary> {
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
    const encoder = createRecordEncoder(spec.mapping, spec.identity);
    const schemaSignature = encoder.schema.join(',');
    const info = await store.getSyncInfo(spec.name);
    const schemaChanged = info?.schemaSignature != null && info.schemaSignature !== schemaSignature;
    if (schemaChanged) {
      warn(`the mapping changed the audience's schema from [${info!.schemaSignature}] to [${schemaSignature}]: every record is re-sent, and Meta may refuse uploads to an audience whose data source was set by the old schema (error 2650); if it does, sync into a new audience`);
    }
    audienceId = await resolveAudience(spec, deps, info?.audienceId ?? null);
    await store.saveSyncInfo(spec.name, { audienceId, schemaSignature });

    deps.onEvent?.({ type: 'phase', phase: 'extract' });
    try {
      scan = await scanModel(spec, encoder, deps.source, store, counts, samples, {
        workDir: deps.workDir,
        signature: encoderSignature(spec, encoder),
        encodeAll: false,
        staleRemoval: !schemaChanged,
        onProgress: (done) => deps.onEvent?.({ type: 'progress', phase: 'extract', done }),
      });
    } finally {
      // Freeing memory must never fail the run: the next read opens the source again anyway.
      await deps.source.release?.().catch(() => undefined);
    }

    deps.onEvent?.({ type: 'planned', counts: { ...counts }, toRemove: scan.removals.size, toSend: scan.deliveries.size });
    deps.onEvent?.({ type: 'phase', phase: 'safeguards' });
    const refusal = options.force ? undefined : safeguardRefusal(spec, counts.extracted, scan);
    if (refusal) {
      status = 'failed';
      error = refusal;
    } else {
      await applySpool(store, spec.name, scan.stateWrites);
      status = await deliver(spec, deps, encoder, audienceId, scan, counts, samples);
    }
  } catch (e) {
    status = 'failed';
    error = e instanceof Error ? e.message : String(e);
  } finally {
    clearInterval(refresher);
  }
  if (status === 'success' && counts.failed > 0) status = 'partial';

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
    return deliverSpool(spool, { ...common, op: p, onProgress: (done, total) => deps.onEvent?.({ type: 'progress', phase: p, done, total }) });
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

/** The empty-model and mass-removal guards: a broken model must never wipe an audience. */
export function safeguardRefusal(spec: SyncSpec, extracted: number, scan: Pick<ScanResult, 'members' | 'departures' | 'deliveries'>): string | undefined {
  if (scan.members > 0 && (extracted === 0 || (spec.mode === 'replace' && scan.deliveries.size === 0))) {
    return `refused: the model returned ${extracted === 0 ? 'no rows' : 'no usable rows'} while the audience holds ${scan.members} records from earlier runs; nothing was sent. If the model really is empty now, rerun with --force.`;
  }
  const removesOnDeparture = spec.mode === 'mirror' || spec.mode === 'delete';
  if (removesOnDeparture && scan.members > 0 && scan.departures / scan.members > spec.maxRemovalShare) {
    const share = ((scan.departures / scan.members) * 100).toFixed(1);
    return `refused: this run would remove ${scan.departures} of ${scan.members} records (${share}%), above maxRemovalShare ${spec.maxRemovalShare * 100}%; nothing was sent. Check the model; if the removals are intended, rerun with --force or raise maxRemovalShare.`;
  }
  return undefined;
}

async function resolveAudience(spec: SyncSpec, deps: EngineDeps, recorded: string | null): Promise<string> {
  if ('id' in spec.audience) return spec.audience.id;
  if (recorded) return recorded;
  const { name, description, valueBased } = spec.audience.create;
  const created = await deps.graph.createCustomAudience(deps.adAccountId, {
    name,
    ...(description !== undefined ? { description } : {}),
    ...(valueBased !== undefined ? { valueBased } : {}),
  });
  return created.id;
}

async function acquireLock(store: EngineStore, sync: string, holder: string, ttl: number): Promise<boolean> {
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

function processAlive(pid: number): boolean {
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
