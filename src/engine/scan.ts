import { mappedColumns, type EncodedRecord, type MatchKey, type RecordEncoder } from '../identity/index.js';
import { CoverageTally, filledMask } from './coverage.js';
import { classify, planRecord, type Classified, type Delivery } from './diff.js';
import { rawFingerprint } from './fingerprint.js';
import { joinByKey } from './join.js';
import type { EngineSource, EngineStore } from './ports.js';
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
 * our state. Nothing is sent and no state is written here: the outcome is spooled, so the
 * safeguards can look at the whole plan first.
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
  const columns = mappedColumns(spec.mapping);
  const spools = {
    removals: await Spool.create<Delivery>(opts.workDir, 'remove'),
    deliveries: await Spool.create<Delivery>(opts.workDir, spec.mode === 'replace' ? 'replace' : 'add'),
    stateWrites: await Spool.create<RecordWrite>(opts.workDir, 'state'),
    afterReplace: await Spool.create<RecordWrite>(opts.workDir, 'forget'),
  };
  const result: ScanResult = { ...spools, members: 0, departures: 0, sampleDeliveries: [] };
  const externIdIndex = encoder.schema.indexOf('EXTERN_ID');
  const reject = (reason: string, pkHash: string, encoded?: EncodedRecord) => {
    counts.rejected++;
    counts.rejectedByReason[reason] = (counts.rejectedByReason[reason] ?? 0) + 1;
    addSample(samples, pkHash, reason, encoded?.cells, externIdIndex);
  };
  // A record out of attempts is counted as failed on every run: say why, or the run has no error text.
  const gaveUp = (pkHash: string, stored: StoredRecord) => {
    counts.failed++;
    const reason = `not sent any more: Meta refused it ${stored.attempts} times (maxAttempts ${spec.maxAttempts}), last: ${stored.lastError ?? 'no error recorded'}. New data for this record, a higher maxAttempts or \`audience-sync retry ${spec.name}\` sends it again.`;
    // Checked first: reading the stored cells parses them.
    if (samples.length < MAX_ERROR_SAMPLES) addSample(samples, pkHash, reason, stored.cells, externIdIndex);
  };
  const encode = (row: Record<string, unknown>): EncodedRecord => {
    const encoded = encoder.encode(row);
    tallyCoverage(counts, encoder.schema, encoded);
    return encoded;
  };
  const ctx = {
    fingerprint: (row: Record<string, unknown>) => rawFingerprint(opts.signature, columns.map((c) => row[c])),
    encode,
    maxAttempts: spec.maxAttempts,
  };
  const coverage = new CoverageTally(encoder.schema);

  try {
    const model = source.streamByKeyHash(spec.model, { primaryKey: spec.primaryKey, columns });
    for await (const joined of joinByKey(countRows(model, counts, opts.onProgress), store.streamRecords(spec.name))) {
      if (joined.kind === 'null_pk') {
        reject('null primary key', '');
        continue;
      }
      const stored = joined.stored;
      if (stored?.hasCells) result.members++;
      if (joined.kind === 'duplicate_pk') {
        // Ambiguous: which row is the truth? Leave the record as it was and report the key.
        for (let i = 0; i < joined.count; i++) reject('duplicate primary key', joined.pkHash);
        continue;
      }
      const row = joined.row;
      if (row) opts.onRow?.(row);
      const all = opts.encodeAll && row ? ctx.encode(row) : undefined;
      const c = classify(row, stored, opts.encodeAll ? { ...ctx, encode: (r) => encoder.encode(r) } : ctx);
      if (row) coverage.add(all ? filledMask(all.cells) : (coverageMask(c, stored) ?? filledMask(encoder.encode(row).cells)));
      switch (c.change) {
        case 'added': counts.added++; break;
        case 'updated': counts.updated++; break;
        case 'retry': counts.retried++; break;
        case 'unchanged': counts.unchanged++; break;
        case 'deleted': counts.deleted++; break;
        case 'failed': gaveUp(joined.pkHash, stored!); break;
        case 'rejected': reject(c.encoded!.reasons.join('; ') || 'no usable identifier', joined.pkHash, c.encoded); break;
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
  } catch (error) {
    // A failed scan leaves nothing on disk: its spools hold hashed cells and are of no use.
    await disposeScan(result);
    throw error;
  } finally {
    for (const s of Object.values(spools)) await s.finish();
  }
  counts.modelCoverage = coverage.result();
  return result;
}

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
