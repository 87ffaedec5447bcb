import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDateFormatCounter, createRecordEncoder, type DateFormat, type DateFormatCount } from '../identity/index.js';
import type { EngineSource, EngineStore } from './ports.js';
import { encoderSignature, forceHint, safeguardRefusal } from './run.js';
import { disposeScan, scanModel } from './scan.js';
import { emptyCounts, type ErrorSample, type RunCounts, type SyncSpec } from './types.js';

export interface SyncPlan {
  sync: string;
  mode: SyncSpec['mode'];
  schema: readonly string[];
  counts: RunCounts;
  /** Rows that would be sent: removals, then adds (or the replace upload). */
  toRemove: number;
  toSend: number;
  /** Why a real run would refuse to send, if it would. */
  refusal?: string;
  /**
   * Per column mapped to DOBY/DOBM/DOBD that holds text: how many values each dateFormat would read, next to the
   * sync's own. Absent when no such column is mapped (DATE and TIMESTAMP columns are read as dates).
   */
  dateFormats?: { dateFormat: DateFormat; columns: DateFormatCount[] };
  errorSamples: ErrorSample[];
  /** One request body as it would go to Meta, with hashed values only. */
  sampleRequest?: { endpoint: string; payload: { schema: readonly string[]; is_raw: true; data: Array<ReadonlyArray<string | number>> } };
}

/**
 * A dry run: the same scan as a real run, with every row encoded for the coverage report, but no
 * lock, no state write, no call to Meta and nothing sent (no audience is created either).
 */
export async function planSync(spec: SyncSpec, deps: { source: EngineSource; store: EngineStore; workDir?: string }): Promise<SyncPlan> {
  const encoder = createRecordEncoder(spec.mapping, spec.identity);
  const info = await deps.store.getSyncInfo(spec.name);
  const baseline = await deps.store.getCoverageBaseline(spec.name);
  const counts = emptyCounts();
  const samples: ErrorSample[] = [];
  const dates = createDateFormatCounter(spec.mapping);
  const scan = await scanModel(spec, encoder, deps.source, deps.store, counts, samples, {
    workDir: deps.workDir ?? join(tmpdir(), 'audience-sync'),
    signature: encoderSignature(spec, encoder),
    encodeAll: true,
    staleRemoval: info?.schemaSignature == null || info.schemaSignature === encoder.schema.join(','),
    ...(dates ? { onRow: dates.observe } : {}),
  });
  const dateColumns = dates?.counts() ?? [];
  try {
    const refusal = safeguardRefusal(spec, counts, scan, baseline, forceHint('plan', spec.name));
    const sample = scan.sampleDeliveries;
    return {
      sync: spec.name,
      mode: spec.mode,
      schema: encoder.schema,
      counts,
      toRemove: scan.removals.size,
      toSend: scan.deliveries.size,
      ...(refusal ? { refusal } : {}),
      ...(dateColumns.length > 0 ? { dateFormats: { dateFormat: spec.identity.dateFormat ?? 'iso', columns: dateColumns } } : {}),
      errorSamples: samples,
      ...(sample.length > 0
        ? { sampleRequest: { endpoint: `/{audience_id}/${spec.mode === 'replace' ? 'usersreplace' : 'users'}`, payload: { schema: encoder.schema, is_raw: true as const, data: sample.map((d) => d.c) } } }
        : {}),
    };
  } finally {
    await disposeScan(scan);
  }
}
