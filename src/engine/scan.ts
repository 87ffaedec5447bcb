import { mappedColumns, type EncodedRecord, type MatchKey, type RecordEncoder } from '../identity/index.js';
import { CoverageTally, filledMask } from './coverage.js';
import { classify, planRecord, type ClassifyContext, type Classified, type Delivery } from './diff.js';
import { rawFingerprint } from './fingerprint.js';
import { joinByKey, type Joined } from './join.js';
import { KeyTally } from './key-tally.js';
import type { ChangeSetReader, EngineSource, EngineStore } from './ports.js';
import { Spool } from './spool.js';
import type { Cell, ErrorSample, RecordWrite, RunCounts, StoredRecord, SyncSpec } from './types.js';

const MAX_ERROR_SAMPLES = 20;

/** Adds a run error sample while there is room: the key's hash and the EXTERN_ID cell, never other cells. */
export function addSample(samples: ErrorSample[], pkHash: string, reason: string, cells: readonly Cell[] | null | undefined, externIdIndex: number): void {
  if (samples.length >= MAX_ERROR_SAMPLES) return;
  const externId = externIdIndex >= 0 ? cells?.[externIdIndex] : undefined;
  samples.push({ pkHash, reason, ...(typeof externId === 'string' && externId !== '' ? { externId } : {}) });
}

/** The plan of one run, spooled: what to remove, what to add (or replace), what to write without sending. */
export interface ScanResult {
  removals: Spool<Delivery>;
  deliveries: Spool<Delivery>;
  stateWrites: Spool<RecordWrite>;
  afterReplace: Spool<RecordWrite>;
  /** Records that are in the audience according to our state. */
  members: number;
  /** Removals of records that left the model or became unusable (stale-identifier removals excluded). */
  departures: number;
  sampleDeliveries: Delivery[];
}

export interface ScanOptions {
  workDir: string;
  signature: string;
  encodeAll: boolean;
  staleRemoval: boolean;
  onProgress?: (extracted: number) => void;
  /** Sees every model row (plan counts what each dateFormat reads in them). */
  onRow?: (row: Record<string, unknown>) => void;
}

/**
 * Extract → validate keys → diff → identity, in one streaming pass of the model merge-joined with
 * our state (or, with warehouse change detection, of the change set the warehouse computed). Nothing
 * is sent and no state is written here: the outcome is spooled, so the safeguards can look at the
 * whole plan first.
 */
export async function scanModel(
  spec: SyncSpec,
  encoder: RecordEncoder,
  source: EngineSource,
  store: EngineStore,
  counts: RunCounts,
  samples: ErrorSample[],
  opts: ScanOptions,
): Promise<ScanResult> {
  if (source.changes) return scanChanges(spec, encoder, source.changes, counts, samples, opts);
  const columns = mappedColumns(spec.mapping);
  const planner = await KeyPlanner.create(spec, encoder, counts, samples, opts);
  const fingerprint = (row: Record<string, unknown>) => rawFingerprint(opts.signature, columns.map((c) => row[c]));
  try {
    const model = source.streamByKeyHash(spec.model, { primaryKey: spec.primaryKey, columns });
    for await (const joined of joinByKey(countRows(model, counts, opts.onProgress), store.streamRecords(spec.name))) {
      if (joined.kind === 'null_pk') planner.reject('null primary key', '');
      else await planner.take(joined, fingerprint);
    }
  } catch (error) {
    await planner.dispose();
    throw error;
  }
  return planner.finish();
}

/**
 * The scan with warehouse change detection: the same classify and plan per key, over the keys the
 * warehouse found changed; what stayed in the warehouse arrives as counts (unchanged rows, members,
 * which cells they fill). A key the model holds twice whose snapshot record did not change would not
 * come out: the counts tell (model rows that stayed ≠ snapshot records that stayed), as does a key
 * seen twice among the changes, and the scan is then done again with such keys brought out once each.
 */
async function scanChanges(spec: SyncSpec, encoder: RecordEncoder, changes: ChangeSetReader, counts: RunCounts, samples: ErrorSample[], opts: ScanOptions): Promise<ScanResult> {
  const before = { counts: structuredClone(counts), samples: samples.length };
  const fingerprintOf = (item: { fingerprint?: string }) => () => item.fingerprint!;
  for (const duplicates of [false, true]) {
    const planner = await KeyPlanner.create(spec, encoder, counts, samples, opts);
    const tally = new KeyTally(opts.workDir);
    // Snapshot records that stayed in the warehouse, by filled cells: synced ones with cells that did not come out.
    const stayed = new Map<number, number>();
    let modelRows = 0;
    let nullKeys = 0;
    let members = 0;
    let modelRowsOut = 0;
    let read = 0;
    let aggregates = 0;
    const leaves = (stored: StoredRecord | undefined) => {
      if (stored?.status !== 'synced' || !stored.hasCells) return;
      const mask = stored.filledMask ? stored.filledMask() : filledMask(stored.cells!);
      stayed.set(mask, (stayed.get(mask) ?? 0) - 1);
    };
    try {
      const read$ = changes.read(spec.model, { primaryKey: spec.primaryKey, columns: mappedColumns(spec.mapping), signature: opts.signature, duplicates });
      for await (const chunk of read$) {
        for (const item of chunk) {
          switch (item.kind) {
            case 'model':
              aggregates++;
              modelRows += item.rows;
              nullKeys += item.nullKeys;
              break;
            case 'snapshot':
              aggregates++;
              if (item.hasCells) members += item.count;
              if (item.status === 'synced' && item.hasCells) stayed.set(item.filledMask, (stayed.get(item.filledMask) ?? 0) + item.count);
              break;
            case 'duplicate':
              modelRowsOut += item.count;
              leaves(item.stored);
              await planner.take({ kind: 'duplicate_pk', pkHash: item.pkHash, count: item.count, stored: item.stored });
              break;
            case 'row':
              if (item.row) {
                modelRowsOut++;
                tally.add(item.pkHash);
              }
              leaves(item.stored);
              await planner.take({ kind: 'pair', pkHash: item.pkHash, row: item.row, stored: item.stored }, fingerprintOf(item));
              break;
          }
        }
        read += chunk.length;
        // Progress counts the change set's rows, not the summary rows the warehouse sends with them.
        opts.onProgress?.(read - aggregates);
      }
      const unchanged = [...stayed.values()].reduce((a, b) => a + b, 0);
      const consistent = modelRows - nullKeys - modelRowsOut === unchanged;
      if (!duplicates && (!consistent || tally.hasRepeats())) {
        // A key the model holds twice: scan again with such keys brought out (nothing was sent or written).
        await planner.dispose();
        restore(counts, samples, before);
        continue;
      }
      if (!consistent) {
        throw new Error(`the warehouse's change set does not add up (${modelRows - nullKeys} model rows with a key, ${modelRowsOut} changed, ${unchanged} unchanged): the model or the snapshot changed while it was read; nothing was sent, run the sync again`);
      }
      counts.extracted = modelRows;
      counts.changeSetRows = read - aggregates;
      counts.unchanged += unchanged;
      for (const [mask, n] of stayed) planner.coverage.addMany(mask, n);
      for (let i = 0; i < nullKeys; i++) planner.reject('null primary key', '');
      planner.members = members;
      return planner.finish();
    } catch (error) {
      await planner.dispose();
      throw error;
    } finally {
      tally.dispose();
    }
  }
  throw new Error('unreachable: the second scan either returns or throws');
}

function restore(counts: RunCounts, samples: ErrorSample[], before: { counts: RunCounts; samples: number }): void {
  for (const key of Object.keys(counts)) delete (counts as unknown as Record<string, unknown>)[key];
  Object.assign(counts, structuredClone(before.counts));
  samples.length = before.samples;
}

/** Classifies and plans one key at a time into the scan's spools; counts and samples as it goes. */
class KeyPlanner {
  members = 0;
  readonly coverage: CoverageTally;
  private readonly result: ScanResult;
  private readonly externIdIndex: number;
  /** The current key's fingerprint function (classify asks for it through `ctx`). */
  private fingerprint: (row: Record<string, unknown>) => string = unreachableFingerprint;
  private readonly ctx: ClassifyContext;

  private constructor(
    private readonly spec: SyncSpec,
    private readonly encoder: RecordEncoder,
    private readonly counts: RunCounts,
    private readonly samples: ErrorSample[],
    private readonly opts: ScanOptions,
    spools: Pick<ScanResult, 'removals' | 'deliveries' | 'stateWrites' | 'afterReplace'>,
  ) {
    this.result = { ...spools, members: 0, departures: 0, sampleDeliveries: [] };
    this.externIdIndex = encoder.schema.indexOf('EXTERN_ID');
    this.coverage = new CoverageTally(encoder.schema);
    this.ctx = {
      fingerprint: (row) => this.fingerprint(row),
      // With encodeAll every row is encoded (and tallied) before classify, which then encodes again untallied.
      encode: opts.encodeAll ? (row) => encoder.encode(row) : (row) => this.encode(row),
      maxAttempts: spec.maxAttempts,
    };
  }

  private encode(row: Record<string, unknown>): EncodedRecord {
    const encoded = this.encoder.encode(row);
    tallyCoverage(this.counts, this.encoder.schema, encoded);
    return encoded;
  }

  static async create(spec: SyncSpec, encoder: RecordEncoder, counts: RunCounts, samples: ErrorSample[], opts: ScanOptions): Promise<KeyPlanner> {
    const spools = {
      removals: await Spool.create<Delivery>(opts.workDir, 'remove'),
      deliveries: await Spool.create<Delivery>(opts.workDir, spec.mode === 'replace' ? 'replace' : 'add'),
      stateWrites: await Spool.create<RecordWrite>(opts.workDir, 'state'),
      afterReplace: await Spool.create<RecordWrite>(opts.workDir, 'forget'),
    };
    return new KeyPlanner(spec, encoder, counts, samples, opts, spools);
  }

  reject(reason: string, pkHash: string, encoded?: EncodedRecord): void {
    this.counts.rejected++;
    this.counts.rejectedByReason[reason] = (this.counts.rejectedByReason[reason] ?? 0) + 1;
    addSample(this.samples, pkHash, reason, encoded?.cells, this.externIdIndex);
  }

  /** One key: its model row (none when it left the model) and our record of it (none when new). */
  async take(joined: Exclude<Joined, { kind: 'null_pk' }>, fingerprint?: (row: Record<string, unknown>) => string): Promise<void> {
    const { spec, encoder, counts, opts, result } = this;
    const stored = joined.stored;
    if (stored?.hasCells) this.members++;
    if (joined.kind === 'duplicate_pk') {
      // Ambiguous: which row is the truth? Leave the record as it was and report the key.
      for (let i = 0; i < joined.count; i++) this.reject('duplicate primary key', joined.pkHash);
      return;
    }
    const row = joined.row;
    if (row) opts.onRow?.(row);
    const all = opts.encodeAll && row ? this.encode(row) : undefined;
    this.fingerprint = fingerprint ?? unreachableFingerprint;
    const c = classify(row, stored, this.ctx);
    if (row) this.coverage.add(all ? filledMask(all.cells) : (coverageMask(c, stored) ?? filledMask(encoder.encode(row).cells)));
    switch (c.change) {
      case 'added': counts.added++; break;
      case 'updated': counts.updated++; break;
      case 'retry': counts.retried++; break;
      case 'unchanged': counts.unchanged++; break;
      case 'deleted': counts.deleted++; break;
      case 'failed': this.gaveUp(joined.pkHash, stored!); break;
      case 'rejected': this.reject(c.encoded!.reasons.join('; ') || 'no usable identifier', joined.pkHash, c.encoded); break;
    }
    const plan = planRecord(spec.mode, joined.pkHash, c, stored, { staleRemoval: opts.staleRemoval });
    if (plan.remove) {
      await result.removals.write(plan.remove);
      if (plan.remove.ok === 'forget') result.departures++;
    }
    if (plan.deliver) {
      await result.deliveries.write(plan.deliver);
      if (result.sampleDeliveries.length < 3) result.sampleDeliveries.push(plan.deliver);
    }
    if (plan.write) await result.stateWrites.write(plan.write);
    if (plan.afterReplace) await result.afterReplace.write(plan.afterReplace);
  }

  /** The plan, with the spools finished; `counts.modelCoverage` set. */
  async finish(): Promise<ScanResult> {
    await this.finishSpools();
    this.counts.modelCoverage = this.coverage.result();
    return { ...this.result, members: this.members };
  }

  /** A failed scan leaves nothing on disk: its spools hold hashed cells and are of no use. */
  async dispose(): Promise<void> {
    await this.finishSpools();
    await disposeScan(this.result);
  }

  private async finishSpools(): Promise<void> {
    for (const s of [this.result.removals, this.result.deliveries, this.result.stateWrites, this.result.afterReplace]) await s.finish();
  }

  /** A record out of attempts is counted as failed on every run: say why, or the run has no error text. */
  private gaveUp(pkHash: string, stored: StoredRecord): void {
    this.counts.failed++;
    const reason = `not sent any more: Meta refused it ${stored.attempts} times (maxAttempts ${this.spec.maxAttempts}), last: ${stored.lastError ?? 'no error recorded'}. New data for this record, a higher maxAttempts or \`audience-sync retry ${this.spec.name}\` sends it again.`;
    // Checked first: reading the stored cells parses them.
    if (this.samples.length < MAX_ERROR_SAMPLES) addSample(this.samples, pkHash, reason, stored.cells, this.externIdIndex);
  }
}

const unreachableFingerprint = (): string => {
  throw new Error('a model row came without a fingerprint');
};

/**
 * Which of a row's cells hold a value, for the whole-model coverage, without encoding it again: from
 * the encoding when the diff made one, else from the cells the state holds for an unchanged row (the
 * same, since its fingerprint covers the encoder's signature). Undefined for the rare rest, which the
 * caller encodes.
 */
function coverageMask(c: Classified, stored: StoredRecord | undefined): number | undefined {
  if (c.encoded) return filledMask(c.encoded.cells);
  if (c.change !== 'unchanged' || !stored?.hasCells) return undefined;
  return stored.filledMask ? stored.filledMask() : filledMask(stored.cells!);
}

/** Removes a scan's spool files. */
export async function disposeScan(scan: Pick<ScanResult, 'removals' | 'deliveries' | 'stateWrites' | 'afterReplace'>): Promise<void> {
  for (const s of [scan.removals, scan.deliveries, scan.stateWrites, scan.afterReplace]) await s.dispose();
}

async function* countRows(
  model: AsyncIterable<Array<Record<string, unknown>>>,
  counts: RunCounts,
  onProgress?: (extracted: number) => void,
): AsyncGenerator<Array<Record<string, unknown>>> {
  for await (const chunk of model) {
    counts.extracted += chunk.length;
    onProgress?.(counts.extracted);
    yield chunk;
  }
}

function tallyCoverage(counts: RunCounts, schema: readonly MatchKey[], encoded: EncodedRecord): void {
  counts.encoded++;
  for (let i = 0; i < schema.length; i++) {
    const key = schema[i]!;
    const entry = (counts.coverage[key] ??= { usable: 0, dropReasons: {} });
    if (encoded.cells[i] !== '') entry.usable++;
  }
  for (const d of encoded.dropped) {
    const entry = (counts.coverage[d.key] ??= { usable: 0, dropReasons: {} });
    entry.dropReasons[d.reason] = (entry.dropReasons[d.reason] ?? 0) + 1;
  }
}
