/**
 * "Send test record": one model row, encoded exactly as a run would encode it, added to the sync's
 * audience in a session of its own. It checks the whole path (warehouse → identity → Meta) without a
 * run. The row's state is not touched: the next run sees the row as new and sends it again, which
 * Meta treats as the same member. Before the first sync of an `audience.create` sync, the audience is
 * created and recorded the way the run does it, so the run then uses the same audience.
 */
import { ensureAudience } from '../engine/index.js';
import { createRecordEncoder, mappedColumns, type MatchKey } from '../identity/index.js';
import { engineGraph, engineStore } from './adapters.js';
import { toSyncSpec, type Workspace } from './workspace.js';

export interface TestRecordResult {
  sync: string;
  audienceId: string;
  /** Match keys in the order of `cells`. */
  schema: MatchKey[];
  /** What was sent: hashes, EXTERN_ID / MADID, LOOKALIKE_VALUE. Never a raw email, phone or name. */
  cells: Array<string | number>;
  /** Match keys whose value could not be used, and why (no value is quoted). */
  dropped: Array<{ key: MatchKey; reason: string }>;
  numReceived: number;
  numInvalidEntries: number;
  invalidEntrySamples: string[];
}

/** The row cannot be sent; the message says why and what to do. */
export class TestRecordError extends Error {
  override readonly name = 'TestRecordError';
}

/**
 * Sends the model's first row (or the row whose primary key is `primaryKey`) to the sync's audience,
 * creating that audience first when the config says `audience.create` and no run has created it yet.
 * @throws TestRecordError when there is no such row or the row has no usable identifier; MetaApiError
 *   when Meta refuses the upload (or the audience's creation).
 */
export async function sendTestRecord(ws: Workspace, syncName: string, opts: { primaryKey?: string } = {}): Promise<TestRecordResult> {
  const sync = ws.sync(syncName);
  const spec = toSyncSpec(sync);
  const row = await ws.reading(() => findRow(ws, sync.source, sync.model, [...new Set([sync.primaryKey, ...mappedColumns(spec.mapping)])], sync.primaryKey, opts.primaryKey));
  if (!row) {
    throw new TestRecordError(
      opts.primaryKey === undefined
        ? `the model of sync "${sync.name}" returned no rows: there is nothing to send`
        : `the model of sync "${sync.name}" has no row whose ${sync.primaryKey} is the key given`,
    );
  }
  const encoder = createRecordEncoder(spec.mapping, spec.identity);
  const encoded = encoder.encode(row);
  if (encoded.rejected) {
    throw new TestRecordError(`that row of sync "${sync.name}" cannot be sent: ${encoded.reasons.join('; ')}`);
  }
  // Only now, so a model without a usable row creates nothing.
  const graph = ws.graph(sync.connection);
  const audienceId = await ensureAudience(spec, { graph: engineGraph(graph), adAccountId: sync.adAccountId, store: engineStore(await ws.state()) }, encoder.schema);
  const session = graph.openUploadSession('add', audienceId, encoder.schema, { estimatedTotal: 1 });
  const answer = await session.send([encoded.cells], { last: true });
  return {
    sync: sync.name,
    audienceId,
    schema: [...encoder.schema],
    cells: encoded.cells,
    dropped: encoded.dropped,
    numReceived: answer.numReceived,
    numInvalidEntries: answer.numInvalidEntries,
    invalidEntrySamples: answer.invalidEntrySamples,
  };
}

async function findRow(
  ws: Workspace,
  sourceName: string,
  model: string,
  columns: string[],
  primaryKey: string,
  wanted: string | undefined,
): Promise<Record<string, unknown> | undefined> {
  const source = await ws.source(sourceName);
  // Leaving the loop early closes the stream (the generator's finally releases the connection).
  for await (const chunk of source.stream(model, { columns, chunkRows: wanted === undefined ? 1 : 10_000 })) {
    for (const row of chunk) {
      if (wanted === undefined || String(row[primaryKey] ?? '') === wanted) return row;
    }
  }
  return undefined;
}
