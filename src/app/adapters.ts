// Adapters from our stores, warehouses and Graph client to the narrow ports the engine is written against.
import { DeliveryError, type CoverageBaseline, type EngineGraph, type EngineSource, type EngineStore, type RecordWrite, type RunSummary } from '../engine/index.js';
import { BatchBuilder, MetaApiError, type GraphClient } from '../meta/index.js';
import type { Source } from '../sources/index.js';
import type { RecordState, StateStore } from '../state/index.js';

export function engineStore(state: StateStore): EngineStore {
  return {
    // The state's records already have the engine's shape (cells parsed lazily, on first use).
    streamRecords: (sync) => state.streamRecords(sync),
    async applyRecordWrites(sync, writes) {
      if (writes.length === 0) return;
      const upsert: RecordState[] = [];
      const remove: string[] = [];
      for (const w of writes) {
        if (w.op === 'delete') remove.push(w.pk);
        else upsert.push(toRecordState(w));
      }
      await state.commitBatch(sync, { upsert, remove });
    },
    async getSyncInfo(sync) {
      const s = await state.getSync(sync);
      return s && { audienceId: s.audienceId, schemaSignature: s.schemaSignature };
    },
    saveSyncInfo: (sync, info) => state.updateSync(sync, info),
    async getCoverageBaseline(sync) {
      const text = await state.getValue(coverageKey(sync));
      return text === undefined ? undefined : (JSON.parse(text) as CoverageBaseline);
    },
    saveCoverageBaseline: (sync, baseline) => state.setValue(coverageKey(sync), JSON.stringify(baseline)),
    acquireLock: (sync, holder, ttl) => state.acquireLock(sync, holder, ttl),
    refreshLock: (sync, holder, ttl) => state.refreshLock(sync, holder, ttl),
    releaseLock: (sync, holder) => state.releaseLock(sync, holder),
    lockHolder: (sync) => state.lockHolder(sync),
    forceReleaseLock: (sync) => state.forceReleaseLock(sync),
    async startRun(sync, trigger) {
      // A run still marked running with no live lock was killed: close it before starting anew.
      await state.failAbandonedRuns(sync, 'the process running this sync stopped before the run finished');
      return state.startRun(sync, trigger);
    },
    finishRun: (runId, summary) => state.finishRun(runId, runOutcome(summary)),
    async runsAwaitingMatch(sync) {
      const since = Date.now() - MATCH_WAIT_MS;
      const runs = await state.listRuns({ sync, limit: MATCH_RUNS });
      return runs.flatMap((r) => {
        const { uploadSessions: ids, metaMatch, audienceId } = r.counts;
        const waiting = r.finishedAt !== null && r.finishedAt.getTime() >= since && metaMatch === undefined;
        return waiting && Array.isArray(ids) && ids.length > 0 && typeof audienceId === 'string' ? [{ runId: r.id, audienceId, sessionIds: ids.map(String) }] : [];
      });
    },
    async recordMatch(runId, match) {
      const run = await state.getRun(runId);
      if (run) await state.updateRunCounts(runId, { ...run.counts, metaMatch: match });
    },
  };
}

/**
 * Runs looked at for Meta's match counts: the newest few, finished in the last week. Meta processes a
 * session within hours; one it no longer lists is not asked about forever.
 */
const MATCH_RUNS = 20;
const MATCH_WAIT_MS = 7 * 24 * 3600 * 1000;

/** Counts per match key only: no value of the model is kept. */
const coverageKey = (sync: string) => `coverage-baseline:${sync}`;

function toRecordState(w: Extract<RecordWrite, { op: 'upsert' }>): RecordState {
  return {
    pk: w.pk,
    fingerprint: w.fingerprint,
    cells: w.cells,
    status: w.status,
    attempts: w.attempts,
    lastError: w.lastError,
  };
}

function runOutcome(s: RunSummary) {
  return {
    status: s.status,
    counts: { ...s.counts, mode: s.mode, audienceId: s.audienceId ?? null, warnings: s.warnings, durationMs: Date.parse(s.finishedAt) - Date.parse(s.startedAt), timings: s.timings },
    error: s.error ?? null,
    errorSamples: s.errorSamples.map((e) => ({ pk: e.pkHash, reason: e.reason, ...(e.externId ? { identifiers: { EXTERN_ID: e.externId } } : {}) })),
  };
}

/** The source as the engine reads it; `tempDirectory`: the run's private folder, where a DuckDB read spills. */
export function engineSource(source: Source, tempDirectory?: string): EngineSource {
  return {
    streamByKeyHash: (sql, opts) =>
      source.stream(sql, {
        orderByKey: opts.primaryKey,
        keyForm: 'sha256',
        columns: opts.columns,
        ...(opts.chunkRows ? { chunkRows: opts.chunkRows } : {}),
        ...(tempDirectory ? { tempDirectory } : {}),
      }),
    release: () => source.release(),
  };
}

export function engineGraph(client: GraphClient): EngineGraph {
  return {
    checkAudience: (adAccountId, audienceId) => client.checkAudience(adAccountId, audienceId),
    listAudiences: (adAccountId) => client.listAudiences(adAccountId),
    createCustomAudience: (adAccountId, audience) => client.createCustomAudience(adAccountId, audience),
    uploadSessions: (audienceId) => client.uploadSessions(audienceId),
    openUploadSession(op, audienceId, schema, opts) {
      const session = client.openUploadSession(op, audienceId, schema, opts);
      const { limits } = session;
      return {
        get sessionId() {
          return session.sessionId;
        },
        batcher: (rowOf, maxRows) => new BatchBuilder({ maxRows: Math.min(maxRows ?? limits.maxRows, limits.maxRows), maxBytes: limits.maxBytes }, rowOf),
        async send(rows, sendOpts) {
          try {
            return await session.send(rows, sendOpts);
          } catch (err) {
            throw deliveryError(err);
          }
        },
      };
    },
  };
}

/**
 * Only an invalid-parameter refusal of an upload (code 100) is about the rows sent; every other
 * failure concerns the token, the account, the audience or Meta itself, and hits every batch alike.
 * The message (what happened, then what to do) is the client's.
 */
function deliveryError(err: unknown): unknown {
  if (!(err instanceof MetaApiError)) return err;
  const rowsRefused = err.kind === 'invalid_request' && err.code === 100;
  return new DeliveryError(err.message, rowsRefused ? 'batch' : 'run', err.retryable, { cause: err });
}
